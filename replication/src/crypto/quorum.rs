//! Quorum certificates: a statement signed by `required` distinct replicas with their individual
//! (Ed25519) keys, as a [`ThresholdPublic`]. Used where a threshold signature only has to prove
//! that enough parties said something, not be unique: consistent broadcast's echoes and binary
//! agreement's pre-processing justifications, votes and decisions. The common coin needs a
//! unique, unpredictable value and stays a BLS threshold signature.
//!
//! Why not BLS there too: at the cluster sizes this CA runs (n = 4 to 10), signing a BLS share
//! (a G2 multiplication) and checking a combination (a pairing check) cost about 0.25 and 1 ms,
//! an Ed25519 signature and verification about 0.02 and 0.05 ms, so even a quorum of seven
//! verifications is cheaper than one pairing. Every agreement round pays a dozen of these per
//! replica, and on the 2-core benchmark machine that was a tenth of the CPU at saturation. The
//! price is size: `required` signatures instead of one 96-byte point.
//!
//! Encoding of a certificate: exactly `required` entries in strictly increasing party order, each
//! `party (u16, big-endian) || length (u16, big-endian) || signature`. Anything else is invalid.

use super::verified::VerifiedCache;
use super::{
    CombineError, Combined, IndividualSigner, IndividualVerifier, Signature, SignatureShare, ThresholdPublic,
    ThresholdSigner, distinct_by_party,
};
use crate::PartyId;
use std::sync::Arc;

/// First field of every statement a share signs, so a share is never a valid signature on
/// anything else the replica key signs (batches use their own context).
const CONTEXT: &[u8] = b"replication/quorum-share/v1";

fn statement(dst: &[u8], msg: &[u8]) -> Vec<u8> {
    crate::id::statement(&[CONTEXT, dst, msg])
}

/// The public side: the replicas' individual keys and how many must sign.
pub struct QuorumPublic {
    n: usize,
    required: usize,
    replicas: Arc<dyn IndividualVerifier>,
    verified: VerifiedCache,
}

impl QuorumPublic {
    pub fn new(n: usize, required: usize, replicas: Arc<dyn IndividualVerifier>) -> Self {
        QuorumPublic { n, required, replicas, verified: VerifiedCache::default() }
    }

    fn share_valid(&self, statement: &[u8], share: &SignatureShare) -> bool {
        share.id < self.n && self.replicas.verify(share.id, statement, &share.bytes)
    }
}

/// The entries of an encoded certificate, or `None` if it is malformed.
fn decode(bytes: &[u8]) -> Option<Vec<(PartyId, &[u8])>> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at_checked(4)?;
        let party = u16::from_be_bytes([head[0], head[1]]) as PartyId;
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let (signature, tail) = tail.split_at_checked(len)?;
        if entries.last().is_some_and(|(last, _)| *last >= party) {
            return None;
        }
        entries.push((party, signature));
        rest = tail;
    }
    Some(entries)
}

/// `None` only if a party id or a signature does not fit its `u16` (never for verified shares:
/// parties are below n, at most 64, and signatures are 64 bytes).
fn encode(shares: &[&SignatureShare]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for share in shares {
        out.extend_from_slice(&u16::try_from(share.id).ok()?.to_be_bytes());
        out.extend_from_slice(&u16::try_from(share.bytes.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&share.bytes);
    }
    Some(out)
}

impl ThresholdPublic for QuorumPublic {
    fn required(&self) -> usize {
        self.required
    }

    fn verify_share(&self, dst: &[u8], msg: &[u8], share: &SignatureShare) -> bool {
        self.share_valid(&statement(dst, msg), share)
    }

    fn verify(&self, dst: &[u8], msg: &[u8], signature: &Signature) -> bool {
        let key = VerifiedCache::key(dst, msg, signature);
        if self.verified.contains(&key) {
            return true;
        }
        let statement = statement(dst, msg);
        let ok = decode(&signature.0).is_some_and(|entries| {
            entries.len() == self.required
                && entries.iter().all(|(party, sig)| *party < self.n && self.replicas.verify(*party, &statement, sig))
        });
        if ok {
            self.verified.remember(key);
        }
        ok
    }

    /// Checks shares in party order only until `required` are valid, so an honest run costs
    /// exactly `required` verifications.
    fn combine(&self, dst: &[u8], msg: &[u8], shares: &[SignatureShare]) -> Result<Combined<Signature>, CombineError> {
        let mut distinct = distinct_by_party(shares, |s| s.id);
        distinct.retain(|s| s.id < self.n);
        if distinct.len() < self.required {
            return Err(CombineError::NotEnoughShares { needed: self.required, got: distinct.len() });
        }
        distinct.sort_by_key(|s| s.id);
        let statement = statement(dst, msg);
        let mut valid = Vec::with_capacity(self.required);
        let mut faulty = Vec::new();
        for share in distinct {
            if valid.len() == self.required {
                break;
            }
            if self.share_valid(&statement, share) {
                valid.push(share);
            } else {
                faulty.push(share.id);
            }
        }
        if valid.len() < self.required {
            return Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: valid.len(),
                faulty,
                unproven: Vec::new(),
            });
        }
        // Cannot fail for shares that verified (see `encode`); if it did, nobody is to blame.
        let Some(encoded) = encode(&valid) else {
            return Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: 0,
                faulty,
                unproven: Vec::new(),
            });
        };
        let signature = Signature(encoded);
        self.verified.remember(VerifiedCache::key(dst, msg, &signature));
        Ok(Combined { value: signature, faulty })
    }
}

/// One replica's signer: its individual key over the quorum statement.
pub struct QuorumSigner {
    pub id: PartyId,
    pub signing: Arc<dyn IndividualSigner>,
}

impl ThresholdSigner for QuorumSigner {
    fn sign(&self, dst: &[u8], msg: &[u8]) -> SignatureShare {
        SignatureShare { id: self.id, bytes: self.signing.sign(&statement(dst, msg)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::threshold_backend::{Ed25519Signer, Ed25519Verifiers};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const DST: &[u8] = b"test-dst";

    /// n = 4 replicas with test Ed25519 keys: the public side needing `required`, and signers.
    fn cluster(required: usize) -> (QuorumPublic, Vec<QuorumSigner>) {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keys: Vec<_> = (0..4).map(|_| threshold::ed25519::SigningKey::generate(&mut rng)).collect();
        let verifiers = Arc::new(Ed25519Verifiers(keys.iter().map(|k| k.verifying_key()).collect()));
        let signers = keys
            .into_iter()
            .enumerate()
            .map(|(id, k)| QuorumSigner { id, signing: Arc::new(Ed25519Signer(k)) })
            .collect();
        (QuorumPublic::new(4, required, verifiers), signers)
    }

    fn shares(signers: &[QuorumSigner], msg: &[u8]) -> Vec<SignatureShare> {
        signers.iter().map(|s| s.sign(DST, msg)).collect()
    }

    fn encode_ok(shares: &[&SignatureShare]) -> Vec<u8> {
        encode(shares).unwrap()
    }

    fn forged(id: PartyId) -> SignatureShare {
        SignatureShare { id, bytes: vec![7; 64] }
    }

    #[test]
    fn an_honest_quorum_combines_into_a_certificate_of_exactly_the_required_signatures() {
        let (public, signers) = cluster(3);
        let all = shares(&signers, b"m");
        assert!(all.iter().all(|s| public.verify_share(DST, b"m", s)));
        let combined = public.combine(DST, b"m", &all).unwrap();
        assert!(combined.faulty.is_empty());
        assert_eq!(decode(&combined.value.0).unwrap().len(), 3);
        // A fresh verifier (no memory of the combination) accepts it too.
        let (fresh, _) = cluster(3);
        assert!(fresh.verify(DST, b"m", &combined.value));
    }

    #[test]
    fn a_certificate_holds_only_for_its_own_statement_and_tag() {
        let (public, signers) = cluster(3);
        let sig = public.combine(DST, b"m", &shares(&signers, b"m")).unwrap().value;
        assert!(!public.verify(DST, b"other", &sig));
        assert!(!public.verify(b"other-dst", b"m", &sig));
        let share = signers[0].sign(DST, b"m");
        assert!(!public.verify_share(DST, b"other", &share));
        // A share is not the replica's signature on the bare message (batches sign their own
        // statements): the context keeps the two apart.
        assert!(!public.replicas.verify(0, b"m", &share.bytes));
    }

    #[test]
    fn too_few_distinct_shares_do_not_combine_however_often_one_is_repeated() {
        let (public, signers) = cluster(3);
        let one = signers[1].sign(DST, b"m");
        let two = signers[2].sign(DST, b"m");
        let err = public.combine(DST, b"m", &[one.clone(), one, two]).unwrap_err();
        assert_eq!(err, CombineError::NotEnoughShares { needed: 3, got: 2 });
    }

    #[test]
    fn a_forged_share_is_named_and_the_honest_ones_still_combine() {
        let (public, signers) = cluster(3);
        let mut all = shares(&signers, b"m");
        all[0] = forged(0);
        assert!(!public.verify_share(DST, b"m", &all[0]));
        let combined = public.combine(DST, b"m", &all).unwrap();
        assert_eq!(combined.faulty, vec![0]);
        assert!(public.verify(DST, b"m", &combined.value));
    }

    #[test]
    fn with_too_many_forged_shares_combining_fails_and_names_them() {
        let (public, signers) = cluster(3);
        let mut all = shares(&signers, b"m");
        all[1] = forged(1);
        all[3] = SignatureShare { id: 3, bytes: signers[3].sign(DST, b"other").bytes };
        let err = public.combine(DST, b"m", &all).unwrap_err();
        assert_eq!(
            err,
            CombineError::NotEnoughValidShares { needed: 3, valid: 2, faulty: vec![1, 3], unproven: Vec::new() }
        );
    }

    #[test]
    fn a_share_claiming_a_party_outside_the_cluster_counts_for_nothing() {
        let (public, signers) = cluster(3);
        let mut all = shares(&signers, b"m")[..2].to_vec();
        all.push(SignatureShare { id: 4, bytes: signers[3].sign(DST, b"m").bytes });
        assert!(!public.verify_share(DST, b"m", &all[2]));
        assert_eq!(public.combine(DST, b"m", &all).unwrap_err(), CombineError::NotEnoughShares { needed: 3, got: 2 });
    }

    #[test]
    fn certificates_with_too_few_or_too_many_or_repeated_signers_are_invalid() {
        let (public, signers) = cluster(3);
        let all = shares(&signers, b"m");
        let refs: Vec<&SignatureShare> = all.iter().collect();
        assert!(public.verify(DST, b"m", &Signature(encode_ok(&refs[..3]))));
        assert!(!public.verify(DST, b"m", &Signature(encode_ok(&refs[..2]))));
        assert!(!public.verify(DST, b"m", &Signature(encode_ok(&refs))));
        assert!(!public.verify(DST, b"m", &Signature(encode_ok(&[refs[0], refs[0], refs[1]]))));
        assert!(!public.verify(DST, b"m", &Signature(encode_ok(&[refs[1], refs[0], refs[2]]))));
        assert!(!public.verify(DST, b"m", &Signature(Vec::new())));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Changing, cutting or extending a valid certificate anywhere leaves nothing valid.
        #[test]
        fn any_change_to_a_valid_certificate_makes_it_invalid(
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            cut in any::<prop::sample::Index>(),
            extra in proptest::collection::vec(any::<u8>(), 1..70),
        ) {
            let (public, signers) = cluster(3);
            let sig = public.combine(DST, b"m", &shares(&signers, b"m")).unwrap().value;
            let (fresh, _) = cluster(3);
            let mut flipped = sig.0.clone();
            flipped[at.index(sig.0.len())] ^= flip;
            prop_assert!(!fresh.verify(DST, b"m", &Signature(flipped)));
            prop_assert!(!fresh.verify(DST, b"m", &Signature(sig.0[..cut.index(sig.0.len())].to_vec())));
            let mut longer = sig.0.clone();
            longer.extend_from_slice(&extra);
            prop_assert!(!fresh.verify(DST, b"m", &Signature(longer)));
        }
    }
}
