//! Bridges the project's RNG type (rand 0.8, as blsttc and ed25519-dalek use) to the rand_core
//! 0.10 API that crypto-bigint and crypto-primes expect.

use rand::{CryptoRng, RngCore};
use rand_core_10::SeedableRng;

/// A rand_core 0.10 CSPRNG seeded with 32 bytes from `rng`: deterministic for a seeded caller,
/// as strong as the caller's RNG otherwise.
pub fn bigint_rng<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> rand_chacha_10::ChaCha20Rng {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let out = rand_chacha_10::ChaCha20Rng::from_seed(seed);
    zeroize::Zeroize::zeroize(&mut seed);
    out
}
