//! Server configuration: an Apache ZooKeeper `zoo.cfg` read as it is, plus
//! ferrokeeper's own keys beside it.
//!
//! The file is Java-properties style: `key=value` lines, `#` or `!` comments,
//! surrounding white space ignored. Keys ZooKeeper knows are parsed into typed
//! fields; keys it would turn into `zookeeper.<key>` system properties and keys
//! nobody knows are kept in `unknown` and warned about once at start-up, never
//! fatal. Values that are present but malformed are errors that name the line.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("{0}")]
    Inconsistent(String),
    /// The JAAS file (`java.security.auth.login.config`) does not parse or
    /// names what ferrokeeper does not offer.
    #[error("JAAS login configuration {path}: {reason}")]
    Jaas { path: PathBuf, reason: String },
}

/// Everything the standalone server needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tick_time_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    /// Connections allowed from one IP address; 0 = unlimited.
    pub max_client_cnxns: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub snap_count: u64,
    pub snap_size_limit_kb: u64,
    pub pre_alloc_size_kb: u64,
    pub force_sync: bool,
    pub fsync_warning_threshold_ms: u64,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_hours: u32,
    /// `None` means every four-letter word is disabled except `srvr` and
    /// ZooKeeper's default; `Some(set)` lists the enabled ones (`*` = all).
    pub four_letter_words: Vec<String>,
    pub global_outstanding_limit: u32,
    pub jute_max_buffer: usize,
    pub extended_types_enabled: bool,
    /// `user:base64(sha1(user:password))` of the super user, if configured
    /// (`DigestAuthenticationProvider.superDigest`).
    pub super_digest: Option<String>,
    /// How often the container/TTL reaper runs (`znode.container.checkIntervalMs`).
    pub container_check_interval_ms: u64,
    /// ferrokeeper's own: how many glommio executors serve client connections.
    pub cores: usize,
    /// ferrokeeper's own: io_uring registered-buffer memory per executor.
    pub io_memory_bytes: usize,
    /// ferrokeeper's own (`ferrokeeper.logSync`): with forceSync on, make log
    /// batches durable with O_DSYNC writes (`dsync`, one io_uring round trip)
    /// or with a write and an fdatasync (`fdatasync`). `fk-diskbench --dsync`
    /// shows which a disk favours.
    pub log_sync_dsync: bool,
    /// ferrokeeper's own (`ferrokeeper.unsentReplyBytesMax`): the most reply
    /// bytes one connection may have unwritten before the server stops
    /// taking its requests; a connection that stays at this bound for its
    /// session timeout is closed.
    pub unsent_reply_bytes_max: u64,
    /// ferrokeeper's own (`ferrokeeper.handshakeTimeoutMs`): a connection
    /// that has not sent its ConnectRequest (and, on the secure port,
    /// finished its TLS handshake) this long after it was accepted is closed.
    /// ZooKeeper's NIO server does the same after
    /// `zookeeper.nio.sessionlessCnxnTimeout`, 10 s by default.
    pub handshake_timeout_ms: u64,
    /// `secureClientPort`: a second client port speaking TLS (none if unset).
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; the client port's address when unset.
    pub secure_client_port_address: Option<IpAddr>,
    /// The `ssl.*` keys of the secure client port.
    pub tls: TlsConfig,
    /// SASL on client connections: ZooKeeper's JAAS file and SASL properties.
    pub sasl: SaslConfig,
    /// `server.N` lines, by N: two or more make an ensemble.
    pub servers: BTreeMap<u32, String>,
    /// `peerType`: `observer` makes this server an observer (its server.N
    /// line must say so too).
    pub peer_type: Option<String>,
    /// `standaloneEnabled`: with one server.N line, run standalone (true) or
    /// as an ensemble of one (false).
    pub standalone_enabled: bool,
    /// ferrokeeper's own (`ferrokeeper.peerQueueBytesMax`): bytes queued for
    /// one learner on the leader before it is disconnected and re-synced.
    pub peer_queue_bytes_max: usize,
    /// Keys this version does not act on (warned at start-up).
    pub unknown: BTreeMap<String, String>,
}

/// What ZooKeeper's `ssl.clientAuth` asks of a TLS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// A certificate is asked for; a client without one is served unauthenticated.
    Want,
    /// A client without a trusted certificate is refused (ZooKeeper's default).
    Need,
}

/// ZooKeeper's `ssl.*` keys for the secure client port. Passwords come from
/// `ssl.*.password` or from the file named by `ssl.*.passwordPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub key_store_location: Option<PathBuf>,
    pub key_store_password: Option<String>,
    pub key_store_password_path: Option<PathBuf>,
    /// `ssl.keyStore.type` (JKS, PKCS12, PEM); from the extension when unset.
    pub key_store_type: Option<String>,
    pub trust_store_location: Option<PathBuf>,
    pub trust_store_password: Option<String>,
    pub trust_store_password_path: Option<PathBuf>,
    pub trust_store_type: Option<String>,
    pub client_auth: ClientAuth,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that
    /// is the super user.
    pub x509_super_user: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            key_store_location: None,
            key_store_password: None,
            key_store_password_path: None,
            key_store_type: None,
            trust_store_location: None,
            trust_store_password: None,
            trust_store_password_path: None,
            trust_store_type: None,
            client_auth: ClientAuth::Need,
            x509_super_user: None,
        }
    }
}

/// ZooKeeper's SASL keys. As with its other system properties, each is
/// accepted with or without the `zookeeper.` prefix; the JAAS file keeps
/// the JVM's own property name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslConfig {
    /// `java.security.auth.login.config`: the JAAS login configuration file.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section the server reads
    /// (`Server` when unset).
    pub login_context: Option<String>,
    /// `authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`:
    /// `sasl` ACLs are valid.
    pub provider_enabled: bool,
    /// `zookeeper.superUser` and `zookeeper.superUser.*`: SASL ids that are
    /// also the super user.
    pub super_users: BTreeMap<String, String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`.
    pub super_password: Option<String>,
    /// `zookeeper.allowSaslFailedClients`: a client whose SASL exchange
    /// fails keeps its connection, unauthenticated.
    pub allow_failed_clients: bool,
    /// The DIGEST-MD5 users of the JAAS section, read by [`Config::load`]
    /// (`None`: no JAAS file, or no such section in it).
    pub users: Option<SaslUsers>,
}

/// User names and passwords from a JAAS section; `Debug` shows no password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslUsers(pub BTreeMap<String, String>);

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The JAAS section ZooKeeper's server reads when `zookeeper.sasl.serverconfig` is unset.
pub const JAAS_SECTION_DEFAULT: &str = "Server";
/// The `authProvider.N` class that makes `sasl` ACLs valid.
pub const SASL_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

impl SaslConfig {
    /// Takes one SASL key (without its `zookeeper.` prefix); false if it is not one.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, &'static str> {
        match key {
            "java.security.auth.login.config" => self.jaas_file = Some(PathBuf::from(value)),
            "sasl.serverconfig" => self.login_context = Some(value.to_string()),
            _ if key.starts_with("authProvider.") && value == SASL_PROVIDER_CLASS => {
                self.provider_enabled = true
            }
            _ if key == "superUser" || key.starts_with("superUser.") => {
                self.super_users.insert(key.to_string(), value.to_string());
            }
            "SASLAuthenticationProvider.superPassword" => {
                self.super_password = Some(value.to_string())
            }
            "allowSaslFailedClients" => {
                self.allow_failed_clients = yes_no(value).ok_or("expected true or false")?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The JAAS section's name.
    pub fn section(&self) -> &str {
        self.login_context
            .as_deref()
            .unwrap_or(JAAS_SECTION_DEFAULT)
    }

    /// Reads the JAAS file, if one is named, into [`SaslConfig::users`].
    /// An unreadable or malformed file is an error (ZooKeeper refuses to
    /// start too); a file without the section leaves SASL off, as ZooKeeper
    /// does. A Kerberos (GSSAPI) section is refused: ferrokeeper offers
    /// DIGEST-MD5 only.
    fn load_jaas(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.jaas_file.clone() else {
            return Ok(());
        };
        let jaas_error = |reason: String| ConfigError::Jaas {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|source| jaas_error(format!("cannot read it: {source}")))?;
        let sections = crate::jaas::parse(&text).map_err(|err| jaas_error(err.to_string()))?;
        let Some(entries) = sections.get(self.section()) else {
            return Ok(());
        };
        if let Some(kerberos) = entries
            .iter()
            .find(|e| e.login_module == crate::jaas::KERBEROS_LOGIN_MODULE)
        {
            return Err(jaas_error(format!(
                "section {} uses {}: Kerberos (GSSAPI) is not supported, only DIGEST-MD5 (DigestLoginModule with user_<name>=\"<password>\" options)",
                self.section(),
                kerberos.login_module
            )));
        }
        self.users = Some(SaslUsers(crate::jaas::digest_users(entries)));
        Ok(())
    }

    /// What the node needs, if SASL is on; `nonce_secret` should be fresh
    /// random bytes at every start.
    pub fn node_settings(&self, nonce_secret: [u8; 32]) -> Option<node::SaslSettings> {
        let users = self.users.as_ref()?;
        Some(node::SaslSettings {
            users: users.0.clone(),
            super_password: self.super_password.clone(),
            super_users: self.super_users.values().cloned().collect(),
            allow_failed_clients: self.allow_failed_clients,
            nonce_secret,
        })
    }
}

/// ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout` default.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// Four-letter words ZooKeeper enables when `4lw.commands.whitelist` is absent.
const FOUR_LETTER_WORDS_DEFAULT: &[&str] = &["srvr"];

impl Default for Config {
    fn default() -> Self {
        let tick = 2000;
        Self {
            tick_time_ms: tick,
            init_limit: 10,
            sync_limit: 5,
            data_dir: PathBuf::from("ferrokeeper-data"),
            data_log_dir: PathBuf::from("ferrokeeper-data"),
            client_port: 2181,
            client_port_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_client_cnxns: 60,
            min_session_timeout_ms: 2 * tick,
            max_session_timeout_ms: 20 * tick,
            snap_count: 100_000,
            snap_size_limit_kb: 4 * 1024 * 1024,
            pre_alloc_size_kb: 64 * 1024,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            four_letter_words: FOUR_LETTER_WORDS_DEFAULT
                .iter()
                .map(|s| s.to_string())
                .collect(),
            global_outstanding_limit: 1000,
            jute_max_buffer: proto::JUTE_MAXBUFFER_DEFAULT,
            extended_types_enabled: false,
            super_digest: None,
            container_check_interval_ms: 60_000,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            io_memory_bytes: 512 * 1024,
            log_sync_dsync: true,
            unsent_reply_bytes_max: node::settings::UNSENT_BYTES_MAX_DEFAULT,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
            secure_client_port: None,
            secure_client_port_address: None,
            tls: TlsConfig::default(),
            sasl: SaslConfig::default(),
            servers: BTreeMap::new(),
            peer_type: None,
            standalone_enabled: true,
            peer_queue_bytes_max: 64 << 20,
            unknown: BTreeMap::new(),
        }
    }
}

impl Config {
    /// The log writer's settings from preAllocSize and forceSync. Segments are
    /// a whole number of 4 KiB blocks, at least the log's minimum.
    pub fn writer_config(&self, salt_seed: u64) -> wal::WriterConfig {
        let block = wal::BLOCK_BYTES as u64;
        let bytes = self.pre_alloc_size_kb.saturating_mul(1024).div_ceil(block) * block;
        wal::WriterConfig {
            segment_bytes: bytes.clamp(wal::SEGMENT_BYTES_MIN, wal::SEGMENT_BYTES_MAX),
            force_sync: self.force_sync,
            salt_seed,
            ..wal::WriterConfig::default()
        }
    }

    /// The largest txn the log can hold (a record is a txn header and the txn).
    pub fn txn_bytes_max(&self) -> usize {
        self.writer_config(0).record_payload_bytes_max() - tree::TxnHeader::ENCODED_LEN
    }

    pub fn client_address(&self) -> SocketAddr {
        SocketAddr::new(self.client_port_address, self.client_port)
    }

    /// Where the TLS listener binds, if `secureClientPort` is set.
    pub fn secure_client_address(&self) -> Option<SocketAddr> {
        let port = self.secure_client_port?;
        let address = self
            .secure_client_port_address
            .unwrap_or(self.client_port_address);
        Some(SocketAddr::new(address, port))
    }

    /// Whether a four-letter word may run (`4lw.commands.whitelist`).
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        self.four_letter_words.iter().any(|w| w == "*" || w == word)
    }

    /// Whether the server.N lines make this server part of an ensemble.
    pub fn is_ensemble(&self) -> bool {
        self.servers.len() >= 2 || (self.servers.len() == 1 && !self.standalone_enabled)
    }

    /// The ensemble and this server's place in it, from the server.N lines
    /// and `dataDir/myid` (read here). `None` for a standalone server.
    pub fn ensemble_settings(&self) -> Result<Option<node::EnsembleSettings>, ConfigError> {
        if !self.is_ensemble() {
            return Ok(None);
        }
        let values = self
            .servers
            .iter()
            .map(|(sid, value)| (u64::from(*sid), value.as_str()));
        let ensemble = replication::Ensemble::from_server_values(values)
            .map_err(|err| ConfigError::Inconsistent(err.to_string()))?;
        let myid_path = self.data_dir.join("myid");
        let text = std::fs::read_to_string(&myid_path).map_err(|source| ConfigError::Read {
            path: myid_path.clone(),
            source,
        })?;
        let my_sid: u64 = text.trim().parse().map_err(|_| {
            ConfigError::Inconsistent(format!("{} does not hold a server id", myid_path.display()))
        })?;
        let Some(me) = ensemble.get(my_sid) else {
            return Err(ConfigError::Inconsistent(format!(
                "myid {my_sid} has no server.{my_sid} line"
            )));
        };
        if my_sid > 254 {
            return Err(ConfigError::Inconsistent(format!(
                "myid {my_sid} is over 254: session ids carry it in one byte"
            )));
        }
        let observer = me.learner_type == replication::LearnerType::Observer;
        if self
            .peer_type
            .as_deref()
            .is_some_and(|t| (t == "observer") != observer)
        {
            return Err(ConfigError::Inconsistent(format!(
                "peerType={} but server.{my_sid} is a {:?}",
                self.peer_type.as_deref().unwrap_or_default(),
                me.learner_type
            )));
        }
        let mut settings = node::EnsembleSettings::new(my_sid, ensemble);
        settings.init_limit = self.init_limit.max(1);
        settings.sync_limit = self.sync_limit.max(1);
        settings.peer_queue_bytes_max = self.peer_queue_bytes_max;
        Ok(Some(settings))
    }

    /// What the node needs to know; `random_seed` seeds its random choices.
    pub fn node_settings(&self, random_seed: u64) -> node::Settings {
        node::Settings {
            server_id: 0,
            tick_time_ms: self.tick_time_ms,
            min_session_timeout_ms: self.min_session_timeout_ms,
            max_session_timeout_ms: self.max_session_timeout_ms,
            snap_count: self.snap_count,
            snap_size_limit_kb: self.snap_size_limit_kb,
            container_check_interval_ms: self.container_check_interval_ms,
            autopurge_interval_hours: self.autopurge_purge_interval_hours,
            autopurge_retain_count: self.autopurge_snap_retain_count,
            super_digest: self.super_digest.clone(),
            fsync_warning_threshold_ms: self.fsync_warning_threshold_ms,
            random_seed,
            extended_types_enabled: self.extended_types_enabled,
            x509_enabled: self.secure_client_port.is_some(),
            sasl_provider_enabled: self.sasl.provider_enabled,
            txn_bytes_max: self.txn_bytes_max(),
            ensemble: None,
            unsent_bytes_max: self.unsent_reply_bytes_max,
            ..node::Settings::default()
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(path, &text)?;
        config.sasl.load_jaas()?;
        Ok(config)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut min_timeout_set = false;
        let mut max_timeout_set = false;
        let mut data_log_dir_set = false;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                return Err(invalid(path, index, line, "expected key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            let bad = |reason: &str| invalid(path, index, key, reason);
            match key {
                "tickTime" => {
                    config.tick_time_ms = number(value).ok_or_else(|| bad("not a number"))?
                }
                "initLimit" => {
                    config.init_limit = number(value).ok_or_else(|| bad("not a number"))?
                }
                "syncLimit" => {
                    config.sync_limit = number(value).ok_or_else(|| bad("not a number"))?
                }
                "dataDir" => config.data_dir = PathBuf::from(value),
                "dataLogDir" => {
                    config.data_log_dir = PathBuf::from(value);
                    data_log_dir_set = true;
                }
                "clientPort" => {
                    config.client_port = number(value).ok_or_else(|| bad("not a port"))?
                }
                "clientPortAddress" => {
                    config.client_port_address =
                        resolve(value).ok_or_else(|| bad("not an address"))?
                }
                "maxClientCnxns" => {
                    config.max_client_cnxns = number(value).ok_or_else(|| bad("not a number"))?
                }
                "minSessionTimeout" => {
                    config.min_session_timeout_ms =
                        number(value).ok_or_else(|| bad("not a number"))?;
                    min_timeout_set = true;
                }
                "maxSessionTimeout" => {
                    config.max_session_timeout_ms =
                        number(value).ok_or_else(|| bad("not a number"))?;
                    max_timeout_set = true;
                }
                "snapCount" => {
                    config.snap_count = number(value).ok_or_else(|| bad("not a number"))?
                }
                "snapSizeLimitInKb" => {
                    config.snap_size_limit_kb = number(value).ok_or_else(|| bad("not a number"))?
                }
                "preAllocSize" => {
                    config.pre_alloc_size_kb = number(value).ok_or_else(|| bad("not a number"))?
                }
                "forceSync" => {
                    config.force_sync = yes_no(value).ok_or_else(|| bad("expected yes or no"))?
                }
                "fsync.warningthresholdms" => {
                    config.fsync_warning_threshold_ms =
                        number(value).ok_or_else(|| bad("not a number"))?
                }
                "autopurge.snapRetainCount" => {
                    config.autopurge_snap_retain_count =
                        number(value).ok_or_else(|| bad("not a number"))?
                }
                "autopurge.purgeInterval" => {
                    config.autopurge_purge_interval_hours =
                        number(value).ok_or_else(|| bad("not a number"))?
                }
                "4lw.commands.whitelist" => {
                    config.four_letter_words = value
                        .split(',')
                        .map(|w| w.trim().to_string())
                        .filter(|w| !w.is_empty())
                        .collect();
                }
                "globalOutstandingLimit" => {
                    config.global_outstanding_limit =
                        number(value).ok_or_else(|| bad("not a number"))?
                }
                "jute.maxbuffer" => {
                    config.jute_max_buffer = number(value).ok_or_else(|| bad("not a number"))?
                }
                "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                    config.extended_types_enabled = value.eq_ignore_ascii_case("true")
                }
                "DigestAuthenticationProvider.superDigest"
                | "zookeeper.DigestAuthenticationProvider.superDigest" => {
                    config.super_digest = Some(value.to_string())
                }
                "znode.container.checkIntervalMs" | "zookeeper.znode.container.checkIntervalMs" => {
                    config.container_check_interval_ms =
                        number(value).ok_or_else(|| bad("not a number"))?
                }
                "ferrokeeper.cores" => {
                    config.cores = number(value)
                        .filter(|n: &usize| *n >= 1)
                        .ok_or_else(|| bad("expected a count >= 1"))?
                }
                "ferrokeeper.ioMemory" => {
                    config.io_memory_bytes = number(value).ok_or_else(|| bad("not a number"))?
                }
                "ferrokeeper.logSync" => {
                    config.log_sync_dsync = match value {
                        "dsync" => true,
                        "fdatasync" => false,
                        _ => return Err(bad("expected dsync or fdatasync")),
                    }
                }
                "peerType" => {
                    if !matches!(value, "participant" | "observer") {
                        return Err(bad("expected participant or observer"));
                    }
                    config.peer_type = Some(value.to_string());
                }
                "standaloneEnabled" => {
                    config.standalone_enabled =
                        yes_no(value).ok_or_else(|| bad("expected true or false"))?
                }
                "ferrokeeper.peerQueueBytesMax" => {
                    config.peer_queue_bytes_max = number(value)
                        .filter(|n: &usize| *n >= 1 << 20)
                        .ok_or_else(|| bad("expected a byte count of at least 1 MiB"))?
                }
                "ferrokeeper.unsentReplyBytesMax" => {
                    config.unsent_reply_bytes_max = number(value)
                        .filter(|n: &u64| *n >= 1024)
                        .ok_or_else(|| bad("expected a byte count >= 1024"))?
                }
                "ferrokeeper.handshakeTimeoutMs" | "nio.sessionlessCnxnTimeout" => {
                    config.handshake_timeout_ms = number(value)
                        .filter(|n: &u64| *n >= 1)
                        .ok_or_else(|| bad("expected milliseconds >= 1"))?
                }
                "secureClientPort" => {
                    config.secure_client_port =
                        Some(number(value).ok_or_else(|| bad("not a port"))?)
                }
                "secureClientPortAddress" => {
                    config.secure_client_port_address =
                        Some(resolve(value).ok_or_else(|| bad("not an address"))?)
                }
                _ if key.trim_start_matches("zookeeper.").starts_with("ssl.")
                    || key.contains("X509AuthenticationProvider.") =>
                {
                    if !config.tls.set(key, value).map_err(&bad)? {
                        config.unknown.insert(key.to_string(), value.to_string());
                    }
                }
                _ if config
                    .sasl
                    .set(key.strip_prefix("zookeeper.").unwrap_or(key), value)
                    .map_err(&bad)? => {}
                _ if key.starts_with("server.") => {
                    let id = key["server.".len()..]
                        .parse()
                        .map_err(|_| bad("server id must be a number"))?;
                    config.servers.insert(id, value.to_string());
                }
                _ => {
                    config.unknown.insert(key.to_string(), value.to_string());
                }
            }
        }
        if !data_log_dir_set {
            config.data_log_dir = config.data_dir.clone();
        }
        if !min_timeout_set {
            config.min_session_timeout_ms = 2 * config.tick_time_ms;
        }
        if !max_timeout_set {
            config.max_session_timeout_ms = 20 * config.tick_time_ms;
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.tick_time_ms == 0 {
            return Err(ConfigError::Inconsistent(
                "tickTime must be positive".into(),
            ));
        }
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(ConfigError::Inconsistent(format!(
                "minSessionTimeout {} is larger than maxSessionTimeout {}",
                self.min_session_timeout_ms, self.max_session_timeout_ms
            )));
        }
        if self.secure_client_port.is_some() && self.tls.key_store_location.is_none() {
            return Err(ConfigError::Inconsistent(
                "secureClientPort is set but ssl.keyStore.location is not".into(),
            ));
        }
        if self.secure_client_port_address.is_some() && self.secure_client_port.is_none() {
            return Err(ConfigError::Inconsistent(
                "secureClientPortAddress is set but secureClientPort is not".into(),
            ));
        }
        if self.jute_max_buffer < 1024 {
            return Err(ConfigError::Inconsistent(
                "jute.maxbuffer must be at least 1024".into(),
            ));
        }
        Ok(())
    }
}

impl TlsConfig {
    /// Takes one `ssl.*` key; false if it is not one ferrokeeper acts on.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, &'static str> {
        let path = || Some(PathBuf::from(value));
        let text = || Some(value.to_string());
        match key.strip_prefix("zookeeper.").unwrap_or(key) {
            "ssl.keyStore.location" => self.key_store_location = path(),
            "ssl.keyStore.password" => self.key_store_password = text(),
            "ssl.keyStore.passwordPath" => self.key_store_password_path = path(),
            "ssl.keyStore.type" => self.key_store_type = text(),
            "ssl.trustStore.location" => self.trust_store_location = path(),
            "ssl.trustStore.password" => self.trust_store_password = text(),
            "ssl.trustStore.passwordPath" => self.trust_store_password_path = path(),
            "ssl.trustStore.type" => self.trust_store_type = text(),
            "ssl.clientAuth" => {
                self.client_auth = match value.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Err("expected need, want or none"),
                }
            }
            "X509AuthenticationProvider.superUser" => self.x509_super_user = text(),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn invalid(path: &Path, index: usize, key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: index + 1,
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

fn number<T: std::str::FromStr>(value: &str) -> Option<T> {
    value.parse().ok()
}

fn yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn resolve(value: &str) -> Option<IpAddr> {
    if value == "localhost" {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("zoo.cfg"), text)
    }

    #[test]
    fn a_stock_zookeeper_config_is_accepted_as_it_is() {
        let config = parse(
            "# The number of milliseconds of each tick\ntickTime=2000\ninitLimit=10\nsyncLimit=5\n\
             dataDir=/var/lib/zookeeper\nclientPort=2181\nmaxClientCnxns=60\n\
             autopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n\
             server.1=zk1:2888:3888\nmetricsProvider.className=org.Foo\n",
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/zookeeper"));
        assert_eq!(config.data_log_dir, config.data_dir);
        assert_eq!(config.max_session_timeout_ms, 40_000);
        assert_eq!(config.servers[&1], "zk1:2888:3888");
        assert_eq!(config.unknown["metricsProvider.className"], "org.Foo");
    }

    #[test]
    fn session_timeouts_follow_tick_time_unless_set() {
        let config = parse("tickTime=500\nmaxSessionTimeout=9000\n").unwrap();
        assert_eq!(config.min_session_timeout_ms, 1000);
        assert_eq!(config.max_session_timeout_ms, 9000);
        assert_eq!(config.node_settings(0).negotiate_session_timeout(100), 1000);
        assert_eq!(
            config.node_settings(0).negotiate_session_timeout(60_000),
            9000
        );
    }

    #[test]
    fn a_malformed_value_names_its_line() {
        let err = parse("tickTime=2000\nclientPort=twenty\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("zoo.cfg:2: clientPort"), "{err}");
    }

    #[test]
    fn connection_bounds_have_defaults_and_zookeepers_handshake_key_is_read() {
        let config = parse("").unwrap();
        assert_eq!(config.handshake_timeout_ms, 10_000);
        assert_eq!(config.unsent_reply_bytes_max, 4 * 1024 * 1024);
        assert_eq!(config.node_settings(0).unsent_bytes_max, 4 * 1024 * 1024);
        let config =
            parse("nio.sessionlessCnxnTimeout=1500\nferrokeeper.unsentReplyBytesMax=65536\n")
                .unwrap();
        assert_eq!(config.handshake_timeout_ms, 1500);
        assert_eq!(config.node_settings(0).unsent_bytes_max, 65536);
        assert!(config.unknown.is_empty());
        let err = parse("ferrokeeper.unsentReplyBytesMax=10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsentReplyBytesMax"), "{err}");
    }

    #[test]
    fn zookeepers_tls_keys_configure_the_secure_port() {
        let config = parse(
            "clientPortAddress=127.0.0.2\nsecureClientPort=2281\n\
             ssl.keyStore.location=/k.jks\nssl.keyStore.password=pw\n\
             zookeeper.ssl.trustStore.location=/t.p12\nssl.trustStore.type=PKCS12\n\
             ssl.clientAuth=want\nX509AuthenticationProvider.superUser=CN=admin\n\
             ssl.hostnameVerification=false\n",
        )
        .unwrap();
        assert_eq!(
            config.secure_client_address(),
            Some("127.0.0.2:2281".parse().unwrap())
        );
        assert_eq!(config.tls.key_store_location, Some(PathBuf::from("/k.jks")));
        assert_eq!(config.tls.key_store_password.as_deref(), Some("pw"));
        assert_eq!(
            config.tls.trust_store_location,
            Some(PathBuf::from("/t.p12"))
        );
        assert_eq!(config.tls.trust_store_type.as_deref(), Some("PKCS12"));
        assert_eq!(config.tls.client_auth, ClientAuth::Want);
        assert_eq!(config.tls.x509_super_user.as_deref(), Some("CN=admin"));
        assert!(config.unknown.contains_key("ssl.hostnameVerification"));
        assert_eq!(parse("").unwrap().tls.client_auth, ClientAuth::Need);
        assert_eq!(parse("").unwrap().secure_client_address(), None);
        let err = parse("secureClientPort=2281\n").unwrap_err().to_string();
        assert!(err.contains("ssl.keyStore.location"), "{err}");
        let err = parse("ssl.clientAuth=maybe\n").unwrap_err().to_string();
        assert!(err.contains("ssl.clientAuth"), "{err}");
    }

    #[test]
    fn log_sync_method_is_chosen_or_refused_by_name() {
        assert!(parse("").unwrap().log_sync_dsync, "O_DSYNC by default");
        assert!(
            !parse("ferrokeeper.logSync=fdatasync\n")
                .unwrap()
                .log_sync_dsync
        );
        let err = parse("ferrokeeper.logSync=sometimes\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ferrokeeper.logSync"), "{err}");
    }

    #[test]
    fn zookeepers_sasl_keys_and_jaas_file_configure_sasl() {
        // kazoo's harness: authProvider.1 in zoo.cfg, the JAAS file as a JVM
        // property, which the kazoo suite's java shim appends as a key.
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_super=\"s\"\n user_jaasuser=\"jaas_password\";\n};",
        )
        .unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "authProvider.1={SASL_PROVIDER_CLASS}\njava.security.auth.login.config={}\n\
                 zookeeper.superUser=jaasuser\nallowSaslFailedClients=true\n",
                jaas.display()
            ),
        )
        .unwrap();
        let config = Config::load(&cfg).unwrap();
        assert!(config.unknown.is_empty(), "{:?}", config.unknown);
        assert!(config.sasl.provider_enabled);
        assert!(config.node_settings(0).sasl_provider_enabled);
        let settings = config.sasl.node_settings([3; 32]).unwrap();
        assert_eq!(settings.users["jaasuser"], "jaas_password");
        assert_eq!(settings.super_users, vec!["jaasuser".to_string()]);
        assert!(settings.allow_failed_clients);
        assert!(!format!("{config:?}").contains("jaas_password"));

        // Another section name: this file has none, so SASL is off.
        let other = dir.path().join("other.cfg");
        std::fs::write(
            &other,
            format!(
                "java.security.auth.login.config={}\nzookeeper.sasl.serverconfig=Quorum\n",
                jaas.display()
            ),
        )
        .unwrap();
        let config = Config::load(&other).unwrap();
        assert_eq!(config.sasl.section(), "Quorum");
        assert_eq!(config.sasl.node_settings([0; 32]), None);
        assert!(!config.node_settings(0).sasl_provider_enabled);

        // An empty JAAS file (kazoo's harness passes one to every server).
        std::fs::write(&jaas, "").unwrap();
        assert_eq!(Config::load(&cfg).unwrap().sasl.users, None);
    }

    #[test]
    fn a_bad_jaas_file_stops_the_start_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("java.security.auth.login.config={}\n", jaas.display()),
        )
        .unwrap();
        let err = Config::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("jaas.conf: cannot read it"), "{err}");
        std::fs::write(&jaas, "Server {\n m required user_a=\"x\"\n}\n").unwrap();
        let err = Config::load(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("jaas.conf: line 3: expected an option or ';'"),
            "{err}"
        );
        std::fs::write(
            &jaas,
            "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };",
        )
        .unwrap();
        let err = Config::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("Kerberos (GSSAPI) is not supported"), "{err}");
        let err = parse("allowSaslFailedClients=perhaps\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowSaslFailedClients"), "{err}");
    }

    #[test]
    fn four_letter_word_whitelist() {
        let config = parse("4lw.commands.whitelist=stat, ruok\n").unwrap();
        assert!(config.four_letter_word_enabled("ruok"));
        assert!(!config.four_letter_word_enabled("dump"));
        let all = parse("4lw.commands.whitelist=*\n").unwrap();
        assert!(all.four_letter_word_enabled("dump"));
    }
}
