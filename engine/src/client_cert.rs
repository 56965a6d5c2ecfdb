//! Checking TLS client certificates as ZooKeeper's Java trust manager does,
//! including X.509 version 1 certificates.
//!
//! rustls's verifier (webpki) checks every certificate it can, but refuses
//! version 1 certificates outright, which Java's PKIX validation accepts for
//! an end entity. kazoo's own test harness signs its client (and server)
//! certificates as version 1, so a server that refused them would fail
//! kazoo's TLS test. [`ClientCertificates`] therefore hands every
//! certificate to webpki first and only when webpki answers
//! `UnsupportedCertVersion` checks it itself, narrowly: a version 1 leaf,
//! valid now, whose issuer is a certificate of the truststore and whose
//! signature that certificate's key verifies. Handshake signatures made with
//! such a certificate's key are checked with the key alone.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};
use x509_parser::time::ASN1Time;

/// webpki's verifier, and the version 1 fallback beside it.
#[derive(Debug)]
pub struct ClientCertificates {
    webpki: Arc<dyn ClientCertVerifier>,
    /// The truststore's certificates (DER), the possible issuers of a v1 leaf.
    trusted: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertificates {
    pub fn new(
        webpki: Arc<dyn ClientCertVerifier>,
        trusted: Vec<CertificateDer<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> ClientCertificates {
        ClientCertificates {
            webpki,
            trusted,
            algorithms,
        }
    }

    /// A version 1 leaf issued and signed by a trusted certificate, valid now.
    fn verify_v1(&self, leaf: &CertificateDer<'_>, now: UnixTime) -> Result<(), Error> {
        let bad = |e: CertificateError| Error::InvalidCertificate(e);
        let (_, certificate) =
            X509Certificate::from_der(leaf).map_err(|_| bad(CertificateError::BadEncoding))?;
        if certificate.version() != X509Version::V1 {
            return Err(bad(CertificateError::BadEncoding));
        }
        let now = i64::try_from(now.as_secs())
            .ok()
            .and_then(|secs| ASN1Time::from_timestamp(secs).ok())
            .ok_or(bad(CertificateError::BadEncoding))?;
        if now < certificate.validity().not_before {
            return Err(bad(CertificateError::NotValidYet));
        }
        if now > certificate.validity().not_after {
            return Err(bad(CertificateError::Expired));
        }
        let issued_by_trusted = self.trusted.iter().any(|der| {
            X509Certificate::from_der(der).is_ok_and(|(_, issuer)| {
                issuer.subject().as_raw() == certificate.issuer().as_raw()
                    && certificate
                        .verify_signature(Some(issuer.public_key()))
                        .is_ok()
            })
        });
        if issued_by_trusted {
            Ok(())
        } else {
            Err(bad(CertificateError::UnknownIssuer))
        }
    }

    /// The key of a version 1 certificate webpki would not read.
    fn v1_key(certificate: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, Error> {
        let (_, parsed) = X509Certificate::from_der(certificate)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        Ok(SubjectPublicKeyInfoDer::from(
            parsed.public_key().raw.to_vec(),
        ))
    }
}

/// Whether webpki refused a certificate only for being version 1 or 2.
fn unsupported_version(error: &Error) -> bool {
    match error {
        Error::InvalidCertificate(CertificateError::Other(other)) => other
            .0
            .downcast_ref::<webpki::Error>()
            .is_some_and(|e| matches!(e, webpki::Error::UnsupportedCertVersion)),
        _ => false,
    }
}

impl ClientCertVerifier for ClientCertificates {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(error) if unsupported_version(&error) => {
                self.verify_v1(end_entity, now)?;
                Ok(ClientCertVerified::assertion())
            }
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match self.webpki.verify_tls12_signature(message, cert, dss) {
            Err(error) if unsupported_version(&error) => {
                let key = Self::v1_key(cert)?;
                let entity = webpki::RawPublicKeyEntity::try_from(&key)
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                let candidates = self
                    .algorithms
                    .mapping
                    .iter()
                    .find(|(scheme, _)| *scheme == dss.scheme)
                    .map(|(_, algorithms)| *algorithms)
                    .ok_or(Error::InvalidCertificate(CertificateError::BadSignature))?;
                candidates
                    .iter()
                    .find(|algorithm| {
                        entity
                            .verify_signature(**algorithm, message, dss.signature())
                            .is_ok()
                    })
                    .map(|_| HandshakeSignatureValid::assertion())
                    .ok_or(Error::InvalidCertificate(CertificateError::BadSignature))
            }
            result => result,
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match self.webpki.verify_tls13_signature(message, cert, dss) {
            Err(error) if unsupported_version(&error) => {
                let key = Self::v1_key(cert)?;
                rustls::crypto::verify_tls13_signature_with_raw_key(
                    message,
                    &key,
                    dss,
                    &self.algorithms,
                )
            }
            result => result,
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
