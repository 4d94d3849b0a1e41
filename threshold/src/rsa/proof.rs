//! Shoup's non-interactive proof that a signature share is correct: equality of the discrete logs
//! `log_v(v_i) = log_{x̃}(x_i²)` with `x̃ = x^{4Δ}`, made non-interactive with SHA-256
//! (Fiat–Shamir). Proving is constant time in the secret; verifying is public and variable time.
//! The long exponentiations (with the secret nonce when proving, the response and challenge when
//! verifying) use OpenSSL ([`super::bn`]).

use crypto_bigint::{BoxedUint, RandomBits, modular::BoxedMontyForm};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::arith::{invert_public, limb_bits, pow_public, resized, to_fixed_be};
use super::{ShareError, ShareProof, SignatureShare, ThresholdRsaPublic, bn};
use crate::PartyId;
use crate::rng::bigint_rng;

/// Domain separation for the challenge hash.
const DOMAIN: &[u8] = b"itca/rsa-share-proof/v1";

/// `L1 / 8`: the challenge is the first 128 bits of the hash.
const CHALLENGE_LEN: usize = 16;

/// The response `z = s_i c + r` is below `2^(8k + 257)` (`s_i < N`, `c < 2^128`,
/// `r < 2^(bitlen(N) + 256)`), so it is sent as `k + 33` bytes.
fn response_len(k: usize) -> usize {
    k + 2 * CHALLENGE_LEN + 1
}

/// The proof for share `x_i` of `x` by party `id` holding `secret`.
pub(super) fn prove<R: RngCore + CryptoRng>(
    public: &ThresholdRsaPublic,
    id: PartyId,
    secret: &BoxedUint,
    x: &BoxedMontyForm,
    x_i: &BoxedMontyForm,
    rng: &mut R,
) -> ShareProof {
    let k = public.modulus_len;
    let z_len = response_len(k);
    let precision = limb_bits(8 * z_len as u32);
    let x_tilde = pow_public(x, &public.four_delta);
    // v_i is this party's published key; recomputed only if the id is not in the public key (the
    // proof will then be rejected anyway, but signing does not fail).
    let v_i = match public.verification_keys_monty.get(id) {
        Some(key) => key.clone(),
        None => public.element_from_bn(&public.pow_secret(&public.v_monty, secret)),
    };

    let mut rng = bigint_rng(rng);
    let r = Zeroizing::new(BoxedUint::random_bits_with_precision(
        &mut rng,
        public.modulus_bits() + 16 * CHALLENGE_LEN as u32,
        precision,
    ));
    let v_prime = public.pow_secret(&public.v_monty, &r);
    let x_prime = public.pow_secret(&x_tilde, &r);
    let c = challenge(public, [&x_tilde, &v_i, &x_i.square()].map(|e| public.element_bytes(e)), &v_prime, &x_prime);

    let c_int = BoxedUint::from_be_slice(&c, precision).expect("16 bytes fit");
    let wide_secret = Zeroizing::new(resized(secret, precision));
    let product = Zeroizing::new(wide_secret.wrapping_mul(&c_int));
    let z = product.wrapping_add(&*r);
    ShareProof { c: c.to_vec(), z: to_fixed_be(&z, z_len) }
}

/// Checks `share`'s proof, given the checked share value `x_i` and `x̃ = x^{4Δ}`.
pub(super) fn verify(
    public: &ThresholdRsaPublic,
    share: &SignatureShare,
    x_i: &BoxedMontyForm,
    x_tilde: &BoxedMontyForm,
) -> Result<(), ShareError> {
    let proof = share.proof.as_ref().ok_or(ShareError::MissingProof)?;
    let z_len = response_len(public.modulus_len);
    if proof.c.len() != CHALLENGE_LEN {
        return Err(ShareError::MalformedProof("challenge is not 16 bytes"));
    }
    if proof.z.len() != z_len {
        return Err(ShareError::MalformedProof("response has the wrong length"));
    }
    let v_i = public
        .verification_keys_monty
        .get(share.id)
        .ok_or(ShareError::UnknownParty { id: share.id, parties: public.parties })?;
    let x_i2 = x_i.square();

    // v' = v^z v_i^{-c} and x' = x̃^z (x_i²)^{-c}, with one inversion for both (Montgomery's trick).
    // The exponentiations run in OpenSSL (variable time: all of this is public); the inversion and
    // the few products stay in crypto-bigint.
    let modulus = public.modulus_be_bytes();
    let [v_bytes, v_i_bytes, x_tilde_bytes, x_i2_bytes] =
        [&public.v_monty, v_i, x_tilde, &x_i2].map(|e| public.element_bytes(e));
    let pow = |base: &[u8], exponent: &[u8]| {
        bn::pow_public(base, exponent, &modulus).map(|r| public.element_from_bn(&r)).ok_or(ShareError::InvalidProof)
    };
    let v_i_c = pow(&v_i_bytes, &proof.c)?;
    let x_i2_c = pow(&x_i2_bytes, &proof.c)?;
    let both_inv = invert_public(&v_i_c.mul(&x_i2_c)).ok_or(ShareError::InvalidProof)?;
    let both_inv = BoxedMontyForm::new(both_inv, &public.params);
    let v_prime = public.element_bytes(&pow(&v_bytes, &proof.z)?.mul(&x_i2_c).mul(&both_inv));
    let x_prime = public.element_bytes(&pow(&x_tilde_bytes, &proof.z)?.mul(&v_i_c).mul(&both_inv));

    let expected = challenge(public, [x_tilde_bytes, v_i_bytes, x_i2_bytes], &v_prime, &x_prime);
    if expected[..] == proof.c[..] { Ok(()) } else { Err(ShareError::InvalidProof) }
}

/// `c = SHA-256(DOMAIN || N || v || x̃ || v_i || x_i² || v' || x')[..16]`, every value as `k`
/// bytes big-endian (`[x̃, v_i, x_i²]` in `statement`).
fn challenge(
    public: &ThresholdRsaPublic,
    statement: [Vec<u8>; 3],
    v_prime: &[u8],
    x_prime: &[u8],
) -> [u8; CHALLENGE_LEN] {
    let k = public.modulus_len;
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update(public.modulus_be_bytes());
    hash.update(to_fixed_be(&public.v, k));
    for element in statement.iter().map(Vec::as_slice).chain([v_prime, x_prime]) {
        debug_assert_eq!(element.len(), k);
        hash.update(element);
    }
    let digest = hash.finalize();
    let mut c = [0u8; CHALLENGE_LEN];
    c.copy_from_slice(&digest[..CHALLENGE_LEN]);
    c
}

impl ThresholdRsaPublic {
    /// Checks one signature share on `msg` and its proof. A share without a proof is an error
    /// ([`ShareError::MissingProof`]): it can be neither trusted nor blamed.
    pub fn verify_share(&self, msg: &[u8], share: &SignatureShare) -> Result<(), ShareError> {
        let x_i = self.share_element(share)?;
        if share.proof.is_none() {
            return Err(ShareError::MissingProof);
        }
        let x_tilde = pow_public(&self.message_representative(msg), &self.four_delta);
        verify(self, share, &x_i, &x_tilde)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::testutil::dealing;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn proofs_of_honest_shares_verify() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for (n, t) in [(4, 1), (7, 2)] {
            let d = dealing(n, t);
            for share in &d.shares {
                let signed = share.sign_with_proof(&d.public, b"certificate", &mut rng);
                assert_eq!(d.public.verify_share(b"certificate", &signed), Ok(()));
                // The proof does not change the share itself.
                assert_eq!(signed.value, share.sign(&d.public, b"certificate").value);
            }
        }
    }

    #[test]
    fn share_without_proof_is_reported_as_missing_proof() {
        let d = dealing(4, 1);
        let share = d.shares[0].sign(&d.public, b"m");
        assert_eq!(d.public.verify_share(b"m", &share), Err(ShareError::MissingProof));
    }

    #[test]
    fn tampered_or_misapplied_proofs_are_rejected() {
        let d = dealing(4, 1);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let good = d.shares[1].sign_with_proof(&d.public, b"m", &mut rng);
        let proof = good.proof.clone().unwrap();
        let with_proof = |c: Vec<u8>, z: Vec<u8>| SignatureShare { proof: Some(ShareProof { c, z }), ..good.clone() };

        let mut c = proof.c.clone();
        c[0] ^= 1;
        assert_eq!(d.public.verify_share(b"m", &with_proof(c, proof.z.clone())), Err(ShareError::InvalidProof));
        let mut z = proof.z.clone();
        *z.last_mut().unwrap() ^= 1;
        assert_eq!(d.public.verify_share(b"m", &with_proof(proof.c.clone(), z)), Err(ShareError::InvalidProof));
        assert!(matches!(
            d.public.verify_share(b"m", &with_proof(proof.c[1..].to_vec(), proof.z.clone())),
            Err(ShareError::MalformedProof(_))
        ));
        assert!(matches!(
            d.public.verify_share(b"m", &with_proof(proof.c.clone(), proof.z[1..].to_vec())),
            Err(ShareError::MalformedProof(_))
        ));
        assert_eq!(
            d.public.verify_share(b"m", &with_proof(vec![0; 16], vec![0; proof.z.len()])),
            Err(ShareError::InvalidProof)
        );
        // A valid proof for another message, or claimed by another party, does not verify.
        assert_eq!(d.public.verify_share(b"other", &good), Err(ShareError::InvalidProof));
        let moved = SignatureShare { id: 2, ..good.clone() };
        assert_eq!(d.public.verify_share(b"m", &moved), Err(ShareError::InvalidProof));
        // A wrong value with the honest share's proof does not verify.
        let mut wrong = good.clone();
        wrong.value = d.shares[1].sign(&d.public, b"other").value;
        assert_eq!(d.public.verify_share(b"m", &wrong), Err(ShareError::InvalidProof));
        assert_eq!(d.public.verify_share(b"m", &good), Ok(()));
    }

    #[test]
    fn proof_from_a_share_of_the_wrong_size_is_rejected_without_panic() {
        // A party whose s_i is far larger than N (a corrupt key file) produces a proof that is
        // simply invalid.
        let d = dealing(4, 1);
        let huge = Zeroizing::new(BoxedUint::max(8 * 200));
        let share = super::super::RsaKeyShare::new(0, 4, huge);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let signed = share.sign_with_proof(&d.public, b"m", &mut rng);
        assert_eq!(d.public.verify_share(b"m", &signed), Err(ShareError::InvalidProof));
    }
}
