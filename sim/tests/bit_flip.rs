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
