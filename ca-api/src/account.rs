//! Account keys: Ed25519. An account's public key is registered in the policy; its holder signs
//! requests with the secret half, kept in a standard PKCS#8 PEM file (RFC 8410) that OpenSSL and
//! other tools read.
//!
//! Verification is strict (`verify_strict`), and small-order public keys are refused when a key
//! is parsed: such a key would accept signatures that nobody had to compute with a secret.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, Signer};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Why an account key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountKeyError {
    #[error("an account key is {expected} lowercase hex digits; got {found} characters")]
    Length { expected: usize, found: usize },
    #[error("an account key is lowercase hex; found {0:?}")]
    NotHex(char),
    #[error("not an Ed25519 public key (the bytes are not a curve point)")]
    NotAPoint,
    #[error("a small-order Ed25519 public key is refused: it would accept forged signatures")]
    WeakKey,
    /// The PKCS#8 library's message names the structure that failed, never key material.
    #[error("not an Ed25519 PKCS#8 PEM private key: {0}")]
    Pkcs8(String),
}

/// An account's public key (Ed25519), written as the lowercase hex of its 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountKey(ed25519_dalek::VerifyingKey);

/// An account's secret key. ed25519-dalek wipes it on drop; there is no `Clone`, so no copy
/// outlives the owner, and `Debug` shows only the public half.
pub struct AccountSecret(ed25519_dalek::SigningKey);

impl AccountKey {
    /// Length of the hex form.
    pub const HEX_LEN: usize = 2 * PUBLIC_KEY_LENGTH;

    /// Reads the 32-byte encoding, refusing non-points and small-order keys.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Result<Self, AccountKeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| AccountKeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(AccountKeyError::WeakKey);
        }
        Ok(AccountKey(key))
    }

    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LENGTH] {
        self.0.as_bytes()
    }

    /// Whether `signature` is this key's signature of `msg` (strict RFC 8032 verification, so a
    /// valid signature cannot be mauled into a second one).
    pub fn verify(&self, msg: &[u8], signature: &[u8; SIGNATURE_LENGTH]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(msg, &signature).is_ok()
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({self})")
    }
}

impl FromStr for AccountKey {
    type Err = AccountKeyError;

    /// Only the lowercase form is accepted, so one key has one spelling in a policy file.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(c) = text.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(AccountKeyError::NotHex(c));
        }
        if text.len() != Self::HEX_LEN {
            return Err(AccountKeyError::Length { expected: Self::HEX_LEN, found: text.len() });
        }
        let mut bytes = [0u8; PUBLIC_KEY_LENGTH];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| AccountKeyError::NotAPoint)?;
        Self::from_bytes(&bytes)
    }
}

impl Serialize for AccountKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl AccountSecret {
    /// Generates a fresh key (deterministic under a seeded `rng`, which tests rely on).
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; ed25519_dalek::SECRET_KEY_LENGTH]);
        rng.fill_bytes(seed.as_mut());
        AccountSecret(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The registered half.
    pub fn public(&self) -> AccountKey {
        AccountKey(self.0.verifying_key())
    }

    /// Signs `msg` (deterministic, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LENGTH] {
        self.0.sign(msg).to_bytes()
    }

    /// The key as a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`), in the RFC 8410 form
    /// `openssl genpkey -algorithm ed25519` writes: the secret only. (The RFC 5958 form with the
    /// public key appended, ed25519-dalek's default, is refused by OpenSSL 3.0.) The text is
    /// wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, AccountKeyError> {
        // `KeypairBytes` wipes its copy of the secret on drop (the `ed25519/zeroize` feature).
        let document = KeypairBytes { secret_key: self.0.to_bytes(), public_key: None };
        document.to_pkcs8_pem(LineEnding::LF).map_err(|e| AccountKeyError::Pkcs8(e.to_string()))
    }

    /// Reads a PKCS#8 PEM Ed25519 key, as written by [`AccountSecret::to_pkcs8_pem`] or by
    /// `openssl genpkey -algorithm ed25519`. A public key inside (RFC 5958) must match the secret.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, AccountKeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| AccountKeyError::Pkcs8(e.to_string()))?;
        Ok(AccountSecret(key))
    }
}

impl fmt::Debug for AccountSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSecret").field("public", &self.public()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn secret(seed: u64) -> AccountSecret {
        AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let (alice, bob) = (secret(1), secret(2));
        let sig = alice.sign(b"issue www.example.com");
        assert!(alice.public().verify(b"issue www.example.com", &sig));
        assert!(!alice.public().verify(b"issue evil.example.com", &sig));
        assert!(!bob.public().verify(b"issue www.example.com", &sig));
    }

    #[test]
    fn public_key_round_trips_as_lowercase_hex_in_json() {
        let key = secret(3).public();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", hex::encode(key.as_bytes())));
        assert_eq!(serde_json::from_str::<AccountKey>(&json).unwrap(), key);
        assert_eq!(key.to_string().parse::<AccountKey>().unwrap(), key);
    }

    #[test]
    fn malformed_and_small_order_public_keys_are_refused() {
        let key = secret(4).public().to_string();
        assert!(matches!(key.to_uppercase().parse::<AccountKey>(), Err(AccountKeyError::NotHex(_))));
        assert!(matches!(key[..62].parse::<AccountKey>(), Err(AccountKeyError::Length { found: 62, .. })));
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(AccountKey::from_bytes(&identity), Err(AccountKeyError::WeakKey));
        assert_eq!(hex::encode(identity).parse::<AccountKey>(), Err(AccountKeyError::WeakKey));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = secret(5);
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.public().to_string()), "{debug}");
        assert!(!debug.contains(&hex::encode(key.0.as_bytes())), "{debug}");
    }

    #[test]
    fn pkcs8_pem_round_trips_and_refuses_a_mismatched_public_key() {
        let key = secret(6);
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{}", *pem);
        let back = AccountSecret::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.public(), key.public());
        assert_eq!(back.sign(b"m"), key.sign(b"m"));
        assert!(matches!(AccountSecret::from_pkcs8_pem("not a key"), Err(AccountKeyError::Pkcs8(_))));

        // Another key's public half spliced into the document: the pair is refused.
        let other = secret(7);
        let mut doc = KeypairBytes::from_pkcs8_pem(&pem).unwrap();
        assert!(doc.public_key.is_none(), "the RFC 8410 form holds the secret only");
        doc.public_key = Some(ed25519_dalek::pkcs8::PublicKeyBytes(other.public().as_bytes().to_owned()));
        let spliced = doc.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(matches!(AccountSecret::from_pkcs8_pem(&spliced), Err(AccountKeyError::Pkcs8(_))));
    }

    fn openssl(args: &[&str]) -> std::process::Output {
        Command::new("openssl").args(args).output().expect("the openssl binary must be installed (.ci/run installs it)")
    }

    #[test]
    fn openssl_reads_the_pem_and_agrees_on_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret(8);
        let path = dir.path().join("account-key.pem");
        std::fs::write(&path, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        let path = path.to_str().unwrap();
        let read = openssl(&["pkey", "-in", path, "-noout", "-text"]);
        assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
        // The public key OpenSSL derives is the one the policy registers (DER SPKI: 12-byte
        // header, then the 32 key bytes).
        let der = openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"]);
        assert!(der.status.success(), "{}", String::from_utf8_lossy(&der.stderr));
        assert_eq!(der.stdout.len(), 44);
        assert_eq!(&der.stdout[12..], key.public().as_bytes());
    }

    #[test]
    fn reads_a_key_that_openssl_generated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openssl.pem");
        let path = path.to_str().unwrap();
        let made = openssl(&["genpkey", "-algorithm", "ed25519", "-out", path]);
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let key = AccountSecret::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
        let sig = key.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig));
    }
}
