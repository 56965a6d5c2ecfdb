//! SASL authentication on client connections (opcode 102), as ZooKeeper's
//! `ZooKeeperServer.processSasl` does it with a JAAS `Server` section of
//! `DigestLoginModule` passwords: the DIGEST-MD5 mechanism
//! ([`digest_md5`]), one exchange per connection.
//!
//! - Each SaslRequest is answered at once, in the connection's reply order,
//!   with ReplyHeader(the request's xid, zxid 0, OK) and SetSASLResponse
//!   (the server's token).
//! - When the exchange completes the connection gains `sasl:<user>` (and
//!   `super:` when the user is a configured super user) for every later
//!   request, as ZooKeeper's `addAuthInfo`.
//! - A failed exchange is answered ReplyHeader(xid, 0, AUTHFAILED) followed
//!   by a SetSASLResponse with a null token, and the connection closes (the
//!   session itself lives on until it expires), unless
//!   `allowSaslFailedClients` keeps it open unauthenticated.
//! - Without a JAAS `Server` section ZooKeeper has no SASL server on the
//!   connection and answers OK with a null token; so does this.
//!
//! Nonces: ZooKeeper's JDK server draws 30 random bytes per exchange. The
//! node reads no random source, so the driver gives it a secret
//! ([`SaslSettings::nonce_secret`], fresh random bytes in production) and
//! each exchange's nonce is MD5(secret ‖ exchange number): unique per
//! exchange and unpredictable without the secret.

pub mod digest_md5;

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};
use proto::ops::SetSaslResponse;
use proto::{ErrorCode, Id, Record, ReplyHeader, Writer};

use crate::connections::Pending;
use crate::io::{ConnId, Level};
use crate::node::Node;
use digest_md5::{DigestMd5Server, Evaluated};

/// What the JAAS `Server` section and ZooKeeper's SASL system properties say.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// User name → password: the section's `user_<name>="<password>"` options.
    pub users: BTreeMap<String, String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password
    /// of the user `super`, in place of the JAAS one.
    pub super_password: Option<String>,
    /// `zookeeper.superUser` (and `zookeeper.superUser.*`): authorization
    /// ids that also get `super:` (every ACL passes).
    pub super_users: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`: a failed exchange leaves the
    /// connection open, unauthenticated, instead of closing it.
    pub allow_failed_clients: bool,
    /// Secret bytes the exchange nonces are derived from; fresh random
    /// bytes in production, fixed in tests and the simulator.
    pub nonce_secret: [u8; 32],
}

impl SaslSettings {
    /// The password a user authenticates with, if it may authenticate.
    fn password_of(&self, user: &str) -> Option<&str> {
        // SaslServerCallbackHandler: the super password stands in for the
        // JAAS one of a listed user `super`.
        match (&self.super_password, self.users.get(user)) {
            (Some(password), Some(_)) if user == "super" => Some(password),
            (_, listed) => listed.map(String::as_str),
        }
    }
}

impl fmt::Debug for SaslSettings {
    /// Passwords and the secret stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field(
                "super_password",
                &self.super_password.as_ref().map(|_| "<set>"),
            )
            .field("super_users", &self.super_users)
            .field("allow_failed_clients", &self.allow_failed_clients)
            .finish_non_exhaustive()
    }
}

/// The nonce of exchange number `exchange`: 32 hex digits.
pub(crate) fn nonce(secret: &[u8; 32], exchange: u64) -> String {
    let mut hash = Md5::new();
    hash.update(secret);
    hash.update(exchange.to_be_bytes());
    digest_md5::hex(&hash.finalize())
}

/// A reply frame to a SaslRequest: the header with zxid 0 (as ZooKeeper's)
/// and a SetSASLResponse, which ZooKeeper sends even with an error code.
fn sasl_reply(xid: i32, err: ErrorCode, token: Option<Vec<u8>>) -> Vec<u8> {
    let mut w = Writer::begin_frame();
    ReplyHeader {
        xid,
        zxid: 0,
        err: err.code(),
    }
    .encode(&mut w);
    SetSaslResponse { token }.encode(&mut w);
    w.finish_frame()
}

impl Node {
    /// One client token of a SASL exchange. `token` is `None` when the
    /// client sent jute's null buffer.
    pub(crate) fn on_sasl(&mut self, conn: ConnId, xid: i32, token: Option<Vec<u8>>) {
        let Some(settings) = self.settings.sasl.as_ref() else {
            // No SASL server on the connection: ZooKeeper's processSasl
            // catches the NullPointerException and answers OK, null token.
            let frame = sasl_reply(xid, ErrorCode::Ok, None);
            return self.push(conn, Pending::Ready(frame));
        };
        let exchange = self.sasl_exchanges;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let peer = c.peer.clone();
        let session_id = c.session_id;
        let Some(token) = token else {
            // `clientToken.length` on a null token throws before any answer.
            c.queue.push_back(Pending::Close);
            return self.out.log(
                Level::Warn,
                format!("{peer} session 0x{session_id:x}: SASL request with a null token: closing the connection"),
            );
        };
        let sasl_exchanges = &mut self.sasl_exchanges;
        let server = c.sasl.get_or_insert_with(|| {
            *sasl_exchanges += 1;
            DigestMd5Server::new(nonce(&settings.nonce_secret, exchange))
        });
        match server.evaluate(&token, |user| settings.password_of(user)) {
            Ok(Evaluated::Challenge(challenge)) => {
                c.queue.push_back(Pending::Ready(sasl_reply(
                    xid,
                    ErrorCode::Ok,
                    Some(challenge),
                )));
            }
            Ok(Evaluated::Success {
                token,
                authorization_id,
            }) => {
                let is_super = settings.super_users.contains(&authorization_id);
                let mut proven = vec![Id::new("sasl", authorization_id.clone())];
                if is_super {
                    proven.push(Id::new("super", ""));
                }
                for id in proven {
                    if !c.auth.contains(&id) {
                        c.auth.push(id);
                    }
                }
                c.queue
                    .push_back(Pending::Ready(sasl_reply(xid, ErrorCode::Ok, Some(token))));
                let super_note = if is_super { " (a super user)" } else { "" };
                self.out.log(
                    Level::Info,
                    format!("{peer} session 0x{session_id:x}: SASL authenticated as {authorization_id:?}{super_note}"),
                );
            }
            Err(err) if err.closes_without_reply() => {
                c.queue.push_back(Pending::Close);
                self.out.log(
                    Level::Warn,
                    format!("{peer} session 0x{session_id:x}: SASL authentication failed: {err}: closing the connection"),
                );
            }
            Err(err) if settings.allow_failed_clients => {
                c.queue
                    .push_back(Pending::Ready(sasl_reply(xid, ErrorCode::Ok, None)));
                self.out.log(
                    Level::Warn,
                    format!("{peer} session 0x{session_id:x}: SASL authentication failed: {err}: keeping the connection (allowSaslFailedClients)"),
                );
            }
            Err(err) => {
                let frame = sasl_reply(xid, ErrorCode::AuthFailed, None);
                c.queue.push_back(Pending::Ready(frame));
                c.queue.push_back(Pending::Close);
                self.out.log(
                    Level::Info,
                    format!("{peer} session 0x{session_id:x}: SASL authentication failed: {err}: answering AUTHFAILED and closing the connection"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_per_exchange_and_secret() {
        let a = nonce(&[1; 32], 0);
        assert_eq!(a.len(), 32);
        assert_eq!(a, nonce(&[1; 32], 0));
        assert_ne!(a, nonce(&[1; 32], 1));
        assert_ne!(a, nonce(&[2; 32], 0));
    }

    #[test]
    fn the_super_password_replaces_a_listed_super_users() {
        let mut settings = SaslSettings {
            users: BTreeMap::from([
                ("super".to_string(), "jaas".to_string()),
                ("bob".to_string(), "pw".to_string()),
            ]),
            super_password: None,
            super_users: Vec::new(),
            allow_failed_clients: false,
            nonce_secret: [0; 32],
        };
        assert_eq!(settings.password_of("super"), Some("jaas"));
        settings.super_password = Some("property".to_string());
        assert_eq!(settings.password_of("super"), Some("property"));
        assert_eq!(settings.password_of("bob"), Some("pw"));
        assert_eq!(settings.password_of("eve"), None);
        assert!(!format!("{settings:?}").contains("pw"));
    }
}
