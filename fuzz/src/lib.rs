//! What the fuzz targets and the seed generator share: the fixed key that re-signs mutated
//! certificate requests (so the fuzzer reaches the code behind the self-signature check), and
//! a few DER helpers.

use der::{Decode, Header, Reader, SliceReader, Tag};
use ed25519_dalek::Signer;

/// The Ed25519 key whose public half the re-signed seed requests carry. A fixed test key.
pub fn resign_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x42; 32])
}

/// DER length octets for `len`.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One DER TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// The first TLV inside an outer SEQUENCE (a CSR's request info), or `None` if `der` does not
/// start like one.
pub fn request_info(der: &[u8]) -> Option<&[u8]> {
    let mut reader = SliceReader::new(der).ok()?;
    let header = Header::decode(&mut reader).ok()?;
    if header.tag != Tag::Sequence {
        return None;
    }
    reader.tlv_bytes().ok()
}

/// A PKCS#10 request around `info` (whatever it holds), signed with [`resign_key`]:
/// `SEQUENCE { info, AlgorithmIdentifier { id-Ed25519 }, BIT STRING signature }`.
pub fn resign(info: &[u8]) -> Vec<u8> {
    let signature = resign_key().sign(info).to_bytes();
    let mut body = info.to_vec();
    // id-Ed25519 (1.3.101.112), no parameters (RFC 8410).
    body.extend_from_slice(&tlv(0x30, &tlv(0x06, &[0x2b, 0x65, 0x70])));
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    body.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// `der` as a PEM certificate request.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// The cluster (n = 4, t = 1, real threshold keys) whose messages the wire seeds are and whose
/// replica 0 the wire target feeds: the same keys every run, so seed messages verify.
pub fn cluster() -> &'static replication::crypto::threshold_backend::RealCluster {
    use rand::SeedableRng;
    static CLUSTER: std::sync::OnceLock<replication::crypto::threshold_backend::RealCluster> =
        std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        replication::crypto::threshold_backend::RealCluster::deal(4, 1, &mut rand_chacha::ChaCha20Rng::seed_from_u64(7))
    })
}

/// The ordering instance of [`cluster`].
pub fn instance() -> replication::InstanceId {
    replication::InstanceId::root(1)
}
