//! Combining signature shares into an ordinary RSA signature, optimistically: the first `t + 1`
//! well-formed shares are combined and the result checked with one public exponentiation; share
//! proofs are checked only when that fails.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use num_bigint::Sign;

use super::arith::{invert_public, lagrange_at_zero, pow_public, product_of_powers};
use super::{PUBLIC_EXPONENT, SignatureShare, ThresholdRsaPublic, bn, proof};
use crate::PartyId;
use crate::combine::{CombineError, Combined};

/// A well-formed share, not yet known to be correct.
struct Candidate<'a> {
    share: &'a SignatureShare,
    value: BoxedMontyForm,
}

impl ThresholdRsaPublic {
    /// Combines shares on `msg` into the standard `k`-byte `sha256WithRSAEncryption` signature.
    ///
    /// Shares that are malformed (unknown party, wrong length, value not in `[1, N)`) and parties
    /// that sent two different shares are excluded and reported in `faulty`; repeated identical
    /// shares count once. If the first `t + 1` remaining shares do not combine into a valid
    /// signature, every share's proof is checked: shares with invalid proofs are faulty, shares
    /// without proofs are "unproven", and the signature is made from `t + 1` proven shares if
    /// there are that many.
    ///
    /// Share ids are taken as given: the caller must check that each share came from the party it
    /// names.
    pub fn combine(&self, msg: &[u8], shares: &[SignatureShare]) -> Result<Combined<Vec<u8>>, CombineError> {
        let needed = self.threshold + 1;
        let (candidates, faulty) = self.well_formed(shares);
        if candidates.len() < needed {
            return Err(CombineError::NotEnoughShares { needed, got: candidates.len() });
        }
        let x = self.message_representative(msg);
        if let Some(signature) = self.interpolate(&x, &candidates[..needed]) {
            return Ok(Combined { value: signature, faulty });
        }
        self.combine_with_proofs(&x, candidates, faulty)
    }

    /// [`ThresholdRsaPublic::combine`] for several objects at once, with the same results: the
    /// optimistic combinations share one modular inversion (Montgomery's trick: invert the
    /// product, then peel the factors off with three multiplications each), which is about half
    /// of a combination's cost at 2048 bits with `t + 1 = 2`. An object whose shares do not
    /// combine goes on alone, exactly as in `combine`.
    pub fn combine_many(&self, jobs: &[(&[u8], &[SignatureShare])]) -> Vec<Result<Combined<Vec<u8>>, CombineError>> {
        let needed = self.threshold + 1;
        struct Prepared {
            x: BoxedMontyForm,
            faulty: Vec<PartyId>,
            products: Products,
        }
        let mut results: Vec<Option<Result<Combined<Vec<u8>>, CombineError>>> = Vec::with_capacity(jobs.len());
        let mut prepared: Vec<(usize, Prepared)> = Vec::new();
        for (index, (msg, shares)) in jobs.iter().enumerate() {
            let (candidates, faulty) = self.well_formed(shares);
            if candidates.len() < needed {
                results.push(Some(Err(CombineError::NotEnoughShares { needed, got: candidates.len() })));
                continue;
            }
            let x = self.message_representative(msg);
            let products = Products::of(&candidates[..needed], &self.delta);
            results.push(None);
            prepared.push((index, Prepared { x, faulty, products }));
        }
        // Running products of the numerators, one inversion of the last, then each inverse in turn
        // from the back: inv(a_i) = inv(a_0 ... a_i) * (a_0 ... a_{i-1}).
        let numerators: Vec<BoxedMontyForm> =
            prepared.iter().map(|(_, p)| p.products.numerator(&self.params)).collect();
        let mut running: Vec<BoxedMontyForm> = Vec::with_capacity(numerators.len());
        for numerator in &numerators {
            let next = match running.last() {
                Some(before) => before.mul(numerator),
                None => numerator.clone(),
            };
            running.push(next);
        }
        let mut inverse = running.last().and_then(invert_public).map(|plain| BoxedMontyForm::new(plain, &self.params));
        for (i, (index, p)) in prepared.into_iter().enumerate().rev() {
            let own_inverse = inverse.as_ref().map(|inv| match i {
                0 => inv.clone(),
                _ => inv.mul(&running[i - 1]),
            });
            if let Some(inv) = &inverse {
                inverse = Some(inv.mul(&numerators[i]));
            }
            let Prepared { x, faulty, products } = p;
            let signature = own_inverse.and_then(|inv| self.finish(&x, products.denominator, inv));
            results[index] = Some(match signature {
                Some(value) => Ok(Combined { value, faulty }),
                // A bad share, or a product that could not be inverted (it would take a share
                // that shares a factor with N): alone, as `combine` does.
                None => self.combine(jobs[index].0, jobs[index].1),
            });
        }
        results.into_iter().map(|r| r.expect("every job has a result")).collect()
    }

    /// The optimistic combination failed: checks every share's proof and combines `t + 1` proven
    /// ones, if there are that many.
    fn combine_with_proofs(
        &self,
        x: &BoxedMontyForm,
        candidates: Vec<Candidate<'_>>,
        mut faulty: Vec<PartyId>,
    ) -> Result<Combined<Vec<u8>>, CombineError> {
        let needed = self.threshold + 1;
        // Some share among the first t + 1 is bad: find out which from the proofs.
        let x_tilde = pow_public(x, &self.four_delta);
        let mut valid = Vec::new();
        let mut unproven = Vec::new();
        for candidate in candidates {
            if candidate.share.proof.is_none() {
                unproven.push(candidate.share.id);
            } else if proof::verify(self, candidate.share, &candidate.value, &x_tilde).is_ok() {
                valid.push(candidate);
            } else {
                faulty.push(candidate.share.id);
            }
        }
        faulty.sort_unstable();
        // If proven shares do not combine, the public key itself is inconsistent (e.g. a v that
        // does not generate the squares) and nothing here can be trusted.
        if valid.len() >= needed
            && let Some(signature) = self.interpolate(x, &valid[..needed])
        {
            return Ok(Combined { value: signature, faulty });
        }
        Err(CombineError::NotEnoughValidShares { needed, valid: valid.len(), faulty, unproven })
    }

    /// The well-formed shares, one per party in order of first appearance, and the parties whose
    /// shares were malformed or conflicting (sorted, without repeats).
    fn well_formed<'a>(&self, shares: &'a [SignatureShare]) -> (Vec<Candidate<'a>>, Vec<PartyId>) {
        let mut faulty: Vec<PartyId> = Vec::new();
        let mut candidates: Vec<Candidate<'a>> = Vec::new();
        for share in shares {
            if faulty.contains(&share.id) {
                continue;
            }
            let Ok(value) = self.share_element(share) else {
                faulty.push(share.id);
                candidates.retain(|c| c.share.id != share.id);
                continue;
            };
            match candidates.iter_mut().find(|c| c.share.id == share.id) {
                None => candidates.push(Candidate { share, value }),
                Some(earlier) if earlier.share.value == share.value => {
                    // The same share again; keep whichever copy carries a proof.
                    if earlier.share.proof.is_none() {
                        earlier.share = share;
                    }
                }
                Some(_) => {
                    // Two different shares from one party: at least one is wrong, so neither is used.
                    faulty.push(share.id);
                    candidates.retain(|c| c.share.id != share.id);
                }
            }
        }
        faulty.sort_unstable();
        (candidates, faulty)
    }

    /// Shoup's combination of exactly `t + 1` shares from distinct parties: with Lagrange
    /// coefficients `λ_j` (scaled by `Δ`), `w = Π x_j^{2λ_j} = x^{4Δ²d}`; with `a·4Δ² + b·e = 1`,
    /// `y = w^a x^b` satisfies `y^e = x` when the shares are right. Returns `y` as `k` bytes if
    /// it does.
    fn interpolate(&self, x: &BoxedMontyForm, subset: &[Candidate<'_>]) -> Option<Vec<u8>> {
        let products = Products::of(subset, &self.delta);
        let inverse = invert_public(&products.numerator(&self.params))?;
        self.finish(x, products.denominator, BoxedMontyForm::new(inverse, &self.params))
    }

    /// `y = w^a x^b` from `w = numerator / denominator`, given the numerator's inverse; `y` as
    /// `k` bytes if `y^e = x`. With `a < 0 < b`, `w^a = (denominator / numerator)^|a|`.
    fn finish(
        &self,
        x: &BoxedMontyForm,
        denominator: Option<BoxedMontyForm>,
        numerator_inverse: BoxedMontyForm,
    ) -> Option<Vec<u8>> {
        // The final exponentiations (17 and 12 bits for n = 4) run in OpenSSL, about twice as
        // fast.
        let (a, b) = &self.bezout;
        let u = match denominator {
            Some(denominator) => denominator.mul(&numerator_inverse),
            None => numerator_inverse,
        };
        let (x, modulus) = (self.element_bytes(x), self.modulus_be_bytes());
        let u = self.element_bytes(&u);
        let y = bn::pow2_public(&u, &a.to_bytes_be(), &x, &b.to_bytes_be(), &modulus)?;
        let y_e = bn::pow_public(&y, &PUBLIC_EXPONENT.to_be_bytes(), &modulus)?;
        (y_e == x).then_some(y)
    }
}

/// `w = Π x_j^{2λ_j}` kept as a numerator (positive `λ_j`) and a denominator (negative ones), so
/// that one inversion serves the whole combination. An empty product is `None`, so that nothing
/// is multiplied by one.
struct Products {
    numerator: Option<BoxedMontyForm>,
    denominator: Option<BoxedMontyForm>,
}

impl Products {
    fn of(subset: &[Candidate<'_>], delta: &num_bigint::BigUint) -> Products {
        let points: Vec<u64> = subset.iter().map(|c| c.share.id as u64 + 1).collect();
        let lambdas = lagrange_at_zero(&points, delta);
        let (mut positive, mut negative) = (Vec::new(), Vec::new());
        for (candidate, lambda) in subset.iter().zip(&lambdas) {
            let (sign, magnitude) = (lambda * 2u32).into_parts();
            if sign == Sign::Minus {
                negative.push((&candidate.value, magnitude))
            } else {
                positive.push((&candidate.value, magnitude))
            }
        }
        let product = |factors: &[(&BoxedMontyForm, num_bigint::BigUint)]| {
            product_of_powers(&factors.iter().map(|(b, e)| (*b, e)).collect::<Vec<_>>())
        };
        Products { numerator: product(&positive), denominator: product(&negative) }
    }

    fn numerator(&self, params: &BoxedMontyParams) -> BoxedMontyForm {
        self.numerator.clone().unwrap_or_else(|| BoxedMontyForm::one(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::testutil::{dealing, rsa_crate_verifies};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// All `size`-element subsets of `0..n`, in lexicographic order.
    fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
        if size == 0 {
            return vec![vec![]];
        }
        (0..n)
            .flat_map(|last| {
                subsets(last, size - 1).into_iter().map(move |mut s| {
                    s.push(last);
                    s
                })
            })
            .collect()
    }

    fn every_subset_combines_to_the_full_key_signature(n: usize, t: usize) {
        let d = dealing(n, t);
        let msg = format!("certificate for ({n},{t})");
        let expected = d.full_key.sign_pkcs1v15_sha256(msg.as_bytes());
        assert!(rsa_crate_verifies(&d.public, msg.as_bytes(), &expected));
        let shares: Vec<SignatureShare> = d.shares.iter().map(|s| s.sign(&d.public, msg.as_bytes())).collect();
        let all = subsets(n, t + 1);
        assert_eq!(all.len(), num_integer::binomial(n, t + 1));
        for subset in all {
            let mut chosen: Vec<SignatureShare> = subset.iter().map(|&i| shares[i].clone()).collect();
            if subset[0] % 2 == 1 {
                chosen.reverse(); // order must not matter
            }
            let combined = d.public.combine(msg.as_bytes(), &chosen).unwrap();
            assert_eq!(combined.faulty, Vec::<PartyId>::new());
            assert_eq!(combined.value, expected, "subset {subset:?}");
        }
        assert!(d.public.verify(msg.as_bytes(), &expected));
    }

    #[test]
    fn every_2_of_4_subset_combines_to_the_standard_signature() {
        every_subset_combines_to_the_full_key_signature(4, 1);
    }

    #[test]
    fn every_3_of_7_subset_combines_to_the_standard_signature() {
        every_subset_combines_to_the_full_key_signature(7, 2);
    }

    #[test]
    fn every_4_of_10_subset_combines_to_the_standard_signature() {
        every_subset_combines_to_the_full_key_signature(10, 3);
    }

    fn signed_with_proofs(n: usize, t: usize, msg: &[u8], seed: u64) -> Vec<SignatureShare> {
        let d = dealing(n, t);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        d.shares.iter().map(|s| s.sign_with_proof(&d.public, msg, &mut rng)).collect()
    }

    #[test]
    fn corrupted_share_with_proofs_is_attributed_and_excluded() {
        let d = dealing(4, 1);
        let mut shares = signed_with_proofs(4, 1, b"m", 7);
        // Party 0 sends a well-formed but wrong value (its share of another message), first so
        // that the optimistic combination uses it.
        shares[0].value = d.shares[0].sign(&d.public, b"other").value;
        assert!(d.public.verify_share(b"m", &shares[0]).is_err());
        let combined = d.public.combine(b"m", &shares).unwrap();
        assert_eq!(combined.faulty, vec![0]);
        assert_eq!(combined.value, d.full_key.sign_pkcs1v15_sha256(b"m"));
        assert!(rsa_crate_verifies(&d.public, b"m", &combined.value));
    }

    #[test]
    fn corrupted_shares_of_t_parties_are_all_excluded() {
        let d = dealing(7, 2);
        let mut shares = signed_with_proofs(7, 2, b"m", 8);
        shares[1].value = shares[0].value.clone(); // well-formed, wrong
        shares[4].proof = shares[5].proof.clone(); // right value, proof of another share
        shares[4].value = d.shares[4].sign(&d.public, b"x").value;
        shares.swap(0, 4);
        let combined = d.public.combine(b"m", &shares).unwrap();
        assert_eq!(combined.faulty, vec![1, 4]);
        assert!(d.public.verify(b"m", &combined.value));
    }

    #[test]
    fn corrupted_share_without_proofs_is_reported_unproven() {
        let d = dealing(4, 1);
        let mut shares: Vec<SignatureShare> = d.shares.iter().map(|s| s.sign(&d.public, b"m")).collect();
        shares[0].value = d.shares[0].sign(&d.public, b"other").value;
        let err = d.public.combine(b"m", &shares).unwrap_err();
        assert_eq!(
            err,
            CombineError::NotEnoughValidShares { needed: 2, valid: 0, faulty: vec![], unproven: vec![0, 1, 2, 3] }
        );
        // With proofs from the others, the unproven bad share is left out and the rest combine.
        let proven = signed_with_proofs(4, 1, b"m", 9);
        let mixed = vec![shares[0].clone(), proven[1].clone(), shares[2].clone(), proven[3].clone()];
        let combined = d.public.combine(b"m", &mixed).unwrap();
        assert!(combined.faulty.is_empty());
        assert!(d.public.verify(b"m", &combined.value));
        // Only one proven share: not enough, and the error names the unproven ones.
        let mixed = vec![shares[0].clone(), proven[1].clone(), shares[2].clone()];
        assert_eq!(
            d.public.combine(b"m", &mixed).unwrap_err(),
            CombineError::NotEnoughValidShares { needed: 2, valid: 1, faulty: vec![], unproven: vec![0, 2] }
        );
    }

    #[test]
    fn fewer_than_t_plus_1_shares_are_not_enough() {
        let d = dealing(7, 2);
        let shares: Vec<SignatureShare> = d.shares[..2].iter().map(|s| s.sign(&d.public, b"m")).collect();
        assert_eq!(d.public.combine(b"m", &shares).unwrap_err(), CombineError::NotEnoughShares { needed: 3, got: 2 });
        assert_eq!(d.public.combine(b"m", &[]).unwrap_err(), CombineError::NotEnoughShares { needed: 3, got: 0 });
    }

    #[test]
    fn malformed_shares_are_rejected_without_panic() {
        use crate::rsa::ShareError;
        let d = dealing(4, 1);
        let k = d.public.signature_len();
        let good: Vec<SignatureShare> = d.shares.iter().map(|s| s.sign(&d.public, b"m")).collect();
        let malformed = [
            (SignatureShare { value: vec![0; k], ..good[0].clone() }, ShareError::OutOfRange),
            (SignatureShare { value: d.public.modulus_be_bytes(), ..good[0].clone() }, ShareError::OutOfRange),
            (SignatureShare { value: vec![0xff; k], ..good[0].clone() }, ShareError::OutOfRange),
            (
                SignatureShare { value: vec![1; k - 1], ..good[0].clone() },
                ShareError::WrongLength { expected: k, got: k - 1 },
            ),
            (SignatureShare { value: vec![], ..good[0].clone() }, ShareError::WrongLength { expected: k, got: 0 }),
            (SignatureShare { id: 4, ..good[0].clone() }, ShareError::UnknownParty { id: 4, parties: 4 }),
            (
                SignatureShare { id: usize::MAX, ..good[0].clone() },
                ShareError::UnknownParty { id: usize::MAX, parties: 4 },
            ),
        ];
        for (bad, error) in malformed {
            assert_eq!(d.public.verify_share(b"m", &bad), Err(error));
            let combined = d.public.combine(b"m", &[bad.clone(), good[2].clone(), good[3].clone()]).unwrap();
            assert_eq!(combined.faulty, vec![bad.id]);
            assert!(d.public.verify(b"m", &combined.value));
            // The bad share plus one good one is not enough.
            assert_eq!(
                d.public.combine(b"m", &[bad, good[2].clone()]).unwrap_err(),
                CombineError::NotEnoughShares { needed: 2, got: 1 }
            );
        }
    }

    #[test]
    fn duplicate_shares_count_once_and_conflicting_ones_are_faulty() {
        let d = dealing(4, 1);
        let good: Vec<SignatureShare> = d.shares.iter().map(|s| s.sign(&d.public, b"m")).collect();
        // The same share twice is one share.
        assert_eq!(
            d.public.combine(b"m", &[good[1].clone(), good[1].clone()]).unwrap_err(),
            CombineError::NotEnoughShares { needed: 2, got: 1 }
        );
        let combined = d.public.combine(b"m", &[good[1].clone(), good[1].clone(), good[2].clone()]).unwrap();
        assert!(combined.faulty.is_empty());
        // Two different shares from party 1: party 1 is faulty and neither is used.
        let other = SignatureShare { value: good[0].value.clone(), ..good[1].clone() };
        let combined =
            d.public.combine(b"m", &[good[1].clone(), other.clone(), good[2].clone(), good[3].clone()]).unwrap();
        assert_eq!(combined.faulty, vec![1]);
        assert_eq!(
            d.public.combine(b"m", &[good[1].clone(), good[2].clone(), other]).unwrap_err(),
            CombineError::NotEnoughShares { needed: 2, got: 1 }
        );
    }

    #[test]
    fn shares_for_another_message_do_not_combine_for_this_one() {
        let d = dealing(4, 1);
        let shares: Vec<SignatureShare> = d.shares.iter().map(|s| s.sign(&d.public, b"a")).collect();
        assert!(matches!(d.public.combine(b"b", &shares), Err(CombineError::NotEnoughValidShares { .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn combined_signatures_of_random_messages_verify(
            msg in proptest::collection::vec(any::<u8>(), 0..200),
            first in 0usize..4,
            offset in 1usize..4,
        ) {
            let d = dealing(4, 1);
            let second = (first + offset) % 4;
            let shares = [d.shares[first].sign(&d.public, &msg), d.shares[second].sign(&d.public, &msg)];
            let combined = d.public.combine(&msg, &shares).unwrap();
            prop_assert!(combined.faulty.is_empty());
            prop_assert!(d.public.verify(&msg, &combined.value));
            prop_assert!(rsa_crate_verifies(&d.public, &msg, &combined.value));
        }

        #[test]
        fn combining_many_at_once_gives_what_combining_each_alone_gives(
            jobs in proptest::collection::vec((any::<u8>(), 0usize..4, 0u8..4), 0..6),
        ) {
            // Each job: a message, the first of three signers, and a kind: 0 right shares, 1 a
            // wrong share first, 2 too few shares, 3 a wrong share first with proofs.
            let d = dealing(4, 1);
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            let built: Vec<(Vec<u8>, Vec<SignatureShare>)> = jobs
                .iter()
                .map(|(byte, first, kind)| {
                    let msg = vec![*byte; 3];
                    let signers = [*first, (*first + 1) % 4, (*first + 2) % 4];
                    let mut shares: Vec<SignatureShare> = signers
                        .iter()
                        .map(|&i| match kind {
                            3 => d.shares[i].sign_with_proof(&d.public, &msg, &mut rng),
                            _ => d.shares[i].sign(&d.public, &msg),
                        })
                        .collect();
                    match kind {
                        1 | 3 => shares[0].value = d.shares[signers[0]].sign(&d.public, b"another").value,
                        2 => shares.truncate(1),
                        _ => {}
                    }
                    (msg, shares)
                })
                .collect();
            let jobs: Vec<(&[u8], &[SignatureShare])> =
                built.iter().map(|(msg, shares)| (msg.as_slice(), shares.as_slice())).collect();
            let each: Vec<_> = jobs.iter().map(|(msg, shares)| d.public.combine(msg, shares)).collect();
            prop_assert_eq!(d.public.combine_many(&jobs), each);
        }

        #[test]
        fn flipping_any_signature_byte_breaks_verification(
            msg in proptest::collection::vec(any::<u8>(), 0..64),
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let d = dealing(4, 1);
            let shares = [d.shares[0].sign(&d.public, &msg), d.shares[3].sign(&d.public, &msg)];
            let mut signature = d.public.combine(&msg, &shares).unwrap().value;
            prop_assert!(d.public.verify(&msg, &signature));
            let i = index.index(signature.len());
            signature[i] ^= flip;
            prop_assert!(!d.public.verify(&msg, &signature));
        }
    }
}
