//! How the client reaches one replica: an HTTPS request and its raw answer. The [`Transport`]
//! trait is the seam where tests put fake (and lying) replicas; [`HttpsTransport`] is the real
//! one.
//!
//! Each replica is reached over TLS with a verifier that accepts exactly that replica's
//! certificate: the SHA-256 the dealer recorded for it in `cluster.json`, and issued by the root.
//! Pinning matters beyond authentication: on one host every replica's certificate names the same
//! address, and the client must never attribute one replica's answer to another when it names a
//! replica that lied.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use threshold::cluster::ClusterFile;

use crate::verify::{Root, Validity, VerifiedCertificate};

/// The largest answer read from a replica (a page of 1000 audit entries with their TBS
/// certificates is a few MiB); a replica that sends more is cut off, not buffered.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request to a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    /// Path and query, e.g. `/v1/audit/sth`.
    pub path: String,
    pub accept: &'static str,
    /// A JSON body (POST only).
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    pub fn get(path: impl Into<String>) -> Self {
        HttpRequest { method: Method::Get, path: path.into(), accept: "application/json", body: None }
    }

    pub fn get_as(path: impl Into<String>, accept: &'static str) -> Self {
        HttpRequest { method: Method::Get, path: path.into(), accept, body: None }
    }

    pub fn post_json(path: impl Into<String>, body: Vec<u8>) -> Self {
        HttpRequest { method: Method::Post, path: path.into(), accept: "application/json", body: Some(body) }
    }
}

/// A replica's raw answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    #[error("the answer exceeds {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
}

/// Sends requests to replicas by number.
pub trait Transport: Send + Sync {
    fn send(&self, replica: usize, request: HttpRequest) -> impl Future<Output = Result<Reply, TransportError>> + Send;
}

/// HTTPS to the replicas listed in the cluster file, each pinned to its own certificate.
pub struct HttpsTransport {
    replicas: Vec<(String, reqwest::Client)>,
}

/// Why the HTTPS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("replica {replica}: https_certificate_sha256 is not 64 hex digits")]
    Pin { replica: usize },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Http(String),
}

impl HttpsTransport {
    /// One connection pool per replica, each with a verifier pinned to that replica.
    pub fn new(cluster: &ClusterFile, root: &Root, timeout: Duration) -> Result<HttpsTransport, SetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let root = Arc::new(root.clone());
        let mut replicas = Vec::with_capacity(cluster.replicas.len());
        for info in &cluster.replicas {
            let mut pin = [0u8; 32];
            hex::decode_to_slice(&info.https_certificate_sha256, &mut pin)
                .map_err(|_| SetupError::Pin { replica: info.id })?;
            let verifier = PinnedVerifier { pin, root: root.clone(), provider: provider.clone() };
            let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .https_only(true)
                // A replica must not send the client elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .timeout(timeout)
                .build()
                .map_err(|e| SetupError::Http(e.to_string()))?;
            replicas.push((base_url(&info.host, info.https_port), client));
        }
        Ok(HttpsTransport { replicas })
    }

    /// The base URL of replica `id`.
    pub fn url(&self, id: usize) -> Option<&str> {
        self.replicas.get(id).map(|(url, _)| url.as_str())
    }
}

/// `https://host:port`, with brackets around an IPv6 address.
pub fn base_url(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    }
}

impl Transport for HttpsTransport {
    fn send(&self, replica: usize, request: HttpRequest) -> impl Future<Output = Result<Reply, TransportError>> + Send {
        let target = self.replicas.get(replica).cloned();
        async move {
            let (base, client) = target.ok_or_else(|| TransportError::Unreachable(format!("no replica {replica}")))?;
            let url = format!("{base}{}", request.path);
            let builder = match request.method {
                Method::Get => client.get(&url),
                Method::Post => client.post(&url).header(reqwest::header::CONTENT_TYPE, "application/json"),
            };
            let builder = builder.header(reqwest::header::ACCEPT, request.accept);
            let builder = match request.body {
                Some(body) => builder.body(body),
                None => builder,
            };
            let mut response = builder.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if response.content_length().is_some_and(|len| len > MAX_ANSWER_BYTES as u64) {
                return Err(TransportError::TooLarge);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(TransportError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Reply { status, content_type, body })
        }
    }
}

fn classify(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        return TransportError::Timeout;
    }
    // The innermost cause says what happened (refused connection, certificate not the pinned
    // one, ...); reqwest's own message only says that the request failed.
    let mut cause: &dyn std::error::Error = &error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    TransportError::Unreachable(cause.to_string())
}

/// Accepts exactly one certificate: the pinned one, and only while it verifies under the root
/// and is within its validity period.
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    root: Arc<Root>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin identifies the replica exactly, so the host name adds nothing (and on one
        // machine every replica's certificate carries the same names).
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest != self.pin {
            return Err(rustls::Error::General(format!(
                "the replica's certificate (SHA-256 {}) is not the one cluster.json lists",
                hex::encode(digest)
            )));
        }
        let certificate = VerifiedCertificate::verify(&self.root, end_entity.as_ref())
            .map_err(|e| rustls::Error::General(format!("the replica's certificate: {e}")))?;
        if certificate.validity_at(now.as_secs()) != Validity::Valid {
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_bracketed_in_urls() {
        assert_eq!(base_url("::1", 8443), "https://[::1]:8443");
        assert_eq!(base_url("127.0.0.1", 8443), "https://127.0.0.1:8443");
        assert_eq!(base_url("ca1.example.com", 443), "https://ca1.example.com:443");
    }
}
