//! Keystores and truststores in the formats ZooKeeper reads for
//! `ssl.keyStore.*` and `ssl.trustStore.*`: JKS, PKCS#12 and PEM.
//!
//! The type is `ssl.keyStore.type` / `ssl.trustStore.type` when set, else the
//! file's extension (`.jks`, `.p12`/`.pfx`, `.pem`), as ZooKeeper's
//! `KeyStoreFileType.fromPropertyValueOrFileName`. Like Java 9 and later, a
//! store said to be JKS or PKCS#12 is read as whichever of the two its bytes
//! are. A keystore gives the first private key and its certificate chain; a
//! truststore gives every certificate it trusts. One password opens the store
//! and its key, as ZooKeeper uses it for both. PKCS#12 is read by the
//! `p12-keystore` crate, PEM by `rustls-pki-types`; JKS is read here.
//!
//! # The JKS format (Sun's `JavaKeyStore`), all integers big-endian
//!
//! ```text
//! u32 magic 0xFEEDFEED, u32 version (1 or 2), u32 entry count, then entries:
//!   u32 tag (1 = private key, 2 = trusted certificate)
//!   utf alias, u64 creation time (ms)
//!   tag 1: u32 n, n bytes of EncryptedPrivateKeyInfo (DER), u32 chain length,
//!          then that many certificates
//!   tag 2: one certificate
//!   certificate: (version 2 only) utf type ("X.509"), u32 n, n bytes of DER
//!   utf: u16 n, n bytes of (modified) UTF-8
//! 20 bytes: SHA-1(password as UTF-16BE ‖ "Mighty Aphrodite" ‖ every byte above)
//! ```
//!
//! A private key is protected with Sun's proprietary algorithm (OID
//! 1.3.6.1.4.1.42.2.17.1.1): the EncryptedPrivateKeyInfo's data is
//! `salt (20) ‖ ciphertext ‖ check (20)`; the key stream is the chain
//! `d₀ = salt, dᵢ = SHA-1(password ‖ dᵢ₋₁)`, concatenated, XORed with the
//! ciphertext to give the PKCS#8 PrivateKeyInfo, and `check` must equal
//! SHA-1(password ‖ PKCS#8).

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest, Sha1};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyStoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown store type {name:?} (expected JKS, PKCS12 or PEM)")]
    UnknownType { path: PathBuf, name: String },
    #[error("{path}: cannot tell the store type from the file name; set its ssl.*.type")]
    NoType { path: PathBuf },
    #[error("{path}: malformed {format} store: {reason}")]
    Malformed {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{path}: wrong password, or the store is damaged (its integrity check fails)")]
    Integrity { path: PathBuf },
    #[error("{path}: the store holds no private key")]
    NoPrivateKey { path: PathBuf },
    #[error("{path}: the store holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: the private key is protected with {algorithm}, which is not supported")]
    UnsupportedKeyProtection { path: PathBuf, algorithm: String },
}

/// The formats a store may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Jks,
    Pkcs12,
    Pem,
}

impl StoreType {
    /// The type from `ssl.*.type` if given, else from the file's extension.
    pub fn of(path: &Path, configured: Option<&str>) -> Result<StoreType, KeyStoreError> {
        if let Some(name) = configured {
            return match name.to_ascii_uppercase().as_str() {
                "JKS" => Ok(StoreType::Jks),
                "PKCS12" => Ok(StoreType::Pkcs12),
                "PEM" => Ok(StoreType::Pem),
                _ => Err(KeyStoreError::UnknownType {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                }),
            };
        }
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("jks") => Ok(StoreType::Jks),
            Some("p12") | Some("pfx") => Ok(StoreType::Pkcs12),
            Some("pem") => Ok(StoreType::Pem),
            _ => Err(KeyStoreError::NoType {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A server's key and the certificate chain that goes with it (leaf first).
#[derive(Debug)]
pub struct KeyMaterial {
    pub key: PrivateKeyDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
}

/// Reads the key and chain of a keystore.
pub fn load_key(
    path: &Path,
    password: &str,
    configured_type: Option<&str>,
) -> Result<KeyMaterial, KeyStoreError> {
    let bytes = read(path)?;
    let material = match binary_type(StoreType::of(path, configured_type)?, &bytes) {
        StoreType::Jks => {
            let store = Jks::parse(&bytes, password).map_err(|e| e.at(path))?;
            store.key.ok_or_else(|| KeyStoreError::NoPrivateKey {
                path: path.to_path_buf(),
            })?
        }
        StoreType::Pkcs12 => {
            let store = pkcs12(path, &bytes, password)?;
            let (_, chain) =
                store
                    .private_key_chain()
                    .ok_or_else(|| KeyStoreError::NoPrivateKey {
                        path: path.to_path_buf(),
                    })?;
            KeyMaterial {
                key: PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()).into(),
                chain: chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
            }
        }
        StoreType::Pem => KeyMaterial {
            key: pem_key(path, &bytes, password)?,
            chain: pem_certificates(path, &bytes)?,
        },
    };
    if material.chain.is_empty() {
        return Err(KeyStoreError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(material)
}

/// Reads every certificate a truststore trusts.
pub fn load_trusted(
    path: &Path,
    password: &str,
    configured_type: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, KeyStoreError> {
    let bytes = read(path)?;
    let certificates = match binary_type(StoreType::of(path, configured_type)?, &bytes) {
        StoreType::Jks => {
            Jks::parse(&bytes, password)
                .map_err(|e| e.at(path))?
                .trusted
        }
        StoreType::Pkcs12 => pkcs12(path, &bytes, password)?
            .entries()
            .filter_map(|(_, entry)| match entry {
                p12_keystore::KeyStoreEntry::Certificate(c) => {
                    Some(CertificateDer::from(c.as_der().to_vec()))
                }
                _ => None,
            })
            .collect(),
        StoreType::Pem => pem_certificates(path, &bytes)?,
    };
    if certificates.is_empty() {
        return Err(KeyStoreError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

fn read(path: &Path) -> Result<Vec<u8>, KeyStoreError> {
    std::fs::read(path).map_err(|source| KeyStoreError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// JKS or PKCS#12 by content (Java reads either under either name).
fn binary_type(declared: StoreType, bytes: &[u8]) -> StoreType {
    match declared {
        StoreType::Jks | StoreType::Pkcs12 if bytes.starts_with(&JKS_MAGIC.to_be_bytes()) => {
            StoreType::Jks
        }
        StoreType::Jks | StoreType::Pkcs12 => StoreType::Pkcs12,
        StoreType::Pem => StoreType::Pem,
    }
}

fn pkcs12(
    path: &Path,
    bytes: &[u8],
    password: &str,
) -> Result<p12_keystore::KeyStore, KeyStoreError> {
    use p12_keystore::error::Error;
    p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|err| match err {
            Error::MacError(_) => KeyStoreError::Integrity {
                path: path.to_path_buf(),
            },
            err => malformed(path, "PKCS12", err),
        })
}

/// A PEM keystore's key. As ZooKeeper's PemReader: with a password it is an
/// encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`, PBES2), without one a
/// plain key (PKCS#8; PKCS#1 and SEC1 are read too).
fn pem_key(
    path: &Path,
    bytes: &[u8],
    password: &str,
) -> Result<PrivateKeyDer<'static>, KeyStoreError> {
    if password.is_empty() {
        return PrivateKeyDer::from_pem_slice(bytes).map_err(|err| match err {
            rustls_pki_types::pem::Error::NoItemsFound => KeyStoreError::NoPrivateKey {
                path: path.to_path_buf(),
            },
            err => malformed(path, "PEM", err),
        });
    }
    let encrypted =
        pem_section(bytes, "ENCRYPTED PRIVATE KEY").ok_or_else(|| malformed(
            path,
            "PEM",
            "a password is set (ssl.keyStore.password), so the key must be an ENCRYPTED PRIVATE KEY",
        ))?;
    // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }
    let fields = der_element(&encrypted)
        .filter(|(tag, _, _)| *tag == 0x30)
        .map(|(_, fields, _)| fields)
        .ok_or_else(|| malformed(path, "PEM", "the encrypted key is not DER"))?;
    let (_, _, data) = der_element(fields)
        .ok_or_else(|| malformed(path, "PEM", "the encrypted key has no algorithm"))?;
    let algorithm = &fields[..fields.len() - data.len()];
    let ciphertext = der_element(data)
        .filter(|(tag, _, _)| *tag == 0x04)
        .map(|(_, ciphertext, _)| ciphertext)
        .ok_or_else(|| malformed(path, "PEM", "the encrypted key has no data"))?;
    let scheme = <pkcs5::EncryptionScheme as der::Decode>::from_der(algorithm).map_err(|err| {
        KeyStoreError::UnsupportedKeyProtection {
            path: path.to_path_buf(),
            algorithm: err.to_string(),
        }
    })?;
    let pkcs8 = scheme
        .decrypt(password, ciphertext)
        .map_err(|_| KeyStoreError::Integrity {
            path: path.to_path_buf(),
        })?;
    Ok(PrivatePkcs8KeyDer::from(pkcs8).into())
}

/// The first PEM section with this label, decoded.
fn pem_section(bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn pem_certificates(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, KeyStoreError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| malformed(path, "PEM", err))
}

fn malformed(path: &Path, format: &'static str, reason: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Malformed {
        path: path.to_path_buf(),
        format,
        reason: reason.to_string(),
    }
}

const JKS_MAGIC: u32 = 0xFEED_FEED;
/// Sun's proprietary key protection algorithm, DER-encoded OID body.
const SUN_KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
const JKS_DIGEST_WHITENER: &[u8] = b"Mighty Aphrodite";
const SHA1_BYTES: usize = 20;

/// Why a JKS store could not be read (located by [`JksError::at`]).
#[derive(Debug, PartialEq, Eq)]
enum JksError {
    Malformed(String),
    Integrity,
    UnsupportedKeyProtection(String),
}

impl JksError {
    fn at(self, path: &Path) -> KeyStoreError {
        match self {
            JksError::Malformed(reason) => malformed(path, "JKS", reason),
            JksError::Integrity => KeyStoreError::Integrity {
                path: path.to_path_buf(),
            },
            JksError::UnsupportedKeyProtection(algorithm) => {
                KeyStoreError::UnsupportedKeyProtection {
                    path: path.to_path_buf(),
                    algorithm,
                }
            }
        }
    }
}

/// What a JKS store holds: its first private key entry, and its trusted
/// certificate entries.
#[derive(Debug)]
struct Jks {
    key: Option<KeyMaterial>,
    trusted: Vec<CertificateDer<'static>>,
}

impl Jks {
    fn parse(bytes: &[u8], password: &str) -> Result<Jks, JksError> {
        let password = utf16_be(password);
        if bytes.len() < SHA1_BYTES {
            return Err(JksError::Malformed("shorter than its digest".into()));
        }
        let (body, digest) = bytes.split_at(bytes.len() - SHA1_BYTES);
        let mut hasher = Sha1::new();
        hasher.update(&password);
        hasher.update(JKS_DIGEST_WHITENER);
        hasher.update(body);
        if hasher.finalize().as_slice() != digest {
            return Err(JksError::Integrity);
        }
        let mut r = Cursor { bytes: body };
        if r.u32()? != JKS_MAGIC {
            return Err(JksError::Malformed("not a JKS store (bad magic)".into()));
        }
        let version = r.u32()?;
        if version != 1 && version != 2 {
            return Err(JksError::Malformed(format!("unknown version {version}")));
        }
        let count = r.u32()?;
        let mut store = Jks {
            key: None,
            trusted: Vec::new(),
        };
        for _ in 0..count {
            let tag = r.u32()?;
            let _alias = r.utf()?;
            let _created_ms = r.u64()?;
            match tag {
                1 => {
                    let protected = r.sized()?;
                    let chain_length = r.u32()?;
                    let mut chain = Vec::new();
                    for _ in 0..chain_length {
                        chain.push(r.certificate(version)?);
                    }
                    if store.key.is_none() {
                        let pkcs8 = unprotect_key(protected, &password)?;
                        store.key = Some(KeyMaterial {
                            key: PrivatePkcs8KeyDer::from(pkcs8).into(),
                            chain,
                        });
                    }
                }
                2 => store.trusted.push(r.certificate(version)?),
                3 => {
                    return Err(JksError::Malformed(
                        "secret key entries (JCEKS) are not supported".into(),
                    ))
                }
                tag => return Err(JksError::Malformed(format!("unknown entry tag {tag}"))),
            }
        }
        if !r.bytes.is_empty() {
            return Err(JksError::Malformed(format!(
                "{} bytes after the last entry",
                r.bytes.len()
            )));
        }
        Ok(store)
    }
}

/// Recovers a PKCS#8 key from Sun's key protector (see the module doc).
fn unprotect_key(encrypted_info: &[u8], password: &[u8]) -> Result<Vec<u8>, JksError> {
    let bad = |what: &str| JksError::Malformed(format!("protected key: {what}"));
    // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }
    let (tag, info, _) = der_element(encrypted_info).ok_or_else(|| bad("not DER"))?;
    if tag != 0x30 {
        return Err(bad("not a SEQUENCE"));
    }
    let (tag, algorithm, rest) = der_element(info).ok_or_else(|| bad("no algorithm"))?;
    let (oid_tag, oid, _) = der_element(algorithm).ok_or_else(|| bad("no OID"))?;
    if tag != 0x30 || oid_tag != 0x06 {
        return Err(bad("malformed AlgorithmIdentifier"));
    }
    if oid != SUN_KEY_PROTECTOR_OID {
        return Err(JksError::UnsupportedKeyProtection(format!(
            "algorithm OID {}",
            oid_string(oid)
        )));
    }
    let (tag, data, _) = der_element(rest).ok_or_else(|| bad("no encrypted data"))?;
    if tag != 0x04 || data.len() < 2 * SHA1_BYTES {
        return Err(bad("encrypted data too short"));
    }
    let (salt, rest) = data.split_at(SHA1_BYTES);
    let (ciphertext, check) = rest.split_at(rest.len() - SHA1_BYTES);
    let mut plain = Vec::with_capacity(ciphertext.len());
    let mut block = salt.to_vec();
    for chunk in ciphertext.chunks(SHA1_BYTES) {
        block = Sha1::new()
            .chain_update(password)
            .chain_update(&block)
            .finalize()
            .to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let expected = Sha1::new()
        .chain_update(password)
        .chain_update(&plain)
        .finalize();
    if expected.as_slice() != check {
        return Err(JksError::Integrity);
    }
    Ok(plain)
}

/// One DER element: (tag, contents, what follows). Single-byte tags only.
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

fn oid_string(body: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value = 0u64;
    for byte in body {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                arcs.push((value / 40).min(2));
                arcs.push(value - arcs[0] * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A password as Java hands it to the key protector: UTF-16 big-endian.
fn utf16_be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Reads the JKS body's fields.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        if self.bytes.len() < n {
            return Err(JksError::Malformed("truncated".into()));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, JksError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn utf(&mut self) -> Result<&'a [u8], JksError> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
        self.take(usize::from(n))
    }

    fn sized(&mut self) -> Result<&'a [u8], JksError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn certificate(&mut self, version: u32) -> Result<CertificateDer<'static>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != b"X.509" {
                return Err(JksError::Malformed(format!(
                    "certificate type {:?}",
                    String::from_utf8_lossy(kind)
                )));
            }
        }
        Ok(CertificateDer::from(self.sized()?.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JKS store written the way Java writes one, from its parts.
    struct JksWriter {
        body: Vec<u8>,
        count: u32,
    }

    impl JksWriter {
        fn new() -> JksWriter {
            JksWriter {
                body: Vec::new(),
                count: 0,
            }
        }

        fn utf(&mut self, s: &[u8]) {
            self.body.extend((s.len() as u16).to_be_bytes());
            self.body.extend(s);
        }

        fn certificate(&mut self, der: &[u8]) {
            self.utf(b"X.509");
            self.body.extend((der.len() as u32).to_be_bytes());
            self.body.extend(der);
        }

        fn key(&mut self, alias: &str, pkcs8: &[u8], password: &str, chain: &[&[u8]]) {
            let protected = protect(pkcs8, &utf16_be(password), [7; 20]);
            self.count += 1;
            self.body.extend(1u32.to_be_bytes());
            self.utf(alias.as_bytes());
            self.body.extend(1_700_000_000_000u64.to_be_bytes());
            self.body.extend((protected.len() as u32).to_be_bytes());
            self.body.extend(&protected);
            self.body.extend((chain.len() as u32).to_be_bytes());
            for cert in chain {
                self.certificate(cert);
            }
        }

        fn trusted(&mut self, alias: &str, der: &[u8]) {
            self.count += 1;
            self.body.extend(2u32.to_be_bytes());
            self.utf(alias.as_bytes());
            self.body.extend(1_700_000_000_000u64.to_be_bytes());
            self.certificate(der);
        }

        fn finish(self, password: &str) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(JKS_MAGIC.to_be_bytes());
            out.extend(2u32.to_be_bytes());
            out.extend(self.count.to_be_bytes());
            out.extend(self.body);
            let digest = Sha1::new()
                .chain_update(utf16_be(password))
                .chain_update(JKS_DIGEST_WHITENER)
                .chain_update(&out)
                .finalize();
            out.extend(digest);
            out
        }
    }

    /// Sun's key protector in the encrypting direction, wrapped in DER.
    fn protect(pkcs8: &[u8], password: &[u8], salt: [u8; 20]) -> Vec<u8> {
        let mut data = salt.to_vec();
        let mut block = salt.to_vec();
        for chunk in pkcs8.chunks(SHA1_BYTES) {
            block = Sha1::new()
                .chain_update(password)
                .chain_update(&block)
                .finalize()
                .to_vec();
            data.extend(chunk.iter().zip(&block).map(|(p, k)| p ^ k));
        }
        data.extend(
            Sha1::new()
                .chain_update(password)
                .chain_update(pkcs8)
                .finalize(),
        );
        let mut algorithm = vec![0x06, SUN_KEY_PROTECTOR_OID.len() as u8];
        algorithm.extend(SUN_KEY_PROTECTOR_OID);
        algorithm.extend([0x05, 0x00]);
        let mut inner = der(0x30, &algorithm);
        inner.extend(der(0x04, &data));
        der(0x30, &inner)
    }

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.extend([0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
        }
        out.extend(contents);
        out
    }

    /// A key entry and trusted certificates come back exactly as stored.
    #[test]
    fn jks_entries_round_trip() {
        let pkcs8: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let mut w = JksWriter::new();
        w.key("server", &pkcs8, "secret", &[b"leaf-der", b"ca-der"]);
        w.trusted("ca", b"ca-der");
        w.trusted("other", b"other-der");
        let store = Jks::parse(&w.finish("secret"), "secret").unwrap();
        let key = store.key.unwrap();
        assert_eq!(key.key.secret_der(), &pkcs8[..]);
        assert_eq!(
            key.chain,
            vec![
                CertificateDer::from(b"leaf-der".to_vec()),
                CertificateDer::from(b"ca-der".to_vec())
            ]
        );
        assert_eq!(store.trusted.len(), 2);
        assert_eq!(store.trusted[1].as_ref(), b"other-der");
    }

    /// The wrong password fails the store's digest; a damaged byte too.
    #[test]
    fn jks_integrity_is_checked() {
        let mut w = JksWriter::new();
        w.trusted("ca", b"ca-der");
        let bytes = w.finish("secret");
        assert_eq!(
            Jks::parse(&bytes, "wrong").unwrap_err(),
            JksError::Integrity
        );
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert_eq!(
            Jks::parse(&damaged, "secret").unwrap_err(),
            JksError::Integrity
        );
        assert!(Jks::parse(&bytes[..10], "secret").is_err());
    }

    /// A key whose protector check fails (another key password) is refused.
    #[test]
    fn jks_key_check_digest_is_verified() {
        let protected = protect(b"pkcs8 key bytes", &utf16_be("key-pass"), [1; 20]);
        assert_eq!(
            unprotect_key(&protected, &utf16_be("key-pass")).unwrap(),
            b"pkcs8 key bytes"
        );
        assert_eq!(
            unprotect_key(&protected, &utf16_be("store-pass")).unwrap_err(),
            JksError::Integrity
        );
    }

    /// The type comes from the setting, else the extension, as ZooKeeper's.
    #[test]
    fn store_type_from_setting_or_extension() {
        let p = Path::new("/x/keystore.jks");
        assert_eq!(StoreType::of(p, None).unwrap(), StoreType::Jks);
        assert_eq!(StoreType::of(p, Some("pkcs12")).unwrap(), StoreType::Pkcs12);
        assert_eq!(
            StoreType::of(Path::new("a.P12"), None).unwrap(),
            StoreType::Pkcs12
        );
        assert_eq!(
            StoreType::of(Path::new("a.pfx"), None).unwrap(),
            StoreType::Pkcs12
        );
        assert_eq!(
            StoreType::of(Path::new("a.pem"), None).unwrap(),
            StoreType::Pem
        );
        assert!(matches!(
            StoreType::of(Path::new("a.store"), None),
            Err(KeyStoreError::NoType { .. })
        ));
        assert!(matches!(
            StoreType::of(p, Some("BCFKS")),
            Err(KeyStoreError::UnknownType { .. })
        ));
        assert_eq!(oid_string(SUN_KEY_PROTECTOR_OID), "1.3.6.1.4.1.42.2.17.1.1");
    }
}
