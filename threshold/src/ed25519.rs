//! Each replica's individual Ed25519 key, for transferable statements (its signed batch
//! proposals in atomic broadcast). Verification is strict (`verify_strict`): no small-order
//! keys or `R` points, canonical `S`, so a signature cannot be mauled into another valid one.

use std::fmt;

use ed25519_dalek::{PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SIGNATURE_LENGTH, Signer};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::encoding::{Versioned, hex_array};

/// A replica's secret signing key. ed25519-dalek zeroizes it on drop; Debug shows only the
/// public key. Stored as `{ "secret": hex, "public": hex }`; the public half is checked on load.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

/// A replica's public verification key, serialised as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

/// An Ed25519 signature, serialised as hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

/// Generates a fresh signing key.
pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
    SigningKey::generate(rng)
}

impl SigningKey {
    /// Generates a fresh signing key (deterministic under a seeded `rng`).
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; SECRET_KEY_LENGTH]);
        rng.fill_bytes(seed.as_mut());
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs `msg` (deterministic, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &hex::encode(self.0.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct RawSigningKey {
    secret: String,
    #[serde(with = "hex_array")]
    public: [u8; PUBLIC_KEY_LENGTH],
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The hex copy of the secret is overwritten before it is freed.
        let raw = Zeroizing::new(RawSigningKey {
            secret: hex::encode(self.0.as_bytes()),
            public: self.0.verifying_key().to_bytes(),
        });
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Zeroizing::new(RawSigningKey::deserialize(d)?);
        let mut secret = Zeroizing::new([0u8; SECRET_KEY_LENGTH]);
        hex::decode_to_slice(raw.secret.as_bytes(), secret.as_mut())
            .map_err(|_| serde::de::Error::custom("the secret key is not 32 bytes of hex"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        if key.verifying_key().as_bytes() != &raw.public {
            return Err(serde::de::Error::custom("the public key does not match the secret key"));
        }
        Ok(SigningKey(key))
    }
}

impl zeroize::Zeroize for RawSigningKey {
    fn zeroize(&mut self) {
        self.secret.zeroize();
    }
}

impl Versioned for SigningKey {
    const FORMAT: &'static str = "itca.ed25519-signing-key";
    const VERSION: u32 = 1;
}

impl VerifyingKey {
    /// Whether `sig` is this key's signature on `msg`, under strict verification.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        self.0.verify_strict(msg, &sig.0).is_ok()
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LENGTH] {
        self.0.to_bytes()
    }

    /// Parses a key: a valid curve point, not of small order (such keys verify anything under
    /// some signatures, which `verify_strict` would refuse anyway).
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Option<Self> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).ok()?;
        if key.is_weak() {
            return None;
        }
        Some(VerifyingKey(key))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", hex::encode(self.0.as_bytes()))
    }
}

impl Serialize for VerifyingKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_array::serialize(self.0.as_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for VerifyingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; PUBLIC_KEY_LENGTH] = hex_array::deserialize(d)?;
        VerifyingKey::from_bytes(&bytes).ok_or_else(|| serde::de::Error::custom("not a usable Ed25519 public key"))
    }
}

impl Signature {
    /// The 64-byte encoding `R || S`.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LENGTH] {
        self.0.to_bytes()
    }

    /// Wraps 64 bytes; whether they are a valid signature is decided by verification.
    pub fn from_bytes(bytes: &[u8; SIGNATURE_LENGTH]) -> Self {
        Signature(ed25519_dalek::Signature::from_bytes(bytes))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0.to_bytes()))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_array::serialize(&self.0.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; SIGNATURE_LENGTH] = hex_array::deserialize(d)?;
        Ok(Signature::from_bytes(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{from_json, to_json};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let key = generate(&mut rng(1));
        let other = generate(&mut rng(2));
        let sig = key.sign(b"batch of round 5");
        assert!(key.verifying_key().verify(b"batch of round 5", &sig));
        assert!(!key.verifying_key().verify(b"batch of round 6", &sig));
        assert!(!other.verifying_key().verify(b"batch of round 5", &sig));
        let mut bytes = sig.to_bytes();
        bytes[10] ^= 1;
        assert!(!key.verifying_key().verify(b"batch of round 5", &Signature::from_bytes(&bytes)));
    }

    #[test]
    fn generation_is_deterministic_under_a_seeded_rng() {
        assert_eq!(generate(&mut rng(3)).verifying_key(), generate(&mut rng(3)).verifying_key());
        assert_ne!(generate(&mut rng(3)).verifying_key(), generate(&mut rng(4)).verifying_key());
    }

    #[test]
    fn non_canonical_s_is_refused() {
        // Adding the group order to S gives the same verification equation; strict
        // verification refuses the non-canonical encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = generate(&mut rng(5));
        let sig = key.sign(b"m").to_bytes();
        let mut s_plus_l = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            s_plus_l[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!key.verifying_key().verify(b"m", &Signature::from_bytes(&s_plus_l)));
    }

    #[test]
    fn keys_and_signatures_round_trip_through_serde() {
        let key = generate(&mut rng(6));
        let text = to_json(&key);
        assert!(text.contains("\"format\": \"itca.ed25519-signing-key\""));
        let back: SigningKey = from_json(&text).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        assert_eq!(back.sign(b"m"), key.sign(b"m"));

        let public = key.verifying_key();
        let text = serde_json::to_string(&public).unwrap();
        assert_eq!(serde_json::from_str::<VerifyingKey>(&text).unwrap(), public);
        let sig = key.sign(b"m");
        let text = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<Signature>(&text).unwrap(), sig);
    }

    #[test]
    fn a_signing_key_file_with_a_wrong_public_key_is_refused() {
        let key = generate(&mut rng(7));
        let other = generate(&mut rng(8));
        let mut value: serde_json::Value = serde_json::from_str(&to_json(&key)).unwrap();
        value["data"]["public"] = hex::encode(other.verifying_key().to_bytes()).into();
        assert!(from_json::<SigningKey>(&value.to_string()).is_err());
    }

    #[test]
    fn small_order_public_keys_are_refused() {
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerifyingKey::from_bytes(&identity).is_none());
        let text = format!("\"{}\"", hex::encode(identity));
        assert!(serde_json::from_str::<VerifyingKey>(&text).is_err());
    }

    #[test]
    fn debug_of_a_signing_key_shows_no_key_material() {
        let key = generate(&mut rng(9));
        let value: serde_json::Value = serde_json::from_str(&to_json(&key)).unwrap();
        let secret = value["data"]["secret"].as_str().unwrap().to_string();
        let debug = format!("{key:?}");
        assert!(!debug.contains(&secret) && !debug.contains(&secret[..16]), "{debug}");
    }
}
