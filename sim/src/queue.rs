//! The scheduler's agenda: events ordered by simulated time.
//!
//! Two events due at the same instant come out in the order they were
//! scheduled, so the order is a function of the run's choices alone. Most
//! latencies are drawn in nanoseconds, so exact ties are rare except for
//! follow-up work scheduled "now", which then runs after what was already due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Events waiting for their time.
#[derive(Debug)]
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<(Duration, u64)>>,
    /// Event bodies by sequence number (kept apart so `E` needs no ordering).
    bodies: std::collections::BTreeMap<u64, E>,
    next_seq: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            bodies: std::collections::BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<E> Queue<E> {
    pub fn push(&mut self, at: Duration, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((at, seq)));
        self.bodies.insert(seq, event);
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(Duration, E)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        let event = self
            .bodies
            .remove(&seq)
            .expect("every queued seq has a body");
        Some((at, event))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_scheduling_order() {
        let mut q = Queue::default();
        let ms = Duration::from_millis;
        q.push(ms(5), "c");
        q.push(ms(1), "a");
        q.push(ms(5), "d");
        q.push(ms(2), "b");
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }
}
