//! The server side of DIGEST-MD5 (RFC 2831), as the JDK's `DigestMD5Server`
//! runs it for ZooKeeper: one challenge, one response, `rspauth`.
//!
//! ```text
//!  client                                   server (this module)
//!  SaslRequest(empty)            ───────▶   Start → Challenged
//!                                ◀───────   realm="zk-sasl-md5",nonce="…",
//!                                           charset=utf-8,algorithm=md5-sess
//!  username="…",realm="…",nonce="…",
//!  cnonce="…",nc=00000001,qop=auth,
//!  digest-uri="zookeeper/zk-sasl-md5",
//!  response=<32 hex>,charset=utf-8 ───────▶ Challenged → Complete (or an error)
//!                                ◀───────   rspauth=<32 hex>
//! ```
//!
//! The digests (RFC 2831 §2.1.2.1, `algorithm=md5-sess`, `qop=auth`):
//!
//! ```text
//!  A1       = H(user ":" realm ":" password) ":" nonce ":" cnonce [":" authzid]
//!  A2       = "AUTHENTICATE:" digest-uri        (rspauth: ":" digest-uri)
//!  response = HEX(H(HEX(H(A1)) ":" nonce ":" nc ":" cnonce ":" qop ":" HEX(H(A2))))
//! ```
//!
//! `user ":" realm ":"` and the password are each hashed as ISO 8859-1 when
//! every character fits it and as UTF-8 otherwise (RFC 2831 with
//! `charset=utf-8`, as the JDK does it).
//!
//! The mechanism is pure: the nonce comes in from the caller, the password
//! list is a lookup function, and every failure is an [`SaslError`] value.

use std::fmt;

use md5::{Digest, Md5};

/// The realm and server name ZooKeeper gives the DIGEST-MD5 server
/// (`ZooKeeperSaslServer`: `createSaslServer(subject, "zookeeper", "zk-sasl-md5", ...)`).
pub const REALM: &str = "zk-sasl-md5";
/// The SASL protocol (service) name: digest-uri is `zookeeper/zk-sasl-md5`.
pub const PROTOCOL: &str = "zookeeper";
/// The longest response the JDK's server reads (`MAX_RESPONSE_LENGTH`).
pub const RESPONSE_BYTES_MAX: usize = 4096;
/// Directives one response may hold; RFC 2831 defines eleven.
const DIRECTIVES_MAX: usize = 32;

/// Why an exchange failed. Every one ends the exchange; the caller answers
/// as ZooKeeper does (AUTHFAILED and close, or a bare close for
/// [`SaslError::closes_without_reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The first client token must be empty: DIGEST-MD5 has no initial response.
    InitialResponse { bytes: usize },
    /// A response longer than [`RESPONSE_BYTES_MAX`].
    ResponseTooLong { bytes: usize },
    /// The response does not parse as RFC 2831 directives.
    Malformed { reason: &'static str },
    /// A required directive is missing.
    MissingDirective { name: &'static str },
    /// A directive appears twice.
    DuplicateDirective { name: String },
    /// The nonce is not the one this exchange's challenge carried (a replayed
    /// or forged response).
    NonceMismatch,
    /// `nc` is not `00000001`: the server offers no subsequent authentication.
    NonceCount { nc: String },
    /// A qop other than `auth` (no integrity or confidentiality layer is offered).
    UnsupportedQop { qop: String },
    /// A charset other than `utf-8`.
    UnsupportedCharset { charset: String },
    /// A realm other than [`REALM`].
    UnknownRealm { realm: String },
    /// A digest-uri other than `zookeeper/zk-sasl-md5`.
    DigestUri { uri: String },
    /// The user is not in the password list.
    UnknownUser { username: String },
    /// The response hash does not match: a wrong password (or a tampered response).
    WrongResponse { username: String },
    /// The user name has an `@` but is no Kerberos name; ZooKeeper's
    /// `KerberosName` throws an unchecked exception there, which drops the
    /// connection without a reply.
    BadKerberosName { username: String },
    /// A token after the exchange completed (the JDK throws
    /// IllegalStateException: the connection drops without a reply).
    AlreadyComplete,
    /// A token after the exchange failed.
    AlreadyFailed,
}

impl SaslError {
    /// Whether ZooKeeper drops the connection without answering (an
    /// unchecked exception inside the SASL server) rather than answering
    /// AUTHFAILED first.
    pub fn closes_without_reply(&self) -> bool {
        matches!(
            self,
            SaslError::BadKerberosName { .. } | SaslError::AlreadyComplete
        )
    }
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::InitialResponse { bytes } => write!(
                f,
                "DIGEST-MD5 must not have an initial response (got {bytes} bytes)"
            ),
            SaslError::ResponseTooLong { bytes } => write!(
                f,
                "digest response of {bytes} bytes, longer than {RESPONSE_BYTES_MAX}"
            ),
            SaslError::Malformed { reason } => write!(f, "malformed digest response: {reason}"),
            SaslError::MissingDirective { name } => {
                write!(f, "digest response without the {name} directive")
            }
            SaslError::DuplicateDirective { name } => {
                write!(f, "digest response with more than one {name} directive")
            }
            SaslError::NonceMismatch => {
                write!(
                    f,
                    "the response's nonce is not this exchange's (replayed or forged)"
                )
            }
            SaslError::NonceCount { nc } => write!(f, "nonce count {nc:?}, expected 00000001"),
            SaslError::UnsupportedQop { qop } => write!(f, "unsupported qop {qop:?} (only auth)"),
            SaslError::UnsupportedCharset { charset } => {
                write!(f, "unsupported charset {charset:?} (only utf-8)")
            }
            SaslError::UnknownRealm { realm } => {
                write!(f, "unknown realm {realm:?} (expected {REALM:?})")
            }
            SaslError::DigestUri { uri } => {
                write!(f, "digest-uri {uri:?}, expected \"{PROTOCOL}/{REALM}\"")
            }
            SaslError::UnknownUser { username } => {
                write!(f, "user {username:?} is not in the JAAS password list")
            }
            SaslError::WrongResponse { username } => {
                write!(f, "wrong response for user {username:?} (wrong password)")
            }
            SaslError::BadKerberosName { username } => {
                write!(f, "user name {username:?} is not a valid Kerberos name")
            }
            SaslError::AlreadyComplete => write!(f, "a SASL token after authentication completed"),
            SaslError::AlreadyFailed => write!(f, "a SASL token after authentication failed"),
        }
    }
}

/// What the server answers a client token with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluated {
    /// The digest challenge; the exchange continues.
    Challenge(Vec<u8>),
    /// Authenticated: `rspauth=…` for the client, and the id the connection
    /// gets (`sasl:<authorization_id>`).
    Success {
        token: Vec<u8>,
        authorization_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Start,
    Challenged,
    Complete,
    Failed,
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Clone)]
pub struct DigestMd5Server {
    nonce: String,
    step: Step,
}

impl DigestMd5Server {
    /// An exchange whose challenge will carry `nonce` (unique per exchange;
    /// the caller derives it from randomness the driver supplied). The
    /// nonce must be a valid quoted-string body: no `"` or `\`.
    pub fn new(nonce: String) -> DigestMd5Server {
        assert!(
            !nonce.is_empty() && !nonce.contains(['"', '\\']),
            "a nonce is a non-empty quoted-string body"
        );
        DigestMd5Server {
            nonce,
            step: Step::Start,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.step == Step::Complete
    }

    /// Answers one client token. `password_of` looks a user's password up
    /// (the JAAS `user_<name>` options).
    pub fn evaluate<'a>(
        &mut self,
        token: &[u8],
        password_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Evaluated, SaslError> {
        let result = match self.step {
            Step::Start if !token.is_empty() => {
                Err(SaslError::InitialResponse { bytes: token.len() })
            }
            Step::Start => {
                self.step = Step::Challenged;
                return Ok(Evaluated::Challenge(self.challenge().into_bytes()));
            }
            Step::Challenged => self.verify(token, password_of),
            Step::Complete => Err(SaslError::AlreadyComplete),
            Step::Failed => Err(SaslError::AlreadyFailed),
        };
        self.step = match &result {
            Ok(_) => Step::Complete,
            Err(SaslError::AlreadyComplete) => Step::Complete,
            Err(_) => Step::Failed,
        };
        result
    }

    /// The challenge as ZooKeeper's JDK server words it: no qop directive,
    /// which means `auth` (the only one offered).
    fn challenge(&self) -> String {
        format!(
            "realm=\"{REALM}\",nonce=\"{}\",charset=utf-8,algorithm=md5-sess",
            self.nonce
        )
    }

    fn verify<'a>(
        &self,
        token: &[u8],
        password_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Evaluated, SaslError> {
        if token.len() > RESPONSE_BYTES_MAX {
            return Err(SaslError::ResponseTooLong { bytes: token.len() });
        }
        let text = std::str::from_utf8(token).map_err(|_| SaslError::Malformed {
            reason: "not UTF-8 (charset=utf-8)",
        })?;
        let response = DigestResponse::parse(text)?;
        if response.nonce != self.nonce {
            return Err(SaslError::NonceMismatch);
        }
        if response.nc != "00000001" {
            return Err(SaslError::NonceCount {
                nc: response.nc.to_string(),
            });
        }
        if response.qop != "auth" {
            return Err(SaslError::UnsupportedQop {
                qop: response.qop.to_string(),
            });
        }
        if let Some(charset) = response
            .charset
            .filter(|c| !c.eq_ignore_ascii_case("utf-8"))
        {
            return Err(SaslError::UnsupportedCharset {
                charset: charset.to_string(),
            });
        }
        if response
            .realm
            .as_deref()
            .is_some_and(|realm| realm != REALM)
        {
            return Err(SaslError::UnknownRealm {
                realm: response.realm.unwrap_or_default(),
            });
        }
        if !digest_uri_ok(&response.digest_uri) {
            return Err(SaslError::DigestUri {
                uri: response.digest_uri,
            });
        }
        let username = response.username.clone();
        let password = password_of(&username).ok_or_else(|| SaslError::UnknownUser {
            username: username.clone(),
        })?;
        let inputs = DigestInputs {
            username: &username,
            realm: response.realm.as_deref().unwrap_or(""),
            password,
            nonce: &self.nonce,
            cnonce: &response.cnonce,
            nc: response.nc,
            authzid: response.authzid.as_deref(),
            digest_uri: &response.digest_uri,
        };
        if !inputs
            .response("AUTHENTICATE")
            .eq_ignore_ascii_case(response.response)
        {
            return Err(SaslError::WrongResponse { username });
        }
        let authorization_id = authorization_id(&username, response.authzid.as_deref())?;
        Ok(Evaluated::Success {
            token: format!("rspauth={}", inputs.response("")).into_bytes(),
            authorization_id,
        })
    }
}

/// `zookeeper/zk-sasl-md5`, compared without case as the JDK compares it.
fn digest_uri_ok(uri: &str) -> bool {
    uri.split_once('/').is_some_and(|(protocol, host)| {
        protocol.eq_ignore_ascii_case(PROTOCOL) && host.eq_ignore_ascii_case(REALM)
    })
}

/// The id ZooKeeper adds for an authenticated user. Its callback handler
/// (`SaslServerCallbackHandler.handleAuthorizeCallback`) rebuilds the name
/// from `KerberosName(user)` with the default rules, which gives the user
/// name back — except for `name@REALM` with a realm that is not the JVM's
/// default (none without a krb5.conf), where no rule applies and the
/// client's authzid (or the user name) is kept. A name with an `@` that is
/// no Kerberos name throws.
fn authorization_id(username: &str, authzid: Option<&str>) -> Result<String, SaslError> {
    let Some((_, realm)) = username.split_once('@') else {
        return Ok(username.to_string());
    };
    if !tree::acl::is_kerberos_name(username) {
        return Err(SaslError::BadKerberosName {
            username: username.to_string(),
        });
    }
    Ok(match authzid {
        Some(authzid) if !realm.is_empty() => authzid.to_string(),
        _ => username.to_string(),
    })
}

/// What the two digests are computed from.
#[derive(Debug)]
pub struct DigestInputs<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: &'a str,
    pub authzid: Option<&'a str>,
    pub digest_uri: &'a str,
}

impl DigestInputs<'_> {
    /// The response value (`a2_prefix` "AUTHENTICATE") or rspauth (""), as
    /// 32 lower-case hex digits.
    pub fn response(&self, a2_prefix: &str) -> String {
        let mut secret = Md5::new();
        secret.update(latin1_or_utf8(&format!(
            "{}:{}:",
            self.username, self.realm
        )));
        secret.update(latin1_or_utf8(self.password));
        let mut a1 = secret.finalize().to_vec();
        a1.extend_from_slice(format!(":{}:{}", self.nonce, self.cnonce).as_bytes());
        if let Some(authzid) = self.authzid {
            a1.push(b':');
            a1.extend_from_slice(authzid.as_bytes());
        }
        let a2 = format!("{a2_prefix}:{}", self.digest_uri);
        let kd = format!(
            "{}:{}:{}:{}:auth:{}",
            hex(&Md5::digest(&a1)),
            self.nonce,
            self.nc,
            self.cnonce,
            hex(&Md5::digest(a2.as_bytes())),
        );
        hex(&Md5::digest(kd.as_bytes()))
    }
}

/// ISO 8859-1 when every character fits it, else UTF-8 (RFC 2831 §2.1.2.1,
/// the JDK's `stringToByte_8859_1` with charset=utf-8).
fn latin1_or_utf8(text: &str) -> Vec<u8> {
    if text.chars().all(|c| u32::from(c) <= 0xFF) {
        text.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        text.as_bytes().to_vec()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A parsed digest-response (RFC 2831 §2.1.2). Directives it does not know
/// are ignored, as the RFC asks.
#[derive(Debug)]
struct DigestResponse<'a> {
    username: String,
    realm: Option<String>,
    nonce: String,
    cnonce: String,
    nc: &'a str,
    qop: &'a str,
    digest_uri: String,
    response: &'a str,
    charset: Option<&'a str>,
    authzid: Option<String>,
}

impl<'a> DigestResponse<'a> {
    fn parse(text: &'a str) -> Result<DigestResponse<'a>, SaslError> {
        let directives = parse_directives(text)?;
        let mut seen: Vec<&str> = Vec::with_capacity(directives.len());
        for (name, _) in &directives {
            let known = [
                "username",
                "realm",
                "nonce",
                "cnonce",
                "nc",
                "qop",
                "digest-uri",
                "response",
                "maxbuf",
                "charset",
                "cipher",
                "authzid",
            ];
            if let Some(known) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
                if seen.contains(known) {
                    return Err(SaslError::DuplicateDirective {
                        name: known.to_string(),
                    });
                }
                seen.push(known);
            }
        }
        let get = |name: &str| {
            directives
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let required = |name: &'static str| get(name).ok_or(SaslError::MissingDirective { name });
        let token = |value: &Value<'a>| -> Result<&'a str, SaslError> {
            match value {
                Value::Token(token) => Ok(*token),
                Value::Quoted(_) => Err(SaslError::Malformed {
                    reason: "a quoted value where a token belongs",
                }),
            }
        };
        let response = token(required("response")?)?;
        if response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SaslError::Malformed {
                reason: "response is not 32 hex digits",
            });
        }
        let nc = token(required("nc")?)?;
        Ok(DigestResponse {
            username: required("username")?.text(),
            realm: get("realm").map(Value::text),
            nonce: required("nonce")?.text(),
            cnonce: required("cnonce")?.text(),
            nc,
            // qop defaults to auth (RFC 2831); a quoted one is accepted too,
            // as the JDK accepts it.
            qop: match get("qop") {
                None => "auth",
                Some(Value::Token(qop)) | Some(Value::Quoted(qop)) => qop,
            },
            digest_uri: required("digest-uri")?.text(),
            response,
            charset: match get("charset") {
                None => None,
                Some(Value::Token(c)) | Some(Value::Quoted(c)) => Some(*c),
            },
            authzid: get("authzid").map(Value::text),
        })
    }
}

/// A directive's value: a token, or a quoted-string's body (still escaped).
#[derive(Debug, PartialEq, Eq)]
enum Value<'a> {
    Token(&'a str),
    Quoted(&'a str),
}

impl Value<'_> {
    /// The value's text, with quoted-pair escapes (`\"`, `\\`) undone.
    fn text(&self) -> String {
        match self {
            Value::Token(token) => token.to_string(),
            Value::Quoted(body) => {
                let mut text = String::with_capacity(body.len());
                let mut escaped = false;
                for c in body.chars() {
                    if c == '\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    escaped = false;
                    text.push(c);
                }
                text
            }
        }
    }
}

/// `name=value` pairs separated by commas and optional whitespace; a value
/// is a token or a quoted-string. Empty list elements are allowed (#rule).
fn parse_directives(text: &str) -> Result<Vec<(&str, Value<'_>)>, SaslError> {
    let malformed = |reason| SaslError::Malformed { reason };
    let bytes = text.as_bytes();
    let mut directives = Vec::new();
    let mut at = 0;
    let skip_space = |mut at: usize| {
        while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\r' | b'\n') {
            at += 1;
        }
        at
    };
    loop {
        at = skip_space(at);
        if at == bytes.len() {
            break;
        }
        if bytes[at] == b',' {
            at += 1;
            continue;
        }
        if directives.len() == DIRECTIVES_MAX {
            return Err(malformed("too many directives"));
        }
        let name_start = at;
        while at < bytes.len() && is_token_byte(bytes[at]) {
            at += 1;
        }
        if at == name_start {
            return Err(malformed("a directive without a name"));
        }
        let name = &text[name_start..at];
        at = skip_space(at);
        if bytes.get(at) != Some(&b'=') {
            return Err(malformed("a directive without '='"));
        }
        at = skip_space(at + 1);
        let value = if bytes.get(at) == Some(&b'"') {
            let body_start = at + 1;
            at = body_start;
            loop {
                match bytes.get(at) {
                    None => return Err(malformed("an unterminated quoted string")),
                    Some(b'\\') => at += 2,
                    Some(b'"') => break,
                    Some(_) => at += 1,
                }
            }
            let body = &text[body_start..at];
            at += 1;
            Value::Quoted(body)
        } else {
            let value_start = at;
            while at < bytes.len() && is_token_byte(bytes[at]) {
                at += 1;
            }
            if at == value_start {
                return Err(malformed("a directive without a value"));
            }
            Value::Token(&text[value_start..at])
        };
        directives.push((name, value));
        at = skip_space(at);
        match bytes.get(at) {
            None => break,
            Some(b',') => at += 1,
            Some(_) => return Err(malformed("directives not separated by ','")),
        }
    }
    Ok(directives)
}

/// RFC 2616 token characters: visible ASCII but separators.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "OA6MG9tEQGm2hh";
    const CNONCE: &str = "OA6MHXh6VqTrRk";

    fn users(name: &str) -> Option<&'static str> {
        match name {
            "jaasuser" => Some("jaas_password"),
            "super" => Some("super_secret"),
            _ => None,
        }
    }

    /// A client response computed with [`DigestInputs`]; `password` is what
    /// the client believes.
    fn client_response(user: &str, password: &str, nonce: &str) -> String {
        let inputs = DigestInputs {
            username: user,
            realm: REALM,
            password,
            nonce,
            cnonce: CNONCE,
            nc: "00000001",
            authzid: None,
            digest_uri: "zookeeper/zk-sasl-md5",
        };
        format!(
            "username=\"{user}\",realm=\"{REALM}\",nonce=\"{nonce}\",cnonce=\"{CNONCE}\",nc=00000001,qop=auth,digest-uri=\"zookeeper/zk-sasl-md5\",response={},charset=utf-8",
            inputs.response("AUTHENTICATE")
        )
    }

    fn challenged() -> DigestMd5Server {
        let mut server = DigestMd5Server::new(NONCE.to_string());
        let challenge = server.evaluate(b"", users).unwrap();
        assert_eq!(
            challenge,
            Evaluated::Challenge(
                format!("realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",charset=utf-8,algorithm=md5-sess")
                    .into_bytes()
            )
        );
        server
    }

    #[test]
    fn digest_matches_rfc_2831_example() {
        // RFC 2831 §4, the IMAP example: user chris, password secret, realm
        // elwood.innosoft.com; response d388dad90d4bbd760a152321f2143af7 and
        // rspauth ea40f60335c427b5527b84dbabcdfffd, as printed in the RFC.
        let inputs = DigestInputs {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            authzid: None,
            digest_uri: "imap/elwood.innosoft.com",
        };
        assert_eq!(
            inputs.response("AUTHENTICATE"),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(inputs.response(""), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn digest_is_the_rfc_formula_spelled_out() {
        // The known answer for ZooKeeper's realm and digest-uri, from the
        // RFC's formula written out step by step with nothing shared with
        // DigestInputs::response.
        let h = |bytes: &[u8]| Md5::digest(bytes).to_vec();
        let mut a1 = h(b"jaasuser:zk-sasl-md5:jaas_password");
        a1.extend_from_slice(format!(":{NONCE}:{CNONCE}").as_bytes());
        let ha1 = hex(&h(&a1));
        let ha2 = hex(&h(b"AUTHENTICATE:zookeeper/zk-sasl-md5"));
        let expected = hex(&h(
            format!("{ha1}:{NONCE}:00000001:{CNONCE}:auth:{ha2}").as_bytes()
        ));
        let response = client_response("jaasuser", "jaas_password", NONCE);
        assert!(response.contains(&format!("response={expected}")));
        let ha2_rspauth = hex(&h(b":zookeeper/zk-sasl-md5"));
        let rspauth = hex(&h(format!(
            "{ha1}:{NONCE}:00000001:{CNONCE}:auth:{ha2_rspauth}"
        )
        .as_bytes()));

        let mut server = challenged();
        assert_eq!(
            server.evaluate(response.as_bytes(), users),
            Ok(Evaluated::Success {
                token: format!("rspauth={rspauth}").into_bytes(),
                authorization_id: "jaasuser".to_string(),
            })
        );
        assert!(server.is_complete());
    }

    #[test]
    fn wrong_password_and_unknown_user_fail() {
        let mut server = challenged();
        let response = client_response("jaasuser", "not_the_password", NONCE);
        assert_eq!(
            server.evaluate(response.as_bytes(), users),
            Err(SaslError::WrongResponse {
                username: "jaasuser".to_string()
            })
        );
        assert!(!server.is_complete());
        assert_eq!(
            server.evaluate(response.as_bytes(), users),
            Err(SaslError::AlreadyFailed)
        );

        let mut server = challenged();
        let response = client_response("baduser", "badpassword", NONCE);
        assert_eq!(
            server.evaluate(response.as_bytes(), users),
            Err(SaslError::UnknownUser {
                username: "baduser".to_string()
            })
        );
    }

    #[test]
    fn a_response_to_another_nonce_is_refused() {
        // Replaying a response recorded from another exchange: its hash is
        // right for its own nonce only.
        let recorded = client_response("jaasuser", "jaas_password", "an-earlier-nonce");
        let mut server = challenged();
        assert_eq!(
            server.evaluate(recorded.as_bytes(), users),
            Err(SaslError::NonceMismatch)
        );
        // The same response sent again after success: the exchange is over.
        let mut server = challenged();
        let response = client_response("jaasuser", "jaas_password", NONCE);
        assert!(server.evaluate(response.as_bytes(), users).is_ok());
        let again = server.evaluate(response.as_bytes(), users);
        assert_eq!(again, Err(SaslError::AlreadyComplete));
        assert!(again.unwrap_err().closes_without_reply());
    }

    #[test]
    fn garbled_responses_are_clear_errors() {
        let good = client_response("jaasuser", "jaas_password", NONCE);
        let cases: Vec<(Vec<u8>, SaslError)> = vec![
            (
                b"\xff\xfe".to_vec(),
                SaslError::Malformed {
                    reason: "not UTF-8 (charset=utf-8)",
                },
            ),
            (
                b"username=\"jaasuser".to_vec(),
                SaslError::Malformed {
                    reason: "an unterminated quoted string",
                },
            ),
            (
                b"username".to_vec(),
                SaslError::Malformed {
                    reason: "a directive without '='",
                },
            ),
            (
                b"=x".to_vec(),
                SaslError::Malformed {
                    reason: "a directive without a name",
                },
            ),
            (
                b"username=\"a\" realm=\"b\"".to_vec(),
                SaslError::Malformed {
                    reason: "directives not separated by ','",
                },
            ),
            (
                good.replace(",nc=00000001", "").into_bytes(),
                SaslError::MissingDirective { name: "nc" },
            ),
            (
                format!("{good},username=\"other\"").into_bytes(),
                SaslError::DuplicateDirective {
                    name: "username".to_string(),
                },
            ),
            (
                good.replace("nc=00000001", "nc=00000002").into_bytes(),
                SaslError::NonceCount {
                    nc: "00000002".to_string(),
                },
            ),
            (
                good.replace("qop=auth", "qop=auth-conf").into_bytes(),
                SaslError::UnsupportedQop {
                    qop: "auth-conf".to_string(),
                },
            ),
            (
                good.replace("zookeeper/zk-sasl-md5", "imap/zk-sasl-md5")
                    .into_bytes(),
                SaslError::DigestUri {
                    uri: "imap/zk-sasl-md5".to_string(),
                },
            ),
            (
                good.replace("realm=\"zk-sasl-md5\"", "realm=\"other\"")
                    .into_bytes(),
                SaslError::UnknownRealm {
                    realm: "other".to_string(),
                },
            ),
            (
                vec![b'a'; RESPONSE_BYTES_MAX + 1],
                SaslError::ResponseTooLong {
                    bytes: RESPONSE_BYTES_MAX + 1,
                },
            ),
            (
                b",,,".repeat(2000)[..4000].to_vec(),
                SaslError::MissingDirective { name: "response" },
            ),
            (
                b"a=b,".repeat(100),
                SaslError::Malformed {
                    reason: "too many directives",
                },
            ),
        ];
        for (token, expected) in cases {
            let mut server = challenged();
            assert_eq!(
                server.evaluate(&token, users),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&token)
            );
            assert!(!server.is_complete());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every prefix of a good response, and each byte flipped.
        let good = client_response("jaasuser", "jaas_password", NONCE).into_bytes();
        for cut in 0..good.len() {
            let _ = challenged().evaluate(&good[..cut], users);
        }
        // (A flip inside an optional directive's name makes it an unknown
        // directive, which is ignored, so a few flips still authenticate.)
        let mut refused = 0;
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x55;
            refused += usize::from(challenged().evaluate(&bad, users).is_err());
        }
        assert!(refused > good.len() * 9 / 10, "{refused} of {}", good.len());
        // A trailing backslash inside quotes.
        let _ = challenged().evaluate(b"username=\"\\", users);
    }

    #[test]
    fn an_initial_response_is_refused() {
        let mut server = DigestMd5Server::new(NONCE.to_string());
        assert_eq!(
            server.evaluate(b"username=\"x\"", users),
            Err(SaslError::InitialResponse { bytes: 12 })
        );
    }

    #[test]
    fn optional_directives_and_case_are_accepted() {
        // No realm (hashed as ""), qop omitted (auth), upper-case hex and
        // directive names, digest-uri host in another case, extra unknown
        // directives ignored, whitespace around separators.
        let inputs = DigestInputs {
            username: "jaasuser",
            realm: "",
            password: "jaas_password",
            nonce: NONCE,
            cnonce: "c\"n",
            nc: "00000001",
            authzid: None,
            digest_uri: "ZooKeeper/ZK-SASL-MD5",
        };
        let response = format!(
            "USERNAME=\"jaasuser\" , Nonce=\"{NONCE}\", cnonce=\"c\\\"n\",nc=00000001, digest-uri=\"ZooKeeper/ZK-SASL-MD5\", future=x, response={}",
            inputs.response("AUTHENTICATE").to_uppercase()
        );
        let mut server = challenged();
        assert!(matches!(
            server.evaluate(response.as_bytes(), users),
            Ok(Evaluated::Success { .. })
        ));
    }

    #[test]
    fn non_latin1_names_hash_as_utf8_and_latin1_ones_as_latin1() {
        assert_eq!(latin1_or_utf8("jäas"), vec![b'j', 0xE4, b'a', b's']);
        assert_eq!(latin1_or_utf8("日"), "日".as_bytes());
    }

    #[test]
    fn the_authorization_id_is_the_user_name() {
        // ZooKeeper's KerberosName rules give a plain user name back; only a
        // name@REALM (no default realm) keeps the client's authzid.
        assert_eq!(
            authorization_id("jaasuser", Some("other")),
            Ok("jaasuser".into())
        );
        assert_eq!(authorization_id("a/b", None), Ok("a/b".into()));
        assert_eq!(authorization_id("u@R", None), Ok("u@R".into()));
        assert_eq!(authorization_id("u@R", Some("v")), Ok("v".into()));
        assert_eq!(authorization_id("u@", Some("v")), Ok("u@".into()));
        assert!(authorization_id("a@b@c", None)
            .unwrap_err()
            .closes_without_reply());
    }
}
