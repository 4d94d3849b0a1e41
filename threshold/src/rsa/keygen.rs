//! The trusted dealer's key generation: two safe primes (found in parallel), the shared secret
//! exponent, the key shares and the verification keys, plus the ordinary RSA key the dealer uses
//! once, to self-sign the root certificate.

use std::sync::mpsc;

use crypto_bigint::{
    BoxedUint, ConcatenatingMul, Gcd, NonZero, Odd, RandomMod, Resize,
    modular::{BoxedMontyForm, BoxedMontyParams},
};
use crypto_primes::{
    Flavor,
    hazmat::{SetBits, SmallFactorsSieveFactory},
    is_prime, sieve_and_find,
};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::arith::{limb_bits, resized, to_fixed_be};
use super::padding::emsa_pkcs1_v15_sha256;
use super::{
    MAX_MODULUS_BITS, MAX_PARTIES, MIN_MODULUS_BITS, PUBLIC_EXPONENT, RsaError, RsaKeyShare, ThresholdRsaPublic,
};
use crate::rng::bigint_rng;

/// How far key generation has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeygenProgress {
    /// Another safe prime was found: `which` of `of` (the primes are searched in parallel, so this
    /// counts finished searches, not a particular prime).
    PrimeFound { which: usize, of: usize },
    /// The shares and the public key are computed.
    Done,
}

/// Everything the dealer produces: the public key, one share per party (share `i` for party `i`),
/// and the ordinary RSA private key.
#[derive(Debug)]
pub struct RsaDealing {
    pub public: ThresholdRsaPublic,
    pub shares: Vec<RsaKeyShare>,
    pub full_key: RsaFullKey,
}

/// The whole RSA private key, `d = e^-1 mod φ(N)`. It exists only so that the dealer can sign the
/// root certificate before destroying it; it cannot be serialised and is wiped on drop.
///
/// It keeps only `d` (not `p`, `q` or CRT values): it signs once, so CRT's speed is not needed, and
/// crypto-bigint's Montgomery parameters for `p` and `q` could not be wiped.
pub struct RsaFullKey {
    d: Zeroizing<BoxedUint>,
    params: BoxedMontyParams,
    modulus_len: usize,
}

impl RsaFullKey {
    /// A standard RSASSA-PKCS1-v1_5 signature with SHA-256 on `msg`, `k` bytes big-endian.
    /// The exponentiation is constant time.
    pub fn sign_pkcs1v15_sha256(&self, msg: &[u8]) -> Vec<u8> {
        let em = emsa_pkcs1_v15_sha256(msg, self.modulus_len);
        let x = BoxedUint::from_be_slice(&em, self.params.bits_precision()).expect("k bytes fit the modulus precision");
        let y = BoxedMontyForm::new(x, &self.params).pow(&self.d);
        to_fixed_be(&y.retrieve(), self.modulus_len)
    }
}

impl std::fmt::Debug for RsaFullKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaFullKey { .. }")
    }
}

/// Deals a threshold RSA key of exactly `bits` bits for `n` parties, any `t + 1` of which can
/// sign. `bits` must be a multiple of 8 and at least 512 (use 2048 or more outside tests).
///
/// The two safe primes are searched on two threads; `progress` is called on this thread as each
/// is found, and once more at the end. Deterministic for a deterministic `rng`.
pub fn deal<R: RngCore + CryptoRng>(
    bits: u32,
    n: usize,
    t: usize,
    rng: &mut R,
    progress: &mut dyn FnMut(KeygenProgress),
) -> Result<RsaDealing, RsaError> {
    if !bits.is_multiple_of(8) || !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
        return Err(RsaError::UnsupportedModulusSize { bits });
    }
    if n == 0 || n > MAX_PARTIES {
        return Err(RsaError::UnsupportedParties { n });
    }
    if t >= n {
        return Err(RsaError::InvalidThreshold { t, n });
    }
    let mut rng_p = bigint_rng(rng);
    let mut rng_q = bigint_rng(rng);
    let mut rng = bigint_rng(rng);

    let half = bits / 2;
    let (p, mut q) = std::thread::scope(|scope| {
        let (found_tx, found_rx) = mpsc::channel::<()>();
        let found_tx_q = found_tx.clone();
        let search_p = scope.spawn(move || {
            let prime = safe_prime(&mut rng_p, half);
            // The receiver outlives both searches; a send error cannot happen.
            let _ = found_tx.send(());
            prime
        });
        let search_q = scope.spawn(move || {
            let prime = safe_prime(&mut rng_q, half);
            let _ = found_tx_q.send(());
            prime
        });
        for which in 1..=2 {
            // An error means both senders are gone (a search thread panicked); join reports it.
            if found_rx.recv().is_err() {
                break;
            }
            progress(KeygenProgress::PrimeFound { which, of: 2 });
        }
        let panicked = || RsaError::KeyGeneration("prime search thread panicked".into());
        let p = search_p.join().map_err(|_| panicked())??;
        let q = search_q.join().map_err(|_| panicked())??;
        Ok::<_, RsaError>((p, q))
    })?;
    // Astronomically unlikely, but p = q would make N a square.
    while *p == *q {
        q = safe_prime(&mut rng, half)?;
    }

    let precision = limb_bits(bits);
    let widen = |x: &BoxedUint| Zeroizing::new(resized(x, precision));
    let p = widen(&p);
    let q = widen(&q);
    let modulus = p.concatenating_mul(&*q).resize_unchecked(precision);
    // Both primes have their top two bits set, so N has exactly `bits` bits.
    if modulus.bit_width_vartime() != bits {
        return Err(RsaError::KeyGeneration(format!("modulus has {} bits", modulus.bit_width_vartime())));
    }
    let modulus = Odd::new(modulus).into_option().ok_or_else(|| RsaError::KeyGeneration("even modulus".into()))?;
    let modulus_nz = modulus.as_nz_ref().clone();

    // m = p'q' with p' = (p-1)/2, q' = (q-1)/2; φ(N) = 4m.
    let p_half = Zeroizing::new(p.shr(1));
    let q_half = Zeroizing::new(q.shr(1));
    let m_wide = Zeroizing::new(p_half.concatenating_mul(&*q_half));
    let m = widen(&m_wide);
    let m_odd = Zeroizing::new(
        Odd::new(BoxedUint::clone(&m)).into_option().ok_or_else(|| RsaError::KeyGeneration("p' q' is even".into()))?,
    );
    let m_nz = Zeroizing::new(m_odd.as_nz_ref().clone());
    let phi = Zeroizing::new(
        NonZero::new(m.shl(2)).into_option().ok_or_else(|| RsaError::KeyGeneration("φ(N) is zero".into()))?,
    );

    let e = BoxedUint::from(PUBLIC_EXPONENT).resize_unchecked(precision);
    let not_invertible = || RsaError::KeyGeneration("e is not invertible".into());
    let d = Zeroizing::new(e.invert_odd_mod(&m_odd).into_option().ok_or_else(not_invertible)?);
    let d_full = Zeroizing::new(e.invert_mod(&phi).into_option().ok_or_else(not_invertible)?);

    // f(X) = d + a_1 X + ... + a_t X^t over Z_m; coefficients[j] is the coefficient of X^j.
    let mut coefficients: Vec<Zeroizing<BoxedUint>> = vec![Zeroizing::new(BoxedUint::clone(&d))];
    for _ in 0..t {
        coefficients.push(Zeroizing::new(BoxedUint::random_mod_vartime(&mut rng, &m_nz)));
    }
    let secrets: Vec<Zeroizing<BoxedUint>> = (0..n)
        .map(|i| {
            // Horner's rule at the party's point i + 1, in constant time.
            let point = BoxedUint::from(i as u64 + 1).resize_unchecked(precision);
            let mut acc = Zeroizing::new(BoxedUint::clone(&coefficients[t]));
            for coefficient in coefficients[..t].iter().rev() {
                let product = Zeroizing::new(acc.mul_mod(&point, &m_nz));
                // Rebinding (not assigning through) the wrapper wipes the previous value.
                acc = Zeroizing::new(product.add_mod(coefficient, &m_nz));
            }
            acc
        })
        .collect();

    let params = BoxedMontyParams::new(modulus.clone());
    let v = loop {
        let r = Zeroizing::new(BoxedUint::random_mod_vartime(&mut rng, &modulus_nz));
        if modulus.gcd(&*r).as_ref().is_one().to_bool() {
            let r = Zeroizing::new(BoxedMontyForm::new(BoxedUint::clone(&r), &params));
            break r.square();
        }
    };
    let verification_keys = secrets.iter().map(|s| v.pow(s).retrieve()).collect();
    let public = ThresholdRsaPublic::from_parts(n, t, modulus, v.retrieve(), verification_keys)?;
    let shares = secrets.into_iter().enumerate().map(|(i, s)| RsaKeyShare::new(i, n, s)).collect();
    let full_key = RsaFullKey { d: d_full, params, modulus_len: public.signature_len() };
    progress(KeygenProgress::Done);
    Ok(RsaDealing { public, shares, full_key })
}

/// A random safe prime of exactly `bits` bits whose top two bits are set.
fn safe_prime(rng: &mut rand_chacha_10::ChaCha20Rng, bits: u32) -> Result<Zeroizing<BoxedUint>, RsaError> {
    let failed = |e: crypto_primes::Error| RsaError::KeyGeneration(e.to_string());
    let factory = SmallFactorsSieveFactory::<BoxedUint>::new(Flavor::Safe, bits, SetBits::TwoMsb).map_err(failed)?;
    let prime = sieve_and_find(rng, factory, |_, candidate| is_prime(Flavor::Safe, candidate))
        .map_err(failed)?
        .ok_or_else(|| RsaError::KeyGeneration("prime sieve exhausted".into()))?;
    Ok(Zeroizing::new(prime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::testutil::{dealing, rsa_crate_verifies};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn quiet(_: KeygenProgress) {}

    #[test]
    fn modulus_has_exactly_the_requested_bit_length() {
        for (bits, seed) in [(512, 1), (512, 2), (512, 3), (768, 4), (768, 5), (1024, 6)] {
            let d = deal(bits, 3, 1, &mut ChaCha20Rng::seed_from_u64(seed), &mut quiet).unwrap();
            assert_eq!(d.public.modulus_bits(), bits, "seed {seed}");
            let n = d.public.modulus_be_bytes();
            assert_eq!(n.len() * 8, bits as usize);
            assert!(n[0] >= 0x80);
        }
    }

    #[test]
    fn safe_primes_are_safe_with_the_top_two_bits_set() {
        let mut rng = bigint_rng(&mut ChaCha20Rng::seed_from_u64(3));
        for bits in [256, 260, 384] {
            let p = safe_prime(&mut rng, bits).unwrap();
            assert!(is_prime(Flavor::Safe, &*p));
            assert_eq!(p.bit_width_vartime(), bits);
            assert!(p.bit(bits - 2).to_bool(), "second-highest bit set");
        }
    }

    #[test]
    fn deal_rejects_invalid_parameters() {
        let mut rng = ChaCha20Rng::seed_from_u64(0);
        let mut run = |bits, n, t| deal(bits, n, t, &mut rng, &mut quiet).map(|_| ());
        assert_eq!(run(511, 4, 1), Err(RsaError::UnsupportedModulusSize { bits: 511 }));
        assert_eq!(run(516, 4, 1), Err(RsaError::UnsupportedModulusSize { bits: 516 }));
        assert_eq!(run(256, 4, 1), Err(RsaError::UnsupportedModulusSize { bits: 256 }));
        assert_eq!(run(512, 0, 0), Err(RsaError::UnsupportedParties { n: 0 }));
        assert_eq!(run(512, 65, 1), Err(RsaError::UnsupportedParties { n: 65 }));
        assert_eq!(run(512, 4, 4), Err(RsaError::InvalidThreshold { t: 4, n: 4 }));
    }

    #[test]
    fn deal_reports_both_primes_then_done() {
        let mut events = Vec::new();
        deal(512, 3, 1, &mut ChaCha20Rng::seed_from_u64(9), &mut |e| events.push(e)).unwrap();
        assert_eq!(
            events,
            [
                KeygenProgress::PrimeFound { which: 1, of: 2 },
                KeygenProgress::PrimeFound { which: 2, of: 2 },
                KeygenProgress::Done
            ]
        );
    }

    #[test]
    fn deal_is_deterministic_for_a_seeded_rng() {
        let a = deal(512, 3, 1, &mut ChaCha20Rng::seed_from_u64(11), &mut quiet).unwrap();
        let b = deal(512, 3, 1, &mut ChaCha20Rng::seed_from_u64(11), &mut quiet).unwrap();
        assert_eq!(a.public, b.public);
    }

    #[test]
    fn every_share_matches_its_verification_key() {
        let d = dealing(7, 2);
        for (i, share) in d.shares.iter().enumerate() {
            assert_eq!(share.id(), i);
            assert!(share.verification_key_matches(&d.public));
        }
        // A share checked against another party's key does not match.
        let other = dealing(4, 1);
        assert!(!d.shares[0].verification_key_matches(&other.public));
    }

    #[test]
    fn full_key_signature_equals_the_rsa_crate_signature() {
        use rsa::signature::{SignatureEncoding, Signer};
        use rsa::traits::PrivateKeyParts;
        let d = dealing(4, 1);
        // The rsa crate recovers p and q from (N, e, d) and checks that N = pq and that d is an
        // inverse of e modulo p - 1 and q - 1.
        let key = rsa::RsaPrivateKey::from_components(
            rsa::BigUint::from_bytes_be(&d.public.modulus_be_bytes()),
            rsa::BigUint::from(PUBLIC_EXPONENT),
            rsa::BigUint::from_bytes_be(&d.full_key.d.to_be_bytes()),
            vec![],
        )
        .unwrap();
        assert_eq!(key.primes().len(), 2);
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
        for msg in [&b""[..], b"root certificate", &[0xa5; 1000]] {
            let ours = d.full_key.sign_pkcs1v15_sha256(msg);
            assert_eq!(ours, signer.sign(msg).to_vec());
            assert!(rsa_crate_verifies(&d.public, msg, &ours));
        }
    }

    #[test]
    fn full_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", dealing(4, 1).full_key), "RsaFullKey { .. }");
    }
}
