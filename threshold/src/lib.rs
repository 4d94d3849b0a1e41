//! Threshold cryptography for the intrusion-tolerant CA: Shoup threshold RSA (the root key that
//! signs certificates, CRLs and tree heads), BLS12-381 threshold signatures and the common coin
//! (the agreement protocols), threshold encryption of sealed requests, Ed25519 replica keys, and
//! the versioned file formats the dealer writes and the replicas load.
//!
//! Parties are numbered from 0 to `n - 1` everywhere ([`PartyId`]); where a scheme evaluates a
//! polynomial at the party's point, it uses `id + 1` internally.

pub mod bls;
pub mod cluster;
pub mod combine;
pub mod ed25519;
pub mod encoding;
pub mod rng;
pub mod rsa;
pub mod seal;

/// A replica's number within the cluster, `0..n`.
pub type PartyId = usize;
