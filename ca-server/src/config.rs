//! What the CA state machine of one replica is built from: the dealt files (`replica.toml` and
//! the files it names) and where its database lives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use threshold::PartyId;
use threshold::cluster::{ClusterFile, ReplicaConfig};
use threshold::encoding::{FormatError, from_json};
use threshold::rsa::RsaKeyShare;

/// How long an object may wait for its signature before peers are asked again for their shares.
pub const DEFAULT_RESEND_AFTER: Duration = Duration::from_secs(2);

/// The state machine's configuration. Everything but `id`, `rsa_share` and `database` is the
/// same at every replica, which is what keeps their outputs identical.
#[derive(Debug)]
pub struct CaConfig {
    pub id: PartyId,
    pub cluster: ClusterFile,
    /// The root certificate, DER.
    pub root_der: Vec<u8>,
    /// The dealt policy file (its SHA-256 must be the cluster's `policy_sha256`). Used only when
    /// the database is new: afterwards the policy is whatever the log made it.
    pub initial_policy_json: String,
    pub rsa_share: RsaKeyShare,
    /// The SQLite database file (created if missing).
    pub database: PathBuf,
    /// The CRL distribution point written into certificates; see [`crl_url_for`].
    pub crl_url: Option<String>,
    /// See [`DEFAULT_RESEND_AFTER`].
    pub resend_after: Duration,
    /// See [`crate::signing::COMBINE_WAIT`].
    pub combine_wait: Duration,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Toml { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: FormatError },
    #[error("{path} is not a PEM certificate")]
    RootPem { path: PathBuf },
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

impl CaConfig {
    /// Reads a replica's dealt files: `replica.toml`, and the cluster description, root
    /// certificate, policy and RSA key share it names (paths relative to its folder).
    pub fn load(replica_toml: &Path, database: impl Into<PathBuf>) -> Result<CaConfig, ConfigError> {
        let text = read(replica_toml)?;
        let replica: ReplicaConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Toml { path: replica_toml.to_path_buf(), reason: e.to_string() })?;
        if replica.format != ReplicaConfig::FORMAT || replica.version != ReplicaConfig::VERSION {
            return Err(ConfigError::Toml {
                path: replica_toml.to_path_buf(),
                reason: format!(
                    "format {:?} version {} (expected {:?} version {})",
                    replica.format,
                    replica.version,
                    ReplicaConfig::FORMAT,
                    ReplicaConfig::VERSION
                ),
            });
        }
        let dir = replica_toml.parent().unwrap_or(Path::new("."));
        let cluster_path = dir.join(&replica.cluster);
        let cluster: ClusterFile = from_json(&read(&cluster_path)?)
            .map_err(|source| ConfigError::Format { path: cluster_path.clone(), source })?;
        let root_path = dir.join(&replica.root_certificate);
        let root_der = match der::pem::decode_vec(read(&root_path)?.trim().as_bytes()) {
            Ok(("CERTIFICATE", der)) => der,
            _ => return Err(ConfigError::RootPem { path: root_path }),
        };
        let initial_policy_json = read(&dir.join(&replica.policy))?;
        let share_path = dir.join(&replica.secrets.rsa_share);
        let share_text = zeroize::Zeroizing::new(read(&share_path)?);
        let rsa_share: RsaKeyShare =
            from_json(&share_text).map_err(|source| ConfigError::Format { path: share_path.clone(), source })?;
        let crl_url = crl_url_for(&cluster);
        Ok(CaConfig {
            id: replica.id,
            cluster,
            root_der,
            initial_policy_json,
            rsa_share,
            database: database.into(),
            crl_url,
            resend_after: DEFAULT_RESEND_AFTER,
            combine_wait: crate::signing::COMBINE_WAIT,
        })
    }
}

/// The CRL distribution point every replica writes into certificates:
/// `https://<replica 0's host>:<its HTTPS port>/v1/crl`. It is derived from `cluster.json`,
/// which every replica holds identically, so certificates are identical; any replica serves the
/// same CRL at that path (a client that cannot reach replica 0 fetches it from another).
/// `None` if the cluster has no replicas.
pub fn crl_url_for(cluster: &ClusterFile) -> Option<String> {
    let first = cluster.replicas.first()?;
    let host = if first.host.contains(':') { format!("[{}]", first.host) } else { first.host.clone() };
    Some(format!("https://{host}:{}/v1/crl", first.https_port))
}
