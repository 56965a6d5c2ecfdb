//! TLS on `secureClientPort`, configured with ZooKeeper's `ssl.*` keys.
//!
//! ```text
//!  accept ─▶ TLS handshake (rustls, within the handshake timeout)
//!        ─▶ client certificate? ─▶ x509 identity = its subject DN (RFC 2253)
//!        ─▶ connection::serve over the TLS stream, the identity in its auth
//! ```
//!
//! The server's key and chain come from `ssl.keyStore.*`; clients'
//! certificates are checked against `ssl.trustStore.*` as `ssl.clientAuth`
//! says (`need`, ZooKeeper's default: a client without a trusted certificate
//! is refused; `want`: one without a certificate is served unauthenticated;
//! `none`: none is asked for). An authenticated client gets the identity
//! `x509:<subject DN>` exactly as ZooKeeper's X509AuthenticationProvider
//! gives it (`X500Principal.getName()`, RFC 2253), usable in ACLs; the
//! subject named by `X509AuthenticationProvider.superUser` is also `super`.
//! Certificates are checked by webpki, except that X.509 version 1
//! certificates, which Java accepts and kazoo's own test harness makes, are
//! accepted too ([`crate::client_cert`], [`ServerKey`]).

use std::path::PathBuf;
use std::sync::Arc;

use proto::Id;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use thiserror::Error;
use x509_parser::der_parser::asn1_rs::{Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::client_cert::ClientCertificates;
use crate::config::{ClientAuth, Config};
use crate::keystore::{self, KeyMaterial, KeyStoreError};

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("ssl.keyStore: {0}")]
    KeyStore(KeyStoreError),
    #[error("ssl.trustStore: {0}")]
    TrustStore(KeyStoreError),
    #[error("cannot read the password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "ssl.clientAuth={client_auth:?} needs ssl.trustStore.location to check client certificates"
    )]
    NoTrustStore { client_auth: ClientAuth },
    #[error("the truststore's certificates cannot anchor trust: {0}")]
    TrustAnchors(String),
    #[error("the keystore's key does not fit TLS: {0}")]
    Key(rustls::Error),
}

/// Everything the secure listener needs: the TLS setup and who is super.
#[derive(Debug, Clone)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    pub x509_super_user: Option<String>,
}

impl TlsServer {
    /// Reads the stores and builds the TLS setup (at start-up: a mistake here
    /// stops the server with a line naming the key at fault).
    pub fn from_config(config: &Config) -> Result<TlsServer, TlsError> {
        let tls = &config.tls;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_store = tls
            .key_store_location
            .as_deref()
            .expect("config.check: secureClientPort needs ssl.keyStore.location");
        let key_password = password(&tls.key_store_password, &tls.key_store_password_path)?;
        let material = keystore::load_key(key_store, &key_password, tls.key_store_type.as_deref())
            .map_err(TlsError::KeyStore)?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Key)?;
        let builder = if tls.client_auth == ClientAuth::None {
            builder.with_no_client_auth()
        } else {
            let trust_store =
                tls.trust_store_location
                    .as_deref()
                    .ok_or(TlsError::NoTrustStore {
                        client_auth: tls.client_auth,
                    })?;
            let trust_password =
                password(&tls.trust_store_password, &tls.trust_store_password_path)?;
            let trusted = keystore::load_trusted(
                trust_store,
                &trust_password,
                tls.trust_store_type.as_deref(),
            )
            .map_err(TlsError::TrustStore)?;
            let mut roots = RootCertStore::empty();
            for certificate in &trusted {
                roots
                    .add(certificate.clone())
                    .map_err(|err| TlsError::TrustAnchors(err.to_string()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = match tls.client_auth {
                ClientAuth::Want => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|err| TlsError::TrustAnchors(err.to_string()))?;
            let algorithms = provider.signature_verification_algorithms;
            builder.with_client_cert_verifier(Arc::new(ClientCertificates::new(
                verifier, trusted, algorithms,
            )))
        };
        let config = builder.with_cert_resolver(Arc::new(ServerKey::new(&provider, material)?));
        Ok(TlsServer {
            config: Arc::new(config),
            x509_super_user: tls.x509_super_user.clone(),
        })
    }

    /// The identities a verified client certificate proves: `x509:<DN>`, and
    /// `super` if the DN is the configured super user.
    pub fn identities(&self, peer_certificates: Option<&[CertificateDer<'_>]>) -> Vec<Id> {
        let Some(leaf) = peer_certificates.and_then(|chain| chain.first()) else {
            return Vec::new();
        };
        let Some(subject) = subject_rfc2253(leaf) else {
            return Vec::new();
        };
        let mut identities = Vec::new();
        if self.x509_super_user.as_deref() == Some(subject.as_str()) {
            identities.push(Id::new("super", subject.clone()));
        }
        identities.push(Id::new("x509", subject));
        identities
    }
}

/// The server's one key and chain. Built without rustls's own consistency
/// check, which parses the certificate with webpki and so refuses X.509
/// version 1 certificates (kazoo's harness makes one for its server); the
/// key is checked against the certificate here instead.
#[derive(Debug)]
struct ServerKey(Arc<CertifiedKey>);

impl ServerKey {
    fn new(provider: &CryptoProvider, material: KeyMaterial) -> Result<ServerKey, TlsError> {
        let key = provider
            .key_provider
            .load_private_key(material.key)
            .map_err(TlsError::Key)?;
        let (_, leaf) = X509Certificate::from_der(&material.chain[0]).map_err(|err| {
            TlsError::Key(rustls::Error::General(format!(
                "the keystore's certificate: {err}"
            )))
        })?;
        if let Some(spki) = key.public_key() {
            if spki.as_ref() != leaf.public_key().raw {
                return Err(TlsError::Key(rustls::Error::InconsistentKeys(
                    rustls::InconsistentKeys::KeyMismatch,
                )));
            }
        }
        Ok(ServerKey(Arc::new(CertifiedKey::new(material.chain, key))))
    }
}

impl ResolvesServerCert for ServerKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// `ssl.*.password`, or the contents of `ssl.*.passwordPath` less one
/// trailing line separator (ZooKeeper's SecretUtils); empty if neither.
fn password(value: &Option<String>, path: &Option<PathBuf>) -> Result<String, TlsError> {
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|source| TlsError::PasswordFile {
            path: path.clone(),
            source,
        })?;
        return Ok(text.strip_suffix('\n').unwrap_or(&text).to_string());
    }
    Ok(value.clone().unwrap_or_default())
}

/// The certificate's subject as Java's `X500Principal.getName()` writes it
/// (RFC 2253): RDNs most specific first, joined by `,`; the attribute types
/// RFC 2253 names (CN, C, L, ST, O, OU, STREET, DC, UID) by keyword, others
/// by OID with the value as `#` and its DER in hex; string values with
/// `,=+<>#;"\` escaped by a backslash, and leading or trailing spaces too.
pub fn subject_rfc2253(certificate: &[u8]) -> Option<String> {
    let (_, parsed) = X509Certificate::from_der(certificate).ok()?;
    let mut rdns = Vec::new();
    for rdn in parsed.subject().iter_rdn() {
        let mut avas = Vec::new();
        for ava in rdn.iter() {
            let oid = ava.attr_type().to_id_string();
            let value = ava.attr_value();
            let keyword = rfc2253_keyword(&oid);
            let text = match keyword {
                Some(keyword) if is_java_der_string(value.tag()) => {
                    let text = String::from_utf8_lossy(value.data);
                    format!("{keyword}={}", escape_rfc2253(&text))
                }
                _ => {
                    let der = value.to_der_vec().ok()?;
                    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{}=#{hex}", keyword.unwrap_or(&oid))
                }
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The string types Java renders as text in an RFC 2253 name.
fn is_java_der_string(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::PrintableString
            | Tag::T61String
            | Tag::Ia5String
            | Tag::GeneralString
            | Tag::BmpString
            | Tag::Utf8String
    )
}

fn escape_rfc2253(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        let edge_space = *c == ' ' && (i < lead || i >= chars.len() - trail);
        if edge_space || ",=+<>#;\"\\".contains(*c) {
            out.push('\\');
        }
        if *c == '\0' {
            out.push_str("00");
        } else {
            out.push(*c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values are escaped as Java escapes them in RFC 2253 names.
    #[test]
    fn rfc2253_escaping_follows_java() {
        assert_eq!(escape_rfc2253("client"), "client");
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#1 = \"x\""), "\\#1 \\= \\\"x\\\"");
        assert_eq!(escape_rfc2253(" pad "), "\\ pad\\ ");
        assert_eq!(escape_rfc2253("<a;b>\\"), "\\<a\\;b\\>\\\\");
    }

    #[test]
    fn rfc2253_keywords_are_those_rfc_2253_names() {
        assert_eq!(rfc2253_keyword("2.5.4.3"), Some("CN"));
        assert_eq!(rfc2253_keyword("0.9.2342.19200300.100.1.25"), Some("DC"));
        assert_eq!(
            rfc2253_keyword("1.2.840.113549.1.9.1"),
            None,
            "emailAddress"
        );
    }
}
