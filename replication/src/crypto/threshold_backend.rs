//! The real cryptography: the protocols' crypto traits implemented over the `threshold` crate
//! (BLS12-381 threshold signatures and coin, threshold encryption of sealed requests, Ed25519
//! replica keys). Shares and signatures travel as their compressed curve points; anything that
//! does not parse is simply invalid (and so attributed to its sender by the protocols).

use super::verified::VerifiedCache;
use super::*;
use threshold::bls::{BlsKeyShare, BlsKeyShares, BlsPublicKeySet, BlsPublicKeys, BlsSignature, BlsSignatureShare};
use threshold::seal::{self, EncryptionKeyShare, EncryptionPublicKey, SealError, SealedRequest};

fn to_bls_share(share: &SignatureShare) -> Option<BlsSignatureShare> {
    BlsSignatureShare::from_bytes(share.id, share.bytes.as_slice().try_into().ok()?)
}

fn to_bls_signature(signature: &Signature) -> Option<BlsSignature> {
    BlsSignature::from_bytes(signature.0.as_slice().try_into().ok()?)
}

/// A BLS threshold key set as a [`ThresholdPublic`]. Combined signatures that verified are
/// remembered: the same justification travels in many votes, and a pairing costs about a
/// millisecond.
pub struct BlsPublic {
    set: BlsPublicKeySet,
    verified: VerifiedCache,
}

impl BlsPublic {
    pub fn new(set: BlsPublicKeySet) -> Self {
        BlsPublic { set, verified: VerifiedCache::default() }
    }
}

impl ThresholdPublic for BlsPublic {
    fn required(&self) -> usize {
        self.set.required()
    }

    fn verify_share(&self, dst: &[u8], msg: &[u8], share: &SignatureShare) -> bool {
        to_bls_share(share).is_some_and(|s| self.set.verify_share(dst, msg, &s))
    }

    fn verify(&self, dst: &[u8], msg: &[u8], signature: &Signature) -> bool {
        let key = VerifiedCache::key(dst, msg, signature);
        if self.verified.contains(&key) {
            return true;
        }
        let ok = to_bls_signature(signature).is_some_and(|s| self.set.verify(dst, msg, &s));
        if ok {
            self.verified.remember(key);
        }
        ok
    }

    fn combine(&self, dst: &[u8], msg: &[u8], shares: &[SignatureShare]) -> Result<Combined<Signature>, CombineError> {
        // Shares that do not even parse are faulty before any curve arithmetic.
        let (parsed, unparsable) = parse_shares(shares, |share| (share.id, to_bls_share(share)));
        match self.set.combine(dst, msg, &parsed) {
            Ok(c) => {
                let mut faulty = unparsable;
                faulty.extend(c.faulty);
                let signature = Signature(c.value.to_bytes().to_vec());
                // Combining verified it: the same signature coming back in a peer's message
                // needs no second pairing.
                self.verified.remember(VerifiedCache::key(dst, msg, &signature));
                Ok(Combined { value: signature, faulty })
            }
            Err(threshold::combine::CombineError::NotEnoughShares { needed, got }) => {
                if unparsable.is_empty() {
                    Err(CombineError::NotEnoughShares { needed, got })
                } else {
                    Err(CombineError::NotEnoughValidShares {
                        needed,
                        valid: got,
                        faulty: unparsable,
                        unproven: Vec::new(),
                    })
                }
            }
            Err(threshold::combine::CombineError::NotEnoughValidShares { needed, valid, faulty, unproven }) => {
                let mut all = unparsable;
                all.extend(faulty);
                Err(CombineError::NotEnoughValidShares { needed, valid, faulty: all, unproven })
            }
        }
    }
}

/// One party's BLS key share as a [`ThresholdSigner`].
pub struct BlsSigner(pub BlsKeyShare);

impl ThresholdSigner for BlsSigner {
    fn sign(&self, dst: &[u8], msg: &[u8]) -> SignatureShare {
        let share = self.0.sign(dst, msg);
        SignatureShare { id: share.id, bytes: share.to_bytes().to_vec() }
    }
}

/// Sealed requests travel as their `wire` encoding.
pub fn decode_sealed(ciphertext: &[u8]) -> Option<SealedRequest> {
    crate::wire::decode(0, ciphertext).ok()
}

fn to_decryption_share(share: &DecryptionShare) -> Option<seal::DecryptionShare> {
    let bytes: [u8; 48] = share.bytes.as_slice().try_into().ok()?;
    let point = blsttc::DecryptionShare::from_bytes(bytes).ok()?;
    Some(seal::DecryptionShare { id: share.id, share: point })
}

pub struct SealPublic(pub EncryptionPublicKey);

impl DecryptionPublic for SealPublic {
    fn validate(&self, ciphertext: &[u8]) -> bool {
        decode_sealed(ciphertext).is_some_and(|r| r.validate().is_ok())
    }

    fn verify_share(&self, ciphertext: &[u8], share: &DecryptionShare) -> bool {
        match (decode_sealed(ciphertext), to_decryption_share(share)) {
            (Some(request), Some(share)) => self.0.verify_decryption_share(&request, &share),
            _ => false,
        }
    }

    fn open(&self, ciphertext: &[u8], shares: &[DecryptionShare]) -> Result<Combined<Vec<u8>>, CombineError> {
        let needed = self.0.required();
        let Some(request) = decode_sealed(ciphertext) else {
            return Err(CombineError::NotEnoughValidShares {
                needed,
                valid: 0,
                faulty: Vec::new(),
                unproven: Vec::new(),
            });
        };
        let (parsed, unparsable) = parse_shares(shares, |share| (share.id, to_decryption_share(share)));
        match self.0.open(&request, &parsed) {
            Ok(c) => {
                let mut faulty = unparsable;
                faulty.extend(c.faulty);
                Ok(Combined { value: c.value.to_vec(), faulty })
            }
            Err(SealError::Combine(threshold::combine::CombineError::NotEnoughShares { got, .. }))
                if unparsable.is_empty() =>
            {
                Err(CombineError::NotEnoughShares { needed, got })
            }
            Err(SealError::Combine(threshold::combine::CombineError::NotEnoughValidShares {
                valid,
                faulty,
                unproven,
                ..
            })) => {
                let mut all = unparsable;
                all.extend(faulty);
                Err(CombineError::NotEnoughValidShares { needed, valid, faulty: all, unproven })
            }
            // Undecryptable (the client malformed it) or invalid: no replica share is to blame
            // beyond those found bad on the way.
            Err(SealError::Undecryptable { faulty }) => {
                let mut all = unparsable;
                all.extend(faulty);
                Err(CombineError::NotEnoughValidShares { needed, valid: 0, faulty: all, unproven: Vec::new() })
            }
            Err(_) => {
                Err(CombineError::NotEnoughValidShares { needed, valid: 0, faulty: unparsable, unproven: Vec::new() })
            }
        }
    }
}

pub struct SealSecret(pub EncryptionKeyShare);

impl DecryptionSecret for SealSecret {
    fn share(&self, ciphertext: &[u8]) -> Option<DecryptionShare> {
        let request = decode_sealed(ciphertext)?;
        let share = self.0.decryption_share(&request).ok()?;
        Some(DecryptionShare { id: share.id, bytes: share.share.to_bytes().to_vec() })
    }
}

/// The replicas' Ed25519 public keys, by party.
pub struct Ed25519Verifiers(pub Vec<threshold::ed25519::VerifyingKey>);

impl IndividualVerifier for Ed25519Verifiers {
    fn verify(&self, party: PartyId, msg: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.0.get(party).is_some_and(|key| key.verify(msg, &threshold::ed25519::Signature::from_bytes(&bytes)))
    }
}

pub struct Ed25519Signer(pub threshold::ed25519::SigningKey);

impl IndividualSigner for Ed25519Signer {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg).to_bytes().to_vec()
    }
}

/// The protocols' public keys from the dealt cluster keys.
pub fn public_keys(
    t: usize,
    bls: &BlsPublicKeys,
    encryption: &EncryptionPublicKey,
    replicas: Vec<threshold::ed25519::VerifyingKey>,
) -> PublicKeys {
    let n = bls.coin.n();
    let replicas: Arc<dyn IndividualVerifier> = Arc::new(Ed25519Verifiers(replicas));
    let QuorumSchemes { pre_process, vote, echo } = quorum_public(n, t, &replicas);
    PublicKeys {
        n,
        t,
        coin: Arc::new(BlsPublic::new(bls.coin.clone())),
        pre_process,
        vote,
        echo,
        encryption: Arc::new(SealPublic(encryption.clone())),
        replicas,
    }
}

/// One replica's secrets from its dealt shares and Ed25519 key.
pub fn secret_keys(shares: &BlsKeyShares, signing: threshold::ed25519::SigningKey) -> SecretKeys {
    let signing: Arc<dyn IndividualSigner> = Arc::new(Ed25519Signer(signing));
    let quorum = quorum_signer(shares.id, &signing);
    SecretKeys {
        id: shares.id,
        coin: Arc::new(BlsSigner(shares.coin.clone())),
        pre_process: quorum.clone(),
        vote: quorum.clone(),
        echo: quorum,
        decryption: Arc::new(SealSecret(shares.encryption.clone())),
        signing,
    }
}

/// A whole cluster dealt in memory (tests and the simulator).
pub struct RealCluster {
    t: usize,
    bls: BlsPublicKeys,
    replicas: Vec<threshold::ed25519::VerifyingKey>,
    pub secrets: Vec<SecretKeys>,
    encryption: EncryptionPublicKey,
}

impl RealCluster {
    pub fn deal<R: rand::RngCore + rand::CryptoRng>(n: usize, t: usize, rng: &mut R) -> Self {
        let (bls, encryption, shares) = threshold::bls::deal_cluster(n, t, rng);
        let signing: Vec<threshold::ed25519::SigningKey> =
            (0..n).map(|_| threshold::ed25519::SigningKey::generate(rng)).collect();
        let replicas = signing.iter().map(|k| k.verifying_key()).collect();
        let secrets = shares.iter().zip(signing).map(|(s, k)| secret_keys(s, k)).collect();
        RealCluster { t, bls, replicas, secrets, encryption }
    }

    /// Fresh public keys (with their own verification cache, as a separate process has).
    pub fn public(&self) -> PublicKeys {
        public_keys(self.t, &self.bls, &self.encryption, self.replicas.clone())
    }

    pub fn network_info(&self, id: PartyId) -> NetworkInfo {
        NetworkInfo { id, public: self.public(), secret: self.secrets[id].clone() }
    }

    /// Seals a request as a client would; `None` if it is too long to seal.
    pub fn seal<R: rand::RngCore + rand::CryptoRng>(
        &self,
        label: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Option<Vec<u8>> {
        let sealed = seal::seal(&self.encryption, label, plaintext, rng).ok()?;
        crate::wire::encode(&sealed).ok()
    }
}

/// Parses wire shares, setting apart the ids of those that do not parse (faulty before any curve
/// arithmetic).
fn parse_shares<S, T>(shares: &[S], parse: impl Fn(&S) -> (PartyId, Option<T>)) -> (Vec<T>, Vec<PartyId>) {
    let mut parsed = Vec::with_capacity(shares.len());
    let mut unparsable = Vec::new();
    for share in shares {
        match parse(share) {
            (_, Some(s)) => parsed.push(s),
            (id, None) => unparsable.push(id),
        }
    }
    (parsed, unparsable)
}
