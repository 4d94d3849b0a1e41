//! Shoup threshold RSA ("Practical Threshold Signatures", Eurocrypt 2000, protocol 1).
//!
//! A trusted dealer ([`deal`]) picks `N = pq` with safe primes `p = 2p'+1`, `q = 2q'+1`,
//! `e = 65537` and `d = e^-1 mod m` (`m = p'q'`), and shares `d` with a random polynomial of degree
//! `t` over `Z_m`: party `i` (0-based) gets `s_i = f(i+1) mod m`. It also publishes a random square
//! `v` and the verification keys `v_i = v^{s_i}`.
//!
//! To sign `M`, each party computes `x = EMSA-PKCS1-v1_5(SHA-256(M))` and its share
//! `x_i = x^{2Δ s_i} mod N` (`Δ = n!`), optionally with a non-interactive proof that it used the
//! same `s_i` as in `v_i`. Any `t+1` shares combine ([`ThresholdRsaPublic::combine`]) into an
//! ordinary `sha256WithRSAEncryption` signature under `(N, e)`, which any RSA library verifies.
//!
//! Combining is optimistic: the first `t+1` shares are combined and the one result is checked
//! (`y^e == x`, microseconds); proofs are verified only if that fails, to find and exclude the bad
//! shares. Secret exponentiations use constant-time arithmetic: OpenSSL's
//! `BN_mod_exp_mont_consttime` for shares and proofs (`bn`), crypto-bigint when dealing; public
//! ones (combining, verification) may be variable-time. Stored secrets stay crypto-bigint values,
//! wiped on drop.

mod arith;
mod bn;
mod combine;
mod keygen;
mod padding;
mod proof;
mod public;
mod share;
#[cfg(test)]
mod testutil;

pub use keygen::{KeygenProgress, RsaDealing, RsaFullKey, deal};
pub use public::ThresholdRsaPublic;
pub use share::{RsaKeyShare, ShareProof, SignatureShare};

use crate::PartyId;

/// The public exponent. It must be a prime larger than `n` for Shoup's scheme; 65537 is what every
/// RSA verifier expects.
pub const PUBLIC_EXPONENT: u32 = 65_537;

/// The largest number of parties supported (`Δ = n!` stays small enough to be cheap).
pub const MAX_PARTIES: usize = 64;

/// The smallest modulus accepted, in bits (tests only; production keys are 2048 bits or more).
pub const MIN_MODULUS_BITS: u32 = 512;

/// The largest modulus accepted when loading a public key, in bits.
pub const MAX_MODULUS_BITS: u32 = 16_384;

/// Why a key could not be dealt or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    #[error("modulus size {bits} is not supported (a multiple of 8, at least {MIN_MODULUS_BITS})")]
    UnsupportedModulusSize { bits: u32 },
    #[error("{n} parties are not supported (1 to {MAX_PARTIES})")]
    UnsupportedParties { n: usize },
    #[error("threshold {t} must be smaller than the number of parties {n}")]
    InvalidThreshold { t: usize, n: usize },
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("invalid threshold RSA public key: {0}")]
    InvalidPublicKey(String),
    #[error("invalid threshold RSA key share: {0}")]
    InvalidKeyShare(String),
}

/// Why a signature share was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("share from party {id}, but there are only {parties} parties")]
    UnknownParty { id: PartyId, parties: usize },
    #[error("share value is {got} bytes long, expected {expected}")]
    WrongLength { expected: usize, got: usize },
    #[error("share value is not in [1, N)")]
    OutOfRange,
    #[error("share carries no proof of correctness")]
    MissingProof,
    #[error("malformed share proof: {0}")]
    MalformedProof(&'static str),
    #[error("share proof does not verify")]
    InvalidProof,
}
