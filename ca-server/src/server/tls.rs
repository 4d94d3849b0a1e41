//! The HTTPS endpoint's TLS configuration: the certificate chain and key the dealer issued this
//! replica (its chain ends at the root, so clients need nothing but `root.pem`).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the HTTPS certificate and key do not form a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A rustls server configuration (TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2) from PEM files.
pub fn server_config(chain_pem: &Path, key_pem: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file = |path: &Path, reason: String| TlsError::File { path: path.to_path_buf(), reason };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain_pem)
        .map_err(|e| file(chain_pem, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file(chain_pem, e.to_string()))?;
    if chain.is_empty() {
        return Err(file(chain_pem, "holds no certificate".into()));
    }
    // The key's bytes are never put in an error message.
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|_| file(key_pem, "is not a PEM private key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
