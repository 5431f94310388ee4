//! TLS: the acceptor built from `[server] tls_cert` and `tls_key` (PEM files), with rustls
//! (the one pgwire is built on, ring provider). Clients ask for TLS with PostgreSQL's
//! `SSLRequest` (`sslmode=require`) or connect with TLS directly (ALPN `postgresql`).

use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::tokio_rustls::rustls;
use pgwire::tokio::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// The server's TLS set-up: the acceptor, and the certificate as PEM (SCRAM's channel
/// binding, `SCRAM-SHA-256-PLUS`, hashes it).
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) cert_pem: Vec<u8>,
}

impl Tls {
    /// Reads the certificate chain and key; any problem is a configuration error naming the
    /// file.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Self, ServerError> {
        let bad = |path: &Path, e: &dyn std::fmt::Display| {
            ServerError::Config(format!("{}: {e}", path.display()))
        };
        let cert_pem = std::fs::read(cert).map_err(|e| bad(cert, &e))?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(cert, &e))?;
        if certs.is_empty() {
            return Err(bad(cert, &"no certificate in the file (PEM expected)"));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| {
                ServerError::Config(format!("{} and {}: {e}", cert.display(), key.display()))
            })?;
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert_pem,
        })
    }
}
