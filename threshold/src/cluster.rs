//! The public description of a dealt cluster (`cluster.json`) and a replica's configuration
//! (`replica.toml`): what the dealer writes and every replica, client and auditor reads.

use serde::{Deserialize, Serialize};

use crate::PartyId;
use crate::bls::BlsPublicKeys;
use crate::ed25519::VerifyingKey;
use crate::encoding::Versioned;
use crate::rsa::ThresholdRsaPublic;
use crate::seal::EncryptionPublicKey;

/// One replica as everyone else sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    pub id: PartyId,
    /// The host clients and peers dial (DNS name or IP address).
    pub host: String,
    pub https_port: u16,
    pub peer_port: u16,
    /// SHA-256 of the DER of its peer-link certificate: peers are identified by this, never by
    /// their address.
    pub peer_certificate_sha256: String,
    /// SHA-256 of the DER of its HTTPS certificate.
    pub https_certificate_sha256: String,
    /// Its Ed25519 key for transferable statements (signed batch proposals).
    pub signing_key: VerifyingKey,
}

/// `cluster.json`: n, t, the replicas and every verification key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The CA's name, as in the root certificate's subject.
    pub name: String,
    pub n: usize,
    pub t: usize,
    /// SHA-256 of the DER of `root.pem`'s certificate.
    pub root_certificate_sha256: String,
    /// SHA-256 of the bytes of the policy file (`policy.json`) the cluster starts with, lowercase
    /// hex, so replicas and clients can tell they hold the policy that was dealt.
    pub policy_sha256: String,
    pub replicas: Vec<ReplicaInfo>,
    /// The root key's threshold verification data (modulus, exponent, v, v_i).
    pub rsa: ThresholdRsaPublic,
    /// The BLS key set of the agreement protocols' common coin.
    pub bls: BlsPublicKeys,
    /// The threshold-encryption key clients seal requests to.
    pub encryption: EncryptionPublicKey,
}

impl Versioned for ClusterFile {
    const FORMAT: &'static str = "itca.cluster";
    const VERSION: u32 = 1;
}

/// Why a cluster description is inconsistent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("n = {n} and t = {t} do not satisfy n > 3t with t >= 0 and n >= 1")]
    Resilience { n: usize, t: usize },
    #[error("the cluster lists {listed} replicas but n = {n}")]
    ReplicaCount { listed: usize, n: usize },
    #[error("replica entry {position} has id {id}; ids must be 0..n in order")]
    ReplicaOrder { position: usize, id: PartyId },
    #[error("the {what} key set does not match n = {n}, t = {t}")]
    KeySet { what: &'static str, n: usize, t: usize },
}

/// Shares needed for each threshold, as DESIGN.md §3 sets them.
pub mod thresholds {
    /// The common coin, ABBA pre-processing, threshold RSA and decryption: `t + 1`.
    pub fn coin(_n: usize, t: usize) -> usize {
        t + 1
    }
    /// ABBA votes and decisions: `n - t` (quorum certificates of Ed25519 signatures).
    pub fn vote(n: usize, t: usize) -> usize {
        n - t
    }
    /// Consistent broadcast: `ceil((n + t + 1) / 2)` (quorum certificates, as votes).
    pub fn echo(n: usize, t: usize) -> usize {
        (n + t + 1).div_ceil(2)
    }
}

impl ClusterFile {
    /// Checks the structural facts every reader relies on (key material is checked on load).
    pub fn check(&self) -> Result<(), ClusterError> {
        let (n, t) = (self.n, self.t);
        if n == 0 || n <= 3 * t {
            return Err(ClusterError::Resilience { n, t });
        }
        if self.replicas.len() != n {
            return Err(ClusterError::ReplicaCount { listed: self.replicas.len(), n });
        }
        if let Some((position, r)) = self.replicas.iter().enumerate().find(|(i, r)| r.id != *i) {
            return Err(ClusterError::ReplicaOrder { position, id: r.id });
        }
        let key_set = |what| ClusterError::KeySet { what, n, t };
        if self.rsa.parties() != n || self.rsa.threshold() != t {
            return Err(key_set("RSA"));
        }
        // The BLS sets check their own thresholds against one (n, t) on load.
        if self.bls.n() != n || self.bls.t() != t {
            return Err(key_set("BLS"));
        }
        if self.encryption.n() != n || self.encryption.required() != thresholds::coin(n, t) {
            return Err(key_set("encryption"));
        }
        Ok(())
    }
}

/// `replica.toml`: where a replica listens and where its files are, relative to the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    pub format: String,
    pub version: u32,
    pub id: PartyId,
    /// The public cluster description (a copy of `public/cluster.json`).
    pub cluster: String,
    /// The root certificate (a copy of `public/root.pem`).
    pub root_certificate: String,
    /// The initial policy: accounts and profiles (a copy of `public/policy.json`, whose hash is
    /// `policy_sha256` in the cluster description).
    pub policy: String,
    pub listen: ListenConfig,
    pub secrets: SecretPaths,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenConfig {
    /// Socket address of the HTTPS API.
    pub https: String,
    /// Socket address of the replica-to-replica links.
    pub peer: String,
}

/// The replica's secret files (mode 0600).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretPaths {
    pub rsa_share: String,
    pub bls_shares: String,
    pub signing_key: String,
    pub peer_key: String,
    pub peer_certificate: String,
    pub https_key: String,
    pub https_certificate: String,
}

impl ReplicaConfig {
    pub const FORMAT: &'static str = "itca.replica-config";
    pub const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::thresholds;

    #[test]
    fn thresholds_follow_the_design() {
        assert_eq!((thresholds::coin(4, 1), thresholds::vote(4, 1), thresholds::echo(4, 1)), (2, 3, 3));
        assert_eq!((thresholds::coin(7, 2), thresholds::vote(7, 2), thresholds::echo(7, 2)), (3, 5, 5));
        assert_eq!((thresholds::coin(10, 3), thresholds::vote(10, 3), thresholds::echo(10, 3)), (4, 7, 7));
    }
}
