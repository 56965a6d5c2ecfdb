#!/usr/bin/env python3
"""Counts and failures from pytest's JUnit XML, and the difference between two runs.

    summarize.py RUN.xml                   passed/failed/skipped/errors, then each
                                           failed or erroring test with its first line
    summarize.py ZK.xml FK.xml             the same for FK.xml, then the tests that
                                           pass in ZK.xml and do not pass in FK.xml

A test's outcome follows pytest's terminal report: a failure in the test body
counts as failed, an error in setUp/tearDown (or at collection) as an error,
and a test with both a failure and a teardown error counts once for each, as
pytest does. Test ids are "module::Class::test".
"""

import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    """{test id: (outcome, message)} with outcome in passed/failed/error/skipped.

    One test may appear twice in the XML (call failure plus teardown error);
    the worse outcome is kept as the test's verdict, and counts() counts both.
    """
    tree = ET.parse(path)
    results = {}
    extra_errors = 0
    for case in tree.iter("testcase"):
        classname = case.get("classname", "")
        test_id = f"{classname.replace('kazoo.tests.', '').replace('.', '::')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip().splitlines()
                message = message[0] if message else ""
                if outcome != "skipped":
                    break
        if test_id in results:
            extra_errors += 1
            if results[test_id][0] != "passed":
                continue
        results[test_id] = (outcome, message)
    return results, extra_errors


def counts(results, extra_errors):
    total = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for outcome, _ in results.values():
        total[outcome] += 1
    total["error"] += extra_errors
    return total


def report(path):
    results, extra = outcomes(path)
    total = counts(results, extra)
    print(f"{path}: {total['passed']} passed, {total['failed']} failed, "
          f"{total['skipped']} skipped, {total['error']} errors")
    for test_id, (outcome, message) in sorted(results.items()):
        if outcome in ("failed", "error"):
            print(f"  {outcome.upper():6} {test_id}: {message[:200]}")
    return results


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    if len(argv) == 2:
        report(argv[1])
        return 0
    reference, _ = outcomes(argv[1])
    candidate = report(argv[2])
    regressions = [(t, candidate.get(t, ("missing", ""))) for t, (o, _) in sorted(reference.items())
                   if o == "passed" and candidate.get(t, ("missing",))[0] != "passed"]
    print(f"passed in {argv[1]} but not in {argv[2]}: {len(regressions)}")
    for test_id, (outcome, message) in regressions:
        print(f"  {outcome.upper():6} {test_id}: {message[:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
