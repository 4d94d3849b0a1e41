//! Test fixtures: one dealt key per configuration per test binary, and a cross-check with the
//! `rsa` crate.

use std::sync::OnceLock;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rsa::signature::Verifier;

use super::{RsaDealing, ThresholdRsaPublic, deal};

/// A 512-bit key for `n` parties and threshold `t`, dealt once (size is not what the tests check).
pub(super) fn dealing(n: usize, t: usize) -> &'static RsaDealing {
    static D4_1: OnceLock<RsaDealing> = OnceLock::new();
    static D7_2: OnceLock<RsaDealing> = OnceLock::new();
    static D10_3: OnceLock<RsaDealing> = OnceLock::new();
    let (cell, seed) = match (n, t) {
        (4, 1) => (&D4_1, 41),
        (7, 2) => (&D7_2, 72),
        (10, 3) => (&D10_3, 103),
        _ => panic!("no fixture for ({n}, {t})"),
    };
    cell.get_or_init(|| deal(512, n, t, &mut ChaCha20Rng::seed_from_u64(seed), &mut |_| {}).expect("dealing"))
}

/// Whether the `rsa` crate accepts `signature` on `msg` as RSASSA-PKCS1-v1_5 with SHA-256.
pub(super) fn rsa_crate_verifies(public: &ThresholdRsaPublic, msg: &[u8], signature: &[u8]) -> bool {
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&public.modulus_be_bytes()),
        rsa::BigUint::from(public.public_exponent()),
    )
    .expect("valid RSA public key");
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    verifier.verify(msg, &signature).is_ok()
}
