//! Protocol-aware recovery under the simulator: bit flips in durable,
//! acknowledged log records (`Fault::BitFlip`, aimed half the time at the
//! interleaving that loses a write if the damaged server votes) never lose
//! an acknowledged write, and every ensemble settles again, over many seeds.

mod common;

use common::failure;
use sim::{run, Faults, Options};

fn check(seeds: std::ops::Range<u64>, servers: usize, faults: &str) {
    for seed in seeds {
        let options = Options {
            servers,
            steps: 8_000,
            faults: faults.parse::<Faults>().unwrap(),
            ..Options::new(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
    }
}

#[test]
fn three_servers_with_bit_flips_lose_no_acknowledged_write() {
    // Every check of an ensemble run holds; a damaged server sets the
    // damage aside, abstains, and recovers from the others.
    check(100..110, 3, "bit-flip");
}

#[test]
fn bit_flips_among_every_other_fault_lose_no_acknowledged_write() {
    check(200..204, 3, "all,bit-flip");
    check(300..302, 5, "all,bit-flip");
}

#[test]
#[ignore = "an open liveness bug fk-sim found: run it with --ignored"]
fn two_whole_servers_elect_a_leader_while_a_damaged_former_leader_abstains() {
    // `fk-sim --seed 20041 --servers 3 --faults all,bit-flip` (release,
    // 20,000 steps): the leader s2 loses power at 20.4 s with a bit flipped
    // in its newest acknowledged record (0x300000090); it restarts
    // abstaining ("not voting: records after 0x30000008f were lost"), and
    // the two whole servers — s1 holding 0x300000090, s3 at 0x300000079 —
    // keep looking for two minutes after the faults stop without electing
    // anyone: the run is stuck. Safe (nothing acknowledged is lost) but not
    // available, where a leader of s1 and s3 is what protocol-aware
    // recovery promises. Diagnosed this far: s1 and s3 were partitioned
    // from each other 9.2–14.1 s; once both look again (20.4 s) s3's
    // notification reaches s1 once (21.25 s) and s1's never reach s3, while
    // every other pair exchanges them every 200 ms. So the election link
    // from s1 to s3 stays broken after that heal — a link bug the
    // abstaining s2 exposes, since with s2 voting its notifications would
    // carry the election. Whether it is in this simulator's model of
    // election links (one link per direction, dialled on demand) or in what
    // node asks of its driver is not yet known.
    let options = Options {
        servers: 3,
        faults: "all,bit-flip".parse::<Faults>().unwrap(),
        ..Options::new(20041)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}
