//! BLS12-381 threshold signatures and the common coin, through `blsttc`.
//!
//! Why `blsttc`: it is the API-compatible descendant of `threshold_crypto` (the library hbbft
//! uses), backed by the `blst` assembly implementation of BLS12-381, and about 3-4x faster on
//! every operation the agreement protocols need (DESIGN.md §3: share sign 0.25 ms and share
//! verify 1.0 ms, against 1.3 ms and 3.4 ms).
//!
//! Every signed message carries a domain-separation tag, so a signature made for one purpose
//! (the coin, a pre-processing vote) is never valid for another: the signed bytes are
//! `u16 BE len(dst) || dst || msg`.
//!
//! Combining is optimistic: combine the first `required` distinct shares and verify the one
//! combined signature; only when that fails are shares verified one by one, the bad ones named
//! and excluded.
//!
//! Key generation, key-share storage and hashing to the curve are blsttc's; signing, verifying
//! and combining work on the curve points (`blstrs`) directly, because blsttc's verification
//! computes two whole pairings and compares them, where checking `e(pk, H(m)) · e(-g, σ) = 1`
//! needs one multi-Miller loop and a single final exponentiation (a quarter less per check; the
//! agreement rounds spend about half their BLS time verifying).
//!
//! The cluster has one BLS key set ([`BlsPublicKeys`]) plus the threshold-encryption key of
//! [`crate::seal`]:
//! - `coin`: `t + 1` shares (the common coin);
//! - encryption: `t + 1` shares.
//!
//! DESIGN.md §3 also signs ABBA's pre-processing (`t + 1`, with the coin's key) and votes
//! (`n - t`) and consistent broadcast (`ceil((n + t + 1) / 2)`) with BLS. Those need no unique
//! signature, and are quorum certificates of the replicas'
//! Ed25519 signatures instead (`replication::crypto::quorum`, where the reason is measured).

use std::fmt;

use blsttc::blstrs::{Bls12, G2Prepared, Scalar};
use blsttc::group::ff::Field;
use blsttc::group::{Curve, Group, prime::PrimeCurveAffine};
use blsttc::{
    G1Affine, G2Affine, G2Projective, PK_SIZE, PublicKeySet, PublicKeyShare, SIG_SIZE, SK_SIZE, SecretKeySet,
    SecretKeyShare,
};
use pairing::{MillerLoopResult, MultiMillerLoop};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::PartyId;
use crate::combine::{CombineError, Combined};
use crate::encoding::{Versioned, hex_array, hex_bytes};
use crate::seal::{self, EncryptionKeyShare, EncryptionPublicKey};

/// The domain-separation tag of the common coin.
pub const COIN_DST: &[u8] = b"itca/coin/v1";

/// Why a public key set (or a cluster's key sets) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("a key set needs 1 <= required <= n, got n = {n}, required = {required}")]
    Parameters { n: usize, required: usize },
    #[error("the commitment has {coefficients} coefficients but required = {required}")]
    Degree { coefficients: usize, required: usize },
    #[error("the commitment bytes are not {PK_SIZE}-byte compressed G1 points")]
    Encoding,
    #[error("the commitment's {which} coefficient is the identity")]
    Degenerate { which: &'static str },
    #[error("the {what} key set does not fit n = {n}, t = {t}")]
    Thresholds { what: &'static str, n: usize, t: usize },
}

/// Builds the bytes actually signed: `u16 BE len(dst) || dst || msg`. `None` if the tag is
/// longer than 65535 bytes (tags are short constants, so only a programming error gets there).
fn signed_bytes(dst: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(dst.len()).ok()?;
    let mut out = Vec::with_capacity(2 + dst.len() + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(dst);
    out.extend_from_slice(msg);
    Some(out)
}

/// The point in G2 that is signed for `(dst, msg)`.
fn message_hash(dst: &[u8], msg: &[u8]) -> Option<G2Affine> {
    let bytes = signed_bytes(dst, msg)?;
    let key = RecentHashes::key(&bytes);
    if let Some(hash) = RECENT_HASHES.lock().ok().and_then(|recent| recent.get(&key)) {
        return Some(hash);
    }
    let hash = blsttc::hash_g2(&bytes);
    if let Ok(mut recent) = RECENT_HASHES.lock() {
        recent.insert(key, hash);
    }
    Some(hash)
}

/// Hashing to G2 costs about a third of a verification, and each statement of the agreement
/// protocols is hashed several times by the same process: when its share is signed, when the
/// shares are combined, and again when peers' combined signatures on it are checked. The hash is
/// a pure function of the signed bytes, so remembering recent ones changes no result.
static RECENT_HASHES: std::sync::Mutex<RecentHashes> = std::sync::Mutex::new(RecentHashes::new());

/// Hashed statements kept per generation; at most two generations are kept.
const RECENT_HASHES_PER_GENERATION: usize = 1024;

/// A bounded memo of `SHA-256(signed bytes) -> H(signed bytes)`: two generations, the older one
/// dropped when the newer is full, so memory is bounded and recent statements stay.
struct RecentHashes {
    current: std::collections::BTreeMap<[u8; 32], G2Affine>,
    previous: std::collections::BTreeMap<[u8; 32], G2Affine>,
}

impl RecentHashes {
    const fn new() -> Self {
        RecentHashes { current: std::collections::BTreeMap::new(), previous: std::collections::BTreeMap::new() }
    }

    fn key(signed: &[u8]) -> [u8; 32] {
        Sha256::digest(signed).into()
    }

    fn get(&self, key: &[u8; 32]) -> Option<G2Affine> {
        self.current.get(key).or_else(|| self.previous.get(key)).copied()
    }

    fn insert(&mut self, key: [u8; 32], hash: G2Affine) {
        if self.current.len() >= RECENT_HASHES_PER_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, hash);
    }
}

/// Whether `signature` is `key`'s signature on the point `hash`: `e(key, hash) = e(g, signature)`,
/// checked as `e(key, hash) · e(-g, signature) = 1` with one final exponentiation. An identity
/// key verifies nothing (as in blsttc).
fn pairing_check(key: &G1Affine, signature: &G2Affine, hash: &G2Affine) -> bool {
    if bool::from(key.is_identity()) {
        return false;
    }
    let minus_g = -G1Affine::generator();
    let (hash, signature) = (G2Prepared::from(*hash), G2Prepared::from(*signature));
    bool::from(Bls12::multi_miller_loop(&[(key, &hash), (&minus_g, &signature)]).final_exponentiation().is_identity())
}

/// A compressed G1 point blsttc produced (a public key or key share), as a curve point.
fn g1_point(bytes: [u8; PK_SIZE]) -> Result<G1Affine, KeySetError> {
    Option::from(G1Affine::from_compressed(&bytes)).ok_or(KeySetError::Encoding)
}

// ---------------------------------------------------------------------------------------------
// Public key sets
// ---------------------------------------------------------------------------------------------

/// The public side of one threshold key: `n` parties, any `required` of whom can sign (or
/// decrypt). Each party's public key share is computed once when the set is built or loaded.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "RawKeySet", into = "RawKeySet")]
pub struct BlsPublicKeySet {
    n: usize,
    /// Shares needed: blsttc's threshold (the polynomial's degree) plus one.
    required: usize,
    set: PublicKeySet,
    /// `shares[i]` is party `i`'s public key share (a cache: evaluating the commitment costs
    /// `required - 1` scalar multiplications).
    shares: Vec<PublicKeyShare>,
    /// The public key and the key shares as curve points, for verifying.
    key_point: G1Affine,
    share_points: Vec<G1Affine>,
}

/// The stored form: `{ "n", "required", "set": hex of the commitment's compressed points }`.
#[derive(Serialize, Deserialize)]
struct RawKeySet {
    n: usize,
    required: usize,
    #[serde(with = "hex_bytes")]
    set: Vec<u8>,
}

impl From<BlsPublicKeySet> for RawKeySet {
    fn from(keys: BlsPublicKeySet) -> Self {
        RawKeySet { n: keys.n, required: keys.required, set: keys.set.to_bytes() }
    }
}

impl TryFrom<RawKeySet> for BlsPublicKeySet {
    type Error = KeySetError;

    fn try_from(raw: RawKeySet) -> Result<Self, KeySetError> {
        BlsPublicKeySet::from_bytes(raw.n, raw.required, &raw.set)
    }
}

impl BlsPublicKeySet {
    /// Wraps a blsttc key set after checking it: `1 <= required <= n`, the polynomial has
    /// degree `required - 1`, and neither its constant nor its leading coefficient is the
    /// identity (an identity leading coefficient would silently lower the threshold).
    pub fn new(n: usize, required: usize, set: PublicKeySet) -> Result<Self, KeySetError> {
        if required == 0 || required > n {
            return Err(KeySetError::Parameters { n, required });
        }
        let bytes = set.to_bytes();
        let coefficients = bytes.len() / PK_SIZE;
        if coefficients != required || !bytes.len().is_multiple_of(PK_SIZE) {
            return Err(KeySetError::Degree { coefficients, required });
        }
        let is_identity = |chunk: &[u8]| -> Result<bool, KeySetError> {
            let array: [u8; PK_SIZE] = chunk.try_into().map_err(|_| KeySetError::Encoding)?;
            let point = Option::<G1Affine>::from(G1Affine::from_compressed(&array)).ok_or(KeySetError::Encoding)?;
            Ok(bool::from(point.is_identity()))
        };
        if is_identity(&bytes[..PK_SIZE])? {
            return Err(KeySetError::Degenerate { which: "constant" });
        }
        if is_identity(&bytes[bytes.len() - PK_SIZE..])? {
            return Err(KeySetError::Degenerate { which: "leading" });
        }
        let shares: Vec<PublicKeyShare> = (0..n).map(|i| set.public_key_share(i)).collect();
        let key_point = G1Affine::from(set.public_key());
        let share_points = shares.iter().map(|s| g1_point(s.to_bytes())).collect::<Result<_, _>>()?;
        Ok(BlsPublicKeySet { n, required, set, shares, key_point, share_points })
    }

    /// Parses the commitment's bytes (concatenated compressed G1 points) and checks them.
    pub fn from_bytes(n: usize, required: usize, bytes: &[u8]) -> Result<Self, KeySetError> {
        // blsttc's own parser ignores trailing bytes and panics later on an empty commitment,
        // so the length is checked first.
        if bytes.is_empty() || !bytes.len().is_multiple_of(PK_SIZE) {
            return Err(KeySetError::Encoding);
        }
        let coefficients = bytes.len() / PK_SIZE;
        if coefficients != required {
            return Err(KeySetError::Degree { coefficients, required });
        }
        let set = PublicKeySet::from_bytes(bytes.to_vec()).map_err(|_| KeySetError::Encoding)?;
        BlsPublicKeySet::new(n, required, set)
    }

    /// The number of parties.
    pub fn n(&self) -> usize {
        self.n
    }

    /// How many distinct valid shares make a signature.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The underlying blsttc key set.
    pub fn set(&self) -> &PublicKeySet {
        &self.set
    }

    /// The key that verifies combined signatures.
    pub fn public_key(&self) -> blsttc::PublicKey {
        self.set.public_key()
    }

    /// Party `id`'s public key share, `None` if there is no such party.
    pub fn public_key_share(&self, id: PartyId) -> Option<&PublicKeyShare> {
        self.shares.get(id)
    }

    /// Whether `share` is party `share.id`'s valid share on `(dst, msg)`; false for an id that
    /// is not a party.
    pub fn verify_share(&self, dst: &[u8], msg: &[u8], share: &BlsSignatureShare) -> bool {
        match message_hash(dst, msg) {
            Some(hash) => self.verify_share_hash(hash, share),
            None => false,
        }
    }

    fn verify_share_hash(&self, hash: G2Affine, share: &BlsSignatureShare) -> bool {
        match self.share_points.get(share.id) {
            Some(key) => pairing_check(key, &share.share, &hash),
            None => false,
        }
    }

    /// Whether `sig` is the combined signature on `(dst, msg)`.
    pub fn verify(&self, dst: &[u8], msg: &[u8], sig: &BlsSignature) -> bool {
        match message_hash(dst, msg) {
            Some(hash) => pairing_check(&self.key_point, &sig.0, &hash),
            None => false,
        }
    }

    /// Combines signature shares on `(dst, msg)` optimistically: deduplicate by party (the
    /// first share of each party counts; ids that are not parties are ignored), combine the
    /// first `required`, verify the result; only if that fails, verify shares one by one,
    /// name the bad ones in `faulty` and combine `required` good ones.
    pub fn combine(
        &self,
        dst: &[u8],
        msg: &[u8],
        shares: &[BlsSignatureShare],
    ) -> Result<Combined<BlsSignature>, CombineError> {
        let distinct = distinct_by_party(shares, self.n, |s| s.id);
        if distinct.len() < self.required {
            return Err(CombineError::NotEnoughShares { needed: self.required, got: distinct.len() });
        }
        // An over-long tag cannot have been signed by anyone: no share can be valid.
        let Some(hash) = message_hash(dst, msg) else {
            return Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: 0,
                faulty: Vec::new(),
                unproven: Vec::new(),
            });
        };
        if let Some(sig) = self.interpolate(&distinct[..self.required])
            && pairing_check(&self.key_point, &sig, &hash)
        {
            return Ok(Combined { value: BlsSignature(sig), faulty: Vec::new() });
        }
        // Pessimistic path: some share among the first `required` is bad.
        let mut good = Vec::with_capacity(self.required);
        let mut faulty = Vec::new();
        for share in distinct {
            if good.len() == self.required {
                break;
            }
            if self.verify_share_hash(hash, share) {
                good.push(share);
            } else {
                faulty.push(share.id);
            }
        }
        if good.len() < self.required {
            return Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: good.len(),
                faulty,
                unproven: Vec::new(),
            });
        }
        // Valid shares always interpolate to the valid signature (BLS signatures are unique),
        // so the result needs no second check.
        match self.interpolate(&good) {
            Some(sig) => Ok(Combined { value: BlsSignature(sig), faulty }),
            None => Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: good.len(),
                faulty,
                unproven: Vec::new(),
            }),
        }
    }

    /// Lagrange interpolation at zero, in the exponent, of exactly `required` shares of distinct
    /// parties (party `i` holds the polynomial's value at `i + 1`, as in blsttc).
    fn interpolate(&self, shares: &[&BlsSignatureShare]) -> Option<G2Affine> {
        if shares.len() != self.required {
            return None;
        }
        let xs: Vec<Scalar> = shares.iter().map(|s| Scalar::from(s.id as u64 + 1)).collect();
        let mut sum = G2Projective::identity();
        for (k, share) in shares.iter().enumerate() {
            // λ_k = Π_{j≠k} x_j / (x_j - x_k)
            let (mut numerator, mut denominator) = (Scalar::one(), Scalar::one());
            for (j, x) in xs.iter().enumerate() {
                if j != k {
                    numerator *= x;
                    denominator *= *x - xs[k];
                }
            }
            let lambda = numerator * Option::<Scalar>::from(denominator.invert())?;
            sum += G2Projective::from(share.share) * lambda;
        }
        Some(sum.to_affine())
    }
}

impl PartialEq for BlsPublicKeySet {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.required == other.required && self.set == other.set
    }
}

impl Eq for BlsPublicKeySet {}

impl fmt::Debug for BlsPublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsPublicKeySet")
            .field("n", &self.n)
            .field("required", &self.required)
            .field("public_key", &hex::encode(self.public_key().to_bytes()))
            .finish()
    }
}

/// The shares in order of first appearance, one per party, ids outside `0..n` dropped.
pub(crate) fn distinct_by_party<T>(shares: &[T], n: usize, id: impl Fn(&T) -> PartyId) -> Vec<&T> {
    let mut seen = vec![false; n];
    let mut out = Vec::with_capacity(shares.len().min(n));
    for share in shares {
        if let Some(slot) = seen.get_mut(id(share))
            && !*slot
        {
            *slot = true;
            out.push(share);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Secret key shares and signatures
// ---------------------------------------------------------------------------------------------

/// One party's secret share of a BLS threshold key. The field element lives in blsttc's
/// `SecretKey`, whose `Drop` overwrites it with zero, so dropping this zeroizes it.
#[derive(Clone)]
pub struct BlsKeyShare {
    id: PartyId,
    share: SecretKeyShare,
}

impl BlsKeyShare {
    /// Wraps party `id`'s blsttc share.
    pub fn new(id: PartyId, share: SecretKeyShare) -> Self {
        BlsKeyShare { id, share }
    }

    /// The party this share belongs to.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The matching public key share.
    pub fn public_key_share(&self) -> PublicKeyShare {
        self.share.public_key_share()
    }

    /// Signs `msg` under the domain-separation tag `dst`.
    ///
    /// # Panics
    /// If `dst` is longer than 65535 bytes (tags are short constants).
    pub fn sign(&self, dst: &[u8], msg: &[u8]) -> BlsSignatureShare {
        let hash = message_hash(dst, msg).expect("domain-separation tags are at most 65535 bytes");
        // The scalar comes from the share's own encoding, through a buffer zeroized on drop.
        let secret = Zeroizing::new(self.share.to_bytes());
        let scalar = Option::<Scalar>::from(Scalar::from_bytes_be(&secret))
            .expect("a loaded secret key share is a scalar of BLS12-381");
        BlsSignatureShare { id: self.id, share: (G2Projective::from(hash) * scalar).to_affine() }
    }
}

impl fmt::Debug for BlsKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsKeyShare").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Serde for a secret key share as hex; every intermediate buffer is zeroized.
pub(crate) mod secret_share_hex {
    use super::*;

    pub fn serialize<S: Serializer>(share: &SecretKeyShare, s: S) -> Result<S::Ok, S::Error> {
        let bytes = Zeroizing::new(share.to_bytes());
        let text = Zeroizing::new(hex::encode(bytes.as_ref()));
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretKeyShare, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let mut bytes = Zeroizing::new([0u8; SK_SIZE]);
        hex::decode_to_slice(text.as_bytes(), bytes.as_mut()).map_err(serde::de::Error::custom)?;
        SecretKeyShare::from_bytes(*bytes).map_err(|_| serde::de::Error::custom("not a scalar of BLS12-381"))
    }
}

/// One party's signature share. The id is whoever the share claims to come from: a protocol
/// sets it from the authenticated sender before combining.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlsSignatureShare {
    pub id: PartyId,
    #[serde(with = "signature_share_hex")]
    pub share: G2Affine,
}

impl BlsSignatureShare {
    /// Parses party `id`'s share from its compressed G2 point (on the curve, in the subgroup).
    pub fn from_bytes(id: PartyId, bytes: &[u8; SIG_SIZE]) -> Option<Self> {
        Option::from(G2Affine::from_compressed(bytes)).map(|share| BlsSignatureShare { id, share })
    }

    /// The compressed encoding of the share's point.
    pub fn to_bytes(&self) -> [u8; SIG_SIZE] {
        self.share.to_compressed()
    }
}

impl fmt::Debug for BlsSignatureShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsSignatureShare").field("id", &self.id).field("share", &hex::encode(self.to_bytes())).finish()
    }
}

mod signature_share_hex {
    use super::*;

    pub fn serialize<S: Serializer>(share: &G2Affine, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(share.to_compressed()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<G2Affine, D::Error> {
        let bytes: [u8; SIG_SIZE] = hex_array::deserialize(d)?;
        // Checks that the point is on the curve and in the prime-order subgroup.
        Option::from(G2Affine::from_compressed(&bytes))
            .ok_or_else(|| serde::de::Error::custom("not a compressed G2 point"))
    }
}

/// A combined signature, serialised as the hex of its compressed G2 point.
#[derive(Clone, PartialEq, Eq)]
pub struct BlsSignature(pub G2Affine);

impl BlsSignature {
    /// The compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIG_SIZE] {
        self.0.to_compressed()
    }

    /// Parses a compressed G2 point (on the curve, in the subgroup).
    pub fn from_bytes(bytes: [u8; SIG_SIZE]) -> Option<Self> {
        Option::from(G2Affine::from_compressed(&bytes)).map(BlsSignature)
    }
}

impl fmt::Debug for BlsSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlsSignature({})", hex::encode(self.to_bytes()))
    }
}

impl Serialize for BlsSignature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_array::serialize(&self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for BlsSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; SIG_SIZE] = hex_array::deserialize(d)?;
        BlsSignature::from_bytes(bytes).ok_or_else(|| serde::de::Error::custom("not a compressed G2 point"))
    }
}

/// Deals a fresh threshold key: `n` shares, any `required` of which sign. Deterministic under a
/// seeded `rng`.
///
/// # Panics
/// Unless `1 <= required <= n` (dealer parameters, checked by the caller).
pub fn deal<R: RngCore + CryptoRng + ?Sized>(
    n: usize,
    required: usize,
    rng: &mut R,
) -> (BlsPublicKeySet, Vec<BlsKeyShare>) {
    let (set, shares) = deal_raw(n, required, rng);
    let shares = shares.into_iter().enumerate().map(|(id, s)| BlsKeyShare::new(id, s)).collect();
    (set, shares)
}

/// The blsttc key set and the shares in party order; shared with [`crate::seal::deal`].
pub(crate) fn deal_raw<R: RngCore + CryptoRng + ?Sized>(
    n: usize,
    required: usize,
    rng: &mut R,
) -> (BlsPublicKeySet, Vec<SecretKeyShare>) {
    assert!(required >= 1 && required <= n, "a key set needs 1 <= required <= n");
    // The secret polynomial zeroizes its coefficients when dropped at the end of this function.
    // `&mut &mut R` is a sized RNG, which blsttc's signature wants.
    let secret = SecretKeySet::random(required - 1, &mut &mut *rng);
    let shares = (0..n).map(|i| secret.secret_key_share(i)).collect();
    let set = BlsPublicKeySet::new(n, required, secret.public_keys())
        .expect("a freshly dealt key set of the requested degree is well formed");
    (set, shares)
}

// ---------------------------------------------------------------------------------------------
// The common coin
// ---------------------------------------------------------------------------------------------

/// The value of a common coin: SHA-256 of the combined signature on the coin's name. No one
/// can predict it before `t + 1` parties release their shares, and everyone computes the same.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CoinValue(#[serde(with = "hex_array")] pub [u8; 32]);

impl CoinValue {
    /// The coin of a combined signature (which the caller has verified).
    pub fn from_signature(sig: &BlsSignature) -> Self {
        CoinValue(Sha256::digest(sig.to_bytes()).into())
    }

    /// One unbiased bit: the lowest bit of the first byte.
    pub fn bit(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// All 256 bits (e.g. to seed a permutation of candidates or a serial number).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CoinValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoinValue({})", hex::encode(self.0))
    }
}

/// This party's share of the coin named `coin_name` (e.g. an encoding of `(instance, round)`).
pub fn coin_share(key: &BlsKeyShare, coin_name: &[u8]) -> BlsSignatureShare {
    key.sign(COIN_DST, coin_name)
}

/// Combines coin shares (optimistically, as [`BlsPublicKeySet::combine`]) into the coin value.
pub fn combine_coin(
    keys: &BlsPublicKeySet,
    coin_name: &[u8],
    shares: &[BlsSignatureShare],
) -> Result<Combined<CoinValue>, CombineError> {
    let combined = keys.combine(COIN_DST, coin_name, shares)?;
    Ok(Combined { value: CoinValue::from_signature(&combined.value), faulty: combined.faulty })
}

// ---------------------------------------------------------------------------------------------
// The cluster's key sets
// ---------------------------------------------------------------------------------------------

/// The public BLS key set of the agreement protocols: the common coin. On load it must fit a
/// `t` with `n > 3t`.
///
/// Votes and echoes need no unique signature and are quorum certificates of the replicas'
/// Ed25519 signatures (`replication::crypto::quorum`), so nothing is dealt for them. Files dealt
/// before that also hold `vote` and `echo` sets; readers ignore them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPublicKeys", into = "RawPublicKeys")]
pub struct BlsPublicKeys {
    /// `t + 1` shares: the common coin.
    pub coin: BlsPublicKeySet,
}

#[derive(Serialize, Deserialize)]
struct RawPublicKeys {
    coin: BlsPublicKeySet,
}

impl From<BlsPublicKeys> for RawPublicKeys {
    fn from(k: BlsPublicKeys) -> Self {
        RawPublicKeys { coin: k.coin }
    }
}

impl TryFrom<RawPublicKeys> for BlsPublicKeys {
    type Error = KeySetError;

    fn try_from(raw: RawPublicKeys) -> Result<Self, KeySetError> {
        let keys = BlsPublicKeys { coin: raw.coin };
        keys.check()?;
        Ok(keys)
    }
}

impl BlsPublicKeys {
    /// The number of parties.
    pub fn n(&self) -> usize {
        self.coin.n()
    }

    /// The number of faults tolerated.
    pub fn t(&self) -> usize {
        self.coin.required() - 1
    }

    /// Checks that the coin's threshold fits a `t` with `n > 3t`.
    pub fn check(&self) -> Result<(), KeySetError> {
        let n = self.coin.n();
        let t = self.coin.required() - 1;
        if n <= 3 * t {
            return Err(KeySetError::Thresholds { what: "coin", n, t });
        }
        Ok(())
    }
}

impl Versioned for BlsPublicKeys {
    const FORMAT: &'static str = "itca.bls-public-keys";
    const VERSION: u32 = 1;
}

/// One replica's secret shares of the coin key and of the threshold-encryption key.
/// Secret: zeroized on drop (each share is), Debug shows only the id.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "RawKeyShares", into = "RawKeyShares")]
pub struct BlsKeyShares {
    pub id: PartyId,
    pub coin: BlsKeyShare,
    pub encryption: EncryptionKeyShare,
}

/// The stored form: `{ "id", "coin", "encryption" }`, each share as hex. The `vote` and `echo`
/// shares of files dealt before quorum certificates ([`BlsPublicKeys`]) are ignored.
#[derive(Serialize, Deserialize)]
struct RawKeyShares {
    id: PartyId,
    #[serde(with = "secret_share_hex")]
    coin: SecretKeyShare,
    #[serde(with = "secret_share_hex")]
    encryption: SecretKeyShare,
}

impl From<BlsKeyShares> for RawKeyShares {
    fn from(k: BlsKeyShares) -> Self {
        RawKeyShares { id: k.id, coin: k.coin.share.clone(), encryption: k.encryption.secret().clone() }
    }
}

impl From<RawKeyShares> for BlsKeyShares {
    fn from(raw: RawKeyShares) -> Self {
        let id = raw.id;
        BlsKeyShares {
            id,
            coin: BlsKeyShare::new(id, raw.coin),
            encryption: EncryptionKeyShare::new(id, raw.encryption),
        }
    }
}

impl BlsKeyShares {
    /// Whether every share belongs to this party and matches the party's public key share in
    /// the corresponding set (the dealer's `verify` command and a replica's start-up check).
    pub fn matches(&self, public: &BlsPublicKeys, encryption: &EncryptionPublicKey) -> bool {
        let same = |share: &BlsKeyShare, set: &BlsPublicKeySet| {
            share.id == self.id && set.public_key_share(self.id) == Some(&share.public_key_share())
        };
        same(&self.coin, &public.coin)
            && self.encryption.id() == self.id
            && encryption.public_key_share(self.id) == Some(&self.encryption.public_key_share())
    }

    /// Whether this party's shares all carry its id (always true for loaded files).
    pub fn ids_consistent(&self) -> bool {
        [self.coin.id, self.encryption.id()].iter().all(|&i| i == self.id)
    }
}

impl fmt::Debug for BlsKeyShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsKeyShares").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Versioned for BlsKeyShares {
    const FORMAT: &'static str = "itca.bls-key-shares";
    const VERSION: u32 = 1;
}

/// Deals the coin key set and the threshold-encryption key for `n` replicas tolerating `t`
/// faults. Deterministic under a seeded `rng`.
///
/// # Panics
/// Unless `n > 3t` (dealer parameters, checked by the caller).
pub fn deal_cluster<R: RngCore + CryptoRng + ?Sized>(
    n: usize,
    t: usize,
    rng: &mut R,
) -> (BlsPublicKeys, EncryptionPublicKey, Vec<BlsKeyShares>) {
    assert!(n > 3 * t, "the cluster needs n > 3t");
    let needed = crate::cluster::thresholds::coin(n, t);
    let (coin, coin_shares) = deal(n, needed, rng);
    let (encryption, encryption_shares) = seal::deal(n, needed, rng);
    let shares = coin_shares
        .into_iter()
        .zip(encryption_shares)
        .enumerate()
        .map(|(id, (coin, encryption))| BlsKeyShares { id, coin, encryption })
        .collect();
    (BlsPublicKeys { coin }, encryption, shares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{from_json, to_json};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const CASES: [(usize, usize); 3] = [(4, 1), (7, 2), (10, 3)];
    const DST: &[u8] = b"itca/test/v1";

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    /// Every subset of `0..n` with `k` elements, in lexicographic order.
    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        fn go(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if cur.len() == k {
                out.push(cur.clone());
                return;
            }
            for i in start..n {
                if n - i < k - cur.len() {
                    break;
                }
                cur.push(i);
                go(i + 1, n, k, cur, out);
                cur.pop();
            }
        }
        let mut out = Vec::new();
        go(0, n, k, &mut Vec::new(), &mut out);
        out
    }

    #[test]
    fn every_required_subset_combines_to_the_same_signature() {
        for (n, t) in CASES {
            use crate::cluster::thresholds::{coin, echo, vote};
            let (coin, vote, echo) = (coin(n, t), vote(n, t), echo(n, t));
            for required in [coin, vote, echo] {
                let (keys, shares) = deal(n, required, &mut rng(n as u64 * 100 + required as u64));
                let msg = b"pre-vote round 3 value 1";
                let sig_shares: Vec<_> = shares.iter().map(|k| k.sign(DST, msg)).collect();
                for s in &sig_shares {
                    assert!(keys.verify_share(DST, msg, s));
                }
                let mut first: Option<BlsSignature> = None;
                for subset in subsets(n, required) {
                    let chosen: Vec<_> = subset.iter().map(|&i| sig_shares[i].clone()).collect();
                    let combined = keys.combine(DST, msg, &chosen).unwrap();
                    assert!(combined.faulty.is_empty());
                    assert!(keys.verify(DST, msg, &combined.value));
                    match &first {
                        None => first = Some(combined.value),
                        Some(sig) => assert_eq!(sig, &combined.value, "n={n} subset {subset:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn coin_values_agree_across_subsets() {
        for (n, t) in CASES {
            let (keys, shares) = deal(n, t + 1, &mut rng(7 + n as u64));
            let name = b"abba/7/round/2";
            let coin_shares: Vec<_> = shares.iter().map(|k| coin_share(k, name)).collect();
            let values: Vec<CoinValue> = subsets(n, t + 1)
                .into_iter()
                .map(|subset| {
                    let chosen: Vec<_> = subset.iter().map(|&i| coin_shares[i].clone()).collect();
                    combine_coin(&keys, name, &chosen).unwrap().value
                })
                .collect();
            assert!(values.windows(2).all(|w| w[0] == w[1]));
            // The coin is a hash of the signature, and another name gives another coin.
            let sig = keys.combine(COIN_DST, name, &coin_shares).unwrap().value;
            assert_eq!(CoinValue::from_signature(&sig), values[0]);
            let other: Vec<_> = shares.iter().map(|k| coin_share(k, b"abba/7/round/3")).collect();
            assert_ne!(combine_coin(&keys, b"abba/7/round/3", &other).unwrap().value, values[0]);
        }
    }

    #[test]
    fn coin_bits_are_not_constant() {
        let (keys, shares) = deal(4, 2, &mut rng(11));
        let bits: Vec<bool> = (0u32..32)
            .map(|round| {
                let name = round.to_be_bytes();
                let s: Vec<_> = shares.iter().map(|k| coin_share(k, &name)).collect();
                combine_coin(&keys, &name, &s).unwrap().value.bit()
            })
            .collect();
        assert!(bits.contains(&true) && bits.contains(&false));
    }

    #[test]
    fn a_wrong_share_is_detected_named_and_excluded() {
        for (n, t) in CASES {
            let required = n - t;
            let (keys, shares) = deal(n, required, &mut rng(21 + n as u64));
            let msg = b"main-vote";
            let mut sig_shares: Vec<_> = shares.iter().map(|k| k.sign(DST, msg)).collect();
            let expected = keys.combine(DST, msg, &sig_shares).unwrap().value;
            // Party 0 signs another message, party 1 (if t > 1) signs under another tag.
            sig_shares[0] = shares[0].sign(DST, b"something else");
            let mut bad = vec![0];
            if t > 1 {
                sig_shares[1] = shares[1].sign(b"itca/other/v1", msg);
                bad.push(1);
            }
            for &b in &bad {
                assert!(!keys.verify_share(DST, msg, &sig_shares[b]));
            }
            let combined = keys.combine(DST, msg, &sig_shares).unwrap();
            assert_eq!(combined.value, expected);
            assert_eq!(combined.faulty, bad);
            // With t + 1 bad shares among n only n - t - 1 good remain: not enough.
            for (i, share) in sig_shares.iter_mut().enumerate().take(t + 1) {
                *share = shares[i].sign(DST, b"wrong");
            }
            match keys.combine(DST, msg, &sig_shares) {
                Err(CombineError::NotEnoughValidShares { needed, valid, faulty, unproven }) => {
                    assert_eq!((needed, valid), (required, n - t - 1));
                    assert_eq!(faulty, (0..=t).collect::<Vec<_>>());
                    assert!(unproven.is_empty());
                }
                other => panic!("expected NotEnoughValidShares, got {other:?}"),
            }
        }
    }

    #[test]
    fn remembered_hashes_equal_fresh_ones_and_their_memory_is_bounded() {
        for i in 0..(3 * RECENT_HASHES_PER_GENERATION) {
            let msg = i.to_be_bytes();
            let first = message_hash(b"itca/test/v1", &msg).unwrap();
            let bytes = signed_bytes(b"itca/test/v1", &msg).unwrap();
            let remembered = RECENT_HASHES.lock().unwrap().get(&RecentHashes::key(&bytes));
            assert_eq!(remembered, Some(first), "the hash just computed is remembered");
            let again = message_hash(b"itca/test/v1", &msg).unwrap();
            let fresh = blsttc::hash_g2(&bytes);
            assert!(first == fresh && again == fresh);
        }
        let recent = RECENT_HASHES.lock().unwrap();
        assert!(recent.current.len() + recent.previous.len() <= 2 * RECENT_HASHES_PER_GENERATION);
    }

    #[test]
    fn shares_and_combined_signatures_are_blsttcs_own() {
        // Signing and combining work on the curve points directly; the results must be exactly
        // what blsttc computes and accepts for the same key and signed bytes.
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let secret = SecretKeySet::random(2, &mut rng);
        let keys = BlsPublicKeySet::new(4, 3, secret.public_keys()).unwrap();
        let (dst, msg) = (b"itca/test/v1".as_slice(), b"interop".as_slice());
        let hash = message_hash(dst, msg).unwrap();
        let shares: Vec<BlsSignatureShare> =
            (0..4).map(|i| BlsKeyShare::new(i, secret.secret_key_share(i)).sign(dst, msg)).collect();
        for (i, share) in shares.iter().enumerate() {
            assert_eq!(share.to_bytes(), secret.secret_key_share(i).sign_g2(hash).to_bytes());
        }
        let combined = keys.combine(dst, msg, &shares[1..]).unwrap().value;
        let theirs = blsttc::Signature::from_bytes(combined.to_bytes()).unwrap();
        assert!(keys.public_key().verify_g2(&theirs, hash));
        assert_eq!(combined.to_bytes(), secret.secret_key().sign_g2(hash).to_bytes());
    }

    #[test]
    fn a_share_signed_under_another_dst_does_not_verify() {
        let (keys, shares) = deal(4, 2, &mut rng(31));
        let share = shares[2].sign(b"itca/echo/v1", b"m");
        assert!(keys.verify_share(b"itca/echo/v1", b"m", &share));
        assert!(!keys.verify_share(b"itca/vote/v1", b"m", &share));
        // The length prefix keeps (dst, msg) pairs apart even when their concatenation agrees.
        let split = shares[2].sign(b"itca/a", b"bc");
        assert!(!keys.verify_share(b"itca/ab", b"c", &split));
        let sigs: Vec<_> = shares.iter().map(|k| k.sign(b"itca/echo/v1", b"m")).collect();
        let sig = keys.combine(b"itca/echo/v1", b"m", &sigs).unwrap().value;
        assert!(!keys.verify(b"itca/vote/v1", b"m", &sig));
        assert!(!keys.verify(b"itca/echo/v1", b"m2", &sig));
    }

    #[test]
    fn out_of_range_and_duplicate_ids_do_not_count() {
        let (keys, shares) = deal(4, 3, &mut rng(41));
        let msg = b"x";
        let s0 = shares[0].sign(DST, msg);
        let mut stranger = shares[1].sign(DST, msg);
        stranger.id = 4;
        assert!(!keys.verify_share(DST, msg, &stranger));
        let given = vec![s0.clone(), s0.clone(), stranger, shares[1].sign(DST, msg)];
        assert_eq!(keys.combine(DST, msg, &given), Err(CombineError::NotEnoughShares { needed: 3, got: 2 }));
        let mut enough = given;
        enough.push(shares[3].sign(DST, msg));
        let combined = keys.combine(DST, msg, &enough).unwrap();
        assert!(keys.verify(DST, msg, &combined.value));
        assert!(combined.faulty.is_empty());
    }

    #[test]
    fn a_share_claiming_another_partys_id_is_named() {
        let (keys, shares) = deal(4, 2, &mut rng(43));
        let msg = b"m";
        let mut forged = shares[3].sign(DST, msg);
        forged.id = 0;
        let given = vec![forged, shares[1].sign(DST, msg), shares[2].sign(DST, msg)];
        let combined = keys.combine(DST, msg, &given).unwrap();
        assert_eq!(combined.faulty, vec![0]);
        assert!(keys.verify(DST, msg, &combined.value));
    }

    #[test]
    fn deal_is_deterministic_under_a_seeded_rng() {
        let (a, sa) = deal(4, 2, &mut rng(5));
        let (b, sb) = deal(4, 2, &mut rng(5));
        let (c, _) = deal(4, 2, &mut rng(6));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(sa[3].sign(DST, b"m"), sb[3].sign(DST, b"m"));
        let (pa, ea, _) = deal_cluster(4, 1, &mut rng(9));
        let (pb, eb, _) = deal_cluster(4, 1, &mut rng(9));
        assert_eq!((pa, ea), (pb, eb));
    }

    #[test]
    fn cluster_key_sets_have_the_design_thresholds_and_shares_match() {
        for (n, t) in CASES {
            let (public, encryption, shares) = deal_cluster(n, t, &mut rng(51 + n as u64));
            assert_eq!(public.coin.required(), t + 1);
            assert_eq!(encryption.required(), t + 1);
            assert_eq!((public.n(), public.t()), (n, t));
            assert_eq!(shares.len(), n);
            for (id, s) in shares.iter().enumerate() {
                assert_eq!(s.id, id);
                assert!(s.ids_consistent());
                assert!(s.matches(&public, &encryption));
            }
            // Another cluster's shares, or another party's, do not match.
            let (other, other_enc, other_shares) = deal_cluster(n, t, &mut rng(99));
            assert!(!shares[0].matches(&other, &other_enc));
            assert!(!other_shares[0].matches(&public, &encryption));
            let mut swapped = shares[1].clone();
            swapped.id = 0;
            assert!(!swapped.matches(&public, &encryption));
        }
    }

    #[test]
    fn public_keys_round_trip_through_json() {
        let (public, _, shares) = deal_cluster(7, 2, &mut rng(61));
        let text = to_json(&public);
        assert!(text.contains("\"format\": \"itca.bls-public-keys\""));
        let back: BlsPublicKeys = from_json(&text).unwrap();
        assert_eq!(back, public);
        // The loaded set verifies what the original signed.
        let sigs: Vec<_> = shares.iter().map(|s| s.coin.sign(DST, b"m")).collect();
        let sig = public.coin.combine(DST, b"m", &sigs).unwrap().value;
        assert!(back.coin.verify(DST, b"m", &sig));
    }

    #[test]
    fn key_shares_round_trip_through_json() {
        let (public, encryption, shares) = deal_cluster(4, 1, &mut rng(62));
        let text = to_json(&shares[2]);
        assert!(text.contains("\"format\": \"itca.bls-key-shares\""));
        let back: BlsKeyShares = from_json(&text).unwrap();
        assert_eq!(back.id, 2);
        assert!(back.matches(&public, &encryption));
        assert_eq!(back.coin.sign(DST, b"m"), shares[2].coin.sign(DST, b"m"));
    }

    #[test]
    fn files_dealt_with_vote_and_echo_sets_still_load_and_those_sets_are_ignored() {
        let (public, encryption, shares) = deal_cluster(4, 1, &mut rng(64));
        let (other, _, other_shares) = deal_cluster(4, 1, &mut rng(65));
        // The older format: the same envelope with two more key sets and two more shares.
        let with_more = |text: zeroize::Zeroizing<String>, extra: serde_json::Value| {
            let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
            let data = file["data"].as_object_mut().unwrap();
            for field in ["vote", "echo"] {
                assert!(data.insert(field.to_string(), extra.clone()).is_none());
            }
            file.to_string()
        };
        let old_public = with_more(to_json(&public), serde_json::to_value(&other.coin).unwrap());
        let back: BlsPublicKeys = from_json(&old_public).unwrap();
        assert_eq!(back, public);
        let share = serde_json::to_value(&other_shares[1]).unwrap()["coin"].clone();
        let old_shares = with_more(to_json(&shares[1]), share);
        let back: BlsKeyShares = from_json(&old_shares).unwrap();
        assert!(back.matches(&public, &encryption));
    }

    #[test]
    fn signatures_and_shares_round_trip_through_serde() {
        let (keys, shares) = deal(4, 2, &mut rng(63));
        let share = shares[1].sign(DST, b"m");
        let text = serde_json::to_string(&share).unwrap();
        let back: BlsSignatureShare = serde_json::from_str(&text).unwrap();
        assert_eq!(back, share);
        let sigs: Vec<_> = shares.iter().map(|k| k.sign(DST, b"m")).collect();
        let sig = keys.combine(DST, b"m", &sigs).unwrap().value;
        let text = serde_json::to_string(&sig).unwrap();
        assert_eq!(text, format!("\"{}\"", hex::encode(sig.to_bytes())));
        assert_eq!(serde_json::from_str::<BlsSignature>(&text).unwrap(), sig);
        let coin = CoinValue::from_signature(&sig);
        let text = serde_json::to_string(&coin).unwrap();
        assert_eq!(serde_json::from_str::<CoinValue>(&text).unwrap(), coin);
        let text = serde_json::to_string(&keys).unwrap();
        assert_eq!(serde_json::from_str::<BlsPublicKeySet>(&text).unwrap(), keys);
    }

    #[test]
    fn malformed_key_sets_and_points_are_refused_on_load() {
        let (public, _, _) = deal_cluster(4, 1, &mut rng(64));
        let json = serde_json::to_value(&public).unwrap();
        // A coin set needing n - t shares fits no t with n > 3t.
        let mut too_high = json.clone();
        too_high["coin"] = serde_json::to_value(deal(4, 3, &mut rng(66)).0).unwrap();
        assert!(serde_json::from_value::<BlsPublicKeys>(too_high).is_err());
        // `required` must equal the commitment's length.
        let mut wrong = json.clone();
        wrong["coin"]["required"] = 3.into();
        assert!(serde_json::from_value::<BlsPublicKeys>(wrong).is_err());
        // Truncated, extended or empty commitments.
        let set_hex = json["coin"]["set"].as_str().unwrap().to_string();
        for bad in [&set_hex[..set_hex.len() - 2], &format!("{set_hex}00"), ""] {
            let mut raw = json["coin"].clone();
            raw["set"] = bad.into();
            assert!(serde_json::from_value::<BlsPublicKeySet>(raw).is_err(), "{bad}");
        }
        // An identity leading coefficient would lower the threshold.
        let identity = format!("c0{}", "00".repeat(PK_SIZE - 1));
        let mut raw = json["coin"].clone();
        raw["set"] = format!("{}{}", &set_hex[..PK_SIZE * 2], identity).into();
        assert!(serde_json::from_value::<BlsPublicKeySet>(raw).is_err());
        // A signature that is not a curve point.
        let not_point = format!("\"{}\"", "ff".repeat(SIG_SIZE));
        assert!(serde_json::from_str::<BlsSignature>(&not_point).is_err());
        let share = format!("{{\"id\":0,\"share\":{not_point}}}");
        assert!(serde_json::from_str::<BlsSignatureShare>(&share).is_err());
    }

    #[test]
    fn debug_of_secret_types_shows_no_key_material() {
        let (_, _, shares) = deal_cluster(4, 1, &mut rng(65));
        let text = to_json(&shares[0]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let secrets: Vec<String> =
            ["coin", "encryption"].iter().map(|k| value["data"][k].as_str().unwrap().to_string()).collect();
        let debug = format!("{:?} {:?} {:?}", shares[0], shares[0].coin, shares[0].encryption);
        for secret in &secrets {
            assert_eq!(secret.len(), 2 * SK_SIZE);
            assert!(!debug.contains(secret.as_str()), "{debug}");
            assert!(!debug.contains(&secret[..16]), "{debug}");
        }
        assert!(debug.contains("id: 0"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(12))]

            #[test]
            fn any_message_and_tag_sign_and_combine(
                msg in proptest::collection::vec(any::<u8>(), 0..300),
                dst in proptest::collection::vec(any::<u8>(), 0..40),
                seed in any::<u64>(),
            ) {
                let (keys, shares) = deal(4, 3, &mut rng(seed));
                let sigs: Vec<_> = shares.iter().rev().map(|k| k.sign(&dst, &msg)).collect();
                let combined = keys.combine(&dst, &msg, &sigs).unwrap();
                prop_assert!(combined.faulty.is_empty());
                prop_assert!(keys.verify(&dst, &msg, &combined.value));
                let mut other = msg.clone();
                other.push(0);
                prop_assert!(!keys.verify(&dst, &other, &combined.value));
            }
        }
    }
}
