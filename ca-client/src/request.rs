//! Turning a CA request into the body submitted to replicas: plain, or sealed to the cluster's
//! threshold-encryption key so that no replica can read it (and so no coalition of `t` can act on
//! its content) before its position in the order is fixed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::CaRequest;
use ca_api::api::Submission;
use rand::{CryptoRng, RngCore};
use threshold::seal::{EncryptionPublicKey, SealedRequest};

use crate::error::ClientError;

/// The label a sealed request is bound to. The replicas open any label; binding one keeps a
/// ciphertext made for this purpose from being replayed as some other protocol's.
pub const SEAL_LABEL: &[u8] = b"itca ca-request v1";

/// A request ready to submit: the same body goes to every replica, so each orders the same
/// bytes and the copies are one request with one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    pub submission: Submission,
    /// The JSON body of the submission.
    pub body: Vec<u8>,
    /// The id replicas know the request by (`Submission::request_id`).
    pub id: [u8; 32],
}

impl PreparedRequest {
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self.submission, Submission::Sealed { .. })
    }
}

/// Prepares `request`, sealed to `seal_to` when given.
pub fn prepare<R: RngCore + CryptoRng>(
    request: &CaRequest,
    seal_to: Option<&EncryptionPublicKey>,
    rng: &mut R,
) -> Result<PreparedRequest, ClientError> {
    let plain = request.to_bytes();
    let (tag, bytes) = match seal_to {
        None => (0u8, plain),
        Some(key) => {
            let sealed =
                threshold::seal::seal(key, SEAL_LABEL, &plain, rng).map_err(|e| ClientError::Seal(e.to_string()))?;
            (1u8, encode_sealed(&sealed)?)
        }
    };
    let encoded = BASE64.encode(&bytes);
    let submission =
        if tag == 0 { Submission::Plain { request: encoded } } else { Submission::Sealed { request: encoded } };
    // Serialising a two-string enum cannot fail.
    let body = serde_json::to_vec(&submission).map_err(|e| ClientError::Seal(e.to_string()))?;
    Ok(PreparedRequest { submission, body, id: Submission::request_id(tag, &bytes) })
}

/// A sealed request's wire bytes: CBOR of the request's serde form, exactly as the replicas'
/// ordering layer encodes and decodes it (`replication::wire`). Written here so the client does
/// not depend on the replication crate; a test checks the replicas decode these bytes.
pub fn encode_sealed(sealed: &SealedRequest) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    ciborium::into_writer(sealed, &mut out).map_err(|e| ClientError::Seal(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ca_api::command::{Command, SignedCommand};
    use ca_api::{AccountSecret, RevocationReason};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn request() -> CaRequest {
        let secret = AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let command =
            Command::Revoke { serial_hex: "01ab".into(), reason: RevocationReason::Superseded, nonce: "n".into() };
        CaRequest::Signed(SignedCommand::sign(&secret, &command))
    }

    fn encryption_keys() -> (EncryptionPublicKey, Vec<threshold::seal::EncryptionKeyShare>) {
        threshold::seal::deal(4, 2, &mut ChaCha20Rng::seed_from_u64(2))
    }

    fn encryption_key() -> EncryptionPublicKey {
        encryption_keys().0
    }

    #[test]
    fn a_plain_submission_carries_the_request_bytes_and_their_id() {
        let prepared = prepare(&request(), None, &mut ChaCha20Rng::seed_from_u64(3)).unwrap();
        let Submission::Plain { request: encoded } = &prepared.submission else { panic!("not plain") };
        let bytes = BASE64.decode(encoded).unwrap();
        assert_eq!(bytes, request().to_bytes());
        assert_eq!(prepared.id, Submission::request_id(0, &bytes));
        let body: Submission = serde_json::from_slice(&prepared.body).unwrap();
        assert_eq!(body, prepared.submission);
    }

    #[test]
    fn a_sealed_submission_decodes_as_the_replicas_decode_it() {
        let key = encryption_key();
        let prepared = prepare(&request(), Some(&key), &mut ChaCha20Rng::seed_from_u64(3)).unwrap();
        assert!(prepared.is_sealed());
        let Submission::Sealed { request: encoded } = &prepared.submission else { panic!("not sealed") };
        let bytes = BASE64.decode(encoded).unwrap();
        assert_eq!(prepared.id, Submission::request_id(1, &bytes));
        // The replicas' own decoder, and the proof that binds the ciphertext, accept it.
        let decoded = replication::crypto::threshold_backend::decode_sealed(&bytes).expect("replicas decode it");
        decoded.validate().expect("the sealed request validates");
        assert_eq!(decoded.label(), SEAL_LABEL);
        // And the bytes are the replicas' own encoding of that request, byte for byte.
        assert_eq!(replication::wire::encode(&decoded).unwrap(), bytes);
    }

    #[test]
    fn two_decryption_shares_open_a_sealed_submission_to_the_request() {
        let (key, shares) = encryption_keys();
        let prepared = prepare(&request(), Some(&key), &mut ChaCha20Rng::seed_from_u64(3)).unwrap();
        let Submission::Sealed { request: encoded } = &prepared.submission else { panic!("not sealed") };
        let sealed = replication::crypto::threshold_backend::decode_sealed(&BASE64.decode(encoded).unwrap()).unwrap();
        let parts: Vec<_> = shares[1..3].iter().map(|s| s.decryption_share(&sealed).unwrap()).collect();
        let opened = key.open(&sealed, &parts).unwrap();
        assert_eq!(opened.value.as_slice(), request().to_bytes().as_slice());
    }

    #[test]
    fn the_plaintext_does_not_appear_in_a_sealed_submission() {
        let key = encryption_key();
        let prepared = prepare(&request(), Some(&key), &mut ChaCha20Rng::seed_from_u64(3)).unwrap();
        let Submission::Sealed { request: encoded } = &prepared.submission else { panic!("not sealed") };
        let bytes = BASE64.decode(encoded).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"revoke"));
    }
}
