//! Reading a replica's folder as the dealer wrote it (`replica.toml`, the cluster description
//! and the secret files it names) into what the protocols need. Paths in `replica.toml` are
//! relative to the file itself, so a ceremony folder can be copied anywhere.

use crate::crypto::NetworkInfo;
use crate::crypto::threshold_backend::{public_keys, secret_keys};
use std::path::{Path, PathBuf};
use threshold::bls::BlsKeyShares;
use threshold::cluster::{ClusterFile, ReplicaConfig};
use threshold::ed25519::SigningKey;
use threshold::encoding::{Versioned, from_json};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid {what}: {reason}")]
    Invalid { path: PathBuf, what: &'static str, reason: String },
    #[error("{path} is replica {found}'s file, but replica.toml says this is replica {expected}")]
    WrongReplica { path: PathBuf, expected: usize, found: usize },
}

/// A replica's configuration and the cluster it belongs to.
#[derive(Debug, Clone)]
pub struct ReplicaFiles {
    /// The folder holding `replica.toml`.
    pub dir: PathBuf,
    pub config: ReplicaConfig,
    pub cluster: ClusterFile,
}

fn read(path: &Path) -> Result<Zeroizing<String>, FilesError> {
    std::fs::read_to_string(path).map(Zeroizing::new).map_err(|source| FilesError::Read { path: path.into(), source })
}

fn versioned<T: Versioned>(path: &Path, what: &'static str) -> Result<T, FilesError> {
    from_json(&read(path)?).map_err(|e| FilesError::Invalid { path: path.into(), what, reason: e.to_string() })
}

impl ReplicaFiles {
    /// Loads `replica.toml` and the cluster description it names, and checks they agree.
    pub fn load(replica_toml: &Path) -> Result<ReplicaFiles, FilesError> {
        let invalid = |what, reason: String| FilesError::Invalid { path: replica_toml.into(), what, reason };
        let config: ReplicaConfig =
            toml::from_str(&read(replica_toml)?).map_err(|e| invalid("replica.toml", e.to_string()))?;
        if config.format != ReplicaConfig::FORMAT || config.version != ReplicaConfig::VERSION {
            let found = format!("{} version {}", config.format, config.version);
            return Err(invalid("replica.toml", format!("unsupported format {found}")));
        }
        let dir = replica_toml.parent().map(Path::to_path_buf).unwrap_or_default();
        let cluster_path = dir.join(&config.cluster);
        let cluster: ClusterFile = versioned(&cluster_path, "cluster description")?;
        let cluster_invalid =
            |reason: String| FilesError::Invalid { path: cluster_path.clone(), what: "cluster description", reason };
        cluster.check().map_err(|e| cluster_invalid(e.to_string()))?;
        if config.id >= cluster.n {
            return Err(cluster_invalid(format!(
                "replica.toml names replica {}, the cluster has {}",
                config.id, cluster.n
            )));
        }
        Ok(ReplicaFiles { dir, config, cluster })
    }

    /// A path from `replica.toml`, resolved against its folder.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The protocols' keys: the cluster's public keys and this replica's BLS shares and
    /// Ed25519 signing key.
    pub fn network_info(&self) -> Result<NetworkInfo, FilesError> {
        let id = self.config.id;
        let shares_path = self.path(&self.config.secrets.bls_shares);
        let shares: BlsKeyShares = versioned(&shares_path, "BLS key share file")?;
        if shares.id != id {
            return Err(FilesError::WrongReplica { path: shares_path, expected: id, found: shares.id });
        }
        let signing_path = self.path(&self.config.secrets.signing_key);
        let signing: SigningKey = versioned(&signing_path, "Ed25519 key file")?;
        if signing.verifying_key() != self.cluster.replicas[id].signing_key {
            let reason = "its public key is not the one cluster.json lists for this replica".to_string();
            return Err(FilesError::Invalid { path: signing_path, what: "Ed25519 key file", reason });
        }
        let replicas = self.cluster.replicas.iter().map(|r| r.signing_key).collect();
        let public = public_keys(self.cluster.t, &self.cluster.bls, &self.cluster.encryption, replicas);
        Ok(NetworkInfo { id, public, secret: secret_keys(&shares, signing) })
    }
}
