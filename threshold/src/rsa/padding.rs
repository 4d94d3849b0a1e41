//! EMSA-PKCS1-v1_5 encoding with SHA-256 (RFC 8017, 9.2): the value the threshold key signs, so
//! that the combined signature is an ordinary `sha256WithRSAEncryption` signature.

use sha2::{Digest, Sha256};

/// DER of the DigestInfo prefix for SHA-256 (RFC 8017, 9.2, note 1).
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// The shortest modulus length, in bytes, for which the encoding exists.
pub(crate) const MIN_ENCODED_LEN: usize = SHA256_DIGEST_INFO_PREFIX.len() + 32 + 11;

/// `0x00 || 0x01 || 0xff.. || 0x00 || DigestInfo(SHA-256(msg))`, `k` bytes long.
/// `k >= MIN_ENCODED_LEN` is guaranteed by the modulus size checks.
pub(crate) fn emsa_pkcs1_v15_sha256(msg: &[u8], k: usize) -> Vec<u8> {
    debug_assert!(k >= MIN_ENCODED_LEN);
    let digest = Sha256::digest(msg);
    let t_len = SHA256_DIGEST_INFO_PREFIX.len() + digest.len();
    let mut em = vec![0xffu8; k];
    em[0] = 0x00;
    em[1] = 0x01;
    em[k - t_len - 1] = 0x00;
    em[k - t_len..k - digest.len()].copy_from_slice(&SHA256_DIGEST_INFO_PREFIX);
    em[k - digest.len()..].copy_from_slice(&digest);
    em
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_has_the_rfc_8017_layout() {
        let em = emsa_pkcs1_v15_sha256(b"abc", 64);
        assert_eq!(em.len(), 64);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        let ps_end = 64 - 51 - 1;
        assert!(em[2..ps_end].iter().all(|&b| b == 0xff));
        assert_eq!(em[ps_end], 0);
        assert_eq!(&em[ps_end + 1..ps_end + 20], &SHA256_DIGEST_INFO_PREFIX);
        assert_eq!(&em[64 - 32..], Sha256::digest(b"abc").as_slice());
    }
}
