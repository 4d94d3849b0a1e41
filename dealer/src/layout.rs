//! Where the ceremony's output goes, and how files are written: public files world-readable,
//! everything in a replica's folder and the operator's folder readable by its owner only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const PUBLIC_DIR: &str = "public";
pub const ROOT_PEM: &str = "root.pem";
pub const CLUSTER_JSON: &str = "cluster.json";
/// The policy (accounts and profiles): in `public/` and, as a copy, in every replica's folder.
pub const POLICY_JSON: &str = "policy.json";
/// The first administrator's folder (0700), beside `public/`: it goes to the operator, not to a
/// replica.
pub const OPERATOR_DIR: &str = "operator";
/// The operator's account key (PKCS#8 PEM, 0600) inside [`OPERATOR_DIR`]; `ca-client`'s default.
pub const OPERATOR_KEY: &str = "operator/account-key.pem";
pub const REPLICA_TOML: &str = "replica.toml";
pub const SECRETS_DIR: &str = "secrets";
pub const RSA_SHARE: &str = "secrets/rsa-share.json";
pub const BLS_SHARES: &str = "secrets/bls-shares.json";
pub const SIGNING_KEY: &str = "secrets/ed25519-key.json";
pub const PEER_KEY: &str = "secrets/peer-key.pem";
pub const PEER_CERT: &str = "secrets/peer-cert.pem";
pub const HTTPS_KEY: &str = "secrets/https-key.pem";
pub const HTTPS_CERT: &str = "secrets/https-cert.pem";

/// `DIR/replica-<id>`.
pub fn replica_dir(out: &Path, id: usize) -> PathBuf {
    out.join(format!("replica-{id}"))
}

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0644 / 0755: meant to be handed out.
    Public,
    /// 0600 / 0700: a replica's or the operator's own.
    OwnerOnly,
}

impl Access {
    fn file_mode(self) -> u32 {
        match self {
            Access::Public => 0o644,
            Access::OwnerOnly => 0o600,
        }
    }

    fn dir_mode(self) -> u32 {
        match self {
            Access::Public => 0o755,
            Access::OwnerOnly => 0o700,
        }
    }
}

pub fn create_dir(path: &Path, access: Access) -> std::io::Result<()> {
    fs::DirBuilder::new().mode(access.dir_mode()).create(path)
}

/// Creates `path` (it must not exist) with the mode set at creation, so a secret is never
/// readable by others even for a moment, and syncs it to disk.
pub fn write_new(path: &Path, contents: &[u8], access: Access) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(access.file_mode()).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
