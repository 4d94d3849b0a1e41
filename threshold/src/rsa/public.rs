//! The threshold RSA public key: what every party and client knows. It verifies ordinary
//! signatures, checks share proofs and combines shares; its JSON form is validated on load.

use crypto_bigint::{
    BoxedUint, Gcd, Odd, Resize,
    modular::{BoxedMontyForm, BoxedMontyParams},
};
use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_traits::{One, Signed};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::arith::{factorial, from_be_public, limb_bits, to_fixed_be};
use super::padding::{MIN_ENCODED_LEN, emsa_pkcs1_v15_sha256};
use super::{MAX_MODULUS_BITS, MAX_PARTIES, MIN_MODULUS_BITS, PUBLIC_EXPONENT, RsaError};
use crate::encoding::{Versioned, hex_bytes};

/// The public side of a dealt threshold RSA key: `n`, `t`, the modulus `N`, `e`, and Shoup's
/// verification values `v`, `v_0..v_{n-1}`.
///
/// Loading (deserialising) validates it and precomputes what signing, combining and verifying
/// need (Montgomery parameters for `N`, `Δ = n!`, the Bézout coefficients of `4Δ²` and `e`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "PublicRaw", into = "PublicRaw")]
pub struct ThresholdRsaPublic {
    pub(super) parties: usize,
    pub(super) threshold: usize,
    /// `N`, at precision `limb_bits(bitlen(N))`, as are all values mod `N` below.
    pub(super) modulus: Odd<BoxedUint>,
    pub(super) v: BoxedUint,
    pub(super) verification_keys: Vec<BoxedUint>,
    // Derived on construction, never serialised.
    pub(super) params: BoxedMontyParams,
    /// `k`: the modulus length in bytes, the length of signatures and share values.
    pub(super) modulus_len: usize,
    pub(super) v_monty: BoxedMontyForm,
    pub(super) verification_keys_monty: Vec<BoxedMontyForm>,
    /// `Δ = n!`.
    pub(super) delta: BigUint,
    /// `4Δ`: the exponent of `x̃ = x^{4Δ}` in share proofs.
    pub(super) four_delta: BigUint,
    /// `(|a|, b)` with `a·4Δ² + b·e = 1` and `a < 0 < b` (so combining inverts only once).
    pub(super) bezout: (BigUint, BigUint),
}

impl Versioned for ThresholdRsaPublic {
    const FORMAT: &'static str = "itca.threshold-rsa-public";
    const VERSION: u32 = 1;
}

/// One big integer as hex inside a list.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct HexInt(#[serde(with = "hex_bytes")] Vec<u8>);

/// The stored form. Big integers are fixed-width (`k` bytes) big-endian hex.
#[derive(Clone, Serialize, Deserialize)]
struct PublicRaw {
    parties: usize,
    threshold: usize,
    #[serde(with = "hex_bytes")]
    modulus: Vec<u8>,
    public_exponent: u32,
    #[serde(with = "hex_bytes")]
    v: Vec<u8>,
    verification_keys: Vec<HexInt>,
}

impl From<ThresholdRsaPublic> for PublicRaw {
    fn from(public: ThresholdRsaPublic) -> Self {
        let k = public.modulus_len;
        PublicRaw {
            parties: public.parties,
            threshold: public.threshold,
            modulus: public.modulus_be_bytes(),
            public_exponent: PUBLIC_EXPONENT,
            v: to_fixed_be(&public.v, k),
            verification_keys: public.verification_keys.iter().map(|vk| HexInt(to_fixed_be(vk, k))).collect(),
        }
    }
}

impl TryFrom<PublicRaw> for ThresholdRsaPublic {
    type Error = RsaError;

    fn try_from(raw: PublicRaw) -> Result<Self, RsaError> {
        let invalid = |reason: String| RsaError::InvalidPublicKey(reason);
        if raw.public_exponent != PUBLIC_EXPONENT {
            return Err(invalid(format!("public exponent {} (only {PUBLIC_EXPONENT} is used)", raw.public_exponent)));
        }
        let modulus = from_be_public(&raw.modulus, MAX_MODULUS_BITS)
            .ok_or_else(|| invalid(format!("modulus longer than {MAX_MODULUS_BITS} bits")))?;
        let bits = modulus.bit_width_vartime();
        if bits < MIN_MODULUS_BITS {
            return Err(invalid(format!("modulus of {bits} bits (at least {MIN_MODULUS_BITS} needed)")));
        }
        let modulus = modulus.resize_unchecked(limb_bits(bits));
        let modulus = Odd::new(modulus).into_option().ok_or_else(|| invalid("even modulus".into()))?;
        let value = |bytes: &[u8], what: &str| {
            from_be_public(bytes, bits).ok_or_else(|| invalid(format!("{what} is not smaller than N")))
        };
        let v = value(&raw.v, "v")?;
        let verification_keys = raw
            .verification_keys
            .iter()
            .enumerate()
            .map(|(i, vk)| value(&vk.0, &format!("verification key {i}")))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_parts(raw.parties, raw.threshold, modulus, v, verification_keys)
    }
}

impl ThresholdRsaPublic {
    /// Validates the parts and precomputes the derived values. `v` and the verification keys must
    /// have the modulus's precision.
    pub(super) fn from_parts(
        parties: usize,
        threshold: usize,
        modulus: Odd<BoxedUint>,
        v: BoxedUint,
        verification_keys: Vec<BoxedUint>,
    ) -> Result<Self, RsaError> {
        let invalid = |reason: String| RsaError::InvalidPublicKey(reason);
        if parties == 0 || parties > MAX_PARTIES {
            return Err(invalid(format!("{parties} parties (1 to {MAX_PARTIES} supported)")));
        }
        if threshold >= parties {
            return Err(invalid(format!("threshold {threshold} is not smaller than {parties} parties")));
        }
        if verification_keys.len() != parties {
            return Err(invalid(format!("{} verification keys for {parties} parties", verification_keys.len())));
        }
        let bits = modulus.bit_width_vartime();
        let modulus_len = bits.div_ceil(8) as usize;
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) || modulus_len < MIN_ENCODED_LEN {
            return Err(invalid(format!("modulus of {bits} bits")));
        }
        let precision = modulus.bits_precision();
        // v and each v_i must be units mod N: 0 or a shared factor would make proofs meaningless
        // (and a shared factor would factor N).
        let check_unit = |x: &BoxedUint, what: &str| -> Result<(), RsaError> {
            let in_range = x.bits_precision() == precision && x.is_nonzero().to_bool() && x < modulus.as_ref();
            if in_range && modulus.gcd_vartime(x).as_ref().is_one().to_bool() {
                Ok(())
            } else {
                Err(invalid(format!("{what} is not a unit modulo N")))
            }
        };
        check_unit(&v, "v")?;
        for (i, vk) in verification_keys.iter().enumerate() {
            check_unit(vk, &format!("verification key {i}"))?;
        }

        let params = BoxedMontyParams::new_vartime(modulus.clone());
        let v_monty = BoxedMontyForm::new(v.clone(), &params);
        let verification_keys_monty =
            verification_keys.iter().map(|vk| BoxedMontyForm::new(vk.clone(), &params)).collect();
        let delta = factorial(parties);
        let four_delta = &delta * 4u32;
        let e_prime = BigInt::from(&four_delta * &delta);
        let e = BigInt::from(PUBLIC_EXPONENT);
        let gcd = e_prime.extended_gcd(&e);
        // e is a prime larger than n, so it does not divide 4Δ².
        if !gcd.gcd.is_one() {
            return Err(invalid("e divides 4Δ²".into()));
        }
        // Exactly one of a, b is negative; shift to the solution (a - e, b + 4Δ²) if needed so
        // that it is a.
        let (a, b) = if gcd.x.is_negative() { (gcd.x, gcd.y) } else { (gcd.x - &e, gcd.y + &e_prime) };
        let (Some(a), Some(b)) = ((-a).to_biguint(), b.to_biguint()) else {
            return Err(invalid("Bézout coefficients out of range".into()));
        };
        Ok(ThresholdRsaPublic {
            parties,
            threshold,
            modulus,
            v,
            verification_keys,
            params,
            modulus_len,
            v_monty,
            verification_keys_monty,
            delta,
            four_delta,
            bezout: (a, b),
        })
    }

    /// The number of parties `n`.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The threshold `t`: up to `t` parties learn nothing; `t + 1` shares make a signature.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The modulus `N`, big-endian, `k` bytes (no leading zero byte).
    pub fn modulus_be_bytes(&self) -> Vec<u8> {
        to_fixed_be(self.modulus.as_ref(), self.modulus_len)
    }

    /// The bit length of `N`.
    pub fn modulus_bits(&self) -> u32 {
        self.modulus.bit_width_vartime()
    }

    /// The public exponent `e` (65537).
    pub fn public_exponent(&self) -> u32 {
        PUBLIC_EXPONENT
    }

    /// The length in bytes of signatures and signature share values (`k`).
    pub fn signature_len(&self) -> usize {
        self.modulus_len
    }

    /// Standard RSASSA-PKCS1-v1_5 verification with SHA-256: `signature` must be exactly `k`
    /// bytes, smaller than `N`, and `signature^e mod N` must be the encoding of `msg`.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.modulus_len {
            return false;
        }
        let Some(s) = self.parse_residue(signature) else {
            return false;
        };
        let em = self.pow_e(&s).retrieve();
        to_fixed_be(&em, self.modulus_len) == emsa_pkcs1_v15_sha256(msg, self.modulus_len)
    }

    /// `x = EMSA-PKCS1-v1_5(SHA-256(msg))` as an element mod `N`. The encoding starts with a zero
    /// byte, so it is below `2^(8(k-1)) <= N`.
    pub(super) fn message_representative(&self, msg: &[u8]) -> BoxedMontyForm {
        let em = emsa_pkcs1_v15_sha256(msg, self.modulus_len);
        let x = BoxedUint::from_be_slice(&em, self.params.bits_precision()).expect("k bytes fit the modulus precision");
        BoxedMontyForm::new(x, &self.params)
    }

    /// Public bytes (any length) as an element of `[0, N)`, or `None` if `>= N`.
    pub(super) fn parse_residue(&self, bytes: &[u8]) -> Option<BoxedMontyForm> {
        let precision = self.params.bits_precision();
        let x = from_be_public(bytes, precision)?;
        (x < *self.modulus.as_ref()).then(|| BoxedMontyForm::new(x, &self.params))
    }

    /// `x^e`, variable time (e is public).
    pub(super) fn pow_e(&self, x: &BoxedMontyForm) -> BoxedMontyForm {
        super::arith::pow_public(x, &BigUint::from(PUBLIC_EXPONENT))
    }

    /// An element mod `N` as `k` bytes big-endian: the form [`super::bn`] takes.
    pub(super) fn element_bytes(&self, x: &BoxedMontyForm) -> Vec<u8> {
        to_fixed_be(&x.retrieve(), self.modulus_len)
    }

    /// A result of [`super::bn`] (`k` bytes, below `N`) as an element mod `N`.
    pub(super) fn element_from_bn(&self, bytes: &[u8]) -> BoxedMontyForm {
        let x =
            BoxedUint::from_be_slice(bytes, self.params.bits_precision()).expect("k bytes fit the modulus precision");
        BoxedMontyForm::new(x, &self.params)
    }

    /// `base^exponent` as `k` bytes, constant time in the secret `exponent` (OpenSSL's
    /// `BN_mod_exp_mont_consttime`, about twice as fast as crypto-bigint's `pow`). The exponent
    /// crosses over at its full precision in a buffer wiped afterwards. Should OpenSSL fail (it
    /// only can on allocation failure), crypto-bigint computes the same value.
    pub(super) fn pow_secret(&self, base: &BoxedMontyForm, exponent: &BoxedUint) -> Vec<u8> {
        let exponent_bytes = Zeroizing::new(exponent.to_be_bytes());
        super::bn::pow_secret(&self.element_bytes(base), &exponent_bytes, &self.modulus_be_bytes())
            .unwrap_or_else(|| self.element_bytes(&base.pow(exponent)))
    }
}

impl PartialEq for ThresholdRsaPublic {
    fn eq(&self, other: &Self) -> bool {
        // The other fields are derived from these.
        self.parties == other.parties
            && self.threshold == other.threshold
            && self.modulus == other.modulus
            && self.v == other.v
            && self.verification_keys == other.verification_keys
    }
}

impl Eq for ThresholdRsaPublic {}

impl std::fmt::Debug for ThresholdRsaPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.modulus_be_bytes();
        f.debug_struct("ThresholdRsaPublic")
            .field("parties", &self.parties)
            .field("threshold", &self.threshold)
            .field("modulus_bits", &self.modulus_bits())
            .field("modulus_prefix", &hex::encode(&n[..8]))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{from_json, to_json};
    use crate::rsa::testutil::{dealing, rsa_crate_verifies};

    #[test]
    fn public_key_round_trips_through_json() {
        let public = &dealing(4, 1).public;
        let text = to_json(public);
        assert!(text.contains("\"format\": \"itca.threshold-rsa-public\""));
        let back: ThresholdRsaPublic = from_json(&text).unwrap();
        assert_eq!(&back, public);
        // The rebuilt caches work: a signature made with the original verifies with the copy.
        let sig = dealing(4, 1).full_key.sign_pkcs1v15_sha256(b"round trip");
        assert!(back.verify(b"round trip", &sig));
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<ThresholdRsaPublic, crate::encoding::FormatError> {
        let text = to_json(&dealing(4, 1).public);
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        edit(&mut value["data"]);
        from_json(&value.to_string())
    }

    #[test]
    fn public_key_load_rejects_inconsistent_values() {
        assert!(edited(|_| {}).is_ok());
        let k = dealing(4, 1).public.signature_len();
        let zero = serde_json::Value::String("00".repeat(k));
        let modulus = dealing(4, 1).public.modulus_be_bytes();
        let too_big = serde_json::Value::String(hex::encode(&modulus));
        let mut even = modulus.clone();
        *even.last_mut().unwrap() &= 0xfe;
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("e", Box::new(|j| j["public_exponent"] = 3.into())),
            ("t >= n", Box::new(|j| j["threshold"] = 4.into())),
            ("n = 0", Box::new(|j| j["parties"] = 0.into())),
            ("n too large", Box::new(|j| j["parties"] = 65.into())),
            (
                "missing key",
                Box::new(|j| {
                    j["verification_keys"].as_array_mut().unwrap().pop();
                }),
            ),
            ("v = 0", Box::new(move |j| j["v"] = zero)),
            ("v_1 = N", Box::new(move |j| j["verification_keys"][1] = too_big)),
            ("even N", Box::new(move |j| j["modulus"] = hex::encode(even).into())),
            ("short N", Box::new(|j| j["modulus"] = "ff".repeat(32).into())),
            ("not hex", Box::new(|j| j["v"] = "zz".into())),
        ];
        for (what, edit) in cases {
            assert!(edited(edit).is_err(), "accepted a public key with {what}");
        }
    }

    #[test]
    fn full_key_signature_verifies_and_altered_ones_do_not() {
        let d = dealing(4, 1);
        let sig = d.full_key.sign_pkcs1v15_sha256(b"hello");
        assert!(d.public.verify(b"hello", &sig));
        assert!(rsa_crate_verifies(&d.public, b"hello", &sig));
        assert!(!d.public.verify(b"hello!", &sig));
        assert!(!d.public.verify(b"hello", &sig[1..]));
        let mut longer = vec![0u8];
        longer.extend_from_slice(&sig);
        assert!(!d.public.verify(b"hello", &longer));
        assert!(!d.public.verify(b"hello", &d.public.modulus_be_bytes()));
    }
}
