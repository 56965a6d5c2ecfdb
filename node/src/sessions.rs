//! The live sessions and when each one expires.
//!
//! The tree holds the durable part of a session (its id and timeout, from
//! the createSession txn); this table holds the rest: which connection it is
//! on, when it was last heard from, and whether it is closing.
//!
//! Expiry works as ZooKeeper's `ExpiryQueue`: a session's deadline is
//! rounded up to the next multiple of the tick, so that a busy session moves
//! between buckets at most once per tick however many requests it sends, and
//! a tick expires whole buckets. Buckets are ordered by (deadline, session
//! id), so the order of expiry txns is a function of the inputs alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::io::ConnId;

/// One live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) timeout_ms: i32,
    /// The bucket it expires in (a multiple of the tick).
    pub(crate) deadline: Duration,
    /// The connection it is on, if any.
    pub(crate) conn: Option<ConnId>,
    /// A closeSession txn for it is prepared; it accepts nothing more.
    pub(crate) closing: bool,
}

#[derive(Debug)]
pub(crate) struct Sessions {
    by_id: BTreeMap<i64, Session>,
    /// (deadline, id) of every session that is not closing.
    expiry: BTreeSet<(Duration, i64)>,
    tick: Duration,
}

impl Sessions {
    pub(crate) fn new(tick: Duration) -> Sessions {
        assert!(!tick.is_zero(), "the expiry tick must be positive");
        Sessions {
            by_id: BTreeMap::new(),
            expiry: BTreeSet::new(),
            tick,
        }
    }

    /// The bucket a session heard from at `now` expires in.
    fn bucket(&self, now: Duration, timeout_ms: i32) -> Duration {
        let due = now + Duration::from_millis(timeout_ms.max(0) as u64);
        let tick = self.tick.as_nanos();
        let rounded = (due.as_nanos() / tick + 1) * tick;
        Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
    }

    /// Adds a session heard from at `now`.
    pub(crate) fn insert(
        &mut self,
        session_id: i64,
        timeout_ms: i32,
        conn: Option<ConnId>,
        now: Duration,
    ) {
        let deadline = self.bucket(now, timeout_ms);
        let session = Session {
            timeout_ms,
            deadline,
            conn,
            closing: false,
        };
        if let Some(old) = self.by_id.insert(session_id, session) {
            self.expiry.remove(&(old.deadline, session_id));
        }
        self.expiry.insert((deadline, session_id));
    }

    pub(crate) fn get(&self, session_id: i64) -> Option<&Session> {
        self.by_id.get(&session_id)
    }

    pub(crate) fn get_mut(&mut self, session_id: i64) -> Option<&mut Session> {
        self.by_id.get_mut(&session_id)
    }

    pub(crate) fn remove(&mut self, session_id: i64) -> Option<Session> {
        let session = self.by_id.remove(&session_id)?;
        self.expiry.remove(&(session.deadline, session_id));
        Some(session)
    }

    /// The session was heard from at `now` (a request, a ping, a reconnect).
    pub(crate) fn touch(&mut self, session_id: i64, now: Duration) {
        let Some(session) = self.by_id.get(&session_id) else {
            return;
        };
        if session.closing {
            return;
        }
        let deadline = self.bucket(now, session.timeout_ms);
        if deadline == session.deadline {
            return;
        }
        let old = session.deadline;
        self.expiry.remove(&(old, session_id));
        self.expiry.insert((deadline, session_id));
        self.by_id
            .get_mut(&session_id)
            .expect("looked up above")
            .deadline = deadline;
    }

    /// Changes a session's timeout (a reconnect negotiates a new one).
    pub(crate) fn set_timeout(&mut self, session_id: i64, timeout_ms: i32, now: Duration) {
        if let Some(session) = self.by_id.get_mut(&session_id) {
            session.timeout_ms = timeout_ms;
            // Force a move to the bucket of the new timeout.
            let old = session.deadline;
            session.deadline = Duration::ZERO;
            if !session.closing {
                self.expiry.remove(&(old, session_id));
                self.expiry.insert((Duration::ZERO, session_id));
            }
            self.touch(session_id, now);
        }
    }

    /// Marks a session closing: it takes no more requests and never expires
    /// again (its closeSession txn is on its way).
    pub(crate) fn mark_closing(&mut self, session_id: i64) {
        if let Some(session) = self.by_id.get_mut(&session_id) {
            if !session.closing {
                session.closing = true;
                self.expiry.remove(&(session.deadline, session_id));
            }
        }
    }

    /// A session marked closing whose closeSession could not be prepared
    /// expires again later (a closing session never expires otherwise).
    pub(crate) fn reopen(&mut self, session_id: i64, now: Duration) {
        if let Some(session) = self.by_id.get_mut(&session_id) {
            if session.closing {
                session.closing = false;
                let deadline = now + self.tick;
                session.deadline = deadline;
                self.expiry.insert((deadline, session_id));
            }
        }
    }

    /// Sessions whose deadline has passed at `now`, in (deadline, id) order,
    /// marked closing.
    pub(crate) fn take_expired(&mut self, now: Duration) -> Vec<i64> {
        let mut expired = Vec::new();
        while let Some(&(deadline, session_id)) = self.expiry.first() {
            if deadline > now {
                break;
            }
            self.expiry.pop_first();
            let session = self
                .by_id
                .get_mut(&session_id)
                .expect("indexed sessions exist");
            session.closing = true;
            expired.push(session_id);
        }
        expired
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, &Session)> {
        self.by_id.iter().map(|(id, s)| (*id, s))
    }

    pub(crate) fn check_invariants(&self) {
        let open = self.by_id.values().filter(|s| !s.closing).count();
        assert_eq!(
            open,
            self.expiry.len(),
            "every open session is indexed once"
        );
        for (deadline, session_id) in &self.expiry {
            let session = &self.by_id[session_id];
            assert!(!session.closing, "closing sessions never expire again");
            assert_eq!(session.deadline, *deadline, "index matches the session");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_session_expires_in_the_bucket_after_its_timeout() {
        let mut sessions = Sessions::new(TICK);
        sessions.insert(1, 1000, None, ms(50));
        // Due at 1050, rounded up to the next tick: 1100.
        assert_eq!(sessions.get(1).unwrap().deadline, ms(1100));
        assert!(sessions.take_expired(ms(1099)).is_empty());
        assert_eq!(sessions.take_expired(ms(1100)), vec![1]);
        assert!(sessions.get(1).unwrap().closing);
        assert!(sessions.take_expired(ms(5000)).is_empty(), "expired once");
        sessions.check_invariants();
    }

    #[test]
    fn touching_moves_the_deadline_and_closing_sessions_never_expire() {
        let mut sessions = Sessions::new(TICK);
        sessions.insert(1, 1000, None, ms(0));
        sessions.insert(2, 1000, None, ms(0));
        sessions.touch(1, ms(900));
        sessions.mark_closing(2);
        sessions.check_invariants();
        assert!(sessions.take_expired(ms(1500)).is_empty());
        assert_eq!(sessions.take_expired(ms(2000)), vec![1]);
        sessions.check_invariants();
    }

    #[test]
    fn expiry_order_is_deadline_then_id() {
        let mut sessions = Sessions::new(TICK);
        for id in [9, 3, 7] {
            sessions.insert(id, 1000, None, ms(0));
        }
        sessions.insert(1, 2000, None, ms(0));
        assert_eq!(sessions.take_expired(ms(10_000)), vec![3, 7, 9, 1]);
    }

    #[test]
    fn a_new_timeout_takes_effect_at_once() {
        let mut sessions = Sessions::new(TICK);
        sessions.insert(1, 10_000, None, ms(0));
        sessions.set_timeout(1, 1000, ms(0));
        sessions.check_invariants();
        assert_eq!(sessions.take_expired(ms(1100)), vec![1]);
    }
}
