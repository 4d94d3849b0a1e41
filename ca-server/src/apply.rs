//! Deterministic apply: what each ordered request does to the CA, as a pure function of the
//! round (agreed time, agreed seed, requests in order), the current policy and what the log
//! already holds. No clock, no randomness, no I/O, no hash-map order: every honest replica
//! computes byte-identical entries and to-be-signed certificates.
//!
//! Storage looks up beforehand what a round can refer to ([`lookups`] names the serials and
//! replay keys); [`apply_round`] then works on that [`Known`] snapshot, updating it as it goes, so
//! a later request of the same round sees the effects of earlier ones (a certificate issued and
//! revoked in one round, a policy change applying to the next request).

use std::collections::{BTreeMap, BTreeSet};

use ca_api::command::{self, CaRequest, Command, KeyRevocation, RevocationReason, SignedCommand};
use ca_api::policy::Policy;
use der::Encode;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::RdnSequence;

use crate::certificate::{self, CertificateError, EndEntity, Issuer};
use crate::csr::{self, CsrError, CsrLimits};
use crate::entry::{EntryBody, EntryError, LogEntry, RefusalCode, RevocationAuthority};
use crate::merkle::Hash;
use crate::profile::{self, DAY, ProfileError};

/// One ordered round, as the replication runtime delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundInput {
    pub round: u64,
    /// Agreed time, ms since the Unix epoch, monotonic over rounds.
    pub time: u64,
    /// Agreed random seed, unpredictable before the round's order was fixed.
    pub seed: [u8; 32],
    pub requests: Vec<RequestInput>,
}

/// One request of a round, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInput {
    /// SHA-256 of the encoded request: the client's request id.
    pub digest: [u8; 32],
    pub sealed: bool,
    /// `None`: a sealed request that did not open.
    pub payload: Option<Vec<u8>>,
}

/// What the log holds about a certificate a request refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCertificate {
    /// The account that requested it.
    pub account: [u8; 32],
    pub public_key: SubjectPublicKeyInfoOwned,
    pub revoked: bool,
}

/// What storage looked up for a round, updated as the round is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// By serial (big-endian, no leading zeros).
    pub certificates: BTreeMap<Vec<u8>, KnownCertificate>,
    /// Replay keys ([`CaRequest::replay_key`]) of commands already carried by the log.
    pub seen: BTreeSet<[u8; 32]>,
}

/// What storage must look up before a round is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    pub serials: BTreeSet<Vec<u8>>,
    pub replay_keys: BTreeSet<[u8; 32]>,
}

/// A request's bytes, decoded (or why not).
pub type Decoded = Result<CaRequest, String>;

/// What apply needs besides the round and the state: the same at every replica.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub issuer: &'a Issuer,
    /// The CRL distribution point written into every certificate.
    pub crl_url: Option<&'a str>,
    pub csr_limits: CsrLimits,
}

/// The outcome of one request: its log entry and what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub entry: LogEntry,
    /// The entry's leaf bytes ([`LogEntry::encode`]).
    pub leaf: Vec<u8>,
    pub leaf_hash: Hash,
    /// Set when an authorised command was carried (whatever its outcome), so it can never be
    /// carried again.
    pub replay_key: Option<[u8; 32]>,
    /// For a refusal: its code and a human-readable explanation.
    pub refusal: Option<(RefusalCode, String)>,
    pub effect: Effect,
}

/// What a request changes besides appending its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    Issued(IssuedCertificate),
    Revoked(Revocation),
    PolicyChanged(NewPolicy),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub serial: Vec<u8>,
    pub account: [u8; 32],
    pub profile: String,
    /// The DER the replicas sign.
    pub tbs: Vec<u8>,
    /// The subject public key info, DER.
    pub public_key: Vec<u8>,
    /// Seconds since the epoch.
    pub not_before: u64,
    pub not_after: u64,
    pub dns_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub serial: Vec<u8>,
    pub reason: RevocationReason,
    /// Seconds since the epoch: the round's time.
    pub revoked_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicy {
    pub policy: Policy,
    /// The file as submitted: its hash is over these bytes.
    pub json: String,
    pub sha256: [u8; 32],
}

/// A failure that is not the request's fault (a bug): apply stops rather than log something
/// other replicas might not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("an entry could not be encoded: {0}")]
    Entry(#[from] EntryError),
    #[error("the log index overflowed")]
    IndexOverflow,
}

/// Decodes every request of a round.
pub fn decode_round(round: &RoundInput) -> Vec<Decoded> {
    round
        .requests
        .iter()
        .map(|request| match &request.payload {
            None => Err("the sealed request did not open: its ciphertext was malformed".to_string()),
            Some(bytes) => CaRequest::from_bytes(bytes).map_err(|e| e.to_string()),
        })
        .collect()
}

/// The serials and replay keys a round's requests refer to.
pub fn lookups(decoded: &[Decoded]) -> Lookups {
    let mut lookups = Lookups::default();
    for request in decoded.iter().flatten() {
        lookups.replay_keys.insert(request.replay_key());
        let serial_hex = match request {
            CaRequest::Signed(signed) => match command::parse_command(&signed.command) {
                Ok(Command::Revoke { serial_hex, .. }) => Some(serial_hex),
                _ => None,
            },
            CaRequest::RevokeByKey(revocation) => revocation.parse_statement().ok().map(|s| s.serial_hex),
        };
        if let Some(serial) = serial_hex.and_then(|hex| command::parse_serial_hex(&hex).ok()) {
            lookups.serials.insert(serial);
        }
    }
    lookups
}

/// Applies a round's decoded requests in order. `next_index` is the log index of the first new
/// entry and is advanced; `policy` is the current policy and changes when a request changes it.
pub fn apply_round(
    ctx: &Context<'_>,
    policy: &mut Policy,
    next_index: &mut u64,
    known: &mut Known,
    round: &RoundInput,
    decoded: Vec<Decoded>,
) -> Result<Vec<Applied>, ApplyError> {
    let mut applied = Vec::with_capacity(decoded.len());
    for (request, decoded) in round.requests.iter().zip(decoded) {
        let log_index = *next_index;
        let mut step = Step { ctx, policy, known, round, log_index, replay_key: None };
        let (body, effect, refusal) = match step.apply(decoded) {
            Ok((body, effect)) => (body, effect, None),
            Err(Refusal { code, message }) => (EntryBody::Refused { code }, Effect::None, Some((code, message))),
        };
        let replay_key = step.replay_key;
        if let Effect::PolicyChanged(new) = &effect {
            // Takes effect from the next request on.
            *policy = new.policy.clone();
        }
        let entry =
            LogEntry { log_index, round: round.round, timestamp_ms: round.time, request_digest: request.digest, body };
        let leaf = entry.encode()?;
        let leaf_hash = crate::entry::leaf_hash(&leaf);
        applied.push(Applied { entry, leaf, leaf_hash, replay_key, refusal, effect });
        *next_index = log_index.checked_add(1).ok_or(ApplyError::IndexOverflow)?;
    }
    Ok(applied)
}

/// A refused request: its stable code and an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    code: RefusalCode,
    message: String,
}

fn refuse(code: RefusalCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// One request being applied.
struct Step<'s, 'c> {
    ctx: &'s Context<'c>,
    policy: &'s Policy,
    known: &'s mut Known,
    round: &'s RoundInput,
    log_index: u64,
    /// Set once the request is known to be authorised by its signer.
    replay_key: Option<[u8; 32]>,
}

impl Step<'_, '_> {
    fn time_seconds(&self) -> u64 {
        self.round.time / 1000
    }

    fn apply(&mut self, decoded: Decoded) -> Result<(EntryBody, Effect), Refusal> {
        let request = decoded.map_err(|message| refuse(RefusalCode::Undecodable, message))?;
        let replay_key = request.replay_key();
        match request {
            CaRequest::Signed(signed) => self.signed(&signed, replay_key),
            CaRequest::RevokeByKey(revocation) => self.revoke_by_key(&revocation, replay_key),
        }
    }

    /// Marks an authorised command as carried; refuses it if it was carried before.
    fn consume(&mut self, replay_key: [u8; 32]) -> Result<(), Refusal> {
        if !self.known.seen.insert(replay_key) {
            return Err(refuse(RefusalCode::Replayed, "this command was already carried by the log"));
        }
        self.replay_key = Some(replay_key);
        Ok(())
    }

    fn signed(&mut self, signed: &SignedCommand, replay_key: [u8; 32]) -> Result<(EntryBody, Effect), Refusal> {
        let account = self
            .policy
            .account_for(&signed.account)
            .ok_or_else(|| refuse(RefusalCode::UnknownAccount, format!("no account has the key {}", signed.account)))?
            .clone();
        // The signature is checked before anything else in the command is looked at, and before
        // the command is consumed, so nobody can burn another account's command.
        if !signed.account.verify(&signed.message(), &signed.signature) {
            return Err(refuse(
                RefusalCode::BadSignature,
                format!("account {:?}: the signature does not verify", account.name),
            ));
        }
        self.consume(replay_key)?;
        let command =
            command::parse_command(&signed.command).map_err(|e| refuse(RefusalCode::Undecodable, e.to_string()))?;
        if !account.is_active_at(self.time_seconds()) {
            return Err(refuse(
                RefusalCode::AccountExpired,
                format!("account {:?} expired at {}", account.name, account.expires_at.unwrap_or_default()),
            ));
        }
        let key = *signed.account.as_bytes();
        match command {
            Command::Issue { csr_der_base64, profile, validity_days, .. } => {
                self.issue(&account, key, &profile, command::decode_csr(&csr_der_base64), validity_days)
            }
            Command::Revoke { serial_hex, reason, .. } => {
                let serial = command::parse_serial_hex(&serial_hex)
                    .map_err(|e| refuse(RefusalCode::UnknownSerial, e.to_string()))?;
                let certificate = self.certificate(&serial)?;
                if !account.may_revoke_any && certificate.account != key {
                    return Err(refuse(
                        RefusalCode::NotAuthorized,
                        format!(
                            "account {:?} did not request certificate {serial_hex} and may not revoke others",
                            account.name
                        ),
                    ));
                }
                self.revoke(serial, reason, RevocationAuthority::Account(key))
            }
            Command::SetPolicy { policy_json, .. } => {
                if !account.admin {
                    return Err(refuse(
                        RefusalCode::NotAuthorized,
                        format!("account {:?} is not an administrator", account.name),
                    ));
                }
                let policy =
                    Policy::parse(&policy_json).map_err(|e| refuse(RefusalCode::InvalidPolicy, e.to_string()))?;
                let sha256 = sha256(policy_json.as_bytes());
                let body = EntryBody::PolicyChanged { account: key, policy_sha256: sha256 };
                Ok((body, Effect::PolicyChanged(NewPolicy { policy, json: policy_json, sha256 })))
            }
        }
    }

    fn issue(
        &mut self,
        account: &ca_api::policy::Account,
        key: [u8; 32],
        profile_name: &str,
        csr_der: Result<Vec<u8>, command::CommandError>,
        validity_days: Option<u32>,
    ) -> Result<(EntryBody, Effect), Refusal> {
        let profile = match self.policy.profile(profile_name) {
            Some(profile) if account.profiles.iter().any(|p| p == profile_name) => profile,
            _ => {
                return Err(refuse(
                    RefusalCode::ProfileNotAllowed,
                    format!("account {:?} may not issue under profile {profile_name:?}", account.name),
                ));
            }
        };
        let csr_der = csr_der.map_err(|e| refuse(RefusalCode::CsrInvalid, e.to_string()))?;
        let csr = csr::parse_der(&csr_der, &self.ctx.csr_limits).map_err(|e| match e {
            CsrError::RsaKeyTooSmall { .. } | CsrError::RsaKeyTooLarge { .. } => {
                refuse(RefusalCode::KeyTypeNotAllowed, e.to_string())
            }
            other => refuse(RefusalCode::CsrInvalid, other.to_string()),
        })?;
        let allowed = profile::check(profile, &csr, validity_days).map_err(|e| {
            let code = match e {
                ProfileError::KeyTypeNotAllowed { .. } => RefusalCode::KeyTypeNotAllowed,
                ProfileError::ValidityTooLong { .. } => RefusalCode::ValidityTooLong,
                ProfileError::ZeroValidity => RefusalCode::InvalidValidity,
                ProfileError::NoNames
                | ProfileError::InvalidName { .. }
                | ProfileError::NameNotAllowed { .. }
                | ProfileError::IpAddressNotAllowed(_) => RefusalCode::NameNotAllowed,
            };
            refuse(code, e.to_string())
        })?;
        let not_before = self.time_seconds();
        // RFC 5280 4.1.2.5: the validity period includes both ends, so N days end one second
        // before notBefore + N days.
        let not_after = not_before + u64::from(allowed.validity_days) * DAY - 1;
        if not_after > self.ctx.issuer.not_after() {
            return Err(refuse(
                RefusalCode::ValidityTooLong,
                format!("the certificate would outlive the root, which expires at {}", self.ctx.issuer.not_after()),
            ));
        }
        let serial = certificate::serial_from(self.round.seed, self.log_index);
        let end_entity = EndEntity {
            serial: serial.clone(),
            not_before,
            not_after,
            // The subject is the CA's choice, not the client's: CN = the first name.
            subject: RdnSequence(Vec::new()),
            dns_names: allowed.dns_names.clone(),
            ip_addresses: Vec::new(),
            public_key: csr.public_key.clone(),
            extended_key_usages: allowed.extended_key_usages,
            crl_url: self.ctx.crl_url.map(str::to_string),
        };
        let tbs = certificate::tbs_certificate(self.ctx.issuer, &end_entity).map_err(|e| match e {
            CertificateError::ValidityBeyondIssuer { .. } => refuse(RefusalCode::ValidityTooLong, e.to_string()),
            other => refuse(RefusalCode::CsrInvalid, other.to_string()),
        })?;
        let public_key = csr.public_key.to_der().map_err(|e| refuse(RefusalCode::CsrInvalid, e.to_string()))?;
        self.known
            .certificates
            .insert(serial.clone(), KnownCertificate { account: key, public_key: csr.public_key, revoked: false });
        let body = EntryBody::Issued {
            account: key,
            profile: profile.name.clone(),
            serial: serial.clone(),
            tbs_certificate: tbs.clone(),
        };
        let issued = IssuedCertificate {
            serial,
            account: key,
            profile: profile.name.clone(),
            tbs,
            public_key,
            not_before,
            not_after,
            dns_names: allowed.dns_names.iter().map(|n| n.to_string()).collect(),
        };
        Ok((body, Effect::Issued(issued)))
    }

    fn revoke_by_key(
        &mut self,
        revocation: &KeyRevocation,
        replay_key: [u8; 32],
    ) -> Result<(EntryBody, Effect), Refusal> {
        let statement = revocation.parse_statement().map_err(|e| refuse(RefusalCode::Undecodable, e.to_string()))?;
        let serial = command::parse_serial_hex(&statement.serial_hex)
            .map_err(|e| refuse(RefusalCode::UnknownSerial, e.to_string()))?;
        let certificate = self.certificate(&serial)?;
        csr::verify_key_signature(&certificate.public_key, &revocation.message(), &revocation.signature).map_err(
            |e| refuse(RefusalCode::BadSignature, format!("the certificate's key did not sign this revocation: {e}")),
        )?;
        self.consume(replay_key)?;
        self.revoke(serial, statement.reason, RevocationAuthority::CertificateKey)
    }

    /// The certificate with `serial`, if the log issued it.
    fn certificate(&self, serial: &[u8]) -> Result<KnownCertificate, Refusal> {
        self.known.certificates.get(serial).cloned().ok_or_else(|| {
            refuse(RefusalCode::UnknownSerial, format!("no certificate with serial {} was issued", hex::encode(serial)))
        })
    }

    fn revoke(
        &mut self,
        serial: Vec<u8>,
        reason: RevocationReason,
        authority: RevocationAuthority,
    ) -> Result<(EntryBody, Effect), Refusal> {
        let revoked_at = self.time_seconds();
        let entry = self.known.certificates.get_mut(&serial).ok_or_else(|| {
            refuse(
                RefusalCode::UnknownSerial,
                format!("no certificate with serial {} was issued", hex::encode(&serial)),
            )
        })?;
        if entry.revoked {
            return Err(refuse(
                RefusalCode::AlreadyRevoked,
                format!("certificate {} is already revoked", hex::encode(&serial)),
            ));
        }
        entry.revoked = true;
        let body = EntryBody::Revoked { serial: serial.clone(), reason, authority };
        Ok((body, Effect::Revoked(Revocation { serial, reason, revoked_at })))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}
