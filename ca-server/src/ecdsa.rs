//! ECDSA verification of CSR and revocation signatures through OpenSSL (P-256, P-384).
//!
//! Every replica verifies every request it applies, so this sits on the issuance path five times
//! per certificate at n = 4; OpenSSL's assembly is several times faster than the pure-Rust
//! curve arithmetic. Parsing stays with the `p256`/`p384` crates (strict DER, scalars in range,
//! points on the curve), so only well-formed values reach OpenSSL and every replica reaches the
//! same verdict.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

fn group(curve: Curve) -> Option<&'static EcGroup> {
    static P256: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P384: OnceLock<Option<EcGroup>> = OnceLock::new();
    let (cell, nid) = match curve {
        Curve::P256 => (&P256, Nid::X9_62_PRIME256V1),
        Curve::P384 => (&P384, Nid::SECP384R1),
    };
    cell.get_or_init(|| EcGroup::from_curve_name(nid).ok()).as_ref()
}

/// Verifies `(r, s)` (big-endian scalars) over `digest` (any length: truncated to the order's
/// bits as FIPS 186-4 says) with the SEC1-encoded public `point`.
pub fn verify(curve: Curve, point: &[u8], r: &[u8], s: &[u8], digest: &[u8]) -> bool {
    let run = || -> Result<bool, openssl::error::ErrorStack> {
        let Some(group) = group(curve) else { return Ok(false) };
        let mut ctx = BigNumContext::new()?;
        let point = EcPoint::from_bytes(group, point, &mut ctx)?;
        let key = EcKey::from_public_key(group, &point)?;
        let signature = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
        signature.verify(digest, &key)
    };
    run().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use sha2::{Digest, Sha256, Sha512};

    fn p256_case(digest: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        // A fixed test key: the scalar 7 (this is not a secret).
        let key = p256::ecdsa::SigningKey::from_slice(&[[0u8; 31].as_slice(), &[7]].concat()).expect("scalar");
        let sig: p256::ecdsa::Signature = key.sign_prehash(digest).expect("sign");
        let point = key.verifying_key().to_encoded_point(false).as_bytes().to_vec();
        (point, sig.r().to_bytes().to_vec(), sig.s().to_bytes().to_vec())
    }

    #[test]
    fn openssl_accepts_what_the_rust_signer_made_and_rejects_any_other_digest() {
        let digest = Sha256::digest(b"a certificate request");
        let (point, r, s) = p256_case(&digest);
        assert!(verify(Curve::P256, &point, &r, &s, &digest));
        let other = Sha256::digest(b"another request");
        assert!(!verify(Curve::P256, &point, &r, &s, &other));
        assert!(!verify(Curve::P256, &point, &s, &r, &digest));
    }

    #[test]
    fn long_digests_are_truncated_as_the_rust_verifier_truncates_them() {
        let digest = Sha512::digest(b"signed with SHA-512 on P-256");
        let (point, r, s) = p256_case(&digest);
        assert!(verify(Curve::P256, &point, &r, &s, &digest));
    }

    #[test]
    fn a_point_off_the_curve_or_garbage_is_a_failed_verification_not_a_panic() {
        let digest = Sha256::digest(b"x");
        let (mut point, r, s) = p256_case(&digest);
        point[40] ^= 1;
        assert!(!verify(Curve::P256, &point, &r, &s, &digest));
        assert!(!verify(Curve::P384, &[4, 1, 2], &r, &s, &digest));
        assert!(!verify(Curve::P256, &[], &[], &[], &[]));
    }
}
