//! What the links need to run: who we are, where we listen, whom we connect to and how each peer
//! is recognised (its pinned certificate fingerprint), our certificate and key, and the limits.
//! [`LinkConfig::from_cluster`] builds it from the dealer's output.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use threshold::cluster::{ClusterError, ClusterFile, ReplicaConfig};
use zeroize::Zeroizing;

use super::channel::DEFAULT_OUTBOX_BYTES;
use crate::PartyId;

/// Default time allowed for TCP connect, the TLS handshake and the `Hello` exchange (each).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default interval after which an idle connection carries a keepalive (`Ack` of what we have).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(5);
/// Default time without any byte from a peer after which its connection is considered dead.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on the bytes queued for writing on one connection: room for a full outbox resend
/// plus slack. A peer that does not read that much is disconnected (its outbox resends later).
pub const DEFAULT_SEND_QUEUE_BYTES: usize = 2 * DEFAULT_OUTBOX_BYTES;

/// SHA-256 of a certificate's DER: how replicas pin each other.
pub type Fingerprint = [u8; 32];

/// SHA-256 of `der`.
pub fn fingerprint(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

/// Parses a fingerprint as written in `cluster.json` (64 hex digits).
pub fn parse_fingerprint(text: &str) -> Option<Fingerprint> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// One other replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub id: PartyId,
    /// `host:port` to dial (used only if our id is lower); never used to identify the peer.
    pub dial: String,
    /// SHA-256 of the DER of the peer's link certificate.
    pub fingerprint: Fingerprint,
    /// What our restored [`super::Inbox`] from this peer has (goes into our first `Hello`).
    pub received_up_to: u64,
}

/// Reconnection delays: `initial`, doubling up to `max`, each with random jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

/// Everything [`super::Links::start`] needs.
///
/// `Debug` does not show the private key (`rustls_pki_types` redacts it); [`super::Links`]
/// wipes it once the TLS signing key is built.
#[derive(Debug)]
pub struct LinkConfig {
    pub me: PartyId,
    pub listen: SocketAddr,
    pub peers: Vec<PeerConfig>,
    /// Our link certificate first (then any chain; peers pin only the first).
    pub certificate_chain: Vec<CertificateDer<'static>>,
    pub private_key: PrivateKeyDer<'static>,
    /// Largest frame body accepted or sent.
    pub max_frame: usize,
    pub handshake_timeout: Duration,
    pub reconnect: Backoff,
    pub keepalive: Duration,
    pub idle_timeout: Duration,
    pub max_send_queue_bytes: usize,
}

impl LinkConfig {
    /// A configuration with the default limits and timeouts.
    pub fn new(
        me: PartyId,
        listen: SocketAddr,
        peers: Vec<PeerConfig>,
        certificate_chain: Vec<CertificateDer<'static>>,
        private_key: PrivateKeyDer<'static>,
    ) -> Self {
        LinkConfig {
            me,
            listen,
            peers,
            certificate_chain,
            private_key,
            max_frame: crate::wire::MAX_MESSAGE_BYTES,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            reconnect: Backoff::default(),
            keepalive: DEFAULT_KEEPALIVE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_send_queue_bytes: DEFAULT_SEND_QUEUE_BYTES,
        }
    }

    /// Builds the configuration of `replica` from the cluster description and the PEM files the
    /// dealer wrote (`peer-cert.pem`, `peer-key.pem`), whose paths in `replica.toml` are relative
    /// to `replica_dir` (the folder holding `replica.toml`). Checks that our certificate is the
    /// one the cluster pins for us. Every peer starts with `received_up_to = 0`: set it from the
    /// restored inboxes before starting.
    pub fn from_cluster(
        cluster: &ClusterFile,
        replica: &ReplicaConfig,
        replica_dir: &Path,
    ) -> Result<Self, LinkConfigError> {
        cluster.check()?;
        let me = replica.id;
        let own = cluster.replicas.get(me).ok_or(LinkConfigError::UnknownReplica(me))?;
        let listen: SocketAddr =
            replica.listen.peer.parse().map_err(|_| LinkConfigError::Listen(replica.listen.peer.clone()))?;

        let cert_path = resolve(replica_dir, &replica.secrets.peer_certificate);
        let key_path = resolve(replica_dir, &replica.secrets.peer_key);
        let certificate_chain = read_certificates(&cert_path)?;
        let private_key = read_private_key(&key_path)?;

        let pinned = parse_fingerprint(&own.peer_certificate_sha256)
            .ok_or_else(|| LinkConfigError::Fingerprint { id: me, value: own.peer_certificate_sha256.clone() })?;
        if certificate_chain.first().map(|c| fingerprint(c)) != Some(pinned) {
            return Err(LinkConfigError::CertificateNotPinned { id: me, path: cert_path });
        }

        let peers = cluster
            .replicas
            .iter()
            .filter(|r| r.id != me)
            .map(|r| {
                let fingerprint = parse_fingerprint(&r.peer_certificate_sha256).ok_or_else(|| {
                    LinkConfigError::Fingerprint { id: r.id, value: r.peer_certificate_sha256.clone() }
                })?;
                Ok(PeerConfig { id: r.id, dial: host_port(&r.host, r.peer_port), fingerprint, received_up_to: 0 })
            })
            .collect::<Result<Vec<_>, LinkConfigError>>()?;
        Ok(LinkConfig::new(me, listen, peers, certificate_chain, private_key))
    }
}

/// Why a link configuration cannot be built from the dealer's files.
#[derive(Debug, thiserror::Error)]
pub enum LinkConfigError {
    #[error("the cluster description is inconsistent: {0}")]
    Cluster(#[from] ClusterError),
    #[error("replica {0} is not in the cluster")]
    UnknownReplica(PartyId),
    #[error("the peer listen address {0:?} is not a socket address")]
    Listen(String),
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("replica {id}'s peer certificate fingerprint {value:?} is not 64 hex digits")]
    Fingerprint { id: PartyId, value: String },
    #[error("{path} is not the peer-link certificate the cluster pins for replica {id}")]
    CertificateNotPinned { id: PartyId, path: PathBuf },
}

fn resolve(dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() { path.to_path_buf() } else { dir.join(path) }
}

/// `host:port`, with IPv6 literals bracketed.
fn host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LinkConfigError> {
    let bytes = std::fs::read(path).map_err(|source| LinkConfigError::Io { path: path.to_path_buf(), source })?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LinkConfigError::Pem { path: path.to_path_buf(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(LinkConfigError::Pem { path: path.to_path_buf(), reason: "no certificate found".into() });
    }
    Ok(chain)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, LinkConfigError> {
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|source| LinkConfigError::Io { path: path.to_path_buf(), source })?);
    let key = PrivateKeyDer::from_pem_slice(&bytes);
    // The parser's error is not shown: it may quote a line of the file.
    key.map_err(|_| LinkConfigError::Pem { path: path.to_path_buf(), reason: "no usable PEM private key".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_from_cluster_hex_only_at_full_length() {
        let fp = fingerprint(b"certificate");
        assert_eq!(parse_fingerprint(&hex::encode(fp)), Some(fp));
        assert_eq!(parse_fingerprint(&hex::encode(&fp[..31])), None);
        assert_eq!(parse_fingerprint("zz"), None);
    }

    #[test]
    fn dial_addresses_bracket_ipv6_literals() {
        assert_eq!(host_port("10.0.0.1", 7000), "10.0.0.1:7000");
        assert_eq!(host_port("::1", 7000), "[::1]:7000");
        assert_eq!(host_port("ca1.example.com", 7000), "ca1.example.com:7000");
    }

    #[test]
    fn relative_paths_resolve_against_the_replica_folder() {
        assert_eq!(resolve(Path::new("/srv/r0"), "secrets/peer-key.pem"), Path::new("/srv/r0/secrets/peer-key.pem"));
        assert_eq!(resolve(Path::new("/srv/r0"), "/etc/key.pem"), Path::new("/etc/key.pem"));
    }

    #[test]
    fn a_file_without_a_key_is_an_error_that_does_not_quote_it() {
        let dir = std::env::temp_dir().join(format!("link-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-key.pem");
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nsecret!!\n-----END PRIVATE KEY-----\n").unwrap();
        let err = read_private_key(&path).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
