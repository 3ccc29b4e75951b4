//! A private certificate authority for HTTPS remotes (`--git-ca-file`): a PEM bundle whose
//! certificates are trusted, in addition to the system's, for the certificate an HTTPS
//! Git server presents.
//!
//! ```text
//! libgit2 TLS handshake (OpenSSL, system trust store)
//!     └─▶ certificate_check callback with the server's certificate (DER)
//!            CaBundle::verify: chain to a certificate of the bundle (rustls-webpki),
//!            valid now, for server authentication, for the host name of the URL
//!            ok  ──▶ accepted
//!            err ──▶ libgit2's own verdict stands (system CAs); the reason is kept
//!                    for the error message when that fails too
//! ```
//!
//! Why a callback rather than `git2::opts::set_ssl_cert_locations`: that option changes
//! OpenSSL's store for the whole process, can only add certificates (a rotated CA file
//! would never drop the old CA), and cannot differ between two sources. The callback reads
//! the bundle at each fetch, per source. The handshake has already proven that the server
//! holds the key of the certificate it presented, so checking that certificate's chain and
//! name is the whole of the verification; certificates of the bundle also serve as
//! intermediates, so a bundle may hold a CA and its intermediate.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

/// The certificates of a CA file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    certs: Vec<CertificateDer<'static>>,
}

/// Why a CA file is unusable, or a server certificate is not signed by it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    /// The file holds no PEM `CERTIFICATE` block.
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) in the CA file")]
    Empty,
    /// A PEM block could not be decoded.
    #[error("the CA file is not a PEM certificate bundle: {0}")]
    Pem(String),
    /// No certificate of the bundle is a usable trust anchor.
    #[error("no certificate of the CA file can be a trust anchor: {0}")]
    Anchor(String),
    /// The server's certificate does not chain to the bundle, has expired, or is for
    /// another name.
    #[error("the certificate of {host} is not trusted by the CA file: {reason}")]
    Untrusted { host: String, reason: String },
}

impl CaError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CaError::Empty => "ca_empty",
            CaError::Pem(_) => "ca_pem",
            CaError::Anchor(_) => "ca_anchor",
            CaError::Untrusted { .. } => "ca_untrusted",
        }
    }
}

impl CaBundle {
    /// Parses a PEM bundle (other PEM blocks, such as keys, are ignored).
    pub fn parse(pem: &[u8]) -> Result<Self, CaError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaError::Pem(e.to_string()))?;
        if certs.is_empty() {
            return Err(CaError::Empty);
        }
        let bundle = CaBundle { certs };
        bundle.anchors()?;
        Ok(bundle)
    }

    fn anchors(&self) -> Result<Vec<rustls_pki_types::TrustAnchor<'_>>, CaError> {
        self.certs
            .iter()
            .map(|cert| webpki::anchor_from_trusted_cert(cert))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaError::Anchor(e.to_string()))
    }

    /// Checks the DER certificate a server presented for `host` (a DNS name or an IP
    /// address, as in the URL).
    pub fn verify(&self, certificate: &[u8], host: &str) -> Result<(), CaError> {
        let untrusted = |reason: String| CaError::Untrusted {
            host: host.to_string(),
            reason,
        };
        let der = CertificateDer::from(certificate);
        let leaf = EndEntityCert::try_from(&der).map_err(|e| untrusted(e.to_string()))?;
        let anchors = self.anchors()?;
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &self.certs,
            UnixTime::now(),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| untrusted(e.to_string()))?;
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(name).map_err(|e| untrusted(e.to_string()))?;
        leaf.verify_is_valid_for_subject_name(&name)
            .map_err(|e| untrusted(e.to_string()))
    }
}

#[cfg(test)]
#[path = "ca_tests.rs"]
mod tests;
