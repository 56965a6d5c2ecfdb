//! What a node is told at start: the zoo.cfg values its logic depends on, and
//! the seed of every choice it makes at random.

use std::time::Duration;

use replication::{Ensemble, Sid};

/// How this server takes part in an ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleSettings {
    /// `myid`.
    pub my_sid: Sid,
    pub ensemble: Ensemble,
    /// Ticks a learner has to connect and synchronise (`initLimit`).
    pub init_limit: u32,
    /// Ticks a synced learner or leader may stay silent (`syncLimit`).
    pub sync_limit: u32,
    /// Most bytes queued for one learner on the leader
    /// (`ferrokeeper.peerQueueBytesMax`); a learner past it is disconnected
    /// and re-syncs.
    pub peer_queue_bytes_max: usize,
    /// Committed txns the leader keeps in memory for DIFF (older learners get SNAP).
    pub history_txns_max: usize,
    pub history_bytes_max: usize,
    /// Election: how long a quorum-agreed vote waits for a better one.
    pub finalize_wait_ms: u64,
    /// A replication bug reintroduced on purpose: the simulator's tests
    /// only (`replication::Mutation`); always `None` from zoo.cfg.
    pub mutation: Option<replication::Mutation>,
}

impl EnsembleSettings {
    /// ZooKeeper's defaults for `my_sid` in `ensemble`.
    pub fn new(my_sid: Sid, ensemble: Ensemble) -> EnsembleSettings {
        EnsembleSettings {
            my_sid,
            ensemble,
            init_limit: 10,
            sync_limit: 5,
            peer_queue_bytes_max: 64 << 20,
            history_txns_max: 10_000,
            history_bytes_max: 32 << 20,
            finalize_wait_ms: replication::election::FINALIZE_WAIT_MS_DEFAULT,
            mutation: None,
        }
    }
}

/// The node's configuration. Plain data: the engine fills it from zoo.cfg,
/// tests and the simulator write it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `myid`; 0 for a standalone server. The top byte of every session id.
    pub server_id: u8,
    pub tick_time_ms: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// A snapshot starts after `snap_count/2 + random(0, snap_count/2)` txns...
    pub snap_count: u64,
    /// ... or after this many KiB of log (0 = no byte rule).
    pub snap_size_limit_kb: u64,
    /// How often empty containers and expired TTL nodes are looked for.
    pub container_check_interval_ms: u64,
    /// Hours between purges (0 = never).
    pub autopurge_interval_hours: u32,
    /// Snapshots a purge keeps.
    pub autopurge_retain_count: u32,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// A log sync slower than this is counted (`zk_fsync_threshold_exceed_count`).
    pub fsync_warning_threshold_ms: u64,
    /// Seeds every random choice (the snapshot `randRoll`): a fresh random
    /// value in production, a fixed one in tests and the simulator.
    pub random_seed: u64,
    /// `extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types_enabled: bool,
    /// TLS client certificates are authenticated (a secure client port):
    /// `x509` ACLs are valid.
    pub x509_enabled: bool,
    /// SASL on client connections: the JAAS `Server` section's users
    /// (`None`: no section, as ZooKeeper without a JAAS login).
    pub sasl: Option<crate::sasl::SaslSettings>,
    /// `authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`:
    /// `sasl` ACLs are valid and matched.
    pub sasl_provider_enabled: bool,
    /// The largest encoded txn the log takes (prepare refuses larger ones).
    pub txn_bytes_max: usize,
    /// `None`: a standalone server.
    pub ensemble: Option<EnsembleSettings>,
    /// The highest zxid counter (the low 32 bits) a leader prepares; at it,
    /// the leader steps down so that an election starts a new epoch
    /// (ZOOKEEPER-1277). Lower in tests.
    pub zxid_counter_max: u32,
    /// The most bytes handed to one connection that it has not reported
    /// written ([`crate::Input::Written`]): its credit. While the credit is
    /// used up the node takes no more of the connection's requests — they
    /// wait, small and unanswered, until the client reads — so a client that
    /// does not read cannot make the server build replies for it without
    /// bound. One reply may overshoot (a reply larger than the credit still
    /// leaves).
    pub unsent_bytes_max: u64,
}

/// The default [`Settings::unsent_bytes_max`]: enough for many large replies
/// in flight on a fast link, small beside the server's memory.
pub const UNSENT_BYTES_MAX_DEFAULT: u64 = 4 * 1024 * 1024;

impl Default for Settings {
    /// ZooKeeper's defaults.
    fn default() -> Self {
        Settings {
            server_id: 0,
            tick_time_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            snap_count: 100_000,
            snap_size_limit_kb: 4 * 1024 * 1024,
            container_check_interval_ms: 60_000,
            autopurge_interval_hours: 0,
            autopurge_retain_count: 3,
            super_digest: None,
            fsync_warning_threshold_ms: 1000,
            random_seed: 0,
            extended_types_enabled: false,
            x509_enabled: false,
            sasl: None,
            sasl_provider_enabled: false,
            txn_bytes_max: usize::MAX,
            ensemble: None,
            zxid_counter_max: u32::MAX - 1,
            unsent_bytes_max: UNSENT_BYTES_MAX_DEFAULT,
        }
    }
}

impl Settings {
    /// The timeout a session gets for the one it asked for: clamped into
    /// `[min, max]`, as ZooKeeper's `processConnectRequest`.
    pub fn negotiate_session_timeout(&self, requested_ms: i32) -> i32 {
        let min = self.min_session_timeout_ms as i32;
        let max = self.max_session_timeout_ms.max(self.min_session_timeout_ms) as i32;
        requested_ms.clamp(min, max)
    }

    /// The session expiry bucket width (ZooKeeper's `expirationInterval`).
    pub fn tick(&self) -> Duration {
        Duration::from_millis(u64::from(self.tick_time_ms.max(1)))
    }
}

/// SplitMix64: a tiny, well-mixed PRNG. Deterministic from its seed, so a run
/// replays bit for bit.
#[derive(Debug, Clone)]
pub(crate) struct Random {
    state: u64,
}

impl Random {
    pub(crate) fn new(seed: u64) -> Random {
        Random { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_clamped_into_the_configured_range() {
        let settings = Settings::default();
        assert_eq!(settings.negotiate_session_timeout(1), 4000);
        assert_eq!(settings.negotiate_session_timeout(10_000), 10_000);
        assert_eq!(settings.negotiate_session_timeout(i32::MAX), 40_000);
    }

    #[test]
    fn random_is_a_function_of_its_seed() {
        let (mut a, mut b, mut c) = (Random::new(7), Random::new(7), Random::new(8));
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
    }
}
