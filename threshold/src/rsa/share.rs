//! A party's key share and the signature shares it produces.

use crypto_bigint::{BoxedUint, modular::BoxedMontyForm};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeStruct};
use zeroize::Zeroizing;

use super::arith::{biguint_to_boxed, factorial, limb_bits, resized};
use super::{MAX_MODULUS_BITS, MAX_PARTIES, RsaError, ShareError, ThresholdRsaPublic, proof};
use crate::PartyId;
use crate::encoding::{Versioned, hex_bytes};

/// Party `id`'s share `s_i = f(id + 1) mod m` of the secret exponent. Wiped on drop; `Debug`
/// shows only the party.
#[derive(Deserialize)]
#[serde(try_from = "KeyShareRaw")]
pub struct RsaKeyShare {
    id: PartyId,
    /// `n`, which fixes `Δ = n!` in the share exponent.
    parties: usize,
    secret: Zeroizing<BoxedUint>,
    /// `2Δ s_i`, computed once at load: the exponent of every signature share.
    exponent: Zeroizing<BoxedUint>,
}

impl Versioned for RsaKeyShare {
    const FORMAT: &'static str = "itca.threshold-rsa-key-share";
    const VERSION: u32 = 1;
}

impl RsaKeyShare {
    pub(super) fn new(id: PartyId, parties: usize, secret: Zeroizing<BoxedUint>) -> Self {
        let exponent = share_exponent(&secret, parties);
        RsaKeyShare { id, parties, secret, exponent }
    }

    /// The party this share belongs to.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The number of parties the key was dealt for.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// This party's signature share on `msg`: `x^{2Δ s_i} mod N` with
    /// `x = EMSA-PKCS1-v1_5(SHA-256(msg))`, without a proof (see [`Self::sign_with_proof`]).
    /// Constant time in the secret.
    pub fn sign(&self, public: &ThresholdRsaPublic, msg: &[u8]) -> SignatureShare {
        let x = public.message_representative(msg);
        SignatureShare { id: self.id, value: self.share_value(public, &x), proof: None }
    }

    /// Like [`Self::sign`], with a non-interactive proof that the share is correct (about 3x the
    /// cost). Combiners need proofs only to find bad shares, so send this when asked, or always if
    /// latency matters more than computation.
    pub fn sign_with_proof<R: RngCore + CryptoRng>(
        &self,
        public: &ThresholdRsaPublic,
        msg: &[u8],
        rng: &mut R,
    ) -> SignatureShare {
        let x = public.message_representative(msg);
        let value = self.share_value(public, &x);
        let proof = proof::prove(public, self.id, &self.secret, &x, &public.element_from_bn(&value), rng);
        SignatureShare { id: self.id, value, proof: Some(proof) }
    }

    /// Whether `v^{s_i}` is the published verification key of this party: the share belongs to
    /// this public key.
    pub fn verification_key_matches(&self, public: &ThresholdRsaPublic) -> bool {
        match public.verification_keys_monty.get(self.id) {
            Some(key) => public.pow_secret(&public.v_monty, &self.secret) == public.element_bytes(key),
            None => false,
        }
    }

    /// `x^{2Δ s_i}` as `k` bytes, with `Δ` of the public key (which is this share's unless the two
    /// were mixed up; then the result is simply a wrong share).
    fn share_value(&self, public: &ThresholdRsaPublic, x: &BoxedMontyForm) -> Vec<u8> {
        if public.parties == self.parties {
            public.pow_secret(x, &self.exponent)
        } else {
            public.pow_secret(x, &share_exponent(&self.secret, public.parties))
        }
    }
}

/// `2Δ s` with `Δ = n!`, at a precision that depends only on the sizes of `s` and `n`.
fn share_exponent(secret: &BoxedUint, parties: usize) -> Zeroizing<BoxedUint> {
    let two_delta = biguint_to_boxed(&(factorial(parties) * 2u32));
    let precision = limb_bits(secret.bits_precision() + two_delta.bits_precision());
    let wide = Zeroizing::new(resized(secret, precision));
    Zeroizing::new(wide.wrapping_mul(&two_delta))
}

impl std::fmt::Debug for RsaKeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKeyShare").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Serialize for RsaKeyShare {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = Zeroizing::new(self.secret.to_be_bytes().into_vec());
        let secret_hex = Zeroizing::new(hex::encode(&*bytes));
        let mut out = serializer.serialize_struct("RsaKeyShare", 3)?;
        out.serialize_field("party", &self.id)?;
        out.serialize_field("parties", &self.parties)?;
        out.serialize_field("secret_share", secret_hex.as_str())?;
        out.end()
    }
}

/// The stored form of a key share.
#[derive(Deserialize)]
struct KeyShareRaw {
    party: PartyId,
    parties: usize,
    #[serde(deserialize_with = "secret_hex")]
    secret_share: Zeroizing<Vec<u8>>,
}

fn secret_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
    let text = Zeroizing::new(String::deserialize(deserializer)?);
    hex::decode(text.as_str()).map(Zeroizing::new).map_err(serde::de::Error::custom)
}

impl TryFrom<KeyShareRaw> for RsaKeyShare {
    type Error = RsaError;

    fn try_from(raw: KeyShareRaw) -> Result<Self, RsaError> {
        let invalid = |reason: String| RsaError::InvalidKeyShare(reason);
        if raw.parties == 0 || raw.parties > MAX_PARTIES {
            return Err(invalid(format!("{} parties (1 to {MAX_PARTIES} supported)", raw.parties)));
        }
        if raw.party >= raw.parties {
            return Err(invalid(format!("party {} of {}", raw.party, raw.parties)));
        }
        let len = raw.secret_share.len();
        if len == 0 || len * 8 > MAX_MODULUS_BITS as usize {
            return Err(invalid(format!("secret share of {len} bytes")));
        }
        let secret = BoxedUint::from_be_slice(&raw.secret_share, limb_bits(len as u32 * 8))
            .map_err(|_| invalid("secret share does not decode".into()))?;
        Ok(RsaKeyShare::new(raw.party, raw.parties, Zeroizing::new(secret)))
    }
}

/// One party's signature share on a message, as sent to the combiners.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureShare {
    /// The claimed sender. Combiners should check it against the authenticated sender.
    pub id: PartyId,
    /// `x_i`, `k` bytes big-endian.
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
    /// Proof of correctness, if the signer attached one.
    #[serde(default)]
    pub proof: Option<ShareProof>,
}

/// Shoup's proof that `log_{x̃}(x_i²) = log_v(v_i)`: challenge `c` (16 bytes) and response `z`
/// (`k + 33` bytes), big-endian.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareProof {
    #[serde(with = "hex_bytes")]
    pub c: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub z: Vec<u8>,
}

impl std::fmt::Debug for SignatureShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = &self.value[..self.value.len().min(8)];
        f.debug_struct("SignatureShare")
            .field("id", &self.id)
            .field("value", &format_args!("{}.. ({} bytes)", hex::encode(prefix), self.value.len()))
            .field("proof", &self.proof)
            .finish()
    }
}

impl std::fmt::Debug for ShareProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareProof").field("c", &format_args!("{}", hex::encode(&self.c))).finish_non_exhaustive()
    }
}

impl ThresholdRsaPublic {
    /// A share's value as an element of `Z_N`, after the checks every received share needs:
    /// a known party, exactly `k` bytes, and a value in `[1, N)`.
    pub(super) fn share_element(&self, share: &SignatureShare) -> Result<BoxedMontyForm, ShareError> {
        if share.id >= self.parties {
            return Err(ShareError::UnknownParty { id: share.id, parties: self.parties });
        }
        if share.value.len() != self.modulus_len {
            return Err(ShareError::WrongLength { expected: self.modulus_len, got: share.value.len() });
        }
        let element = self.parse_residue(&share.value).ok_or(ShareError::OutOfRange)?;
        if element.is_zero().to_bool() {
            return Err(ShareError::OutOfRange);
        }
        Ok(element)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{from_json, to_json};
    use crate::rsa::testutil::dealing;

    #[test]
    fn key_share_round_trips_through_json() {
        let d = dealing(4, 1);
        let share = &d.shares[2];
        let text = to_json(share);
        assert!(text.contains("\"format\": \"itca.threshold-rsa-key-share\""));
        let back: RsaKeyShare = from_json(&text).unwrap();
        assert_eq!(back.id(), 2);
        assert_eq!(back.parties(), 4);
        assert_eq!(*back.secret, *share.secret);
        assert_eq!(*back.exponent, *share.exponent);
        assert!(back.verification_key_matches(&d.public));
        assert_eq!(back.sign(&d.public, b"m"), share.sign(&d.public, b"m"));
    }

    #[test]
    fn key_share_load_rejects_inconsistent_values() {
        let text = to_json(&dealing(4, 1).shares[0]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let with = |field: &str, v: serde_json::Value| {
            let mut value = value.clone();
            value["data"][field] = v;
            from_json::<RsaKeyShare>(&value.to_string())
        };
        assert!(with("party", 4.into()).is_err());
        assert!(with("parties", 0.into()).is_err());
        assert!(with("parties", 65.into()).is_err());
        assert!(with("secret_share", "".into()).is_err());
        assert!(with("secret_share", "xyz".into()).is_err());
        assert!(with("secret_share", "ab".repeat(3000).into()).is_err());
    }

    #[test]
    fn key_share_debug_does_not_reveal_the_secret() {
        let share = &dealing(4, 1).shares[1];
        let debug = format!("{share:?}");
        assert!(debug.contains("id: 1"));
        let secret_hex = hex::encode(share.secret.to_be_bytes());
        let trimmed = secret_hex.trim_start_matches('0');
        assert!(!debug.contains(&trimmed[..16]));
        assert!(!debug.contains(&secret_hex));
        assert!(!format!("{:?}", dealing(4, 1)).contains(&trimmed[..16]));
    }

    #[test]
    fn signature_share_round_trips_through_json() {
        let d = dealing(4, 1);
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(5);
        for share in [d.shares[0].sign(&d.public, b"m"), d.shares[1].sign_with_proof(&d.public, b"m", &mut rng)] {
            let text = serde_json::to_string(&share).unwrap();
            assert!(text.contains(&hex::encode(&share.value)));
            assert_eq!(serde_json::from_str::<SignatureShare>(&text).unwrap(), share);
        }
    }

    #[test]
    fn signing_is_deterministic_and_share_specific() {
        let d = dealing(4, 1);
        let a = d.shares[0].sign(&d.public, b"m");
        assert_eq!(a, d.shares[0].sign(&d.public, b"m"));
        assert_ne!(a.value, d.shares[1].sign(&d.public, b"m").value);
        assert_ne!(a.value, d.shares[0].sign(&d.public, b"n").value);
        assert_eq!(a.value.len(), d.public.signature_len());
    }
}
