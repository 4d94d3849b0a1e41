//! The offline key ceremony: generates every key and share, the root certificate and the replica
//! certificates, the first operator's account key and the policy, and writes one public folder,
//! one folder per replica and the operator's folder. The output appears whole or not at all: it is
//! assembled in a sibling folder and renamed into place at the end.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ca_api::account::AccountSecret;
use ca_api::policy::{NameError, NameRule, Policy, PolicyError, policy_sha256};
use der::{EncodePem, pem::LineEnding};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rand::{CryptoRng, RngCore};
use spki::SubjectPublicKeyInfoOwned;
use threshold::bls;
use threshold::cluster::{ClusterFile, ListenConfig, ReplicaConfig, ReplicaInfo, SecretPaths};
use threshold::ed25519;
use threshold::encoding::to_json;
use threshold::rsa::{self as trsa, KeygenProgress};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::certs::{self, Issuer, ReplicaRole};
use crate::hosts::HostSpec;
use crate::layout::{self, Access};

/// The smallest root key the CLI accepts (CA/Browser Forum minimum).
pub const MIN_PRODUCTION_BITS: u32 = 2048;
/// The largest `n` the ceremony deals for (threshold RSA's Δ = n! grows the share exponent).
pub const MAX_REPLICAS: usize = 64;

/// What the ceremony is asked to produce.
#[derive(Debug, Clone)]
pub struct CeremonyParams {
    pub n: usize,
    pub t: usize,
    pub name: String,
    pub hosts: Vec<HostSpec>,
    pub bits: u32,
    pub out: PathBuf,
    /// The names the default profile allows; empty allows none, so nothing can be issued until
    /// an administrator changes the policy.
    pub names: Vec<NameRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    #[error("n = {n}, t = {t}: a cluster tolerates t faulty replicas only if n > 3t (so n >= {need})", need = 3 * t + 1)]
    Resilience { n: usize, t: usize },
    #[error("n = {0}: at most {MAX_REPLICAS} replicas are supported")]
    TooManyReplicas(usize),
    #[error("n = 0: a cluster needs at least one replica")]
    NoReplicas,
    #[error("{given} hosts were given for n = {n} replicas")]
    HostCount { given: usize, n: usize },
    #[error("--bits {0}: the root key size must be 2048, 3072 or 4096")]
    Bits(u32),
    #[error("--name {0:?}: the CA name must be 1 to 64 printable characters")]
    Name(String),
    #[error("--allow {rule}: {reason}")]
    NameRule { rule: NameRule, reason: NameError },
    #[error("the default policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("{0} already exists; the ceremony never overwrites an earlier one (choose another --out)")]
    OutputExists(PathBuf),
    #[error("the parent folder of {0} does not exist")]
    NoParent(PathBuf),
    #[error("generating the root key: {0}")]
    Rsa(#[from] trsa::RsaError),
    #[error("building a certificate: {0}")]
    Cert(#[from] certs::CertError),
    #[error("encoding a key: {0}")]
    KeyEncoding(String),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Steps reported while the ceremony runs (the CLI draws them as a progress bar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A safe prime of the root modulus was found.
    Prime {
        found: usize,
        of: usize,
    },
    RootKeyShared,
    AgreementKeysDealt,
    CertificatesIssued,
    Written,
}

/// What was produced, for the summary.
#[derive(Debug, Clone)]
pub struct CeremonyReport {
    pub out: PathBuf,
    pub root_fingerprint: String,
    pub replicas: Vec<HostSpec>,
    /// `out/operator/account-key.pem`: the first administrator's key.
    pub operator_key: PathBuf,
    pub operator_public_key: ca_api::AccountKey,
    /// The names the default profile allows.
    pub names: Vec<NameRule>,
    /// What `cluster.json` records for `public/policy.json`.
    pub policy_sha256: String,
}

/// Checks the parameters before any work is done.
pub fn check_params(params: &CeremonyParams, min_bits: u32) -> Result<(), CeremonyError> {
    let CeremonyParams { n, t, .. } = *params;
    if n == 0 {
        return Err(CeremonyError::NoReplicas);
    }
    if n <= 3 * t {
        return Err(CeremonyError::Resilience { n, t });
    }
    if n > MAX_REPLICAS {
        return Err(CeremonyError::TooManyReplicas(n));
    }
    if params.hosts.len() != n {
        return Err(CeremonyError::HostCount { given: params.hosts.len(), n });
    }
    if params.bits < min_bits || params.bits > 4096 || !params.bits.is_multiple_of(1024) {
        return Err(CeremonyError::Bits(params.bits));
    }
    if certs::common_name(&params.name).is_err() {
        return Err(CeremonyError::Name(params.name.clone()));
    }
    if let Some((rule, reason)) = params.names.iter().find_map(|r| r.check().err().map(|e| (r, e))) {
        return Err(CeremonyError::NameRule { rule: rule.clone(), reason });
    }
    if params.out.exists() {
        return Err(CeremonyError::OutputExists(params.out.clone()));
    }
    match params.out.parent() {
        Some(parent) if parent.as_os_str().is_empty() || parent.is_dir() => Ok(()),
        _ => Err(CeremonyError::NoParent(params.out.clone())),
    }
}

/// Everything one replica receives, encoded and ready to write.
struct ReplicaBundle {
    config: String,
    rsa_share: Zeroizing<String>,
    bls_shares: Zeroizing<String>,
    signing_key: Zeroizing<String>,
    peer_key: Zeroizing<String>,
    peer_cert: String,
    https_key: Zeroizing<String>,
    https_cert_chain: String,
}

struct TlsKey {
    private_pem: Zeroizing<String>,
    spki: SubjectPublicKeyInfoOwned,
}

fn tls_key(rng: &mut (impl RngCore + CryptoRng)) -> Result<TlsKey, CeremonyError> {
    let secret = p256::SecretKey::random(rng);
    let private_pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| CeremonyError::KeyEncoding(e.to_string()))?;
    let spki_der = secret.public_key().to_public_key_der().map_err(|e| CeremonyError::KeyEncoding(e.to_string()))?;
    let spki = spki_der.decode_msg::<SubjectPublicKeyInfoOwned>().map_err(certs::CertError::from)?;
    Ok(TlsKey { private_pem, spki })
}

fn pem(cert: &Certificate) -> Result<String, CeremonyError> {
    Ok(cert.to_pem(LineEnding::LF).map_err(certs::CertError::from)?)
}

/// The address a replica binds: its host if that is an IP address, every interface otherwise.
fn listen_addr(host: &HostSpec, port: u16) -> String {
    match host.ip() {
        Some(_) => host.addr(port),
        None => format!("0.0.0.0:{port}"),
    }
}

fn replica_config(id: usize, host: &HostSpec) -> ReplicaConfig {
    ReplicaConfig {
        format: ReplicaConfig::FORMAT.to_string(),
        version: ReplicaConfig::VERSION,
        id,
        cluster: layout::CLUSTER_JSON.to_string(),
        root_certificate: layout::ROOT_PEM.to_string(),
        policy: layout::POLICY_JSON.to_string(),
        listen: ListenConfig { https: listen_addr(host, host.https_port), peer: listen_addr(host, host.peer_port) },
        secrets: SecretPaths {
            rsa_share: layout::RSA_SHARE.to_string(),
            bls_shares: layout::BLS_SHARES.to_string(),
            signing_key: layout::SIGNING_KEY.to_string(),
            peer_key: layout::PEER_KEY.to_string(),
            peer_certificate: layout::PEER_CERT.to_string(),
            https_key: layout::HTTPS_KEY.to_string(),
            https_certificate: layout::HTTPS_CERT.to_string(),
        },
    }
}

/// Runs the ceremony with `min_bits` as the smallest accepted key (the CLI passes
/// [`MIN_PRODUCTION_BITS`]; tests may pass less to stay fast).
pub fn run<R: RngCore + CryptoRng>(
    params: &CeremonyParams,
    min_bits: u32,
    rng: &mut R,
    progress: &mut dyn FnMut(Progress),
) -> Result<CeremonyReport, CeremonyError> {
    check_params(params, min_bits)?;
    let (n, t) = (params.n, params.t);
    let now = SystemTime::now();

    let dealing = trsa::deal(params.bits, n, t, rng, &mut |p| {
        if let KeygenProgress::PrimeFound { which, of } = p {
            progress(Progress::Prime { found: which, of });
        }
    })?;
    progress(Progress::RootKeyShared);
    let (bls_public, encryption_public, bls_shares) = bls::deal_cluster(n, t, rng);
    let signing_keys: Vec<ed25519::SigningKey> = (0..n).map(|_| ed25519::SigningKey::generate(rng)).collect();
    progress(Progress::AgreementKeysDealt);

    // The first administrator: without an account nobody could issue or change the policy.
    let operator = AccountSecret::generate(rng);
    let operator_public_key = operator.public();
    let operator_pem = operator.to_pkcs8_pem().map_err(|e| CeremonyError::KeyEncoding(e.to_string()))?;
    drop(operator);
    let policy = Policy::default_for(operator_public_key, params.names.clone());
    policy.check()?;
    // The file's exact bytes are hashed: every replica's copy must be these bytes.
    let policy_json = to_json(&policy);
    let policy_hash = policy_sha256(policy_json.as_bytes());

    // The full key signs the root and the replica certificates, then is dropped (zeroized).
    let sign = |bytes: &[u8]| dealing.full_key.sign_pkcs1v15_sha256(bytes);
    let root_spki = certs::rsa_spki(&dealing.public.modulus_be_bytes(), dealing.public.public_exponent())?;
    let root_key_id = certs::key_identifier(&root_spki);
    let root = certs::root_certificate(&params.name, root_spki, certs::random_serial(rng)?, now, &sign)?;
    let root_pem = pem(&root)?;
    let root_fingerprint = certs::fingerprint(&root)?;
    let issuer = Issuer {
        name: root.tbs_certificate.subject.clone(),
        key_id: root_key_id,
        not_after: root.tbs_certificate.validity.not_after.to_system_time(),
        sign: &sign,
    };

    let mut infos = Vec::with_capacity(n);
    let mut bundles = Vec::with_capacity(n);
    for (id, (host, (rsa_share, (bls_share, signing_key)))) in
        params.hosts.iter().zip(dealing.shares.iter().zip(bls_shares.iter().zip(&signing_keys))).enumerate()
    {
        let peer = tls_key(rng)?;
        let https = tls_key(rng)?;
        let peer_cert = certs::replica_certificate(
            &issuer,
            id,
            host,
            ReplicaRole::PeerLink,
            peer.spki,
            certs::random_serial(rng)?,
            now,
        )?;
        let https_cert = certs::replica_certificate(
            &issuer,
            id,
            host,
            ReplicaRole::Https,
            https.spki,
            certs::random_serial(rng)?,
            now,
        )?;
        infos.push(ReplicaInfo {
            id,
            host: host.host.clone(),
            https_port: host.https_port,
            peer_port: host.peer_port,
            peer_certificate_sha256: certs::fingerprint(&peer_cert)?,
            https_certificate_sha256: certs::fingerprint(&https_cert)?,
            signing_key: signing_key.verifying_key(),
        });
        let config =
            toml::to_string(&replica_config(id, host)).map_err(|e| CeremonyError::KeyEncoding(e.to_string()))?;
        bundles.push(ReplicaBundle {
            config,
            rsa_share: to_json(rsa_share),
            bls_shares: to_json(bls_share),
            signing_key: to_json(signing_key),
            peer_key: peer.private_pem,
            peer_cert: pem(&peer_cert)?,
            https_key: https.private_pem,
            // The HTTPS endpoint serves its chain up to the root.
            https_cert_chain: pem(&https_cert)? + &root_pem,
        });
    }
    drop(issuer);
    drop(dealing.full_key);
    progress(Progress::CertificatesIssued);

    let cluster = ClusterFile {
        name: params.name.clone(),
        n,
        t,
        root_certificate_sha256: root_fingerprint.clone(),
        policy_sha256: policy_hash.clone(),
        replicas: infos,
        rsa: dealing.public,
        bls: bls_public,
        encryption: encryption_public,
    };
    let cluster_json = to_json(&cluster);
    let files = Files {
        root_pem: &root_pem,
        cluster_json: &cluster_json,
        policy_json: &policy_json,
        operator_key: &operator_pem,
        bundles: &bundles,
    };
    write_all(&params.out, &files, rng)?;
    progress(Progress::Written);
    Ok(CeremonyReport {
        out: params.out.clone(),
        root_fingerprint,
        replicas: params.hosts.clone(),
        operator_key: params.out.join(layout::OPERATOR_KEY),
        operator_public_key,
        names: params.names.clone(),
        policy_sha256: policy_hash,
    })
}

/// Everything the ceremony writes, encoded.
struct Files<'a> {
    root_pem: &'a str,
    cluster_json: &'a str,
    policy_json: &'a str,
    operator_key: &'a str,
    bundles: &'a [ReplicaBundle],
}

/// Writes everything into a fresh sibling folder and renames it to `out`, so a failure leaves
/// nothing half-written behind.
fn write_all(out: &Path, files: &Files<'_>, rng: &mut impl RngCore) -> Result<(), CeremonyError> {
    let file_name = out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = out.with_file_name(format!(".{file_name}.partial-{:016x}", rng.next_u64()));
    let result = write_tree(&staging, files).and_then(|()| {
        if out.exists() {
            return Err(CeremonyError::OutputExists(out.to_path_buf()));
        }
        std::fs::rename(&staging, out).map_err(|source| CeremonyError::Io { path: out.to_path_buf(), source })
    });
    if result.is_err() {
        // Best effort: the staging folder is ours alone; an error removing it changes nothing.
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn write_tree(dir: &Path, files: &Files<'_>) -> Result<(), CeremonyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CeremonyError::Io { path, source }
    };
    layout::create_dir(dir, Access::Public).map_err(io(dir))?;
    let public = dir.join(layout::PUBLIC_DIR);
    layout::create_dir(&public, Access::Public).map_err(io(&public))?;
    let write = |path: PathBuf, contents: &[u8], access| layout::write_new(&path, contents, access).map_err(io(&path));
    write(public.join(layout::ROOT_PEM), files.root_pem.as_bytes(), Access::Public)?;
    write(public.join(layout::CLUSTER_JSON), files.cluster_json.as_bytes(), Access::Public)?;
    write(public.join(layout::POLICY_JSON), files.policy_json.as_bytes(), Access::Public)?;
    let operator = dir.join(layout::OPERATOR_DIR);
    layout::create_dir(&operator, Access::OwnerOnly).map_err(io(&operator))?;
    write(dir.join(layout::OPERATOR_KEY), files.operator_key.as_bytes(), Access::OwnerOnly)?;
    for (id, bundle) in files.bundles.iter().enumerate() {
        let replica = layout::replica_dir(dir, id);
        layout::create_dir(&replica, Access::OwnerOnly).map_err(io(&replica))?;
        let secrets = replica.join(layout::SECRETS_DIR);
        layout::create_dir(&secrets, Access::OwnerOnly).map_err(io(&secrets))?;
        let replica_files: [(&str, &[u8]); 11] = [
            (layout::REPLICA_TOML, bundle.config.as_bytes()),
            (layout::CLUSTER_JSON, files.cluster_json.as_bytes()),
            (layout::ROOT_PEM, files.root_pem.as_bytes()),
            (layout::POLICY_JSON, files.policy_json.as_bytes()),
            (layout::RSA_SHARE, bundle.rsa_share.as_bytes()),
            (layout::BLS_SHARES, bundle.bls_shares.as_bytes()),
            (layout::SIGNING_KEY, bundle.signing_key.as_bytes()),
            (layout::PEER_KEY, bundle.peer_key.as_bytes()),
            (layout::PEER_CERT, bundle.peer_cert.as_bytes()),
            (layout::HTTPS_KEY, bundle.https_key.as_bytes()),
            (layout::HTTPS_CERT, bundle.https_cert_chain.as_bytes()),
        ];
        for (name, contents) in replica_files {
            write(replica.join(name), contents, Access::OwnerOnly)?;
        }
    }
    Ok(())
}
