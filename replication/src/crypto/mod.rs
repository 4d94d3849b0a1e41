//! The cryptography the protocols need, behind object-safe traits so the same state machines run
//! over the real schemes of `threshold` and over a fast deterministic stand-in in the simulator
//! (with the same failure behaviour: invalid shares are detected and named).
//!
//! Shares, signatures and ciphertexts travel as opaque bytes; each scheme parses its own.

pub mod quorum;
pub mod share_set;
#[cfg(feature = "sim")]
pub mod standin;
pub mod threshold_backend;
pub(crate) mod verified;

use crate::PartyId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use threshold::cluster::thresholds;

/// A combined value and the parties whose shares were found invalid on the way (the same shape
/// as `threshold::combine::Combined`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined<T> {
    pub value: T,
    pub faulty: Vec<PartyId>,
}

/// Why shares could not be combined (mirrors `threshold::combine::CombineError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CombineError {
    #[error("{needed} shares are needed, {got} distinct ones were given")]
    NotEnoughShares { needed: usize, got: usize },
    #[error("{needed} valid shares are needed, {valid} remain (faulty: {faulty:?})")]
    NotEnoughValidShares { needed: usize, valid: usize, faulty: Vec<PartyId>, unproven: Vec<PartyId> },
}

/// A share of a threshold signature, made by party `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignatureShare {
    pub id: PartyId,
    #[serde(with = "crate::wire::bytes")]
    pub bytes: Vec<u8>,
}

/// A combined threshold signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "crate::wire::bytes")] pub Vec<u8>);

/// A share of a threshold decryption, made by party `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DecryptionShare {
    pub id: PartyId,
    #[serde(with = "crate::wire::bytes")]
    pub bytes: Vec<u8>,
}

/// The public side of a threshold signature scheme needing `required()` shares. Only the coin's
/// scheme (BLS) makes unique signatures, so only its combined signature may be hashed into a
/// coin; a [`quorum`] certificate proves that enough parties signed, in one of many encodings.
pub trait ThresholdPublic: Send + Sync {
    fn required(&self) -> usize;
    fn verify_share(&self, dst: &[u8], msg: &[u8], share: &SignatureShare) -> bool;
    fn verify(&self, dst: &[u8], msg: &[u8], signature: &Signature) -> bool;
    /// Optimistic combining: the result verifies; shares found invalid are named in `faulty`.
    fn combine(&self, dst: &[u8], msg: &[u8], shares: &[SignatureShare]) -> Result<Combined<Signature>, CombineError>;
}

/// One party's share of a threshold signing key.
pub trait ThresholdSigner: Send + Sync {
    fn sign(&self, dst: &[u8], msg: &[u8]) -> SignatureShare;
}

/// The public side of threshold encryption (`t+1` shares open a ciphertext).
pub trait DecryptionPublic: Send + Sync {
    /// Public validity of a ciphertext (checked before it is ordered).
    fn validate(&self, ciphertext: &[u8]) -> bool;
    fn verify_share(&self, ciphertext: &[u8], share: &DecryptionShare) -> bool;
    fn open(&self, ciphertext: &[u8], shares: &[DecryptionShare]) -> Result<Combined<Vec<u8>>, CombineError>;
}

/// One party's share of the decryption key.
pub trait DecryptionSecret: Send + Sync {
    /// `None` for an invalid ciphertext.
    fn share(&self, ciphertext: &[u8]) -> Option<DecryptionShare>;
}

/// Individual (Ed25519) signatures of each replica.
pub trait IndividualVerifier: Send + Sync {
    fn verify(&self, party: PartyId, msg: &[u8], signature: &[u8]) -> bool;
}

pub trait IndividualSigner: Send + Sync {
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
}

/// Everything public about a cluster: enough to verify any share, signature or proof.
#[derive(Clone)]
pub struct PublicKeys {
    pub n: usize,
    pub t: usize,
    /// `t+1`: the common coin (BLS: unique and unpredictable).
    pub coin: Arc<dyn ThresholdPublic>,
    /// `t+1`: ABBA's pre-processing justifications (a [`quorum`] certificate).
    pub pre_process: Arc<dyn ThresholdPublic>,
    /// `n-t`: ABBA's vote justifications and decisions (a [`quorum`] certificate).
    pub vote: Arc<dyn ThresholdPublic>,
    /// `ceil((n+t+1)/2)`: consistent broadcast (a [`quorum`] certificate).
    pub echo: Arc<dyn ThresholdPublic>,
    pub encryption: Arc<dyn DecryptionPublic>,
    pub replicas: Arc<dyn IndividualVerifier>,
}

/// One replica's secrets.
#[derive(Clone)]
pub struct SecretKeys {
    pub id: PartyId,
    pub coin: Arc<dyn ThresholdSigner>,
    pub pre_process: Arc<dyn ThresholdSigner>,
    pub vote: Arc<dyn ThresholdSigner>,
    pub echo: Arc<dyn ThresholdSigner>,
    pub decryption: Arc<dyn DecryptionSecret>,
    pub signing: Arc<dyn IndividualSigner>,
}

/// The schemes made of [`quorum`] certificates of the replicas' individual signatures: every
/// one but the coin.
pub struct QuorumSchemes {
    pub pre_process: Arc<dyn ThresholdPublic>,
    pub vote: Arc<dyn ThresholdPublic>,
    pub echo: Arc<dyn ThresholdPublic>,
}

pub fn quorum_public(n: usize, t: usize, replicas: &Arc<dyn IndividualVerifier>) -> QuorumSchemes {
    let scheme =
        |required| Arc::new(quorum::QuorumPublic::new(n, required, replicas.clone())) as Arc<dyn ThresholdPublic>;
    QuorumSchemes {
        pre_process: scheme(thresholds::coin(n, t)),
        vote: scheme(thresholds::vote(n, t)),
        echo: scheme(thresholds::echo(n, t)),
    }
}

/// One replica's signer for all of [`QuorumSchemes`] (each signed message has its own tag).
pub fn quorum_signer(id: PartyId, signing: &Arc<dyn IndividualSigner>) -> Arc<dyn ThresholdSigner> {
    Arc::new(quorum::QuorumSigner { id, signing: signing.clone() })
}

/// What a protocol instance knows about its cluster and itself.
#[derive(Clone)]
pub struct NetworkInfo {
    pub id: PartyId,
    pub public: PublicKeys,
    pub secret: SecretKeys,
}

impl NetworkInfo {
    pub fn n(&self) -> usize {
        self.public.n
    }
    pub fn t(&self) -> usize {
        self.public.t
    }
    /// `n - t`: the number of parties that certainly answer.
    pub fn quorum(&self) -> usize {
        self.public.n - self.public.t
    }
    /// `ceil((n+t+1)/2)`: two sets this large intersect in an honest party.
    pub fn echo_quorum(&self) -> usize {
        thresholds::echo(self.public.n, self.public.t)
    }
}

/// The coin value of a (unique) combined coin signature.
pub fn coin_value(signature: &Signature) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"replication/coin-value");
    hasher.update(&signature.0);
    hasher.finalize().into()
}

/// The first share of each party, in the order given.
pub(crate) fn distinct_by_party<S>(shares: &[S], id: impl Fn(&S) -> PartyId) -> Vec<&S> {
    let mut seen = std::collections::BTreeSet::new();
    shares.iter().filter(|s| seen.insert(id(s))).collect()
}

pub fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The keys of a protocol instance decoded from a snapshot, until `restore` supplies the real
/// ones (serde cannot carry keys and closures through a snapshot). Fail-closed: it verifies
/// nothing and signs nothing a peer would accept, so an instance left unbound by mistake could
/// neither accept nor produce anything valid.
pub(crate) fn unbound_info() -> Arc<NetworkInfo> {
    static UNBOUND: std::sync::LazyLock<Arc<NetworkInfo>> = std::sync::LazyLock::new(|| {
        let none = Arc::new(Unbound);
        Arc::new(NetworkInfo {
            id: PartyId::MAX,
            public: PublicKeys {
                n: 0,
                t: 0,
                coin: none.clone(),
                pre_process: none.clone(),
                vote: none.clone(),
                echo: none.clone(),
                encryption: none.clone(),
                replicas: none.clone(),
            },
            secret: SecretKeys {
                id: PartyId::MAX,
                coin: none.clone(),
                pre_process: none.clone(),
                vote: none.clone(),
                echo: none.clone(),
                decryption: none.clone(),
                signing: none,
            },
        })
    });
    UNBOUND.clone()
}

struct Unbound;

impl ThresholdPublic for Unbound {
    fn required(&self) -> usize {
        usize::MAX
    }
    fn verify_share(&self, _: &[u8], _: &[u8], _: &SignatureShare) -> bool {
        false
    }
    fn verify(&self, _: &[u8], _: &[u8], _: &Signature) -> bool {
        false
    }
    fn combine(&self, _: &[u8], _: &[u8], shares: &[SignatureShare]) -> Result<Combined<Signature>, CombineError> {
        Err(CombineError::NotEnoughShares { needed: usize::MAX, got: shares.len() })
    }
}

impl ThresholdSigner for Unbound {
    fn sign(&self, _: &[u8], _: &[u8]) -> SignatureShare {
        SignatureShare { id: PartyId::MAX, bytes: Vec::new() }
    }
}

impl DecryptionPublic for Unbound {
    fn validate(&self, _: &[u8]) -> bool {
        false
    }
    fn verify_share(&self, _: &[u8], _: &DecryptionShare) -> bool {
        false
    }
    fn open(&self, _: &[u8], shares: &[DecryptionShare]) -> Result<Combined<Vec<u8>>, CombineError> {
        Err(CombineError::NotEnoughShares { needed: usize::MAX, got: shares.len() })
    }
}

impl DecryptionSecret for Unbound {
    fn share(&self, _: &[u8]) -> Option<DecryptionShare> {
        None
    }
}

impl IndividualVerifier for Unbound {
    fn verify(&self, _: PartyId, _: &[u8], _: &[u8]) -> bool {
        false
    }
}

impl IndividualSigner for Unbound {
    fn sign(&self, _: &[u8]) -> Vec<u8> {
        Vec::new()
    }
}
