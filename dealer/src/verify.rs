//! `dealer verify DIR`: checks a ceremony's output before it is carried to the replicas — every
//! share against the published verification keys, every certificate against the root, the policy
//! against the hash in `cluster.json` and the operator's key against the policy, and a test
//! signature combined from `t + 1` shares against the root key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ca_api::account::AccountSecret;
use ca_api::policy::{Policy, policy_sha256};
use der::Encode;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rand::{CryptoRng, RngCore};
use threshold::bls::BlsKeyShares;
use threshold::cluster::{ClusterFile, ReplicaConfig};
use threshold::ed25519;
use threshold::encoding::{Versioned, from_json};
use threshold::rsa::RsaKeyShare;
use x509_cert::Certificate;

use crate::certs;
use crate::layout;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("a test signature combined from shares {shares:?} does not verify under the root key: {reason}")]
    TestSignature { shares: Vec<usize>, reason: String },
}

/// What was checked, for the report.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub n: usize,
    pub t: usize,
    pub name: String,
    pub root_fingerprint: String,
    pub accounts: usize,
    pub profiles: usize,
    /// The operator's account name, if `operator/account-key.pem` is present (it may already
    /// have been carried away).
    pub operator_account: Option<String>,
}

fn file_err(path: &Path, reason: impl ToString) -> VerifyError {
    VerifyError::File { path: path.to_path_buf(), reason: reason.to_string() }
}

fn mismatch(path: &Path, reason: impl ToString) -> VerifyError {
    VerifyError::Mismatch { path: path.to_path_buf(), reason: reason.to_string() }
}

fn read_text(path: &Path) -> Result<zeroize::Zeroizing<String>, VerifyError> {
    std::fs::read_to_string(path).map(zeroize::Zeroizing::new).map_err(|e| file_err(path, e))
}

fn read_versioned<T: Versioned>(path: &Path) -> Result<T, VerifyError> {
    from_json(&read_text(path)?).map_err(|e| file_err(path, e))
}

/// Reads a PEM file holding a certificate, or a chain whose first certificate is the one meant.
fn read_cert(path: &Path) -> Result<Certificate, VerifyError> {
    let text = read_text(path)?;
    let chain = Certificate::load_pem_chain(text.as_bytes())
        .map_err(|e| file_err(path, format!("not a PEM certificate: {e}")))?;
    chain.into_iter().next().ok_or_else(|| file_err(path, "holds no certificate"))
}

/// Checks a certificate's signature under the root key.
fn check_signed_by_root(path: &Path, cert: &Certificate, cluster: &ClusterFile) -> Result<(), VerifyError> {
    let tbs = cert.tbs_certificate.to_der().map_err(|e| file_err(path, e))?;
    let signature = cert.signature.as_bytes().ok_or_else(|| file_err(path, "signature is not whole bytes"))?;
    if !cluster.rsa.verify(&tbs, signature) {
        return Err(mismatch(path, "certificate signature does not verify under the root key"));
    }
    Ok(())
}

fn check_owner_only(path: &Path) -> Result<(), VerifyError> {
    let mode = std::fs::metadata(path).map_err(|e| file_err(path, e))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(mismatch(path, format!("mode {mode:o} lets others read a secret; expected 600")));
    }
    Ok(())
}

/// Checks a replica's TLS private key against the certificate it belongs to.
fn check_tls_pair(key_path: &Path, cert: &Certificate) -> Result<(), VerifyError> {
    let key = p256::SecretKey::from_pkcs8_pem(&read_text(key_path)?)
        .map_err(|e| file_err(key_path, format!("not a P-256 PKCS#8 key: {e}")))?;
    let public = key.public_key().to_public_key_der().map_err(|e| file_err(key_path, e))?;
    let cert_spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| file_err(key_path, e))?;
    if public.as_bytes() != cert_spki.as_slice() {
        return Err(mismatch(key_path, "private key does not match its certificate"));
    }
    Ok(())
}

/// The public policy file: it parses, is consistent, and is the one `cluster.json` pins.
fn check_policy(path: &Path, cluster: &ClusterFile) -> Result<(String, Policy), VerifyError> {
    let text = read_text(path)?;
    let policy: Policy = from_json(&text).map_err(|e| file_err(path, e))?;
    policy.check().map_err(|e| mismatch(path, e))?;
    let hash = policy_sha256(text.as_bytes());
    if hash != cluster.policy_sha256 {
        return Err(mismatch(
            path,
            format!("SHA-256 {hash} differs from policy_sha256 {} in cluster.json", cluster.policy_sha256),
        ));
    }
    Ok((text.to_string(), policy))
}

/// The operator's key, if still present: owner-only, and the key of an administrator account.
fn check_operator_key(path: &Path, policy: &Policy) -> Result<Option<String>, VerifyError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_err(path, e)),
        Ok(_) => {}
    }
    check_owner_only(path)?;
    let key = AccountSecret::from_pkcs8_pem(&read_text(path)?).map_err(|e| file_err(path, e))?;
    let public = key.public();
    match policy.account_for(&public) {
        Some(account) if account.admin => Ok(Some(account.name.clone())),
        Some(account) => {
            Err(mismatch(path, format!("is the key of account {:?}, which is not an administrator", account.name)))
        }
        None => Err(mismatch(path, format!("public key {public} is not an account in public/policy.json"))),
    }
}

fn check_replica(
    dir: &Path,
    id: usize,
    cluster: &ClusterFile,
    cluster_text: &str,
    policy_text: &str,
) -> Result<RsaKeyShare, VerifyError> {
    let replica = layout::replica_dir(dir, id);
    let config_path = replica.join(layout::REPLICA_TOML);
    let config: ReplicaConfig =
        toml::from_str(&read_text(&config_path)?).map_err(|e| file_err(&config_path, e.message().to_string()))?;
    if config.format != ReplicaConfig::FORMAT || config.version != ReplicaConfig::VERSION {
        return Err(mismatch(
            &config_path,
            format!("format {} version {} is not supported", config.format, config.version),
        ));
    }
    if config.id != id {
        return Err(mismatch(
            &config_path,
            format!("says it is replica {} but is in the folder of replica {id}", config.id),
        ));
    }
    let path = |p: &str| replica.join(p);
    let info = &cluster.replicas[id];

    let copy_path = path(&config.cluster);
    if *read_text(&copy_path)? != *cluster_text {
        return Err(mismatch(&copy_path, "differs from public/cluster.json"));
    }
    // Byte for byte: the hash in cluster.json is of exactly these bytes.
    let policy_path = path(&config.policy);
    if *read_text(&policy_path)? != *policy_text {
        return Err(mismatch(&policy_path, "differs from public/policy.json"));
    }

    let rsa_path = path(&config.secrets.rsa_share);
    check_owner_only(&rsa_path)?;
    let rsa_share: RsaKeyShare = read_versioned(&rsa_path)?;
    if rsa_share.id() != id || !rsa_share.verification_key_matches(&cluster.rsa) {
        return Err(mismatch(&rsa_path, "RSA share does not match this replica's verification key in cluster.json"));
    }

    let bls_path = path(&config.secrets.bls_shares);
    check_owner_only(&bls_path)?;
    let bls: BlsKeyShares = read_versioned(&bls_path)?;
    if bls.id != id || !bls.matches(&cluster.bls, &cluster.encryption) {
        return Err(mismatch(&bls_path, "BLS shares do not match the public key sets in cluster.json"));
    }

    let key_path = path(&config.secrets.signing_key);
    check_owner_only(&key_path)?;
    let signing_key: ed25519::SigningKey = read_versioned(&key_path)?;
    if signing_key.verifying_key() != info.signing_key {
        return Err(mismatch(&key_path, "Ed25519 key does not match this replica's key in cluster.json"));
    }

    for (cert_file, key_file, pinned, what) in [
        (&config.secrets.peer_certificate, &config.secrets.peer_key, &info.peer_certificate_sha256, "peer-link"),
        (&config.secrets.https_certificate, &config.secrets.https_key, &info.https_certificate_sha256, "HTTPS"),
    ] {
        let cert_path = path(cert_file);
        let cert = read_cert(&cert_path)?;
        if &certs::fingerprint(&cert).map_err(|e| file_err(&cert_path, e))? != pinned {
            return Err(mismatch(&cert_path, format!("{what} certificate fingerprint differs from cluster.json")));
        }
        check_signed_by_root(&cert_path, &cert, cluster)?;
        let key_path = path(key_file);
        check_owner_only(&key_path)?;
        check_tls_pair(&key_path, &cert)?;
    }
    Ok(rsa_share)
}

/// Verifies the ceremony output in `dir`.
pub fn verify<R: RngCore + CryptoRng>(dir: &Path, rng: &mut R) -> Result<VerifyReport, VerifyError> {
    let public = dir.join(layout::PUBLIC_DIR);
    let cluster_path = public.join(layout::CLUSTER_JSON);
    let cluster_text = read_text(&cluster_path)?;
    let cluster: ClusterFile = from_json(&cluster_text).map_err(|e| file_err(&cluster_path, e))?;
    cluster.check().map_err(|e| mismatch(&cluster_path, e))?;

    let root_path = public.join(layout::ROOT_PEM);
    let root = read_cert(&root_path)?;
    let root_fingerprint = certs::fingerprint(&root).map_err(|e| file_err(&root_path, e))?;
    if root_fingerprint != cluster.root_certificate_sha256 {
        return Err(mismatch(&root_path, "fingerprint differs from the one in cluster.json"));
    }
    let expected_spki = certs::rsa_spki(&cluster.rsa.modulus_be_bytes(), cluster.rsa.public_exponent())
        .map_err(|e| file_err(&cluster_path, e))?;
    if root.tbs_certificate.subject_public_key_info != expected_spki {
        return Err(mismatch(&root_path, "root public key is not the threshold key of cluster.json"));
    }
    check_signed_by_root(&root_path, &root, &cluster)?;

    let (policy_text, policy) = check_policy(&public.join(layout::POLICY_JSON), &cluster)?;
    let shares = (0..cluster.n)
        .map(|id| check_replica(dir, id, &cluster, &cluster_text, &policy_text))
        .collect::<Result<Vec<_>, _>>()?;
    let operator_account = check_operator_key(&dir.join(layout::OPERATOR_KEY), &policy)?;

    // A fresh message, so the check cannot pass on a replayed signature.
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    let message = [b"itca dealer verify test signature ".as_slice(), &nonce].concat();
    let signers: Vec<usize> = (0..=cluster.t).collect();
    let sig_shares: Vec<_> = signers.iter().map(|&i| shares[i].sign(&cluster.rsa, &message)).collect();
    let test_failure = |reason: String| VerifyError::TestSignature { shares: signers.clone(), reason };
    let combined = cluster.rsa.combine(&message, &sig_shares).map_err(|e| test_failure(e.to_string()))?;
    if !cluster.rsa.verify(&message, &combined.value) {
        return Err(test_failure("combined signature rejected".into()));
    }
    // The same check through the root certificate's own key, as a client would do it.
    let spki_der = root.tbs_certificate.subject_public_key_info.to_der().map_err(|e| file_err(&root_path, e))?;
    let root_key = <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&spki_der)
        .map_err(|e| file_err(&root_path, e))?;
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(root_key);
    let signature =
        rsa::pkcs1v15::Signature::try_from(combined.value.as_slice()).map_err(|e| test_failure(e.to_string()))?;
    rsa::signature::Verifier::verify(&verifier, &message, &signature).map_err(|e| test_failure(e.to_string()))?;
    Ok(VerifyReport {
        n: cluster.n,
        t: cluster.t,
        name: cluster.name.clone(),
        root_fingerprint,
        accounts: policy.accounts.len(),
        profiles: policy.profiles.len(),
        operator_account,
    })
}
