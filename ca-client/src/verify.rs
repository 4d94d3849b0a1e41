//! Checking what replicas hand out against the root certificate alone: certificates (signature
//! under the root key, validity, names, subject key, serial) and CRLs (signature, issuer, number,
//! freshness, revoked serials).
//!
//! Everything a replica sends is untrusted input: it is parsed with bounds, the signature is
//! checked over the exact bytes received, and only then are fields read from those same bytes.

use std::collections::BTreeMap;

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5280, rfc5912};
use der::asn1::{BitString, Uint};
use der::{Decode, Encode, Reader, SliceReader, Tagged};
use rsa::pkcs1v15;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::certificate::TbsCertificate;
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::name::Name;

/// Certificates whose `notBefore` lies at most this far in the future are accepted: the CA dates
/// certificates with the replicas' agreed clock, which may run slightly ahead of ours.
pub const CLOCK_SKEW_SECS: u64 = 300;
/// At most this many PEM blocks are read from a chain (a leaf and the root are expected).
const MAX_CHAIN_LEN: usize = 4;
/// A certificate or CRL larger than this is refused before parsing.
const MAX_DER_LEN: usize = 4 * 1024 * 1024;

/// Why a certificate, chain or CRL does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not PEM: {0}")]
    Pem(String),
    #[error("expected a PEM {expected} block, found {found:?}")]
    PemLabel { expected: &'static str, found: String },
    #[error("the chain holds no certificate")]
    EmptyChain,
    #[error("the chain holds {0} certificates; at most {MAX_CHAIN_LEN} are read")]
    ChainTooLong(usize),
    #[error("the chain holds a certificate other than the root after the first")]
    ForeignChainCertificate,
    #[error("malformed {what}: {reason}")]
    Der { what: &'static str, reason: String },
    #[error("the root certificate's key is not an RSA key: {0}")]
    RootKey(String),
    #[error("the {what} is not issued by the root (issuer {issuer})")]
    WrongIssuer { what: &'static str, issuer: String },
    #[error("the {what} is signed with {oid}, not sha256WithRSAEncryption")]
    SignatureAlgorithm { what: &'static str, oid: String },
    #[error("the {what}'s signature does not verify under the root key")]
    BadSignature { what: &'static str },
    #[error("the certificate is a CA certificate")]
    IsCa,
    #[error("the certificate is not valid before {not_before} (Unix time), and it is {now} now")]
    NotYetValid { not_before: u64, now: u64 },
    #[error("the certificate expired at {not_after} (Unix time), and it is {now} now")]
    Expired { not_after: u64, now: u64 },
    #[error("the certificate names {found:?}, not the names requested {expected:?}")]
    NameMismatch { expected: Vec<String>, found: Vec<String> },
    #[error("the certificate's public key is not the key the request was made for")]
    KeyMismatch,
    #[error("the certificate has serial {found}, not {expected}")]
    SerialMismatch { expected: String, found: String },
}

fn der_error(what: &'static str) -> impl Fn(der::Error) -> VerifyError {
    move |e| VerifyError::Der { what, reason: e.to_string() }
}

/// The trust anchor: the root certificate, its RSA key and its fingerprint.
#[derive(Debug, Clone)]
pub struct Root {
    der: Vec<u8>,
    subject: Name,
    key: rsa::RsaPublicKey,
    sha256: [u8; 32],
}

impl Root {
    /// Reads a PEM root certificate (one `CERTIFICATE` block).
    pub fn from_pem(pem: &str) -> Result<Root, VerifyError> {
        let blocks = pem_blocks(pem, "CERTIFICATE")?;
        match blocks.as_slice() {
            [der] => Root::from_der(der),
            [] => Err(VerifyError::EmptyChain),
            more => Err(VerifyError::ChainTooLong(more.len())),
        }
    }

    pub fn from_der(der: &[u8]) -> Result<Root, VerifyError> {
        let cert = Certificate::from_der(der).map_err(der_error("root certificate"))?;
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(der_error("root certificate"))?;
        let key = <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
            .map_err(|e| VerifyError::RootKey(e.to_string()))?;
        Ok(Root { der: der.to_vec(), subject: cert.tbs_certificate.subject, key, sha256: Sha256::digest(der).into() })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER, lowercase hex (as `cluster.json` records it).
    pub fn fingerprint(&self) -> String {
        hex::encode(self.sha256)
    }

    pub fn subject(&self) -> &Name {
        &self.subject
    }

    pub fn pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der).unwrap_or_default()
    }

    /// Whether `signature` is the root key's sha256WithRSAEncryption (PKCS#1 v1.5) signature of
    /// `message`: how certificates, CRLs and tree heads are signed.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = pkcs1v15::Signature::try_from(signature) else { return false };
        pkcs1v15::VerifyingKey::<Sha256>::new(self.key.clone()).verify(message, &signature).is_ok()
    }

    /// Checks a signed X.509 object (`SEQUENCE { tbs, algorithm, signature }`): the algorithm is
    /// sha256WithRSAEncryption and the signature over the raw `tbs` bytes verifies. Returns those
    /// raw bytes, so the caller reads fields only from what was signed.
    fn verify_signed<'a>(&self, der: &'a [u8], what: &'static str) -> Result<&'a [u8], VerifyError> {
        if der.len() > MAX_DER_LEN {
            return Err(VerifyError::Der { what, reason: format!("{} bytes", der.len()) });
        }
        let (tbs, algorithm, signature) = split_signed(der).map_err(der_error(what))?;
        check_algorithm(&algorithm, what)?;
        let signature = signature.as_bytes().ok_or(VerifyError::BadSignature { what })?;
        if !self.verifies(tbs, signature) {
            return Err(VerifyError::BadSignature { what });
        }
        Ok(tbs)
    }
}

/// Splits a signed object into its raw to-be-signed bytes, algorithm and signature, refusing
/// trailing data.
fn split_signed(der: &[u8]) -> Result<(&[u8], AlgorithmIdentifierOwned, BitString), der::Error> {
    let mut reader = SliceReader::new(der)?;
    let parts = reader.sequence(|inner| {
        let tbs = inner.tlv_bytes()?;
        let algorithm = AlgorithmIdentifierOwned::decode(inner)?;
        let signature = BitString::decode(inner)?;
        Ok((tbs, algorithm, signature))
    })?;
    reader.finish(parts)
}

fn check_algorithm(algorithm: &AlgorithmIdentifierOwned, what: &'static str) -> Result<(), VerifyError> {
    // RFC 4055: the parameters are NULL (or, tolerated by most verifiers, absent).
    let null_params = algorithm.parameters.as_ref().is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty());
    if algorithm.oid != rfc5912::SHA_256_WITH_RSA_ENCRYPTION || !null_params {
        return Err(VerifyError::SignatureAlgorithm { what, oid: algorithm.oid.to_string() });
    }
    Ok(())
}

/// The DER of every PEM block labelled `label` in `text` (other blocks are an error: a chain or
/// CRL file holds nothing else).
pub fn pem_blocks(text: &str, label: &'static str) -> Result<Vec<Vec<u8>>, VerifyError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let label_end =
            after[BEGIN.len()..].find("-----").ok_or_else(|| VerifyError::Pem("unterminated header".into()))?;
        let found = &after[BEGIN.len()..BEGIN.len() + label_end];
        let end_marker = format!("-----END {found}-----");
        let end = after.find(&end_marker).ok_or_else(|| VerifyError::Pem(format!("no END line for {found}")))?;
        let block = &after[..end + end_marker.len()];
        if found != label {
            return Err(VerifyError::PemLabel { expected: label, found: found.to_string() });
        }
        if blocks.len() == MAX_CHAIN_LEN {
            return Err(VerifyError::ChainTooLong(blocks.len() + 1));
        }
        let (_, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| VerifyError::Pem(e.to_string()))?;
        blocks.push(der);
        rest = &after[end + end_marker.len()..];
    }
    Ok(blocks)
}

/// A certificate whose signature verified under the root, with the fields the client checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    pub der: Vec<u8>,
    /// The serial number's magnitude in lowercase hex (no leading zero octets), as the API
    /// writes serials.
    pub serial_hex: String,
    pub subject: String,
    /// subjectAltName dNSName entries, as written in the certificate.
    pub dns_names: Vec<String>,
    /// subjectAltName iPAddress entries.
    pub ip_addresses: Vec<String>,
    /// Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    /// The subjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
}

/// What the requester expects of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    /// The DNS names requested; the certificate must carry exactly these (compared
    /// case-insensitively, without a trailing dot).
    pub dns_names: Option<Vec<String>>,
    /// The subjectPublicKeyInfo DER of the key we hold.
    pub public_key: Option<Vec<u8>>,
    pub serial_hex: Option<String>,
}

/// Where `now` falls in a certificate's validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    NotYetValid,
    Expired,
}

impl VerifiedCertificate {
    /// Checks `der` is a certificate issued by the root: the signature over its exact TBS bytes,
    /// the issuer name, and that it is no CA certificate. Time is checked separately.
    pub fn verify(root: &Root, der: &[u8]) -> Result<VerifiedCertificate, VerifyError> {
        const WHAT: &str = "certificate";
        let tbs_der = root.verify_signed(der, WHAT)?;
        let tbs = TbsCertificate::from_der(tbs_der).map_err(der_error(WHAT))?;
        check_algorithm(&tbs.signature, WHAT)?;
        if tbs.issuer != root.subject {
            return Err(VerifyError::WrongIssuer { what: WHAT, issuer: tbs.issuer.to_string() });
        }
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        for extension in tbs.extensions.iter().flatten() {
            if extension.extn_id == rfc5280::ID_CE_BASIC_CONSTRAINTS {
                let constraints =
                    BasicConstraints::from_der(extension.extn_value.as_bytes()).map_err(der_error(WHAT))?;
                if constraints.ca {
                    return Err(VerifyError::IsCa);
                }
            } else if extension.extn_id == rfc5280::ID_CE_SUBJECT_ALT_NAME {
                let names = SubjectAltName::from_der(extension.extn_value.as_bytes()).map_err(der_error(WHAT))?;
                for name in names.0 {
                    match name {
                        GeneralName::DnsName(dns) => dns_names.push(dns.to_string()),
                        GeneralName::IpAddress(ip) => ip_addresses.push(ip_text(ip.as_bytes())),
                        _ => {}
                    }
                }
            }
        }
        Ok(VerifiedCertificate {
            der: der.to_vec(),
            serial_hex: serial_hex(tbs.serial_number.as_bytes()),
            subject: tbs.subject.to_string(),
            dns_names,
            ip_addresses,
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            public_key: tbs.subject_public_key_info.to_der().map_err(der_error(WHAT))?,
        })
    }

    /// Reads a PEM chain: the first certificate is verified; any further one must be the root
    /// itself (the API returns the certificate followed by the root).
    pub fn verify_chain_pem(root: &Root, chain_pem: &str) -> Result<VerifiedCertificate, VerifyError> {
        let blocks = pem_blocks(chain_pem, "CERTIFICATE")?;
        let (leaf, rest) = blocks.split_first().ok_or(VerifyError::EmptyChain)?;
        if rest.iter().any(|der| der.as_slice() != root.der()) {
            return Err(VerifyError::ForeignChainCertificate);
        }
        VerifiedCertificate::verify(root, leaf)
    }

    pub fn validity_at(&self, now: u64) -> Validity {
        if now.saturating_add(CLOCK_SKEW_SECS) < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// Checks the validity period contains `now`.
    pub fn check_time(&self, now: u64) -> Result<(), VerifyError> {
        match self.validity_at(now) {
            Validity::Valid => Ok(()),
            Validity::NotYetValid => Err(VerifyError::NotYetValid { not_before: self.not_before, now }),
            Validity::Expired => Err(VerifyError::Expired { not_after: self.not_after, now }),
        }
    }

    /// Checks the certificate is the one asked for.
    pub fn check(&self, expected: &Expectation) -> Result<(), VerifyError> {
        if let Some(names) = &expected.dns_names {
            let want: std::collections::BTreeSet<String> = names.iter().map(|n| normalise_name(n)).collect();
            let have: std::collections::BTreeSet<String> = self.dns_names.iter().map(|n| normalise_name(n)).collect();
            if want != have || !self.ip_addresses.is_empty() {
                let mut found = self.dns_names.clone();
                found.extend(self.ip_addresses.iter().cloned());
                return Err(VerifyError::NameMismatch { expected: names.clone(), found });
            }
        }
        if let Some(key) = &expected.public_key
            && *key != self.public_key
        {
            return Err(VerifyError::KeyMismatch);
        }
        if let Some(serial) = &expected.serial_hex
            && normalise_serial(serial) != self.serial_hex
        {
            return Err(VerifyError::SerialMismatch { expected: serial.clone(), found: self.serial_hex.clone() });
        }
        Ok(())
    }

    /// The certificate and the root, PEM: what is written to a `--cert-out` file.
    pub fn chain_pem(&self, root: &Root) -> String {
        let leaf = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der).unwrap_or_default();
        leaf + &root.pem()
    }
}

/// DNS names compare case-insensitively and without a trailing dot.
pub fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A serial's hex as the API writes it: lowercase, no leading zero octets.
pub fn normalise_serial(text: &str) -> String {
    match hex::decode(text) {
        Ok(bytes) => serial_hex(&bytes),
        Err(_) => text.to_ascii_lowercase(),
    }
}

/// The magnitude of a serial number's big-endian bytes in lowercase hex.
pub fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    hex::encode(&bytes[first..])
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => hex::encode(bytes),
    }
}

/// One revoked certificate as a CRL lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Unix seconds.
    pub revoked_at: u64,
    /// The RFC 5280 CRLReason code, when given.
    pub reason: Option<u8>,
}

/// A CRL whose signature verified under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCrl {
    pub der: Vec<u8>,
    /// The cRLNumber extension (absent numbers sort lowest).
    pub number: Option<u128>,
    /// Unix seconds.
    pub this_update: u64,
    pub next_update: Option<u64>,
    /// By serial magnitude, lowercase hex.
    pub revoked: BTreeMap<String, RevokedEntry>,
}

const ID_CE_CRL_NUMBER: ObjectIdentifier = rfc5280::ID_CE_CRL_NUMBER;
const ID_CE_CRL_REASONS: ObjectIdentifier = rfc5280::ID_CE_CRL_REASONS;

impl VerifiedCrl {
    /// Checks a DER CRL: signature under the root over the exact TBS bytes, issuer, and reads
    /// its number and entries.
    pub fn verify(root: &Root, der: &[u8]) -> Result<VerifiedCrl, VerifyError> {
        const WHAT: &str = "CRL";
        let tbs_der = root.verify_signed(der, WHAT)?;
        let tbs = TbsCertList::from_der(tbs_der).map_err(der_error(WHAT))?;
        check_algorithm(&tbs.signature, WHAT)?;
        if tbs.issuer != root.subject {
            return Err(VerifyError::WrongIssuer { what: WHAT, issuer: tbs.issuer.to_string() });
        }
        let mut number = None;
        for extension in tbs.crl_extensions.iter().flatten() {
            if extension.extn_id == ID_CE_CRL_NUMBER {
                let value = Uint::from_der(extension.extn_value.as_bytes()).map_err(der_error(WHAT))?;
                let bytes = value.as_bytes();
                if bytes.len() > 16 {
                    return Err(VerifyError::Der { what: WHAT, reason: "the CRL number exceeds 128 bits".into() });
                }
                let mut padded = [0u8; 16];
                padded[16 - bytes.len()..].copy_from_slice(bytes);
                number = Some(u128::from_be_bytes(padded));
            }
        }
        let mut revoked = BTreeMap::new();
        for entry in tbs.revoked_certificates.iter().flatten() {
            let mut reason = None;
            for extension in entry.crl_entry_extensions.iter().flatten() {
                // CRLReason ::= ENUMERATED: tag 0x0a, one length octet, the value.
                if extension.extn_id == ID_CE_CRL_REASONS
                    && let [0x0a, 0x01, code] = extension.extn_value.as_bytes()
                {
                    reason = Some(*code);
                }
            }
            revoked.insert(
                serial_hex(entry.serial_number.as_bytes()),
                RevokedEntry { revoked_at: entry.revocation_date.to_unix_duration().as_secs(), reason },
            );
        }
        Ok(VerifiedCrl {
            der: der.to_vec(),
            number,
            this_update: tbs.this_update.to_unix_duration().as_secs(),
            next_update: tbs.next_update.map(|t| t.to_unix_duration().as_secs()),
            revoked,
        })
    }

    /// Whether the CRL's `nextUpdate` has passed (a newer one should exist).
    pub fn is_stale(&self, now: u64) -> bool {
        self.next_update.is_some_and(|next| now > next)
    }

    pub fn lookup(&self, serial_hex: &str) -> Option<RevokedEntry> {
        self.revoked.get(&normalise_serial(serial_hex)).copied()
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A root and certificates and CRLs under it, built the way the dealer and the CA build them,
    //! for tests (a 1024-bit root: only the shape matters here, never the strength).

    use std::time::{Duration, SystemTime};

    use der::asn1::{BitString, Ia5String, OctetString, UtcTime};
    use der::{Any, Encode};
    use rand::SeedableRng;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use sha2::Sha256;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::Certificate;
    use x509_cert::certificate::{TbsCertificate, Version};
    use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::{Time, Validity};

    use super::Root;

    pub struct TestCa {
        pub key: rsa::RsaPrivateKey,
        pub root: Root,
    }

    pub fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        }
    }

    pub fn time(unix: u64) -> Time {
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix)).unwrap())
    }

    pub fn now() -> u64 {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
    }

    fn ext<T: Encode>(oid: const_oid::ObjectIdentifier, value: &T, critical: bool) -> Extension {
        Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der().unwrap()).unwrap() }
    }

    impl TestCa {
        /// A CA with a fresh key from `seed`.
        pub fn new(seed: u64, name: &str) -> TestCa {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let key = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
            let spki = dealer::certs::rsa_spki(&rsa::traits::PublicKeyParts::n(&key).to_bytes_be(), 65537).unwrap();
            let signer = |tbs: &[u8]| SigningKey::<Sha256>::new(key.clone()).sign(tbs).to_vec();
            let serial = SerialNumber::new(&[1]).unwrap();
            let cert = dealer::certs::root_certificate(name, spki, serial, SystemTime::now(), &signer).unwrap();
            let root = Root::from_der(&cert.to_der().unwrap()).unwrap();
            TestCa { key, root }
        }

        pub fn sign(&self, message: &[u8]) -> Vec<u8> {
            SigningKey::<Sha256>::new(self.key.clone()).sign(message).to_vec()
        }

        /// An end-entity certificate under this CA.
        pub fn issue(
            &self,
            serial: &[u8],
            names: &[&str],
            spki: SubjectPublicKeyInfoOwned,
            valid: (u64, u64),
        ) -> Vec<u8> {
            let san = SubjectAltName(names.iter().map(|n| GeneralName::DnsName(Ia5String::new(n).unwrap())).collect());
            let tbs = TbsCertificate {
                version: Version::V3,
                serial_number: SerialNumber::new(serial).unwrap(),
                signature: sha256_with_rsa(),
                issuer: self.root.subject().clone(),
                validity: Validity { not_before: time(valid.0), not_after: time(valid.1) },
                subject: dealer::certs::common_name(names[0]).unwrap(),
                subject_public_key_info: spki,
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions: Some(vec![
                    ext(
                        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                        &BasicConstraints { ca: false, path_len_constraint: None },
                        true,
                    ),
                    ext(const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME, &san, false),
                ]),
            };
            self.assemble(tbs)
        }

        pub fn assemble(&self, tbs: TbsCertificate) -> Vec<u8> {
            let signature = self.sign(&tbs.to_der().unwrap());
            Certificate {
                tbs_certificate: tbs,
                signature_algorithm: sha256_with_rsa(),
                signature: BitString::from_bytes(&signature).unwrap(),
            }
            .to_der()
            .unwrap()
        }

        /// A CRL with `number` listing `(serial, reason)` pairs.
        pub fn crl(&self, number: u64, revoked: &[(&[u8], u8)], this_update: u64, next_update: u64) -> Vec<u8> {
            let entries = revoked
                .iter()
                .map(|(serial, reason)| RevokedCert {
                    serial_number: SerialNumber::new(serial).unwrap(),
                    revocation_date: time(this_update),
                    crl_entry_extensions: Some(vec![Extension {
                        extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                        critical: false,
                        extn_value: OctetString::new(vec![0x0a, 0x01, *reason]).unwrap(),
                    }]),
                })
                .collect::<Vec<_>>();
            let tbs = TbsCertList {
                version: x509_cert::Version::V2,
                signature: sha256_with_rsa(),
                issuer: self.root.subject().clone(),
                this_update: time(this_update),
                next_update: Some(time(next_update)),
                revoked_certificates: (!entries.is_empty()).then_some(entries),
                crl_extensions: Some(vec![ext(
                    const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
                    &der::asn1::Uint::new(&number.to_be_bytes()).unwrap(),
                    false,
                )]),
            };
            let signature = self.sign(&tbs.to_der().unwrap());
            CertificateList {
                tbs_cert_list: tbs,
                signature_algorithm: sha256_with_rsa(),
                signature: BitString::from_bytes(&signature).unwrap(),
            }
            .to_der()
            .unwrap()
        }
    }

    /// The SPKI of a fresh P-256 key.
    pub fn p256_spki(seed: u64) -> SubjectPublicKeyInfoOwned {
        use p256::pkcs8::EncodePublicKey;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let key = p256::SecretKey::random(&mut rng);
        let der = key.public_key().to_public_key_der().unwrap();
        der.decode_msg().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use der::Encode;
    use std::sync::OnceLock;

    use super::fixtures::*;
    use super::*;

    fn ca() -> &'static TestCa {
        static CA: OnceLock<TestCa> = OnceLock::new();
        CA.get_or_init(|| TestCa::new(1, "Test CA"))
    }

    fn other_ca() -> &'static TestCa {
        static CA: OnceLock<TestCa> = OnceLock::new();
        CA.get_or_init(|| TestCa::new(2, "Test CA"))
    }

    fn pem(der: &[u8]) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap()
    }

    fn leaf(ca: &TestCa, names: &[&str]) -> Vec<u8> {
        let t = now();
        ca.issue(&[0x01, 0xab, 0xcd], names, p256_spki(7), (t - 60, t + 86400))
    }

    #[test]
    fn a_certificate_signed_by_the_root_verifies_and_reports_its_fields() {
        let der = leaf(ca(), &["www.example.test", "api.example.test"]);
        let chain = pem(&der) + &ca().root.pem();
        let cert = VerifiedCertificate::verify_chain_pem(&ca().root, &chain).unwrap();
        assert_eq!(cert.serial_hex, "01abcd");
        assert_eq!(cert.dns_names, ["www.example.test", "api.example.test"]);
        assert_eq!(cert.public_key, p256_spki(7).to_der().unwrap());
        assert_eq!(cert.check_time(now()), Ok(()));
        let expected = Expectation {
            dns_names: Some(vec!["API.example.test.".into(), "www.example.test".into()]),
            public_key: Some(p256_spki(7).to_der().unwrap()),
            serial_hex: Some("0001abcd".into()),
        };
        assert_eq!(cert.check(&expected), Ok(()));
    }

    #[test]
    fn a_certificate_from_another_key_with_the_same_name_is_refused() {
        // Same CA name, different key: only the signature tells them apart.
        let der = leaf(other_ca(), &["www.example.test"]);
        assert_eq!(
            VerifiedCertificate::verify(&ca().root, &der),
            Err(VerifyError::BadSignature { what: "certificate" })
        );
    }

    #[test]
    fn an_altered_certificate_is_refused() {
        let mut der = leaf(ca(), &["www.example.test"]);
        // Flip one byte of the DNS name inside the signed part.
        let at = der.windows(3).position(|w| w == b"www").unwrap();
        der[at] = b'v';
        assert_eq!(
            VerifiedCertificate::verify(&ca().root, &der),
            Err(VerifyError::BadSignature { what: "certificate" })
        );
        assert!(VerifiedCertificate::verify(&ca().root, &der[..der.len() - 1]).is_err());
        let mut longer = leaf(ca(), &["www.example.test"]);
        longer.push(0);
        assert!(VerifiedCertificate::verify(&ca().root, &longer).is_err());
    }

    #[test]
    fn names_keys_and_serials_other_than_requested_are_refused() {
        let cert = VerifiedCertificate::verify(&ca().root, &leaf(ca(), &["www.example.test"])).unwrap();
        let names = |n: &[&str]| Expectation {
            dns_names: Some(n.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert!(matches!(cert.check(&names(&["other.example.test"])), Err(VerifyError::NameMismatch { .. })));
        // A certificate with fewer names than requested, or more, is not the one asked for.
        assert!(matches!(
            cert.check(&names(&["www.example.test", "b.example.test"])),
            Err(VerifyError::NameMismatch { .. })
        ));
        let key = Expectation { public_key: Some(p256_spki(8).to_der().unwrap()), ..Default::default() };
        assert_eq!(cert.check(&key), Err(VerifyError::KeyMismatch));
        let serial = Expectation { serial_hex: Some("02".into()), ..Default::default() };
        assert!(matches!(cert.check(&serial), Err(VerifyError::SerialMismatch { .. })));
    }

    #[test]
    fn expired_and_future_certificates_are_reported() {
        let t = now();
        let expired = ca().issue(&[5], &["a.example.test"], p256_spki(1), (t - 7200, t - 3600));
        let cert = VerifiedCertificate::verify(&ca().root, &expired).unwrap();
        assert_eq!(cert.validity_at(t), Validity::Expired);
        assert!(matches!(cert.check_time(t), Err(VerifyError::Expired { .. })));
        let future = ca().issue(&[5], &["a.example.test"], p256_spki(1), (t + 3600, t + 7200));
        let cert = VerifiedCertificate::verify(&ca().root, &future).unwrap();
        assert_eq!(cert.validity_at(t), Validity::NotYetValid);
        // A few seconds ahead is the replicas' clock, not a problem.
        let soon = ca().issue(&[5], &["a.example.test"], p256_spki(1), (t + 5, t + 7200));
        assert_eq!(VerifiedCertificate::verify(&ca().root, &soon).unwrap().validity_at(t), Validity::Valid);
    }

    #[test]
    fn a_chain_with_a_foreign_certificate_or_no_certificate_is_refused() {
        let der = leaf(ca(), &["www.example.test"]);
        let foreign = pem(&der) + &other_ca().root.pem();
        assert_eq!(
            VerifiedCertificate::verify_chain_pem(&ca().root, &foreign),
            Err(VerifyError::ForeignChainCertificate)
        );
        assert_eq!(VerifiedCertificate::verify_chain_pem(&ca().root, "nothing here"), Err(VerifyError::EmptyChain));
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(VerifiedCertificate::verify_chain_pem(&ca().root, key), Err(VerifyError::PemLabel { .. })));
        let many = pem(&der).repeat(5);
        assert!(matches!(VerifiedCertificate::verify_chain_pem(&ca().root, &many), Err(VerifyError::ChainTooLong(_))));
    }

    #[test]
    fn a_ca_certificate_is_not_accepted_as_an_end_entity() {
        // The root itself: correctly signed, but a CA.
        assert_eq!(VerifiedCertificate::verify(&ca().root, ca().root.der()), Err(VerifyError::IsCa));
    }

    #[test]
    fn a_crl_signed_by_the_root_lists_its_revoked_serials() {
        let t = now();
        let der = ca().crl(7, &[(&[0x01, 0xab], 1), (&[0x02], 4)], t - 10, t + 3600);
        let crl = VerifiedCrl::verify(&ca().root, &der).unwrap();
        assert_eq!(crl.number, Some(7));
        assert_eq!(crl.lookup("01AB"), Some(RevokedEntry { revoked_at: t - 10, reason: Some(1) }));
        assert_eq!(crl.lookup("0002").map(|e| e.reason), Some(Some(4)));
        assert_eq!(crl.lookup("03"), None);
        assert!(!crl.is_stale(t));
        assert!(crl.is_stale(t + 7200));
    }

    #[test]
    fn a_crl_under_another_key_or_altered_is_refused() {
        let t = now();
        let der = other_ca().crl(7, &[], t, t + 3600);
        assert_eq!(VerifiedCrl::verify(&ca().root, &der), Err(VerifyError::BadSignature { what: "CRL" }));
        let mut der = ca().crl(7, &[(&[0x01], 1)], t, t + 3600);
        let last = der.len() - 200;
        der[last] ^= 1;
        assert!(VerifiedCrl::verify(&ca().root, &der).is_err());
    }

    #[test]
    fn serials_are_compared_by_magnitude() {
        assert_eq!(serial_hex(&[0, 0, 0x80, 1]), "8001");
        assert_eq!(normalise_serial("00ABcd"), "abcd");
    }
}
