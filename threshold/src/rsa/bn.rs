//! The OpenSSL bignum operations used where they are much faster than crypto-bigint: the
//! constant-time exponentiation with a secret exponent (signature shares and their proofs, about
//! twice as fast at 2048 bits) and variable-time exponentiation with public exponents (proof
//! verification). Every use of OpenSSL bignums is in this file. Values cross the boundary as
//! big-endian bytes; results are exactly as long as the modulus encoding.
//!
//! Not used: OpenSSL 3.0's `BN_mod_inverse` (binary extended Euclid up to 2048 bits) is slower
//! than crypto-bigint's safegcd (see [`super::arith::invert_public`]).
//!
//! Secret exponents:
//! - `BigNum::set_const_time` sets `BN_FLG_CONSTTIME` on the exponent, and OpenSSL's `BN_mod_exp`
//!   (odd modulus) then calls `BN_mod_exp_mont`, which hands any operand with that flag to
//!   `BN_mod_exp_mont_consttime` (fixed window, cache-safe table gather). With an even modulus it
//!   would fail instead (the reciprocal method refuses the flag), never run in variable time.
//! - What stays variable: `BN_bin2bn` skips leading zero bytes and the fixed-window loop runs over
//!   the exponent's limb count, so the byte length of the exponent shows (as for OpenSSL's own
//!   RSA keys). For `2Δ s_i` that is a per-key constant; the proof nonce `r` has a fixed top bit
//!   position only up to 2^-64.
//! - Wiping: the crate's `Drop` for `BigNum` calls plain `BN_free`, so the exponent is held in a
//!   [`SecretBigNum`], allocated with `BN_secure_new` (`BN_FLG_SECURE`: OpenSSL cleanses its limbs
//!   when freeing or growing them) and also `BN_clear`ed on drop. Temporaries live in a fresh
//!   `BN_CTX_secure_new` context per call, whose pool is released with `BN_clear_free`;
//!   `BN_mod_exp_mont_consttime` cleanses its own power table. The caller's byte buffers are its
//!   own to wipe (`Zeroizing`).
//!
//! OpenSSL errors (allocation failure, an even modulus) come back as `None`, never as a panic.

use openssl::bn::{BigNum, BigNumContext};

/// A `BigNum` holding secret data, wiped on drop (see the module documentation).
struct SecretBigNum(BigNum);

impl SecretBigNum {
    /// The secret big-endian `bytes`, flagged for constant-time exponentiation.
    fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
        let mut bn = SecretBigNum(BigNum::new_secure().ok()?);
        bn.0.copy_from_slice(bytes).ok()?;
        bn.0.set_const_time();
        Some(bn)
    }
}

impl Drop for SecretBigNum {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// The odd modulus, and its length in bytes (the result length).
fn modulus_of(bytes: &[u8]) -> Option<(BigNum, i32)> {
    let modulus = BigNum::from_slice(bytes).ok()?;
    let len = i32::try_from(bytes.len()).ok()?;
    modulus.is_bit_set(0).then_some((modulus, len))
}

/// `base^exponent mod modulus`, constant time in `exponent` (`BN_mod_exp_mont_consttime`) up to
/// its byte length; `base` and `modulus` are public. `None` if OpenSSL fails.
pub(crate) fn pow_secret(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Option<Vec<u8>> {
    let (modulus, len) = modulus_of(modulus)?;
    let base = BigNum::from_slice(base).ok()?;
    let exponent = SecretBigNum::from_be_bytes(exponent)?;
    debug_assert!(exponent.0.is_const_time());
    let mut ctx = BigNumContext::new_secure().ok()?;
    let mut result = BigNum::new().ok()?;
    result.mod_exp(&base, &exponent.0, &modulus, &mut ctx).ok()?;
    result.to_vec_padded(len).ok()
}

/// `base^exponent mod modulus` for public values, in variable time (`BN_mod_exp_mont`, sliding
/// window). `None` if OpenSSL fails.
pub(crate) fn pow_public(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Option<Vec<u8>> {
    let (modulus, len) = modulus_of(modulus)?;
    let base = BigNum::from_slice(base).ok()?;
    let exponent = BigNum::from_slice(exponent).ok()?;
    let mut ctx = BigNumContext::new().ok()?;
    let mut result = BigNum::new().ok()?;
    result.mod_exp(&base, &exponent, &modulus, &mut ctx).ok()?;
    result.to_vec_padded(len).ok()
}

/// `b1^e1 · b2^e2 mod modulus` for public values, in variable time. `None` if OpenSSL fails.
pub(crate) fn pow2_public(b1: &[u8], e1: &[u8], b2: &[u8], e2: &[u8], modulus: &[u8]) -> Option<Vec<u8>> {
    let (modulus, len) = modulus_of(modulus)?;
    let mut ctx = BigNumContext::new().ok()?;
    let mut power = |base: &[u8], exponent: &[u8]| -> Option<BigNum> {
        let (base, exponent) = (BigNum::from_slice(base).ok()?, BigNum::from_slice(exponent).ok()?);
        let mut result = BigNum::new().ok()?;
        result.mod_exp(&base, &exponent, &modulus, &mut ctx).ok()?;
        Some(result)
    };
    let (p1, p2) = (power(b1, e1)?, power(b2, e2)?);
    let mut result = BigNum::new().ok()?;
    result.mod_mul(&p1, &p2, &modulus, &mut ctx).ok()?;
    result.to_vec_padded(len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::arith::to_fixed_be;
    use crypto_bigint::{BoxedUint, Odd, RandomBits, RandomMod, modular::BoxedMontyForm, modular::BoxedMontyParams};
    use rand_chacha_10::ChaCha20Rng;
    use rand_core_10::SeedableRng;

    /// A random odd modulus of exactly `bits` bits (not an RSA modulus; the arithmetic does not
    /// care).
    fn random_modulus(rng: &mut ChaCha20Rng, bits: u32) -> Odd<BoxedUint> {
        let n = BoxedUint::random_bits(rng, bits);
        let top_and_bottom = (BoxedUint::one_with_precision(n.bits_precision()) << (bits - 1)) | BoxedUint::one();
        Odd::new(n | top_and_bottom).unwrap()
    }

    #[test]
    fn pow_matches_crypto_bigint() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for (bits, exp_bits) in [(512, 600), (1024, 1100), (2048, 2112), (520, 1), (512, 0)] {
            for _ in 0..3 {
                let n = random_modulus(&mut rng, bits);
                let k = bits.div_ceil(8) as usize;
                let n_bytes = to_fixed_be(n.as_ref(), k);
                let params = BoxedMontyParams::new(n.clone());
                let base = BoxedUint::random_mod_vartime(&mut rng, n.as_nz_ref());
                let exp = BoxedUint::random_bits_with_precision(&mut rng, exp_bits, exp_bits.max(64));
                let want = to_fixed_be(&BoxedMontyForm::new(base.clone(), &params).pow(&exp).retrieve(), k);
                let base_bytes = to_fixed_be(&base, k);
                let exp_bytes = exp.to_be_bytes();
                assert_eq!(pow_secret(&base_bytes, &exp_bytes, &n_bytes).unwrap(), want, "{bits}/{exp_bits}");
                assert_eq!(pow_public(&base_bytes, &exp_bytes, &n_bytes).unwrap(), want, "{bits}/{exp_bits}");
                let squared = to_fixed_be(&BoxedMontyForm::new(base.clone(), &params).square().retrieve(), k);
                let want2 = to_fixed_be(
                    &(BoxedMontyForm::new(BoxedUint::from_be_slice(&want, n.bits_precision()).unwrap(), &params)
                        * BoxedMontyForm::new(
                            BoxedUint::from_be_slice(&squared, n.bits_precision()).unwrap(),
                            &params,
                        ))
                    .retrieve(),
                    k,
                );
                assert_eq!(pow2_public(&base_bytes, &exp_bytes, &base_bytes, &[2], &n_bytes).unwrap(), want2);
            }
        }
    }

    #[test]
    fn an_even_modulus_is_refused() {
        assert_eq!(pow_secret(&[3], &[5], &[10]), None);
        assert_eq!(pow_public(&[3], &[5], &[10]), None);
        assert_eq!(pow2_public(&[3], &[5], &[3], &[5], &[10]), None);
        assert_eq!(pow2_public(&[3], &[5], &[2], &[3], &[11]), Some(vec![8]));
        assert_eq!(pow_public(&[3], &[5], &[11]), Some(vec![1]));
        assert_eq!(pow_secret(&[3], &[5], &[11]), Some(vec![1]));
    }
}
