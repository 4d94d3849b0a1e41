//! Test support: one dealer ceremony (1024-bit root key, n = 4, t = 1) for the whole test binary,
//! replicas on temporary databases, a network the test drives by hand, and request builders.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ca_api::account::AccountSecret;
use ca_api::command::{CaRequest, Command as CaCommand, SignedCommand};
use ca_api::policy::{NameRule, Policy};
use ca_server::ca::{Ca, CaError, Outgoing};
use ca_server::config::CaConfig;
use ca_server::signing::SigningMessage;
use ca_server::{RequestInput, RoundInput};
use const_oid::db::{rfc4519, rfc5912, rfc8410};
use dealer::ceremony::{self, CeremonyParams};
use dealer::{hosts, layout};
use der::asn1::{BitString, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use threshold::cluster::ClusterFile;
use threshold::encoding::from_json;
use tokio::sync::mpsc;
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo};

pub const N: usize = 4;

/// The dealt cluster every test uses.
pub struct Dealt {
    pub out: PathBuf,
    pub cluster: ClusterFile,
    pub root_pem: PathBuf,
}

pub fn dealt() -> &'static Dealt {
    static DEALT: OnceLock<(tempfile::TempDir, Dealt)> = OnceLock::new();
    &DEALT
        .get_or_init(|| {
            let temp = tempfile::tempdir().unwrap();
            let params = CeremonyParams {
                n: N,
                t: 1,
                name: "Test Root CA".into(),
                hosts: hosts::local_hosts(N, 18_600).unwrap(),
                bits: 1024,
                out: temp.path().join("ca"),
                names: vec![NameRule::Subdomain("localhost".into()), NameRule::Exact("www.example.com".into())],
            };
            ceremony::run(&params, 1024, &mut ChaCha20Rng::seed_from_u64(7), &mut |_| {}).unwrap();
            let out = params.out;
            let cluster = from_json(&std::fs::read_to_string(out.join("public/cluster.json")).unwrap()).unwrap();
            let root_pem = out.join("public/root.pem");
            (temp, Dealt { out, cluster, root_pem })
        })
        .1
}

/// The operator (administrator) the ceremony created.
pub fn operator() -> AccountSecret {
    AccountSecret::from_pkcs8_pem(&std::fs::read_to_string(dealt().out.join(layout::OPERATOR_KEY)).unwrap()).unwrap()
}

pub fn account(seed: u64) -> AccountSecret {
    AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

/// The dealt policy.
pub fn dealt_policy() -> Policy {
    Policy::parse(&std::fs::read_to_string(dealt().out.join("public/policy.json")).unwrap()).unwrap()
}

/// How long shares wait for their combiner's signature here.
const COMBINE_WAIT: Duration = Duration::from_millis(20);

pub fn config(id: usize, database: &Path) -> CaConfig {
    let toml = layout::replica_dir(&dealt().out, id).join(layout::REPLICA_TOML);
    let mut config = CaConfig::load(&toml, database).unwrap();
    // Every tick asks again for whatever is missing: the test network is the only delay.
    config.resend_after = Duration::ZERO;
    // Short enough that `settle` outwaits a combiner that is gone, long enough that a live
    // combiner's signature arrives first (the test network delivers everything before a tick).
    config.combine_wait = COMBINE_WAIT;
    config
}

pub struct Replica {
    pub ca: Ca,
    pub outbox: mpsc::UnboundedReceiver<Outgoing>,
    pub database: PathBuf,
}

pub async fn open_replica(id: usize, database: &Path) -> Replica {
    let (tx, rx) = mpsc::unbounded_channel();
    let ca = Ca::open(config(id, database), Arc::new(tx)).await.unwrap();
    Replica { ca, outbox: rx, database: database.to_path_buf() }
}

/// Rewrites a replica's outgoing messages (a Byzantine replica).
pub type Tamper = Box<dyn Fn(SigningMessage) -> SigningMessage + Send + Sync>;

/// `n` replicas and the network between them, driven by the test.
pub struct Net {
    _dir: tempfile::TempDir,
    pub replicas: Vec<Option<Replica>>,
    pub tamper: Vec<Option<Tamper>>,
    /// Replicas whose incoming messages are dropped.
    pub deaf: BTreeSet<usize>,
    /// Replicas that receive requests but no shares or signatures (so they never finish signing
    /// and keep answering requests with shares).
    pub starved: BTreeSet<usize>,
}

impl Net {
    pub async fn new() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut replicas = Vec::new();
        for id in 0..N {
            replicas.push(Some(open_replica(id, &dir.path().join(format!("replica-{id}.sqlite"))).await));
        }
        Net {
            _dir: dir,
            replicas,
            tamper: (0..N).map(|_| None).collect(),
            deaf: BTreeSet::new(),
            starved: BTreeSet::new(),
        }
    }

    pub fn ca(&self, id: usize) -> &Ca {
        &self.replicas[id].as_ref().expect("replica is running").ca
    }

    pub fn running(&self) -> Vec<usize> {
        (0..N).filter(|id| self.replicas[*id].is_some()).collect()
    }

    /// Applies `round` at every running replica, each then computing its shares (as the
    /// daemon's signing task does right after).
    pub async fn apply(&self, round: &RoundInput) {
        for id in self.running() {
            self.ca(id).apply_round(round.clone()).await.unwrap();
            self.ca(id).sign_pending().await.unwrap();
        }
    }

    /// Stops a replica abruptly: its in-memory state (and unsent messages) are lost.
    pub fn kill(&mut self, id: usize) -> PathBuf {
        let replica = self.replicas[id].take().expect("running");
        replica.database
    }

    pub async fn restart(&mut self, id: usize, database: &Path) {
        self.replicas[id] = Some(open_replica(id, database).await);
    }

    /// Delivers messages until none is left; then ticks every replica (which re-requests what is
    /// missing) and delivers again, until every running replica has signed everything.
    pub async fn settle(&mut self) {
        for _ in 0..100 {
            let (moved, failures) = self.deliver().await;
            assert!(failures.is_empty(), "handling a message failed: {failures:?}");
            if moved == 0 {
                if self.all_signed().await {
                    return;
                }
                // Real time must pass for a replica to stop waiting for a combiner.
                tokio::time::sleep(COMBINE_WAIT).await;
                for id in self.running() {
                    self.ca(id).tick().await.unwrap();
                }
            }
        }
        panic!("the replicas did not finish signing");
    }

    /// Delivers every message queued now (with the test's drops and rewrites); returns how many
    /// moved and which replica failed to handle which (a failure is the test's to judge).
    pub async fn deliver(&mut self) -> (usize, Vec<(usize, CaError)>) {
        let (mut moved, mut failures) = (0, Vec::new());
        for from in self.running() {
            let mut outgoing = Vec::new();
            if let Some(replica) = self.replicas[from].as_mut() {
                while let Ok(message) = replica.outbox.try_recv() {
                    outgoing.push(message);
                }
            }
            for Outgoing { to, payload } in outgoing {
                moved += 1;
                let payload = match (&self.tamper[from], SigningMessage::decode(&payload)) {
                    (Some(tamper), Ok(message)) => tamper(message).encode(),
                    _ => payload,
                };
                let is_request = matches!(SigningMessage::decode(&payload), Ok(SigningMessage::Request { .. }));
                let targets: Vec<usize> = match to {
                    Some(to) => vec![to],
                    None => (0..N).filter(|id| *id != from).collect(),
                };
                for to in targets {
                    if self.deaf.contains(&to)
                        || (self.starved.contains(&to) && !is_request)
                        || self.replicas[to].is_none()
                    {
                        continue;
                    }
                    if let Err(e) = self.ca(to).handle_message(from, &payload).await {
                        failures.push((to, e));
                    }
                }
            }
        }
        (moved, failures)
    }

    pub async fn all_signed(&self) -> bool {
        for id in self.running() {
            if self.deaf.contains(&id) || self.starved.contains(&id) {
                continue;
            }
            if self.ca(id).metrics().await.unwrap().counts.unsigned_objects > 0 {
                return false;
            }
        }
        true
    }
}

/// Agreed round inputs: time advances by a second a round from a minute before the test.
pub struct Rounds {
    next: u64,
    start_ms: u64,
}

impl Rounds {
    pub fn new() -> Rounds {
        // A minute ago: CRLs and certificates must already be valid when openssl looks at them.
        let start_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 - 60_000;
        Rounds { next: 0, start_ms }
    }

    pub fn time_ms(&self, round: u64) -> u64 {
        self.start_ms + round * 1000
    }

    /// The next round with these plain requests.
    pub fn round(&mut self, payloads: Vec<Vec<u8>>) -> RoundInput {
        let round = self.next;
        self.next += 1;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_be_bytes());
        RoundInput {
            round,
            time: self.time_ms(round),
            seed: Sha256::digest(seed).into(),
            requests: payloads.into_iter().map(plain).collect(),
        }
    }
}

/// A plain request as the runtime delivers it: the digest is over the tag byte 0 and the bytes.
pub fn plain(payload: Vec<u8>) -> RequestInput {
    RequestInput { digest: digest(&payload), sealed: false, payload: Some(payload) }
}

pub fn digest(payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(payload);
    hasher.finalize().into()
}

/// A signed command's request bytes.
pub fn signed(secret: &AccountSecret, command: &CaCommand) -> Vec<u8> {
    CaRequest::Signed(SignedCommand::sign(secret, command)).to_bytes()
}

/// An issuance request under `profile`.
pub fn issue(secret: &AccountSecret, csr: &[u8], profile: &str, days: Option<u32>, nonce: &str) -> Vec<u8> {
    signed(secret, &CaCommand::issue(csr, profile, days, nonce.into()))
}

pub fn set_policy(secret: &AccountSecret, policy: &Policy, nonce: &str) -> Vec<u8> {
    let json = threshold::encoding::to_json(policy).to_string();
    signed(secret, &CaCommand::SetPolicy { policy_json: json, nonce: nonce.into() })
}

// ---- CSRs ----

pub enum Key {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl Key {
    pub fn p256(seed: u8) -> Key {
        Key::P256(p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap())
    }

    pub fn ed25519(seed: u8) -> Key {
        Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    pub fn spki(&self) -> SubjectPublicKeyInfoOwned {
        match self {
            Key::P256(key) => {
                use p256::pkcs8::EncodePublicKey;
                SubjectPublicKeyInfoOwned::from_der(key.verifying_key().to_public_key_der().unwrap().as_bytes())
                    .unwrap()
            }
            Key::Ed25519(key) => SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned { oid: rfc8410::ID_ED_25519, parameters: None },
                subject_public_key: BitString::from_bytes(key.verifying_key().as_bytes()).unwrap(),
            },
        }
    }

    /// The signature algorithm and the signature over `message` (ECDSA with SHA-256, DER).
    pub fn sign(&self, message: &[u8]) -> (AlgorithmIdentifierOwned, Vec<u8>) {
        match self {
            Key::P256(key) => {
                use p256::ecdsa::signature::{SignatureEncoding, Signer};
                let signature: p256::ecdsa::DerSignature = key.sign(message);
                (AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None }, signature.to_vec())
            }
            Key::Ed25519(key) => {
                let signature = ed25519_dalek::Signer::sign(key, message);
                (
                    AlgorithmIdentifierOwned { oid: rfc8410::ID_ED_25519, parameters: None },
                    signature.to_bytes().to_vec(),
                )
            }
        }
    }
}

pub fn cn(name: &str) -> Name {
    let atv = AttributeTypeAndValue { oid: rfc4519::CN, value: Any::new(Tag::Utf8String, name.as_bytes()).unwrap() };
    RdnSequence(vec![RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv]).unwrap())])
}

/// A DER CSR for `names` (subjectAltName DNS names) with the subject CN = `subject`.
pub fn csr(key: &Key, subject: &str, names: &[&str]) -> Vec<u8> {
    let mut attributes = Vec::new();
    if !names.is_empty() {
        let san = SubjectAltName(
            names.iter().map(|n| GeneralName::DnsName(der::asn1::Ia5String::new(*n).unwrap())).collect(),
        );
        let extension = Extension {
            extn_id: rfc5912::ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(san.to_der().unwrap()).unwrap(),
        };
        let mut values = SetOfVec::new();
        values.insert(Any::encode_from(&vec![extension]).unwrap()).unwrap();
        attributes.push(Attribute { oid: rfc5912::ID_EXTENSION_REQ, values });
    }
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: cn(subject),
        public_key: key.spki(),
        attributes: SetOfVec::try_from(attributes).unwrap(),
    };
    let (algorithm, signature) = key.sign(&info.to_der().unwrap());
    CertReq { info, algorithm, signature: BitString::from_bytes(&signature).unwrap() }.to_der().unwrap()
}

// ---- openssl ----

pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl tool is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap()
}
