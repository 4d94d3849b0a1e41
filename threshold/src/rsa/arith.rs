//! Big-integer helpers: fixed-width encodings, conversions between the constant-time
//! (crypto-bigint) and variable-time (num-bigint) representations, and the arithmetic on public
//! exponents used when combining shares and checking proofs.

use crypto_bigint::{BoxedUint, Limb, Odd, Resize, Uint, Word, modular::BoxedMontyForm};
use num_bigint::{BigInt, BigUint};
use num_traits::{One, Zero};
use zeroize::Zeroizing;

/// `bits` rounded up to whole limbs: the precision a `BoxedUint` of that size gets.
pub(crate) fn limb_bits(bits: u32) -> u32 {
    bits.div_ceil(Limb::BITS).max(1) * Limb::BITS
}

/// A copy of `x` at `bits` of precision (truncated if `x` does not fit). Constant time in `x`.
pub(crate) fn resized(x: &BoxedUint, bits: u32) -> BoxedUint {
    Resize::resize_unchecked(x, bits)
}

/// `x` as exactly `len` big-endian bytes. The caller guarantees `x < 2^(8 len)`; higher bytes
/// would be dropped.
pub(crate) fn to_fixed_be(x: &BoxedUint, len: usize) -> Vec<u8> {
    // The full-width encoding may be secret (key shares), so it is wiped after copying.
    let full = Zeroizing::new(x.to_be_bytes().into_vec());
    let mut out = vec![0u8; len];
    if full.len() >= len {
        out.copy_from_slice(&full[full.len() - len..]);
    } else {
        out[len - full.len()..].copy_from_slice(&full);
    }
    out
}

/// Public big-endian bytes (leading zeros allowed) as a `BoxedUint` of `bits_precision` bits, or
/// `None` if the value does not fit.
pub(crate) fn from_be_public(bytes: &[u8], bits_precision: u32) -> Option<BoxedUint> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let significant = &bytes[first..];
    if significant.len() * 8 > limb_bits(bits_precision) as usize {
        return None;
    }
    let value = BoxedUint::from_be_slice(significant, limb_bits(bits_precision)).ok()?;
    (value.bit_width_vartime() <= bits_precision).then_some(value)
}

/// A public non-negative integer as a `BoxedUint` just wide enough to hold it.
pub(crate) fn biguint_to_boxed(x: &BigUint) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(&x.to_bytes_be())
}

/// A public `BoxedUint` as a `BigUint`.
#[cfg(test)]
pub(crate) fn boxed_to_biguint(x: &BoxedUint) -> BigUint {
    BigUint::from_bytes_be(&x.to_be_bytes())
}

/// `n!`.
pub(crate) fn factorial(n: usize) -> BigUint {
    (1..=n as u64).fold(BigUint::one(), |acc, i| acc * i)
}

/// `base^exp` for a public exponent, in variable time: plain square-and-multiply for short
/// exponents (those in combining are a few bits to a few hundred bits), the windowed ladder for
/// long ones.
pub(crate) fn pow_public(base: &BoxedMontyForm, exp: &BigUint) -> BoxedMontyForm {
    let bits = exp.bits();
    if bits == 0 {
        return BoxedMontyForm::one(base.params());
    }
    if bits > 256 {
        let e = biguint_to_boxed(exp);
        return base.pow_bounded_exp(&e, e.bit_width_vartime());
    }
    let mut acc = base.clone();
    for i in (0..bits - 1).rev() {
        acc = acc.square();
        if exp.bit(i) {
            acc = acc.mul(base);
        }
    }
    acc
}

/// Most bases [`product_of_powers`] takes at once: its table has `2^k` entries.
const SIMULTANEOUS_BASES: usize = 4;

/// `Π base_i^exp_i` for public exponents, in variable time, or `None` for an empty product.
/// The bases share one chain of squarings (Straus/Shamir: a table of the products of every subset
/// of up to [`SIMULTANEOUS_BASES`] bases, then one square and at most one multiplication per
/// bit), so `k` bases with `b`-bit exponents cost about `b` squarings instead of `k·b`. In
/// combining at n = 10 the exponents `2λ_j` have some 30 bits and the squarings were most of it.
pub(crate) fn product_of_powers(factors: &[(&BoxedMontyForm, &BigUint)]) -> Option<BoxedMontyForm> {
    factors.chunks(SIMULTANEOUS_BASES).filter_map(simultaneous_powers).reduce(|product, chunk| product.mul(&chunk))
}

fn simultaneous_powers(factors: &[(&BoxedMontyForm, &BigUint)]) -> Option<BoxedMontyForm> {
    let (first, _) = factors.first()?;
    // table[mask] = product of the bases whose bit is set in mask (table[0] unused).
    let mut table: Vec<Option<BoxedMontyForm>> = vec![None; 1 << factors.len()];
    for mask in 1..table.len() {
        let low = mask.trailing_zeros() as usize;
        let rest = mask & (mask - 1);
        table[mask] = Some(match &table[rest] {
            Some(product) => product.mul(factors[low].0),
            None => factors[low].0.clone(),
        });
    }
    let bits = factors.iter().map(|(_, e)| e.bits()).max().unwrap_or(0);
    let mut acc: Option<BoxedMontyForm> = None;
    for i in (0..bits).rev() {
        acc = acc.map(|a| a.square());
        let mask = factors.iter().enumerate().filter(|(_, (_, e))| e.bit(i)).fold(0, |m, (j, _)| m | (1 << j));
        if let Some(entry) = &table[mask] {
            acc = Some(match acc {
                Some(a) => a.mul(entry),
                None => entry.clone(),
            });
        }
    }
    Some(acc.unwrap_or_else(|| BoxedMontyForm::one(first.params())))
}

/// `x^-1` for a public `x` as a plain integer in `[0, N)` (not in Montgomery form), in variable
/// time, or `None` if `x` is not a unit.
///
/// crypto-bigint's safegcd on fixed-size integers for the usual modulus sizes (2048, 3072 and 4096
/// bits), which allocate nothing per step; `BoxedUint` otherwise. Measured here at 2048 bits:
/// about 100 µs fixed-size, 150 µs boxed, and 165 µs with OpenSSL 3.0's `BN_mod_inverse` (binary
/// extended Euclid), so OpenSSL is not used for this.
pub(crate) fn invert_public(x: &BoxedMontyForm) -> Option<BoxedUint> {
    fn fixed<const LIMBS: usize>(x: &BoxedUint, modulus: &BoxedUint) -> Option<BoxedUint> {
        let words = |v: &BoxedUint| -> Option<[Word; LIMBS]> { v.as_words().try_into().ok() };
        let modulus = Odd::new(Uint::<LIMBS>::from_words(words(modulus)?)).into_option()?;
        let inverse = Uint::<LIMBS>::from_words(words(x)?).invert_odd_mod_vartime(&modulus).into_option()?;
        Some(BoxedUint::from(&inverse))
    }
    let params = x.params();
    let modulus = params.modulus().as_ref();
    let value = x.retrieve();
    match modulus.nlimbs() * Limb::BITS as usize {
        2048 => fixed::<{ 2048 / Limb::BITS as usize }>(&value, modulus),
        3072 => fixed::<{ 3072 / Limb::BITS as usize }>(&value, modulus),
        4096 => fixed::<{ 4096 / Limb::BITS as usize }>(&value, modulus),
        _ => x.invert_vartime().into_option().map(|inverse| inverse.retrieve()),
    }
}

/// Shoup's integer Lagrange coefficients for interpolating at 0 from the given distinct nonzero
/// points: `λ_j = Δ · Π_{j' ≠ j} j' / (j' - j)`, which are integers because `Δ = n!`.
pub(crate) fn lagrange_at_zero(points: &[u64], delta: &BigUint) -> Vec<BigInt> {
    let delta = BigInt::from(delta.clone());
    points
        .iter()
        .map(|&j| {
            let mut num = delta.clone();
            let mut den = BigInt::one();
            for &other in points.iter().filter(|&&other| other != j) {
                num *= BigInt::from(other);
                den *= BigInt::from(other) - BigInt::from(j);
            }
            // Exact: den divides Δ times the product (Shoup, Lemma 1).
            debug_assert!((&num % &den).is_zero());
            num / den
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::{Odd, modular::BoxedMontyParams};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_product_of_powers_equals_the_powers_multiplied_one_by_one(
            bases in proptest::collection::vec(1u64..u64::MAX, 1..7),
            exps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 7),
        ) {
            // A 1024-bit odd modulus (any odd modulus will do for the arithmetic).
            let modulus = Odd::new(BoxedUint::from_be_slice(&[0xC7; 128], 1024).unwrap()).unwrap();
            let params = BoxedMontyParams::new(modulus);
            let bases: Vec<BoxedMontyForm> =
                bases.iter().map(|b| BoxedMontyForm::new(BoxedUint::from(*b).resize(1024), &params)).collect();
            let exps: Vec<BigUint> = exps.iter().map(|e| BigUint::from_bytes_be(e)).collect();
            let factors: Vec<(&BoxedMontyForm, &BigUint)> = bases.iter().zip(&exps).collect();
            let expected = factors
                .iter()
                .map(|(b, e)| pow_public(b, e))
                .reduce(|a, b| a.mul(&b))
                .unwrap();
            prop_assert_eq!(product_of_powers(&factors).unwrap().retrieve(), expected.retrieve());
        }
    }

    #[test]
    fn an_empty_product_of_powers_is_none() {
        assert!(product_of_powers(&[]).is_none());
    }

    #[test]
    fn lagrange_coefficients_interpolate_a_polynomial_times_delta() {
        // f(X) = 7 + 3X + 5X^2; Σ λ_j f(j) = Δ f(0).
        let f = |x: i64| 7 + 3 * x + 5 * x * x;
        let points = [2u64, 5, 9];
        let delta = factorial(10);
        let lambdas = lagrange_at_zero(&points, &delta);
        let sum: BigInt = points.iter().zip(&lambdas).map(|(&p, l)| l * BigInt::from(f(p as i64))).sum();
        assert_eq!(sum, BigInt::from(delta) * 7);
    }

    #[test]
    fn public_pow_matches_num_bigint() {
        let modulus = BigUint::parse_bytes(b"f0e1d2c3b4a5968778695a4b3c2d1e0f1234567890abcdef1", 16).unwrap();
        let params = BoxedMontyParams::new_vartime(Odd::new(biguint_to_boxed(&modulus)).unwrap());
        let base_int = BigUint::from(123_456_789u64);
        let base = BoxedMontyForm::new(biguint_to_boxed(&base_int).resize_unchecked(params.bits_precision()), &params);
        let exps = [BigUint::zero(), BigUint::one(), BigUint::from(65_537u32), BigUint::one() << 300u32];
        for exp in &exps {
            let got = boxed_to_biguint(&pow_public(&base, exp).retrieve());
            assert_eq!(got, base_int.modpow(exp, &modulus));
        }
    }

    #[test]
    fn inversion_matches_crypto_bigint_and_rejects_non_units() {
        use crypto_bigint::{RandomBits, RandomMod};
        use rand_core_10::SeedableRng;
        let mut rng = rand_chacha_10::ChaCha20Rng::seed_from_u64(13);
        // The fixed-size paths (2048, 3072, 4096) and the boxed fallback (512, 1000).
        for bits in [512, 1000, 2048, 3072, 4096] {
            let top = BoxedUint::one_with_precision(limb_bits(bits)) << (bits - 1);
            let n = Odd::new(
                BoxedUint::random_bits_with_precision(&mut rng, bits, limb_bits(bits)) | top | BoxedUint::one(),
            )
            .unwrap();
            let params = BoxedMontyParams::new_vartime(n.clone());
            for _ in 0..3 {
                let x = BoxedMontyForm::new(BoxedUint::random_mod_vartime(&mut rng, n.as_nz_ref()), &params);
                let want = x.invert_vartime().into_option();
                let got = invert_public(&x);
                assert_eq!(got, want.as_ref().map(|w| w.retrieve()), "{bits}");
                if let Some(inverse) = got {
                    let inverse = BoxedMontyForm::new(inverse, &params);
                    assert_eq!(inverse.mul(&x).retrieve(), BoxedUint::one_with_precision(n.bits_precision()));
                }
            }
            // 0 is not a unit.
            assert!(invert_public(&BoxedMontyForm::zero(&params)).is_none());
        }
        // N = 2^2047 + 1 is divisible by 3, so 3 is not a unit (on the fixed-size path); 2 is.
        let n = Odd::new((BoxedUint::one_with_precision(2048) << 2047) | BoxedUint::one()).unwrap();
        let params = BoxedMontyParams::new_vartime(n);
        let three = BoxedMontyForm::new(BoxedUint::from(3u32).resize_unchecked(2048), &params);
        assert!(invert_public(&three).is_none());
        let two = BoxedMontyForm::new(BoxedUint::from(2u32).resize_unchecked(2048), &params);
        let half = BoxedMontyForm::new(invert_public(&two).unwrap(), &params);
        assert_eq!(half.mul(&two).retrieve(), BoxedUint::one_with_precision(2048));
    }

    #[test]
    fn fixed_width_and_parsing_round_trip() {
        let x = BoxedUint::from(0x0102u32).resize_unchecked(128);
        assert_eq!(to_fixed_be(&x, 3), vec![0, 1, 2]);
        assert_eq!(from_be_public(&[0, 0, 1, 2], 64).unwrap(), BoxedUint::from(0x0102u32).resize_unchecked(64));
        assert!(from_be_public(&[1; 9], 64).is_none());
        assert!(from_be_public(&[0x80, 0], 15).is_none());
    }
}
