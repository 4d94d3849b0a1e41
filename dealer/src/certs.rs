//! The X.509 certificates the ceremony issues: the self-signed root, and for each replica its
//! HTTPS server certificate and its peer-link certificate, both issued under the root so that
//! `root.pem` alone verifies them. Signing is a closure, so the same code serves the full RSA key
//! here and stays independent of how the key is held.

use std::time::{Duration, SystemTime};

use const_oid::db::{rfc4519, rfc5280, rfc5912};
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, SetOfVec, UtcTime};
use der::{Any, Encode, Tag};
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::hosts::HostSpec;

/// How long the root is valid, and how long the replica certificates under it are.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
pub const REPLICA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// Certificates start an hour early so replicas with slightly slow clocks accept them at once.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("encoding a certificate: {0}")]
    Der(#[from] der::Error),
    #[error("encoding a public key: {0}")]
    Spki(#[from] spki::Error),
    #[error("{0:?} cannot be put in a certificate")]
    Name(String),
}

/// A signer under the root key: produces a PKCS#1 v1.5 SHA-256 signature of the given bytes.
pub type Sign<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// The issuing side of a certificate: the root's name and key identifier, and its signer.
pub struct Issuer<'a> {
    pub name: Name,
    pub key_id: Vec<u8>,
    pub not_after: SystemTime,
    pub sign: Sign<'a>,
}

fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION, parameters: Some(Any::null()) }
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after.
fn x509_time(at: SystemTime) -> Result<Time, CertError> {
    let year_2050 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_524_608_000);
    Ok(if at < year_2050 {
        Time::UtcTime(UtcTime::from_system_time(at)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_system_time(at)?)
    })
}

fn validity(now: SystemTime, length: Duration, cap: Option<SystemTime>) -> Result<Validity, CertError> {
    let mut not_after = now + length;
    if let Some(cap) = cap {
        not_after = not_after.min(cap);
    }
    Ok(Validity { not_before: x509_time(now - BACKDATE)?, not_after: x509_time(not_after)? })
}

/// A name with the single attribute CN = `common_name` (UTF8String).
pub fn common_name(common_name: &str) -> Result<Name, CertError> {
    if common_name.is_empty() || common_name.len() > 64 || common_name.chars().any(char::is_control) {
        return Err(CertError::Name(common_name.to_string()));
    }
    let value = Any::new(Tag::Utf8String, common_name.as_bytes())?;
    let atv = AttributeTypeAndValue { oid: rfc4519::CN, value };
    let rdn = RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv])?);
    Ok(RdnSequence(vec![rdn]))
}

/// The SubjectPublicKeyInfo of an RSA public key (rsaEncryption, NULL parameters).
pub fn rsa_spki(modulus_be: &[u8], exponent: u32) -> Result<SubjectPublicKeyInfoOwned, CertError> {
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(modulus_be), rsa::BigUint::from(exponent))
        .map_err(|e| CertError::Name(format!("RSA public key: {e}")))?;
    let der = key.to_public_key_der()?;
    Ok(der.decode_msg::<SubjectPublicKeyInfoOwned>()?)
}

/// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// A positive 128-bit serial number from `rng`.
pub fn random_serial(rng: &mut impl rand::RngCore) -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    // Positive and of full length: top bit clear, first byte non-zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::new(&bytes)?)
}

fn extension<T: AsExtension>(value: &T, critical: bool) -> Result<Extension, CertError> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

fn sign_tbs(tbs: TbsCertificate, sign: Sign<'_>) -> Result<Certificate, CertError> {
    let signature = sign(&tbs.to_der()?);
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sha256_with_rsa(),
        signature: BitString::from_bytes(&signature)?,
    })
}

/// The self-signed root: CA, keyCertSign and cRLSign, its own key identifier.
pub fn root_certificate(
    name: &str,
    spki: SubjectPublicKeyInfoOwned,
    serial: SerialNumber,
    now: SystemTime,
    sign: Sign<'_>,
) -> Result<Certificate, CertError> {
    let subject = common_name(name)?;
    let key_id = key_identifier(&spki);
    let extensions = vec![
        extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        extension(&SubjectKeyIdentifier(OctetString::new(key_id.clone())?), false)?,
        extension(
            &AuthorityKeyIdentifier { key_identifier: Some(OctetString::new(key_id)?), ..Default::default() },
            false,
        )?,
    ];
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial,
        signature: sha256_with_rsa(),
        issuer: subject.clone(),
        validity: validity(now, ROOT_VALIDITY, None)?,
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_tbs(tbs, sign)
}

/// What a replica certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaRole {
    /// The replica's HTTPS API: serverAuth, names = its host (and `localhost` for loopback).
    Https,
    /// Its mutually authenticated links to the other replicas: serverAuth and clientAuth.
    /// Peers pin the certificate's fingerprint; the names only help a human reading it.
    PeerLink,
}

/// The names a replica certificate carries for `host`.
fn subject_alt_names(host: &HostSpec, role: ReplicaRole, id: usize) -> Result<Vec<GeneralName>, CertError> {
    let dns = |name: &str| -> Result<GeneralName, CertError> {
        Ok(GeneralName::DnsName(Ia5String::new(name).map_err(|_| CertError::Name(name.to_string()))?))
    };
    let mut names = Vec::new();
    match host.ip() {
        Some(ip) => {
            names.push(GeneralName::from(ip));
            if ip.is_loopback() && role == ReplicaRole::Https {
                names.push(dns("localhost")?);
            }
        }
        None => names.push(dns(&host.host)?),
    }
    if role == ReplicaRole::PeerLink {
        // A reserved name (RFC 6761 .invalid) that states which replica this link certificate is.
        names.push(dns(&format!("replica-{id}.peer.invalid"))?);
    }
    Ok(names)
}

/// An end-entity certificate for replica `id`, issued by the root.
pub fn replica_certificate(
    issuer: &Issuer<'_>,
    id: usize,
    host: &HostSpec,
    role: ReplicaRole,
    spki: SubjectPublicKeyInfoOwned,
    serial: SerialNumber,
    now: SystemTime,
) -> Result<Certificate, CertError> {
    let (cn, ekus) = match role {
        ReplicaRole::Https => (host.host.clone(), vec![rfc5280::ID_KP_SERVER_AUTH]),
        ReplicaRole::PeerLink => {
            (format!("replica-{id} peer link"), vec![rfc5280::ID_KP_SERVER_AUTH, rfc5280::ID_KP_CLIENT_AUTH])
        }
    };
    let key_id = key_identifier(&spki);
    let extensions = vec![
        extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
        extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
        extension(&ExtendedKeyUsage(ekus), false)?,
        extension(&SubjectAltName(subject_alt_names(host, role, id)?), false)?,
        extension(&SubjectKeyIdentifier(OctetString::new(key_id)?), false)?,
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer.key_id.clone())?),
                ..Default::default()
            },
            false,
        )?,
    ];
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial,
        signature: sha256_with_rsa(),
        issuer: issuer.name.clone(),
        validity: validity(now, REPLICA_VALIDITY, Some(issuer.not_after))?,
        subject: common_name(&cn)?,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign_tbs(tbs, issuer.sign)
}

/// SHA-256 of a certificate's DER, lowercase hex: how peers pin each other.
pub fn fingerprint(cert: &Certificate) -> Result<String, CertError> {
    Ok(hex::encode(sha2::Sha256::digest(cert.to_der()?)))
}
