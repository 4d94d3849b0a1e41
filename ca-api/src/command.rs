//! What a client asks the CA to do, as it travels through the ordering layer: the bytes of one
//! ordered request are the JSON of a [`CaRequest`].
//!
//! Two kinds of authorisation exist:
//! - [`SignedCommand`]: a [`Command`] signed by an account key registered in the policy. The
//!   command travels as the exact JSON text that was signed (`command`), so the replicas verify
//!   the signature over the bytes the client produced, never over a re-serialisation.
//! - [`KeyRevocation`]: a revocation signed by the key of the certificate being revoked (RFC 5280
//!   lets the subject ask for its own revocation; this is what a holder of a compromised key that
//!   has no account can still do).
//!
//! Every signed message starts with a fixed context string ([`COMMAND_CONTEXT`],
//! [`KEY_REVOCATION_CONTEXT`]), so a signature made for this CA can never be mistaken for one over
//! some other protocol's bytes, and in particular a certificate key (which also signs in TLS)
//! cannot be tricked into signing a revocation.
//!
//! Each command carries a `nonce`, so two otherwise identical requests are distinct: the ordering
//! layer drops exact duplicates, and the CA refuses a command whose [`CaRequest::replay_key`] it
//! has already seen (so a captured request cannot be replayed later, e.g. to roll back a policy).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::account::{AccountKey, AccountSecret};

/// Prefix of every message an account key signs.
pub const COMMAND_CONTEXT: &[u8] = b"itca command v1\n";
/// Prefix of every message a certificate key signs to revoke its certificate.
pub const KEY_REVOCATION_CONTEXT: &[u8] = b"itca revoke-by-key v1\n";
/// The largest encoded request the CA looks at (a policy with many accounts fits easily; a CSR
/// is at most 64 KiB).
pub const MAX_REQUEST_LEN: usize = 1024 * 1024;
/// Nonces are 1 to this many characters of `[A-Za-z0-9_-]`.
pub const MAX_NONCE_LEN: usize = 64;
/// A serial number is at most 20 octets (RFC 5280 4.1.2.2), so 40 hex digits.
pub const MAX_SERIAL_HEX_LEN: usize = 40;

/// Why a request could not be read or its signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the request is {len} bytes; at most {MAX_REQUEST_LEN} are accepted")]
    TooLarge { len: usize },
    #[error("the request is not valid JSON of a CA request: {0}")]
    Malformed(String),
    #[error("the command is not valid JSON of a command: {0}")]
    MalformedCommand(String),
    #[error("the account signature does not verify")]
    BadSignature,
    #[error("the nonce must be 1 to {MAX_NONCE_LEN} characters of letters, digits, '-' and '_'")]
    BadNonce,
    #[error("the serial number must be 1 to {MAX_SERIAL_HEX_LEN} hex digits, an even number of them")]
    BadSerial,
    #[error("the CSR is not valid base64: {0}")]
    BadBase64(String),
}

/// RFC 5280 5.3.1 CRLReason values this CA accepts, written with their ASN.1 names.
/// `certificateHold` is absent because a revocation here is final, and `removeFromCRL` belongs to
/// delta CRLs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RevocationReason {
    #[serde(rename = "unspecified")]
    Unspecified,
    #[serde(rename = "keyCompromise")]
    KeyCompromise,
    #[serde(rename = "cACompromise")]
    CaCompromise,
    #[serde(rename = "affiliationChanged")]
    AffiliationChanged,
    #[serde(rename = "superseded")]
    Superseded,
    #[serde(rename = "cessationOfOperation")]
    CessationOfOperation,
    #[serde(rename = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
    #[serde(rename = "aACompromise")]
    AaCompromise,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 8] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for an RFC 5280 code, if this CA accepts it.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }

    /// The ASN.1 name, as in JSON and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = CommandError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
            .ok_or_else(|| CommandError::Malformed(format!("{text:?} is not an RFC 5280 revocation reason")))
    }
}

/// What an account asks for. Serialised as JSON with a `type` tag; unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Issue a certificate for a PKCS#10 request under a profile.
    Issue {
        /// The CSR's DER, standard base64 with padding.
        csr_der_base64: String,
        profile: String,
        /// Days of validity; the profile's default when absent.
        #[serde(default)]
        validity_days: Option<u32>,
        nonce: String,
    },
    /// Revoke a certificate: the account must have requested it or may revoke any.
    Revoke {
        /// The serial number's big-endian bytes in hex.
        serial_hex: String,
        reason: RevocationReason,
        nonce: String,
    },
    /// Replace the policy (administrators only); takes effect from the next request on.
    SetPolicy {
        /// A complete policy file (`itca.policy`), as the dealer writes one.
        policy_json: String,
        nonce: String,
    },
}

impl Command {
    pub fn nonce(&self) -> &str {
        match self {
            Command::Issue { nonce, .. } | Command::Revoke { nonce, .. } | Command::SetPolicy { nonce, .. } => nonce,
        }
    }

    /// An issuance command for a DER CSR.
    pub fn issue(csr_der: &[u8], profile: &str, validity_days: Option<u32>, nonce: String) -> Command {
        Command::Issue {
            csr_der_base64: base64::engine::general_purpose::STANDARD.encode(csr_der),
            profile: profile.to_string(),
            validity_days,
            nonce,
        }
    }

    /// The CSR of an issuance command, decoded.
    pub fn csr_der(&self) -> Option<Result<Vec<u8>, CommandError>> {
        match self {
            Command::Issue { csr_der_base64, .. } => Some(decode_csr(csr_der_base64)),
            _ => None,
        }
    }
}

/// Decodes an issuance command's `csr_der_base64`.
pub fn decode_csr(csr_der_base64: &str) -> Result<Vec<u8>, CommandError> {
    base64::engine::general_purpose::STANDARD.decode(csr_der_base64).map_err(|e| CommandError::BadBase64(e.to_string()))
}

/// A command and an account's signature over `COMMAND_CONTEXT || command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    pub account: AccountKey,
    /// The JSON of a [`Command`]: the exact bytes signed (after the context prefix).
    pub command: String,
    #[serde(with = "threshold::encoding::hex_array")]
    pub signature: [u8; 64],
}

impl SignedCommand {
    /// Serialises `command` and signs it with `secret`.
    pub fn sign(secret: &AccountSecret, command: &Command) -> SignedCommand {
        // Serialising an enum of strings and numbers to a String cannot fail.
        let command = serde_json::to_string(command).expect("in-memory JSON serialisation");
        let signature = secret.sign(&signed_message(COMMAND_CONTEXT, &command));
        SignedCommand { account: secret.public(), command, signature }
    }

    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        signed_message(COMMAND_CONTEXT, &self.command)
    }

    /// Checks the signature against `account`; only then is the command parsed, so nothing
    /// unauthenticated reaches the JSON parser beyond the envelope.
    pub fn verify(&self) -> Result<Command, CommandError> {
        if !self.account.verify(&self.message(), &self.signature) {
            return Err(CommandError::BadSignature);
        }
        parse_command(&self.command)
    }
}

/// Parses a command's JSON and checks its nonce.
pub fn parse_command(text: &str) -> Result<Command, CommandError> {
    let command: Command = serde_json::from_str(text).map_err(|e| CommandError::MalformedCommand(e.to_string()))?;
    check_nonce(command.nonce())?;
    Ok(command)
}

/// What a certificate's key signs to have that certificate revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevocationStatement {
    /// The serial number's big-endian bytes in hex.
    pub serial_hex: String,
    pub reason: RevocationReason,
    pub nonce: String,
}

/// A [`KeyRevocationStatement`] (its exact JSON) and a signature over
/// `KEY_REVOCATION_CONTEXT || statement` by the certificate's key: RSA PKCS#1 v1.5 with SHA-256,
/// ECDSA P-256 with SHA-256 or P-384 with SHA-384 (DER-encoded signature), or Ed25519.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevocation {
    pub statement: String,
    #[serde(with = "threshold::encoding::hex_bytes")]
    pub signature: Vec<u8>,
}

impl KeyRevocation {
    /// Serialises `statement` and has `sign` sign the message (the caller holds the certificate's
    /// private key, of whatever type).
    pub fn sign_with(statement: &KeyRevocationStatement, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> KeyRevocation {
        let statement = serde_json::to_string(statement).expect("in-memory JSON serialisation");
        let signature = sign(&signed_message(KEY_REVOCATION_CONTEXT, &statement));
        KeyRevocation { statement, signature }
    }

    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        signed_message(KEY_REVOCATION_CONTEXT, &self.statement)
    }

    /// The statement, parsed and checked (the signature is checked by the CA, which has the key).
    pub fn parse_statement(&self) -> Result<KeyRevocationStatement, CommandError> {
        let statement: KeyRevocationStatement =
            serde_json::from_str(&self.statement).map_err(|e| CommandError::MalformedCommand(e.to_string()))?;
        check_nonce(&statement.nonce)?;
        Ok(statement)
    }
}

/// One ordered request: its bytes are `serde_json` of this, externally tagged:
/// `{"signed": {...}}` or `{"revoke_by_key": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
// A request lives for one apply step; boxing the signed command would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum CaRequest {
    Signed(SignedCommand),
    RevokeByKey(KeyRevocation),
}

impl CaRequest {
    /// The bytes to submit for ordering.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("in-memory JSON serialisation")
    }

    /// Reads a request, refusing oversized input before parsing it.
    pub fn from_bytes(bytes: &[u8]) -> Result<CaRequest, CommandError> {
        if bytes.len() > MAX_REQUEST_LEN {
            return Err(CommandError::TooLarge { len: bytes.len() });
        }
        serde_json::from_slice(bytes).map_err(|e| CommandError::Malformed(e.to_string()))
    }

    /// What identifies the authorised statement, whatever its envelope's spelling: SHA-256 of the
    /// signer's identity and the signed message. The signature itself is left out, so a second
    /// valid signature over the same statement (or another hex spelling of it) is still a replay.
    pub fn replay_key(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        match self {
            CaRequest::Signed(signed) => {
                hasher.update(b"account\0");
                hasher.update(signed.account.as_bytes());
                hasher.update(signed.message());
            }
            CaRequest::RevokeByKey(revocation) => {
                hasher.update(b"certificate key\0");
                hasher.update(revocation.message());
            }
        }
        hasher.finalize().into()
    }
}

/// A fresh random nonce: 128 bits in hex.
pub fn new_nonce<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Decodes a serial number given in hex (either case), without leading zero octets (so one
/// number has one byte string), refusing empty, odd-length or over-long input.
pub fn parse_serial_hex(text: &str) -> Result<Vec<u8>, CommandError> {
    if text.is_empty() || text.len() > MAX_SERIAL_HEX_LEN || !text.len().is_multiple_of(2) {
        return Err(CommandError::BadSerial);
    }
    let bytes = hex::decode(text).map_err(|_| CommandError::BadSerial)?;
    let first = bytes.iter().position(|&b| b != 0).ok_or(CommandError::BadSerial)?;
    Ok(bytes[first..].to_vec())
}

fn check_nonce(nonce: &str) -> Result<(), CommandError> {
    let ok = (1..=MAX_NONCE_LEN).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(CommandError::BadNonce) }
}

fn signed_message(context: &[u8], text: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(context.len() + text.len());
    message.extend_from_slice(context);
    message.extend_from_slice(text.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn secret(seed: u64) -> AccountSecret {
        AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    fn issue() -> Command {
        Command::issue(&[0x30, 0x03, 0x02, 0x01, 0x00], "default", Some(30), "n1".into())
    }

    #[test]
    fn signed_commands_round_trip_and_verify() {
        let key = secret(1);
        for command in [
            issue(),
            Command::Revoke { serial_hex: "01ab".into(), reason: RevocationReason::KeyCompromise, nonce: "n2".into() },
            Command::SetPolicy { policy_json: "{}".into(), nonce: "n3".into() },
        ] {
            let request = CaRequest::Signed(SignedCommand::sign(&key, &command));
            let back = CaRequest::from_bytes(&request.to_bytes()).unwrap();
            assert_eq!(back, request);
            let CaRequest::Signed(signed) = back else { panic!("envelope changed") };
            assert_eq!(signed.verify(), Ok(command));
        }
    }

    #[test]
    fn the_wire_format_uses_the_documented_spellings() {
        let signed = SignedCommand::sign(&secret(1), &issue());
        let value: serde_json::Value = serde_json::from_slice(&CaRequest::Signed(signed.clone()).to_bytes()).unwrap();
        assert_eq!(value["signed"]["account"], serde_json::json!(secret(1).public().to_string()));
        assert_eq!(value["signed"]["signature"], serde_json::json!(hex::encode(signed.signature)));
        let command: serde_json::Value = serde_json::from_str(&signed.command).unwrap();
        assert_eq!(
            command,
            serde_json::json!({"type": "issue", "csr_der_base64": "MAMCAQA=", "profile": "default",
                "validity_days": 30, "nonce": "n1"})
        );
        let revoke =
            Command::Revoke { serial_hex: "01".into(), reason: RevocationReason::CaCompromise, nonce: "x".into() };
        assert!(serde_json::to_string(&revoke).unwrap().contains("\"reason\":\"cACompromise\""));
        assert_eq!(signed.message()[..COMMAND_CONTEXT.len()], *COMMAND_CONTEXT);
    }

    #[test]
    fn a_changed_command_or_another_key_fails_verification() {
        let mut signed = SignedCommand::sign(&secret(1), &issue());
        signed.command = signed.command.replace("default", "other");
        assert_eq!(signed.verify(), Err(CommandError::BadSignature));
        let mut signed = SignedCommand::sign(&secret(1), &issue());
        signed.account = secret(2).public();
        assert_eq!(signed.verify(), Err(CommandError::BadSignature));
        // A signature over the bare command (no context) is not accepted.
        let mut signed = SignedCommand::sign(&secret(1), &issue());
        signed.signature = secret(1).sign(signed.command.as_bytes());
        assert_eq!(signed.verify(), Err(CommandError::BadSignature));
    }

    #[test]
    fn unknown_fields_bad_nonces_and_oversized_input_are_refused() {
        assert!(matches!(
            parse_command(r#"{"type":"issue","csr_der_base64":"","profile":"p","nonce":"a","extra":1}"#),
            Err(CommandError::MalformedCommand(_))
        ));
        assert!(matches!(parse_command(r#"{"type":"launch","nonce":"a"}"#), Err(CommandError::MalformedCommand(_))));
        for nonce in ["", "has space", &"a".repeat(65), "ünï"] {
            let text =
                serde_json::to_string(&Command::SetPolicy { policy_json: "{}".into(), nonce: nonce.into() }).unwrap();
            assert_eq!(parse_command(&text), Err(CommandError::BadNonce), "{nonce:?}");
        }
        assert!(matches!(CaRequest::from_bytes(b"{\"other\":{}}"), Err(CommandError::Malformed(_))));
        let big = vec![b' '; MAX_REQUEST_LEN + 1];
        assert_eq!(CaRequest::from_bytes(&big), Err(CommandError::TooLarge { len: MAX_REQUEST_LEN + 1 }));
    }

    #[test]
    fn replay_keys_ignore_the_signature_spelling_but_not_the_nonce_or_signer() {
        let key = secret(1);
        let signed = SignedCommand::sign(&key, &issue());
        let request = CaRequest::Signed(signed.clone());
        // Upper-case hex is a different encoding of the same signed statement.
        let text = String::from_utf8(request.to_bytes()).unwrap();
        let respelled = text.replace(&hex::encode(signed.signature), &hex::encode_upper(signed.signature));
        assert_ne!(text, respelled);
        let respelled = CaRequest::from_bytes(respelled.as_bytes()).unwrap();
        assert_eq!(respelled.replay_key(), request.replay_key());

        let other_nonce = Command::issue(&[0x30, 0x03, 0x02, 0x01, 0x00], "default", Some(30), "n2".into());
        assert_ne!(CaRequest::Signed(SignedCommand::sign(&key, &other_nonce)).replay_key(), request.replay_key());
        assert_ne!(CaRequest::Signed(SignedCommand::sign(&secret(2), &issue())).replay_key(), request.replay_key());
    }

    #[test]
    fn key_revocations_sign_the_context_and_the_statement() {
        let statement = KeyRevocationStatement {
            serial_hex: "01ff".into(),
            reason: RevocationReason::Superseded,
            nonce: "z".into(),
        };
        let mut seen = Vec::new();
        let revocation = KeyRevocation::sign_with(&statement, |message| {
            seen = message.to_vec();
            vec![1, 2, 3]
        });
        assert_eq!(seen, revocation.message());
        assert!(seen.starts_with(KEY_REVOCATION_CONTEXT));
        assert_eq!(revocation.parse_statement(), Ok(statement));
        let request = CaRequest::RevokeByKey(revocation);
        assert_eq!(CaRequest::from_bytes(&request.to_bytes()), Ok(request));
    }

    #[test]
    fn serials_parse_in_either_case_without_leading_zeros() {
        assert_eq!(parse_serial_hex("01AbCd"), Ok(vec![0x01, 0xab, 0xcd]));
        assert_eq!(parse_serial_hex("0001"), Ok(vec![0x01]));
        for bad in ["", "0", "000", "00", "zz", &"1".repeat(42)] {
            assert_eq!(parse_serial_hex(bad), Err(CommandError::BadSerial), "{bad:?}");
        }
    }

    #[test]
    fn reasons_round_trip_through_codes_names_and_json() {
        for reason in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(reason.code()), Some(reason));
            assert_eq!(reason.as_str().parse(), Ok(reason));
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{reason}\""));
        }
        for code in [6, 7, 8, 11, 255] {
            assert_eq!(RevocationReason::from_code(code), None);
        }
        assert!("certificateHold".parse::<RevocationReason>().is_err());
    }

    #[test]
    fn nonces_are_fresh_hex() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (a, b) = (new_nonce(&mut rng), new_nonce(&mut rng));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(check_nonce(&a).is_ok());
    }
}
