"""Records what kazoo clients asked and what they were told, in the history
format `fk-sim check-history` reads (documented in sim/src/history_file.rs).

Real-time order is one counter shared by every client: bumped just before a
request is handed to kazoo (the op's `call`) and when its reply header is
read off the socket (its `at`), in kazoo's connection thread, before kazoo
hands the result on. The reply header also gives the op's zxid, xid and the
session it went out on. So each client gets two small hooks:

- `client._call` (where every request enters kazoo's queue) tags the
  request's async result with the op record the calling thread is running;
- `client._connection._read_response` (where each reply is matched to the
  request at the head of `client._pending`) stamps that record with the
  reply before kazoo's own handling runs.

An op whose reply header was never read is unanswered (`ret` null): its
connection broke, its session expired, it was never sent, or the caller
gave up waiting. Every write names a receipt, a znode only it creates, or
evidence, what the final tree shows if it took effect (see
history_file.rs), so the checker can tell whether it did.
"""

import json
import threading

from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

FORMAT = "fk-history-1"


class Record:
    __slots__ = ("client", "session", "op", "receipt", "evidence", "call", "reply", "outcome")

    def __init__(self, client, session, op, receipt, evidence=None):
        self.client = client
        self.session = session
        self.op = op
        self.receipt = receipt
        self.evidence = evidence
        self.call = None
        # (at, zxid, err, session, xid) from the reply header
        self.reply = None
        self.outcome = None

    def to_json(self):
        ret = None
        if self.reply is not None and self.outcome is not None:
            at, zxid, _err, _session, _xid = self.reply
            ret = {"at": at, "zxid": zxid, "outcome": self.outcome}
        session, xid = self.session, None
        if self.reply is not None:
            session, xid = self.reply[3], self.reply[4]
        return {"client": self.client, "session": session, "xid": xid, "call": self.call,
                "op": self.op, "receipt": self.receipt, "evidence": self.evidence, "ret": ret}


def _stat(stat):
    return {"version": stat.version, "ephemeral_owner": stat.ephemeralOwner,
            "num_children": stat.numChildren, "data_length": stat.dataLength}


def _multi_outcome(ops, results):
    if any(isinstance(r, Exception) for r in results):
        return {"kind": "multi_failed", "codes": [r.code if isinstance(r, KazooException) else 0
                                                  for r in results]}
    out = []
    for op, result in zip(ops, results):
        kind = op["kind"]
        if kind == "create":
            out.append({"kind": "created", "path": result})
        elif kind == "delete":
            out.append({"kind": "deleted"})
        elif kind == "set_data":
            out.append({"kind": "data_set", "version": result.version})
        else:
            out.append({"kind": "checked"})
    return {"kind": "multi", "results": out}


def outcome(op, value):
    """The history outcome of a successful reply `value` to `op`."""
    kind = op["kind"]
    if kind == "create":
        return {"kind": "created", "path": value}
    if kind == "delete":
        return {"kind": "deleted"}
    if kind == "set_data":
        return {"kind": "data_set", "version": value.version}
    if kind == "multi":
        return _multi_outcome(op["ops"], value)
    if kind == "get_data":
        data, stat = value
        return {"kind": "data", "data": data.decode(), "stat": _stat(stat)}
    if kind == "exists":
        return {"kind": "stat", "stat": _stat(value)}
    if kind == "get_children":
        return {"kind": "children", "children": sorted(value)}
    if kind == "sync":
        return {"kind": "done"}
    raise ValueError(f"unknown op kind {kind}")


class History:
    """Every op of every client of one test."""

    def __init__(self, root):
        self.root = root
        self._lock = threading.Lock()
        self._clock = 0
        self._records = []
        self._local = threading.local()

    def tick(self):
        with self._lock:
            self._clock += 1
            return self._clock

    def attach(self, client):
        """Installs the two hooks on a kazoo client (before it starts)."""
        history = self
        call = client._call
        connection = client._connection
        read_response = connection._read_response

        def tagged_call(request, async_object):
            record = getattr(history._local, "record", None)
            if record is not None:
                history._local.record = None
                async_object.fk_record = record
            return call(request, async_object)

        def stamped_read_response(header, buffer, offset):
            if client._pending:
                _request, async_object, xid = client._pending[0]
                record = getattr(async_object, "fk_record", None)
                if record is not None and header.xid == xid:
                    record.reply = (history.tick(), header.zxid, header.err, client._session_id or 0, xid)
            return read_response(header, buffer, offset)

        client._call = tagged_call
        connection._read_response = stamped_read_response

    def run(self, client, index, op, receipt, issue, timeout, evidence=None):
        """Runs one op: `issue()` hands it to kazoo (e.g. a `*_async` call).
        Returns (record, value); value is None unless the op succeeded."""
        return self.finish(self.start(client, index, op, receipt, issue, evidence), timeout)

    def start(self, client, index, op, receipt, issue, evidence=None):
        """Hands one op to kazoo without waiting for it (several started in
        a row are pipelined on the session); `finish` waits for it."""
        record = Record(index, client._session_id or 0, op, receipt, evidence)
        record.call = self.tick()
        self._local.record = record
        result = None
        try:
            result = issue()
        except KazooException:
            pass
        finally:
            self._local.record = None
        return record, result

    def finish(self, started, timeout):
        """Waits for a started op; returns (record, value) as `run` does."""
        record, result = started
        value = None
        if result is not None:
            try:
                value = result.get(timeout=timeout)
            except KazooTimeoutError:
                value = None
            except KazooException:
                value = None
            reply = record.reply
            if reply is not None:
                err = reply[2]
                if err != 0:
                    record.outcome = {"kind": "error", "code": err}
                    value = None
                elif result.ready() and result.successful():
                    record.outcome = outcome(record.op, result.value)
                    value = result.value
        with self._lock:
            self._records.append(record)
        return record, value

    def counts(self):
        with self._lock:
            records = list(self._records)
        answered = sum(1 for r in records if r.outcome is not None)
        return {"ops": len(records), "answered": answered, "unanswered": len(records) - answered}

    def dump(self, path, final_tree):
        with self._lock:
            ops = [r.to_json() for r in self._records]
        with open(path, "w") as f:
            json.dump({"format": FORMAT, "root": self.root, "ops": ops, "final": final_tree}, f)
