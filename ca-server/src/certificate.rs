//! End-entity certificates under the root: the issuer as read from the root certificate, the
//! to-be-signed `TBSCertificate` bytes, serial numbers, and the final certificate from TBS plus the
//! jointly computed signature (sha256WithRSAEncryption, PKCS#1 v1.5).
//!
//! The conventions are the dealer's (`dealer/src/certs.rs`): the issuer name is the root's subject
//! as encoded in the root, the authority key identifier is the root's subject key identifier, and
//! subject key identifiers are RFC 5280 4.2.1.2 method 1 (SHA-1 of the subjectPublicKey bits).
//! SHA-1 is fine there: a key identifier names a key, it does not protect anything, and one
//! method across the service means the root's SKI and every AKI agree by construction.

use std::net::IpAddr;
use std::time::Duration;

use const_oid::db::{rfc4519, rfc5280, rfc5912};
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Tag};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage as Eku, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::names::DnsName;

/// RFC 5280 4.1.2.2: a serial number is at most 20 octets.
pub const MAX_SERIAL_LEN: usize = 20;
/// ub-common-name (RFC 5280 appendix A.1).
const MAX_COMMON_NAME_LEN: usize = 64;
/// 2050-01-01T00:00:00Z: RFC 5280 4.1.2.5 switches from UTCTime to GeneralizedTime here.
const YEAR_2050: u64 = 2_524_608_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("encoding: {0}")]
    Der(#[from] der::Error),
    #[error("the root certificate cannot be read: {0}")]
    MalformedIssuer(der::Error),
    #[error("the root certificate is not PEM with label CERTIFICATE")]
    IssuerPem,
    #[error("the root certificate does not re-encode to the same bytes; it cannot name the issuer exactly")]
    NonCanonicalIssuer,
    #[error("the root certificate is not a CA certificate")]
    IssuerNotCa,
    #[error("the root certificate's key is not an RSA key of at most 4096 bits")]
    IssuerKeyNotRsa,
    #[error("the serial number is zero")]
    ZeroSerial,
    #[error("the serial number needs {len} octets; at most {MAX_SERIAL_LEN} are allowed")]
    SerialTooLong { len: usize },
    #[error("notBefore {not_before} is after notAfter {not_after}")]
    ValidityInverted { not_before: u64, not_after: u64 },
    #[error("notAfter {not_after} is after the root's notAfter {issuer_not_after}")]
    ValidityBeyondIssuer { not_after: u64, issuer_not_after: u64 },
    #[error("time {0} cannot be encoded in a certificate")]
    TimeOutOfRange(u64),
    #[error("the certificate would name nobody: empty subject and no subjectAltName")]
    NoNames,
    #[error("CRL distribution point {0:?} is not an http(s) URL in ASCII")]
    BadCrlUrl(String),
    #[error("the TBS bytes are not a canonical TBSCertificate signed with sha256WithRSAEncryption")]
    BadTbs,
    #[error("the signature does not verify under the root key")]
    BadSignature,
}

/// The issuing side, read from the root certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    name: Name,
    key_id: Vec<u8>,
    not_after: u64,
    public_key: rsa::RsaPublicKey,
}

impl Issuer {
    /// Reads the root certificate (DER).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let root = Certificate::from_der(der).map_err(CertificateError::MalformedIssuer)?;
        // The issuer field of every certificate must repeat the root's subject; a root that does
        // not re-encode identically could make the two differ in bytes.
        if root.to_der()? != der {
            return Err(CertificateError::NonCanonicalIssuer);
        }
        let tbs = &root.tbs_certificate;
        let extensions = tbs.extensions.as_deref().unwrap_or_default();
        let is_ca = find_extension::<BasicConstraints>(extensions)
            .map_err(CertificateError::MalformedIssuer)?
            .is_some_and(|bc| bc.ca);
        if !is_ca {
            return Err(CertificateError::IssuerNotCa);
        }
        let key_id =
            match find_extension::<SubjectKeyIdentifier>(extensions).map_err(CertificateError::MalformedIssuer)? {
                Some(ski) => ski.0.as_bytes().to_vec(),
                None => key_identifier(&tbs.subject_public_key_info),
            };
        let public_key = {
            use rsa::pkcs8::DecodePublicKey;
            let spki_der = tbs.subject_public_key_info.to_der()?;
            rsa::RsaPublicKey::from_public_key_der(&spki_der).map_err(|_| CertificateError::IssuerKeyNotRsa)?
        };
        Ok(Issuer {
            name: tbs.subject.clone(),
            key_id,
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            public_key,
        })
    }

    /// Reads the root certificate (PEM, as the ceremony writes `root.pem`).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes()).map_err(|_| CertificateError::IssuerPem)?;
        if label != "CERTIFICATE" {
            return Err(CertificateError::IssuerPem);
        }
        Self::from_der(&der)
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The root's subject key identifier: every issued certificate's authority key identifier.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The root's notAfter, seconds since the epoch: nothing it issues may outlive it.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// The root's public key: the key the replicas' threshold shares sign for.
    pub fn public_key(&self) -> &rsa::RsaPublicKey {
        &self.public_key
    }

    /// Checks a sha256WithRSAEncryption signature under the root key, e.g. a combined threshold
    /// signature before it is stored.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CertificateError> {
        use rsa::signature::Verifier;
        let signature = rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| CertificateError::BadSignature)?;
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(self.public_key.clone())
            .verify(message, &signature)
            .map_err(|_| CertificateError::BadSignature)
    }
}

/// An extended key usage the profiles can grant: the policy's type, so a profile and a
/// certificate mean the same thing by it.
pub use ca_api::policy::ExtendedKeyUsage;

/// The fixed order usages appear in (serverAuth, then clientAuth).
fn eku_rank(eku: &ExtendedKeyUsage) -> u8 {
    match eku {
        ExtendedKeyUsage::ServerAuth => 0,
        ExtendedKeyUsage::ClientAuth => 1,
    }
}

/// What goes into one end-entity certificate. Names are expected to be policy-checked already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndEntity {
    /// Big-endian magnitude; see [`serial_from`].
    pub serial: Vec<u8>,
    /// Seconds since the epoch.
    pub not_before: u64,
    pub not_after: u64,
    /// From the request. If empty, the certificate's subject becomes CN = the first name (when it
    /// fits the 64 characters of a CN); otherwise it stays empty and the SAN is marked critical
    /// (RFC 5280 4.2.1.6).
    pub subject: Name,
    pub dns_names: Vec<DnsName>,
    pub ip_addresses: Vec<IpAddr>,
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Emitted in a fixed order (serverAuth, clientAuth) whatever the order given; none = no
    /// extendedKeyUsage extension.
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// The CRL distribution point, an http(s) URL.
    pub crl_url: Option<String>,
}

/// The DER of the TBSCertificate for `cert` issued by `issuer`: the bytes the replicas sign.
pub fn tbs_certificate(issuer: &Issuer, cert: &EndEntity) -> Result<Vec<u8>, CertificateError> {
    if cert.not_before > cert.not_after {
        return Err(CertificateError::ValidityInverted { not_before: cert.not_before, not_after: cert.not_after });
    }
    if cert.not_after > issuer.not_after {
        return Err(CertificateError::ValidityBeyondIssuer {
            not_after: cert.not_after,
            issuer_not_after: issuer.not_after,
        });
    }
    let mut general_names: Vec<GeneralName> = Vec::new();
    for name in &cert.dns_names {
        general_names.push(GeneralName::DnsName(Ia5String::new(name.as_str())?));
    }
    for ip in &cert.ip_addresses {
        general_names.push(GeneralName::from(*ip));
    }
    let subject = if cert.subject.0.is_empty() { default_subject(cert)? } else { cert.subject.clone() };
    if subject.0.is_empty() && general_names.is_empty() {
        return Err(CertificateError::NoNames);
    }
    let is_rsa = cert.public_key.algorithm.oid == rfc5912::RSA_ENCRYPTION;
    let key_usage = if is_rsa {
        // TLS 1.2 RSA key exchange encrypts to the key.
        KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
    } else {
        KeyUsages::DigitalSignature.into()
    };
    let mut ekus = cert.extended_key_usages.clone();
    ekus.sort_by_key(eku_rank);
    ekus.dedup();

    let mut extensions = vec![
        extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
        extension(&KeyUsage(key_usage), true)?,
    ];
    if !ekus.is_empty() {
        let oids = ekus
            .iter()
            .map(|eku| match eku {
                ExtendedKeyUsage::ServerAuth => rfc5280::ID_KP_SERVER_AUTH,
                ExtendedKeyUsage::ClientAuth => rfc5280::ID_KP_CLIENT_AUTH,
            })
            .collect();
        extensions.push(extension(&Eku(oids), false)?);
    }
    if !general_names.is_empty() {
        extensions.push(extension(&SubjectAltName(general_names), subject.0.is_empty())?);
    }
    extensions.push(extension(&SubjectKeyIdentifier(OctetString::new(key_identifier(&cert.public_key))?), false)?);
    extensions.push(authority_key_identifier(issuer)?);
    if let Some(url) = &cert.crl_url {
        extensions.push(extension(&crl_distribution_points(url)?, false)?);
    }

    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial_number(&cert.serial)?,
        signature: sha256_with_rsa(),
        issuer: issuer.name.clone(),
        validity: Validity { not_before: x509_time(cert.not_before)?, not_after: x509_time(cert.not_after)? },
        subject,
        subject_public_key_info: cert.public_key.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    Ok(tbs.to_der()?)
}

/// The certificate DER from its TBS bytes and the sha256WithRSAEncryption signature over them.
pub fn assemble(tbs_der: &[u8], signature: &[u8]) -> Result<Vec<u8>, CertificateError> {
    let tbs = TbsCertificate::from_der(tbs_der).map_err(|_| CertificateError::BadTbs)?;
    // The signature covers `tbs_der`; the certificate must carry exactly those bytes.
    if tbs.signature != sha256_with_rsa() || tbs.to_der()? != tbs_der {
        return Err(CertificateError::BadTbs);
    }
    let certificate = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sha256_with_rsa(),
        signature: BitString::from_bytes(signature)?,
    };
    Ok(certificate.to_der()?)
}

/// The serial number of the certificate issued at `log_index`, from the round's agreed random
/// `seed`: `0x01 || SHA-256(tag || seed || index)[..9] || index` (18 octets).
///
/// The 72 hash bits are unpredictable until the round's coin is revealed (CA/B Forum asks for at
/// least 64); the index suffix makes serials of distinct log entries distinct without relying on
/// the hash; the leading 0x01 keeps the number positive and its encoding at a fixed length.
pub fn serial_from(seed: [u8; 32], log_index: u64) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"ca-server certificate serial v1");
    hasher.update(seed);
    hasher.update(log_index.to_be_bytes());
    let digest = hasher.finalize();
    let mut serial = Vec::with_capacity(18);
    serial.push(0x01);
    serial.extend_from_slice(&digest[..9]);
    serial.extend_from_slice(&log_index.to_be_bytes());
    serial
}

/// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (as the dealer computes it).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// CN = the first name, or an empty name if that does not fit a CN.
fn default_subject(cert: &EndEntity) -> Result<Name, CertificateError> {
    let first = match (cert.dns_names.first(), cert.ip_addresses.first()) {
        (Some(dns), _) => dns.to_string(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => return Ok(RdnSequence(Vec::new())),
    };
    if first.len() > MAX_COMMON_NAME_LEN {
        return Ok(RdnSequence(Vec::new()));
    }
    let atv = AttributeTypeAndValue { oid: rfc4519::CN, value: Any::new(Tag::Utf8String, first.as_bytes())? };
    Ok(RdnSequence(vec![RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv])?)]))
}

fn crl_distribution_points(url: &str) -> Result<CrlDistributionPoints, CertificateError> {
    let bad = || CertificateError::BadCrlUrl(url.to_string());
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad());
    }
    let uri = Ia5String::new(url).map_err(|_| bad())?;
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![GeneralName::UniformResourceIdentifier(uri)])),
        reasons: None,
        crl_issuer: None,
    }]))
}

pub(crate) fn authority_key_identifier(issuer: &Issuer) -> Result<Extension, CertificateError> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer.key_id.clone())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extension(&aki, false)
}

pub(crate) fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION, parameters: Some(Any::null()) }
}

pub(crate) fn extension<T: AsExtension>(value: &T, critical: bool) -> Result<Extension, CertificateError> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// A positive serial number from its big-endian magnitude (leading zero octets ignored).
pub(crate) fn serial_number(magnitude: &[u8]) -> Result<SerialNumber, CertificateError> {
    let first_nonzero = magnitude.iter().position(|&b| b != 0).ok_or(CertificateError::ZeroSerial)?;
    let digits = &magnitude[first_nonzero..];
    // One more octet when the top bit is set, to keep the INTEGER positive.
    let len = digits.len() + usize::from(digits[0] & 0x80 != 0);
    if len > MAX_SERIAL_LEN {
        return Err(CertificateError::SerialTooLong { len });
    }
    Ok(SerialNumber::new(digits)?)
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on.
pub(crate) fn x509_time(seconds: u64) -> Result<Time, CertificateError> {
    let at = Duration::from_secs(seconds);
    let time = if seconds < YEAR_2050 {
        UtcTime::from_unix_duration(at).map(Time::UtcTime)
    } else {
        GeneralizedTime::from_unix_duration(at).map(Time::GeneralTime)
    };
    time.map_err(|_| CertificateError::TimeOutOfRange(seconds))
}

fn find_extension<'a, T>(extensions: &'a [Extension]) -> Result<Option<T>, der::Error>
where
    T: AsExtension + Decode<'a>,
{
    extensions.iter().find(|e| e.extn_id == T::OID).map(|e| T::from_der(e.extn_value.as_bytes())).transpose()
}

#[cfg(test)]
mod tests {
    use x509_cert::ext::pkix::name::GeneralName;

    use super::*;
    use crate::test_support::*;

    fn issuer() -> Issuer {
        Issuer::from_der(&root().der).unwrap()
    }

    fn end_entity() -> EndEntity {
        EndEntity {
            serial: serial_from([9; 32], 17),
            not_before: 1_735_689_600, // 2025-01-01
            not_after: 1_743_465_600,  // 2025-04-01
            subject: cn("www.example.com"),
            dns_names: vec![DnsName::parse("www.example.com").unwrap(), DnsName::parse("example.com").unwrap()],
            ip_addresses: vec![IpAddr::from([192, 0, 2, 7])],
            public_key: p256_spki(&p256_key(11)),
            extended_key_usages: vec![ExtendedKeyUsage::ClientAuth, ExtendedKeyUsage::ServerAuth],
            crl_url: Some("http://ca.example/v1/crl".into()),
        }
    }

    fn decode(tbs: &[u8]) -> TbsCertificate {
        TbsCertificate::from_der(tbs).unwrap()
    }

    fn ext(tbs: &TbsCertificate, oid: const_oid::ObjectIdentifier) -> Option<&Extension> {
        tbs.extensions.as_ref().unwrap().iter().find(|e| e.extn_id == oid)
    }

    #[test]
    fn issuer_is_read_from_the_root() {
        let issuer = issuer();
        let certificate = Certificate::from_der(&root().der).unwrap();
        assert_eq!(issuer.name(), &certificate.tbs_certificate.subject);
        assert_eq!(issuer.key_id(), key_identifier(&certificate.tbs_certificate.subject_public_key_info));
        assert_eq!(issuer.not_after(), ROOT_NOT_AFTER);
        let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &root().der).unwrap();
        assert_eq!(Issuer::from_pem(&pem), Ok(issuer));
        assert_eq!(Issuer::from_pem("nonsense"), Err(CertificateError::IssuerPem));
    }

    #[test]
    fn tbs_carries_every_field_and_extension() {
        let issuer = issuer();
        let cert = end_entity();
        let tbs = decode(&tbs_certificate(&issuer, &cert).unwrap());
        assert_eq!(tbs.version, Version::V3);
        assert_eq!(tbs.serial_number.as_bytes(), cert.serial);
        assert_eq!(tbs.signature, sha256_with_rsa());
        assert_eq!(&tbs.issuer, issuer.name());
        assert_eq!(tbs.subject, cn("www.example.com"));
        assert_eq!(tbs.validity.not_before.to_unix_duration().as_secs(), cert.not_before);
        assert_eq!(tbs.validity.not_after.to_unix_duration().as_secs(), cert.not_after);
        assert!(matches!(tbs.validity.not_after, Time::UtcTime(_)));
        assert_eq!(tbs.subject_public_key_info, cert.public_key);

        let order: Vec<_> = tbs.extensions.as_ref().unwrap().iter().map(|e| (e.extn_id, e.critical)).collect();
        assert_eq!(
            order,
            [
                (rfc5280::ID_CE_BASIC_CONSTRAINTS, true),
                (rfc5280::ID_CE_KEY_USAGE, true),
                (rfc5280::ID_CE_EXT_KEY_USAGE, false),
                (rfc5280::ID_CE_SUBJECT_ALT_NAME, false),
                (rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER, false),
                (rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER, false),
                (rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS, false),
            ]
        );
        let value = |oid| ext(&tbs, oid).unwrap().extn_value.as_bytes();
        assert!(!BasicConstraints::from_der(value(rfc5280::ID_CE_BASIC_CONSTRAINTS)).unwrap().ca);
        assert_eq!(
            KeyUsage::from_der(value(rfc5280::ID_CE_KEY_USAGE)).unwrap(),
            KeyUsage(KeyUsages::DigitalSignature.into())
        );
        assert_eq!(
            Eku::from_der(value(rfc5280::ID_CE_EXT_KEY_USAGE)).unwrap().0,
            [rfc5280::ID_KP_SERVER_AUTH, rfc5280::ID_KP_CLIENT_AUTH]
        );
        let san = SubjectAltName::from_der(value(rfc5280::ID_CE_SUBJECT_ALT_NAME)).unwrap().0;
        assert_eq!(
            san,
            [
                GeneralName::DnsName(Ia5String::new("www.example.com").unwrap()),
                GeneralName::DnsName(Ia5String::new("example.com").unwrap()),
                GeneralName::from(IpAddr::from([192, 0, 2, 7])),
            ]
        );
        let ski = SubjectKeyIdentifier::from_der(value(rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)).unwrap();
        assert_eq!(ski.0.as_bytes(), key_identifier(&cert.public_key));
        let aki = AuthorityKeyIdentifier::from_der(value(rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), issuer.key_id());
        assert_eq!(aki.authority_cert_issuer, None);
        let dp = CrlDistributionPoints::from_der(value(rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS)).unwrap();
        assert_eq!(dp, crl_distribution_points("http://ca.example/v1/crl").unwrap());
    }

    #[test]
    fn rsa_keys_also_get_key_encipherment() {
        let cert = EndEntity { public_key: rsa_spki(&root().key), ..end_entity() };
        let tbs = decode(&tbs_certificate(&issuer(), &cert).unwrap());
        let ku = KeyUsage::from_der(ext(&tbs, rfc5280::ID_CE_KEY_USAGE).unwrap().extn_value.as_bytes()).unwrap();
        assert_eq!(ku.0, KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment);
    }

    #[test]
    fn same_inputs_give_the_same_bytes_whatever_the_eku_order() {
        let issuer = issuer();
        let a = tbs_certificate(&issuer, &end_entity()).unwrap();
        let b = tbs_certificate(&issuer, &end_entity()).unwrap();
        let reordered = EndEntity {
            extended_key_usages: vec![
                ExtendedKeyUsage::ServerAuth,
                ExtendedKeyUsage::ClientAuth,
                ExtendedKeyUsage::ServerAuth,
            ],
            ..end_entity()
        };
        assert_eq!(a, b);
        assert_eq!(a, tbs_certificate(&issuer, &reordered).unwrap());
    }

    #[test]
    fn an_empty_subject_becomes_cn_of_the_first_name() {
        let cert = EndEntity { subject: RdnSequence(vec![]), ..end_entity() };
        let tbs = decode(&tbs_certificate(&issuer(), &cert).unwrap());
        assert_eq!(tbs.subject, cn("www.example.com"));
        assert!(!ext(&tbs, rfc5280::ID_CE_SUBJECT_ALT_NAME).unwrap().critical);

        let ip_only = EndEntity { subject: RdnSequence(vec![]), dns_names: vec![], ..end_entity() };
        assert_eq!(decode(&tbs_certificate(&issuer(), &ip_only).unwrap()).subject, cn("192.0.2.7"));
    }

    #[test]
    fn a_name_too_long_for_a_cn_leaves_the_subject_empty_and_the_san_critical() {
        let long = format!("{}.example.com", "a".repeat(60));
        let cert =
            EndEntity { subject: RdnSequence(vec![]), dns_names: vec![DnsName::parse(&long).unwrap()], ..end_entity() };
        let tbs = decode(&tbs_certificate(&issuer(), &cert).unwrap());
        assert!(tbs.subject.0.is_empty());
        assert!(ext(&tbs, rfc5280::ID_CE_SUBJECT_ALT_NAME).unwrap().critical);
    }

    #[test]
    fn optional_extensions_are_left_out_when_not_asked_for() {
        let cert = EndEntity {
            extended_key_usages: vec![],
            crl_url: None,
            ip_addresses: vec![],
            dns_names: vec![],
            ..end_entity()
        };
        let tbs = decode(&tbs_certificate(&issuer(), &cert).unwrap());
        assert!(ext(&tbs, rfc5280::ID_CE_EXT_KEY_USAGE).is_none());
        assert!(ext(&tbs, rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).is_none());
        assert!(ext(&tbs, rfc5280::ID_CE_SUBJECT_ALT_NAME).is_none());
    }

    #[test]
    fn invalid_inputs_are_refused_with_their_reason() {
        let issuer = issuer();
        let build = |cert: EndEntity| tbs_certificate(&issuer, &cert);
        assert_eq!(
            build(EndEntity { subject: RdnSequence(vec![]), dns_names: vec![], ip_addresses: vec![], ..end_entity() }),
            Err(CertificateError::NoNames)
        );
        assert_eq!(
            build(EndEntity { not_before: 10, not_after: 9, ..end_entity() }),
            Err(CertificateError::ValidityInverted { not_before: 10, not_after: 9 })
        );
        assert_eq!(
            build(EndEntity { not_after: ROOT_NOT_AFTER + 1, ..end_entity() }),
            Err(CertificateError::ValidityBeyondIssuer {
                not_after: ROOT_NOT_AFTER + 1,
                issuer_not_after: ROOT_NOT_AFTER
            })
        );
        assert_eq!(build(EndEntity { serial: vec![0], ..end_entity() }), Err(CertificateError::ZeroSerial));
        for url in ["ftp://x", "ca.example/crl", "http://bad\nheader", "http://ünicode"] {
            let url = url.to_string();
            assert_eq!(
                build(EndEntity { crl_url: Some(url.clone()), ..end_entity() }),
                Err(CertificateError::BadCrlUrl(url))
            );
        }
    }

    #[test]
    fn assembled_certificate_carries_the_tbs_and_a_signature_the_root_key_verifies() {
        let issuer = issuer();
        let tbs = tbs_certificate(&issuer, &end_entity()).unwrap();
        let signature = root().sign(&tbs);
        let der = assemble(&tbs, &signature).unwrap();
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(cert.tbs_certificate.to_der().unwrap(), tbs);
        assert_eq!(cert.signature.raw_bytes(), signature);
        assert_eq!(issuer.verify(&tbs, &signature), Ok(()));
        let mut other = tbs.clone();
        *other.last_mut().unwrap() ^= 1;
        assert_eq!(issuer.verify(&other, &signature), Err(CertificateError::BadSignature));
        assert_eq!(issuer.verify(&tbs, &signature[1..]), Err(CertificateError::BadSignature));
    }

    #[test]
    fn assembly_refuses_bytes_that_are_not_a_tbs_certificate() {
        assert_eq!(assemble(b"not der", &[1, 2, 3]), Err(CertificateError::BadTbs));
        let tbs = tbs_certificate(&issuer(), &end_entity()).unwrap();
        let mut trailing = tbs.clone();
        trailing.push(0);
        assert_eq!(assemble(&trailing, &[1, 2, 3]), Err(CertificateError::BadTbs));
    }

    #[test]
    fn an_end_entity_certificate_cannot_be_the_issuer() {
        let issuer = issuer();
        let tbs = tbs_certificate(&issuer, &end_entity()).unwrap();
        let leaf = assemble(&tbs, &root().sign(&tbs)).unwrap();
        assert_eq!(Issuer::from_der(&leaf), Err(CertificateError::IssuerNotCa));
        assert!(matches!(Issuer::from_der(b"junk"), Err(CertificateError::MalformedIssuer(_))));
    }

    #[test]
    fn serials_are_positive_18_octets_and_distinct_per_index() {
        let seed = [7u8; 32];
        let mut seen = std::collections::BTreeSet::new();
        for index in (0..1000).chain([u64::MAX - 1, u64::MAX]) {
            let serial = serial_from(seed, index);
            assert_eq!(serial.len(), 18);
            assert_eq!(serial[0], 0x01);
            assert_eq!(serial[10..], index.to_be_bytes());
            assert!(serial_number(&serial).is_ok());
            assert!(seen.insert(serial));
        }
    }

    #[test]
    fn serials_depend_on_the_seed() {
        let (a, b) = (serial_from([1; 32], 5), serial_from([2; 32], 5));
        assert_ne!(a[1..10], b[1..10]);
        assert_eq!(serial_from([1; 32], 5), a, "deterministic");
    }

    #[test]
    fn serial_numbers_are_checked() {
        assert_eq!(serial_number(&[]), Err(CertificateError::ZeroSerial));
        assert_eq!(serial_number(&[0, 0]), Err(CertificateError::ZeroSerial));
        assert!(serial_number(&[0x7f; 20]).is_ok());
        assert_eq!(serial_number(&[0x80; 20]), Err(CertificateError::SerialTooLong { len: 21 }));
        assert_eq!(serial_number(&[1; 21]), Err(CertificateError::SerialTooLong { len: 21 }));
        // Leading zeros are not significant.
        assert_eq!(serial_number(&[0, 0, 5]), serial_number(&[5]));
    }

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        assert!(matches!(x509_time(0), Ok(Time::UtcTime(_))));
        assert!(matches!(x509_time(YEAR_2050 - 1), Ok(Time::UtcTime(_))));
        assert!(matches!(x509_time(YEAR_2050), Ok(Time::GeneralTime(_))));
        assert_eq!(x509_time(u64::MAX), Err(CertificateError::TimeOutOfRange(u64::MAX)));
    }
}
