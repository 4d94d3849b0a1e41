//! PKCS#10 certificate signing requests (RFC 2986): parse, check the self-signature, and extract
//! what issuance needs: the subject, the requested subjectAltName DNS names and IP addresses, the
//! subject public key and a description of it.
//!
//! Everything here is a pure function of the request bytes and the limits, so every replica
//! accepts or refuses a request for the same reason. Any other requested extension is ignored:
//! the profile, not the client, decides key usage, EKU and the rest.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ecdsa;
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::asn1::BitString;
use der::{Decode, Header, Reader, SliceReader, Tag, Tagged};
use rsa::pkcs1::RsaPssParams;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::CertReqInfo;

/// Bounds on what a request may ask for; refusing early keeps a hostile request cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrLimits {
    /// The request's size in bytes, DER or PEM.
    pub max_input_len: usize,
    /// DNS names plus IP addresses in the subjectAltName.
    pub max_names: usize,
    pub min_rsa_bits: u32,
    pub max_rsa_bits: u32,
}

impl Default for CsrLimits {
    fn default() -> Self {
        Self { max_input_len: 64 * 1024, max_names: 100, min_rsa_bits: 2048, max_rsa_bits: 8192 }
    }
}

/// The kind and size of a subject public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyType {
    Rsa { bits: u32 },
    EcP256,
    EcP384,
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyType::EcP256 => f.write_str("ECDSA P-256"),
            KeyType::EcP384 => f.write_str("ECDSA P-384"),
            KeyType::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A request whose self-signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    /// As requested (possibly empty).
    pub subject: Name,
    /// subjectAltName dNSName entries in request order, as given: [`crate::names`] validates them.
    pub dns_names: Vec<String>,
    /// subjectAltName iPAddress entries in request order.
    pub ip_addresses: Vec<IpAddr>,
    pub public_key: SubjectPublicKeyInfoOwned,
    pub key_type: KeyType,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the request is {len} bytes; at most {max} are accepted")]
    TooLarge { len: usize, max: usize },
    #[error("the request is not valid PEM: {0}")]
    Pem(der::pem::Error),
    #[error("the PEM label is {0:?}; expected \"CERTIFICATE REQUEST\"")]
    PemLabel(String),
    #[error("the request is not a DER-encoded PKCS#10 request: {0}")]
    Malformed(der::Error),
    #[error("signature algorithm {0} is not supported")]
    UnsupportedSignatureAlgorithm(ObjectIdentifier),
    #[error("signature algorithm {0} has parameters it must not have")]
    BadAlgorithmParameters(ObjectIdentifier),
    #[error("RSA-PSS parameters not supported: {0}")]
    UnsupportedPssParameters(&'static str),
    #[error("public key algorithm {0} is not supported")]
    UnsupportedKeyAlgorithm(ObjectIdentifier),
    #[error("elliptic curve {0} is not supported (P-256 and P-384 are)")]
    UnsupportedCurve(ObjectIdentifier),
    #[error("the public key is malformed: {0}")]
    MalformedKey(&'static str),
    #[error("the RSA key has {bits} bits; at least {min} are required")]
    RsaKeyTooSmall { bits: u32, min: u32 },
    #[error("the RSA key has {bits} bits; at most {max} are accepted")]
    RsaKeyTooLarge { bits: u32, max: u32 },
    #[error("signature algorithm {algorithm} does not fit a {key} key")]
    AlgorithmKeyMismatch { algorithm: ObjectIdentifier, key: KeyType },
    #[error("the request's self-signature does not verify")]
    BadSignature,
    #[error("the request asks for {count} names; at most {max} are accepted")]
    TooManyNames { count: usize, max: usize },
    #[error("subjectAltName entries of type {0} are not supported (only DNS names and IP addresses)")]
    UnsupportedNameType(&'static str),
    #[error("an IP address entry has {0} bytes (4 or 16 expected)")]
    BadIpAddress(usize),
    #[error("attribute or extension {0} appears more than once")]
    Duplicate(ObjectIdentifier),
    #[error("the extensionRequest attribute is malformed: {0}")]
    MalformedExtensionRequest(der::Error),
}

impl From<der::Error> for CsrError {
    fn from(error: der::Error) -> Self {
        CsrError::Malformed(error)
    }
}

/// Parses and verifies a request given as DER or PEM (recognised by its `-----BEGIN` line).
pub fn parse(input: &[u8], limits: &CsrLimits) -> Result<Csr, CsrError> {
    check_len(input.len(), limits)?;
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(trimmed.trim_ascii_end()).map_err(CsrError::Pem)?;
        // RFC 7468 5.1; "NEW CERTIFICATE REQUEST" is what older tools still write.
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CsrError::PemLabel(label.to_string()));
        }
        parse_der(&der, limits)
    } else {
        parse_der(input, limits)
    }
}

/// Parses and verifies a DER-encoded request.
pub fn parse_der(der: &[u8], limits: &CsrLimits) -> Result<Csr, CsrError> {
    check_len(der.len(), limits)?;
    let (info_der, algorithm, signature) = split_signed(der)?;
    let info = CertReqInfo::from_der(info_der)?;
    let key = SubjectKey::from_spki(&info.public_key, limits)?;
    let signature_algorithm = SignatureAlgorithm::from_identifier(&algorithm)?;
    let signature = signature.as_bytes().ok_or(CsrError::Malformed(der::Tag::BitString.value_error()))?;
    // The signature covers the request info exactly as received, not a re-encoding of it.
    key.verify(signature_algorithm, algorithm.oid, info_der, signature)?;
    let (dns_names, ip_addresses) = requested_names(&info, limits)?;
    Ok(Csr { subject: info.subject, dns_names, ip_addresses, public_key: info.public_key, key_type: key.key_type() })
}

/// Verifies `signature` over `message` by the subject key `spki`, with the one algorithm fixed for
/// each key type: RSA PKCS#1 v1.5 with SHA-256, ECDSA P-256 with SHA-256 and P-384 with SHA-384
/// (DER-encoded signatures, as `openssl dgst` writes them), or Ed25519. Revocation requests
/// signed by a certificate's own key are checked with it; fixing the algorithm leaves a client
/// nothing to choose that a verifier could disagree about.
pub fn verify_key_signature(
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CsrError> {
    // The key passed the profile's checks when the certificate was issued; the size bounds here
    // only keep the arithmetic bounded.
    let limits = CsrLimits { min_rsa_bits: 1024, ..CsrLimits::default() };
    let key = SubjectKey::from_spki(spki, &limits)?;
    let (algorithm, oid) = match key {
        SubjectKey::Rsa { .. } => {
            (SignatureAlgorithm::RsaPkcs1(HashAlgorithm::Sha256), rfc5912::SHA_256_WITH_RSA_ENCRYPTION)
        }
        SubjectKey::P256(_) => (SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256), rfc5912::ECDSA_WITH_SHA_256),
        SubjectKey::P384(_) => (SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384), rfc5912::ECDSA_WITH_SHA_384),
        SubjectKey::Ed25519(_) => (SignatureAlgorithm::Ed25519, rfc8410::ID_ED_25519),
    };
    key.verify(algorithm, oid, message, signature)
}

fn check_len(len: usize, limits: &CsrLimits) -> Result<(), CsrError> {
    if len > limits.max_input_len { Err(CsrError::TooLarge { len, max: limits.max_input_len }) } else { Ok(()) }
}

/// Splits `SEQUENCE { info, algorithm, signature }` keeping the info's original bytes.
fn split_signed(der: &[u8]) -> Result<(&[u8], AlgorithmIdentifierOwned, BitString), der::Error> {
    let mut reader = SliceReader::new(der)?;
    let header = Header::decode(&mut reader)?;
    header.tag.assert_eq(Tag::Sequence)?;
    let parts = reader.read_nested(header.length, |nested| {
        let info = nested.tlv_bytes()?;
        let algorithm = AlgorithmIdentifierOwned::decode(nested)?;
        let signature = BitString::decode(nested)?;
        Ok((info, algorithm, signature))
    })?;
    reader.finish(parts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            rfc5912::ID_SHA_256 => Some(Self::Sha256),
            rfc5912::ID_SHA_384 => Some(Self::Sha384),
            rfc5912::ID_SHA_512 => Some(Self::Sha512),
            _ => None,
        }
    }

    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureAlgorithm {
    RsaPkcs1(HashAlgorithm),
    RsaPss { hash: HashAlgorithm, salt_len: usize },
    Ecdsa(HashAlgorithm),
    Ed25519,
}

impl SignatureAlgorithm {
    fn from_identifier(algorithm: &AlgorithmIdentifierOwned) -> Result<Self, CsrError> {
        let oid = algorithm.oid;
        let params = algorithm.parameters.as_ref();
        let is_null = params.is_some_and(|p| p.tag() == Tag::Null && p.value().is_empty());
        let (parsed, params_ok) = match oid {
            // RFC 4055 5 wants NULL; some encoders omit it, which is harmless here.
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION => {
                (Self::RsaPkcs1(HashAlgorithm::Sha256), params.is_none() || is_null)
            }
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION => {
                (Self::RsaPkcs1(HashAlgorithm::Sha384), params.is_none() || is_null)
            }
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION => {
                (Self::RsaPkcs1(HashAlgorithm::Sha512), params.is_none() || is_null)
            }
            // RFC 5758 3.2 and RFC 8410 6: no parameters at all.
            rfc5912::ECDSA_WITH_SHA_256 => (Self::Ecdsa(HashAlgorithm::Sha256), params.is_none()),
            rfc5912::ECDSA_WITH_SHA_384 => (Self::Ecdsa(HashAlgorithm::Sha384), params.is_none()),
            rfc5912::ECDSA_WITH_SHA_512 => (Self::Ecdsa(HashAlgorithm::Sha512), params.is_none()),
            rfc8410::ID_ED_25519 => (Self::Ed25519, params.is_none()),
            rfc5912::ID_RSASSA_PSS => {
                let params = params.ok_or(CsrError::UnsupportedPssParameters("parameters missing"))?;
                (pss_parameters(params)?, true)
            }
            _ => return Err(CsrError::UnsupportedSignatureAlgorithm(oid)),
        };
        if !params_ok {
            return Err(CsrError::BadAlgorithmParameters(oid));
        }
        Ok(parsed)
    }
}

/// RFC 4055 3.1 RSASSA-PSS-params: SHA-2 hash, MGF1 with the same hash, trailer 1.
fn pss_parameters(params: &der::Any) -> Result<SignatureAlgorithm, CsrError> {
    let params: RsaPssParams<'_> = params.decode_as().map_err(CsrError::Malformed)?;
    let hash = HashAlgorithm::from_oid(params.hash.oid).ok_or(CsrError::UnsupportedPssParameters("hash"))?;
    if params.mask_gen.oid != rfc5912::ID_MGF_1 {
        return Err(CsrError::UnsupportedPssParameters("mask generation function"));
    }
    let mgf_hash = params.mask_gen.parameters.as_ref().map(|p| p.oid);
    if mgf_hash != Some(params.hash.oid) {
        return Err(CsrError::UnsupportedPssParameters("MGF1 hash differs from the message hash"));
    }
    Ok(SignatureAlgorithm::RsaPss { hash, salt_len: usize::from(params.salt_len) })
}

/// A decoded subject public key, ready to verify with.
enum SubjectKey {
    Rsa { key: rsa::RsaPublicKey, bits: u32 },
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl SubjectKey {
    fn from_spki(spki: &SubjectPublicKeyInfoOwned, limits: &CsrLimits) -> Result<Self, CsrError> {
        let oid = spki.algorithm.oid;
        let params = spki.algorithm.parameters.as_ref();
        let key_bytes = spki.subject_public_key.as_bytes().ok_or(CsrError::MalformedKey("unused bits in the key"))?;
        match oid {
            rfc5912::RSA_ENCRYPTION => {
                // RFC 3279 2.3.1: the parameters MUST be NULL.
                if !params.is_some_and(|p| p.tag() == Tag::Null && p.value().is_empty()) {
                    return Err(CsrError::MalformedKey("rsaEncryption parameters must be NULL"));
                }
                rsa_key(key_bytes, limits)
            }
            rfc5912::ID_EC_PUBLIC_KEY => {
                let curve = params
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or(CsrError::MalformedKey("the curve must be a named curve"))?;
                match curve {
                    rfc5912::SECP_256_R_1 => p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map(SubjectKey::P256)
                        .map_err(|_| CsrError::MalformedKey("not a P-256 point")),
                    rfc5912::SECP_384_R_1 => p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map(SubjectKey::P384)
                        .map_err(|_| CsrError::MalformedKey("not a P-384 point")),
                    other => Err(CsrError::UnsupportedCurve(other)),
                }
            }
            rfc8410::ID_ED_25519 => {
                if params.is_some() {
                    return Err(CsrError::MalformedKey("Ed25519 keys have no parameters"));
                }
                let bytes: [u8; 32] = key_bytes.try_into().map_err(|_| CsrError::MalformedKey("Ed25519 key length"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(SubjectKey::Ed25519)
                    .map_err(|_| CsrError::MalformedKey("not an Ed25519 point"))
            }
            other => Err(CsrError::UnsupportedKeyAlgorithm(other)),
        }
    }

    fn key_type(&self) -> KeyType {
        match self {
            SubjectKey::Rsa { bits, .. } => KeyType::Rsa { bits: *bits },
            SubjectKey::P256(_) => KeyType::EcP256,
            SubjectKey::P384(_) => KeyType::EcP384,
            SubjectKey::Ed25519(_) => KeyType::Ed25519,
        }
    }

    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        algorithm_oid: ObjectIdentifier,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CsrError> {
        use SignatureAlgorithm as A;
        let verified = match (self, algorithm) {
            (SubjectKey::Rsa { key, .. }, A::RsaPkcs1(hash)) => verify_rsa_pkcs1(key, hash, message, signature),
            (SubjectKey::Rsa { key, .. }, A::RsaPss { hash, salt_len }) => {
                verify_rsa_pss(key, hash, salt_len, message, signature)
            }
            // Any SHA-2 hash with either curve: OpenSSL signs P-384 requests with SHA-256 unless
            // told otherwise. The digest is truncated to the order's bits as FIPS 186-4 says.
            (SubjectKey::P256(key), A::Ecdsa(hash)) => p256::ecdsa::Signature::from_der(signature).is_ok_and(|sig| {
                let point = key.to_encoded_point(false);
                let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
                ecdsa::verify(ecdsa::Curve::P256, point.as_bytes(), &r, &s, &hash.digest(message))
            }),
            (SubjectKey::P384(key), A::Ecdsa(hash)) => p384::ecdsa::Signature::from_der(signature).is_ok_and(|sig| {
                let point = key.to_encoded_point(false);
                let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
                ecdsa::verify(ecdsa::Curve::P384, point.as_bytes(), &r, &s, &hash.digest(message))
            }),
            // Strict: rejects non-canonical encodings and small-order keys, so every
            // implementation agrees on the verdict.
            (SubjectKey::Ed25519(key), A::Ed25519) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
            _ => return Err(CsrError::AlgorithmKeyMismatch { algorithm: algorithm_oid, key: self.key_type() }),
        };
        if verified { Ok(()) } else { Err(CsrError::BadSignature) }
    }
}

fn rsa_key(key_bytes: &[u8], limits: &CsrLimits) -> Result<SubjectKey, CsrError> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(key_bytes).map_err(|_| CsrError::MalformedKey("RSA public key"))?;
    let modulus = rsa::BigUint::from_bytes_be(key.modulus.as_bytes());
    let exponent = rsa::BigUint::from_bytes_be(key.public_exponent.as_bytes());
    let bits = u32::try_from(modulus.bits()).unwrap_or(u32::MAX);
    if bits < limits.min_rsa_bits {
        return Err(CsrError::RsaKeyTooSmall { bits, min: limits.min_rsa_bits });
    }
    if bits > limits.max_rsa_bits {
        return Err(CsrError::RsaKeyTooLarge { bits, max: limits.max_rsa_bits });
    }
    // An even modulus or exponent is never a real RSA key; e = 1 would make any signature valid.
    let odd = |bytes: &[u8]| bytes.last().is_some_and(|last| last & 1 == 1);
    if !odd(key.modulus.as_bytes()) || !odd(key.public_exponent.as_bytes()) || exponent < rsa::BigUint::from(3u32) {
        return Err(CsrError::MalformedKey("RSA modulus and exponent must be odd, exponent at least 3"));
    }
    let key = rsa::RsaPublicKey::new_with_max_size(modulus, exponent, limits.max_rsa_bits as usize)
        .map_err(|_| CsrError::MalformedKey("RSA public key out of range"))?;
    Ok(SubjectKey::Rsa { key, bits })
}

fn verify_rsa_pkcs1(key: &rsa::RsaPublicKey, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    let key = key.clone();
    match hash {
        HashAlgorithm::Sha256 => VerifyingKey::<Sha256>::new(key).verify(message, &signature).is_ok(),
        HashAlgorithm::Sha384 => VerifyingKey::<Sha384>::new(key).verify(message, &signature).is_ok(),
        HashAlgorithm::Sha512 => VerifyingKey::<Sha512>::new(key).verify(message, &signature).is_ok(),
    }
}

fn verify_rsa_pss(
    key: &rsa::RsaPublicKey,
    hash: HashAlgorithm,
    salt_len: usize,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use rsa::pss::{Signature, VerifyingKey};
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    let key = key.clone();
    match hash {
        HashAlgorithm::Sha256 => {
            VerifyingKey::<Sha256>::new_with_salt_len(key, salt_len).verify(message, &signature).is_ok()
        }
        HashAlgorithm::Sha384 => {
            VerifyingKey::<Sha384>::new_with_salt_len(key, salt_len).verify(message, &signature).is_ok()
        }
        HashAlgorithm::Sha512 => {
            VerifyingKey::<Sha512>::new_with_salt_len(key, salt_len).verify(message, &signature).is_ok()
        }
    }
}

/// The subjectAltName of the extensionRequest attribute (RFC 2985 5.4.2), if any.
fn requested_names(info: &CertReqInfo, limits: &CsrLimits) -> Result<(Vec<String>, Vec<IpAddr>), CsrError> {
    let mut requests = info.attributes.iter().filter(|a| a.oid == rfc5912::ID_EXTENSION_REQ);
    let Some(attribute) = requests.next() else {
        return Ok((Vec::new(), Vec::new()));
    };
    if requests.next().is_some() {
        return Err(CsrError::Duplicate(rfc5912::ID_EXTENSION_REQ));
    }
    let mut values = attribute.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(CsrError::MalformedExtensionRequest(Tag::Set.value_error()));
    };
    let extensions: Vec<Extension> = value.decode_as().map_err(CsrError::MalformedExtensionRequest)?;
    let mut sans = extensions.iter().filter(|e| e.extn_id == rfc5912::ID_CE_SUBJECT_ALT_NAME);
    let Some(san) = sans.next() else {
        return Ok((Vec::new(), Vec::new()));
    };
    if sans.next().is_some() {
        return Err(CsrError::Duplicate(rfc5912::ID_CE_SUBJECT_ALT_NAME));
    }
    let SubjectAltName(names) =
        SubjectAltName::from_der(san.extn_value.as_bytes()).map_err(CsrError::MalformedExtensionRequest)?;
    if names.len() > limits.max_names {
        return Err(CsrError::TooManyNames { count: names.len(), max: limits.max_names });
    }
    let (mut dns_names, mut ip_addresses) = (Vec::new(), Vec::new());
    for name in names {
        match name {
            GeneralName::DnsName(dns) => dns_names.push(dns.to_string()),
            GeneralName::IpAddress(octets) => ip_addresses.push(ip_address(octets.as_bytes())?),
            GeneralName::Rfc822Name(_) => return Err(CsrError::UnsupportedNameType("email address")),
            GeneralName::UniformResourceIdentifier(_) => return Err(CsrError::UnsupportedNameType("URI")),
            GeneralName::DirectoryName(_) => return Err(CsrError::UnsupportedNameType("directory name")),
            GeneralName::OtherName(_) => return Err(CsrError::UnsupportedNameType("other name")),
            GeneralName::RegisteredId(_) => return Err(CsrError::UnsupportedNameType("registered ID")),
            GeneralName::EdiPartyName(_) => return Err(CsrError::UnsupportedNameType("EDI party name")),
        }
    }
    Ok((dns_names, ip_addresses))
}

fn ip_address(octets: &[u8]) -> Result<IpAddr, CsrError> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        Ok(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        Ok(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        Err(CsrError::BadIpAddress(octets.len()))
    }
}

#[cfg(test)]
mod tests {
    use const_oid::db::rfc5912;
    use der::Encode;
    use der::asn1::Ia5String;
    use proptest::prelude::*;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::name::RdnSequence;

    use super::*;
    use crate::certificate::extension;
    use crate::test_support::*;

    fn san(names: Vec<GeneralName>) -> Extension {
        extension(&SubjectAltName(names), false).unwrap()
    }

    fn dns(name: &str) -> GeneralName {
        GeneralName::DnsName(Ia5String::new(name).unwrap())
    }

    fn p256_request() -> Vec<u8> {
        let key = p256_key(3);
        let names = vec![dns("www.example.com"), GeneralName::from(IpAddr::from([192, 0, 2, 1])), dns("example.com")];
        request(cn("www.example.com"), p256_spki(&key), vec![extension_request(vec![san(names)])], &p256_signer(&key))
    }

    #[test]
    fn p256_request_parses_with_its_names_in_order() {
        let csr = parse_der(&p256_request(), &CsrLimits::default()).unwrap();
        assert_eq!(csr.key_type, KeyType::EcP256);
        assert_eq!(csr.subject, cn("www.example.com"));
        assert_eq!(csr.dns_names, ["www.example.com", "example.com"]);
        assert_eq!(csr.ip_addresses, [IpAddr::from([192, 0, 2, 1])]);
        assert_eq!(csr.public_key, p256_spki(&p256_key(3)));
    }

    #[test]
    fn ed25519_request_without_names_parses() {
        let key = ed25519_key(4);
        let der = request(RdnSequence(vec![]), ed25519_spki(&key), vec![], &ed25519_signer(&key));
        let csr = parse_der(&der, &CsrLimits::default()).unwrap();
        assert_eq!(csr.key_type, KeyType::Ed25519);
        assert!(csr.dns_names.is_empty() && csr.ip_addresses.is_empty() && csr.subject.0.is_empty());
    }

    #[test]
    fn rsa_request_parses_and_its_size_is_checked_against_the_limits() {
        let key = &root().key;
        let der = request(cn("rsa"), rsa_spki(key), vec![], &rsa_signer(key));
        assert_eq!(parse_der(&der, &CsrLimits::default()).unwrap().key_type, KeyType::Rsa { bits: 2048 });
        let strict = CsrLimits { min_rsa_bits: 3072, ..CsrLimits::default() };
        assert_eq!(parse_der(&der, &strict), Err(CsrError::RsaKeyTooSmall { bits: 2048, min: 3072 }));
        let small = CsrLimits { min_rsa_bits: 1024, max_rsa_bits: 1536, ..CsrLimits::default() };
        assert_eq!(parse_der(&der, &small), Err(CsrError::RsaKeyTooLarge { bits: 2048, max: 1536 }));
    }

    #[test]
    fn key_signatures_verify_with_the_fixed_algorithm_per_key_type() {
        use rsa::signature::{SignatureEncoding, Signer};
        let message = b"revoke me";
        let p256 = p256_key(12);
        let sig: p256::ecdsa::DerSignature = p256.sign(message);
        assert_eq!(verify_key_signature(&p256_spki(&p256), message, sig.as_bytes()), Ok(()));
        assert_eq!(verify_key_signature(&p256_spki(&p256), b"other", sig.as_bytes()), Err(CsrError::BadSignature));

        let ed = ed25519_key(12);
        let sig = ed25519_dalek::Signer::sign(&ed, message).to_bytes();
        assert_eq!(verify_key_signature(&ed25519_spki(&ed), message, &sig), Ok(()));
        assert_eq!(verify_key_signature(&p256_spki(&p256), message, &sig), Err(CsrError::BadSignature));

        let key = &root().key;
        let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(message).to_vec();
        assert_eq!(verify_key_signature(&rsa_spki(key), message, &sig), Ok(()));
        let sig384 = rsa::pkcs1v15::SigningKey::<Sha384>::new(key.clone()).sign(message).to_vec();
        assert_eq!(verify_key_signature(&rsa_spki(key), message, &sig384), Err(CsrError::BadSignature));
    }

    #[test]
    fn pem_is_accepted_with_either_label_and_refused_with_another() {
        let der = p256_request();
        let limits = CsrLimits::default();
        let expected = parse_der(&der, &limits).unwrap();
        for label in ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"] {
            let pem = der::pem::encode_string(label, der::pem::LineEnding::LF, &der).unwrap();
            assert_eq!(parse(format!("\n{pem}\n").as_bytes(), &limits), Ok(expected.clone()));
        }
        let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap();
        assert_eq!(parse(pem.as_bytes(), &limits), Err(CsrError::PemLabel("CERTIFICATE".into())));
        assert!(matches!(parse(b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n", &limits), Err(CsrError::Pem(_))));
    }

    #[test]
    fn a_flipped_signature_or_body_byte_is_a_bad_signature() {
        let limits = CsrLimits::default();
        let key = ed25519_key(5);
        let der = request(cn("a"), ed25519_spki(&key), vec![], &ed25519_signer(&key));
        let mut flipped = der.clone();
        *flipped.last_mut().unwrap() ^= 0x01;
        assert_eq!(parse_der(&flipped, &limits), Err(CsrError::BadSignature));
        // The subject's "a" sits inside the signed info.
        let at = der.iter().position(|&b| b == b'a').unwrap();
        let mut changed = der.clone();
        changed[at] = b'b';
        assert_eq!(parse_der(&changed, &limits), Err(CsrError::BadSignature));

        let der = p256_request();
        let mut flipped = der.clone();
        let last = der.len() - 1;
        flipped[last] ^= 0x01;
        assert_eq!(parse_der(&flipped, &limits), Err(CsrError::BadSignature));
    }

    #[test]
    fn a_signature_algorithm_for_another_key_type_is_refused() {
        let p256 = p256_key(6);
        let ed = ed25519_key(6);
        let der = request(cn("x"), p256_spki(&p256), vec![], &ed25519_signer(&ed));
        assert_eq!(
            parse_der(&der, &CsrLimits::default()),
            Err(CsrError::AlgorithmKeyMismatch { algorithm: rfc8410::ID_ED_25519, key: KeyType::EcP256 })
        );
    }

    #[test]
    fn unsupported_or_malformed_algorithms_are_refused() {
        let key = p256_key(7);
        let sha1_rsa = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
        let signer = |m: &[u8]| (AlgorithmIdentifierOwned { oid: sha1_rsa, parameters: None }, p256_signer(&key)(m).1);
        let der = request(cn("x"), p256_spki(&key), vec![], &signer);
        assert_eq!(parse_der(&der, &CsrLimits::default()), Err(CsrError::UnsupportedSignatureAlgorithm(sha1_rsa)));

        let with_null = |m: &[u8]| {
            let (mut algorithm, signature) = p256_signer(&key)(m);
            algorithm.parameters = Some(der::Any::null());
            (algorithm, signature)
        };
        let der = request(cn("x"), p256_spki(&key), vec![], &with_null);
        assert_eq!(
            parse_der(&der, &CsrLimits::default()),
            Err(CsrError::BadAlgorithmParameters(rfc5912::ECDSA_WITH_SHA_256))
        );
    }

    #[test]
    fn name_types_other_than_dns_and_ip_are_refused() {
        let key = p256_key(8);
        let email = GeneralName::Rfc822Name(Ia5String::new("a@example.com").unwrap());
        let attributes = vec![extension_request(vec![san(vec![dns("a.example"), email])])];
        let der = request(cn("x"), p256_spki(&key), attributes, &p256_signer(&key));
        assert_eq!(parse_der(&der, &CsrLimits::default()), Err(CsrError::UnsupportedNameType("email address")));
    }

    #[test]
    fn more_names_than_the_limit_are_refused() {
        let key = p256_key(9);
        let names: Vec<GeneralName> = (0..11).map(|i| dns(&format!("h{i}.example"))).collect();
        let der = request(cn("x"), p256_spki(&key), vec![extension_request(vec![san(names)])], &p256_signer(&key));
        let limits = CsrLimits { max_names: 10, ..CsrLimits::default() };
        assert_eq!(parse_der(&der, &limits), Err(CsrError::TooManyNames { count: 11, max: 10 }));
        assert!(parse_der(&der, &CsrLimits { max_names: 11, ..limits }).is_ok());
    }

    #[test]
    fn a_repeated_subject_alt_name_extension_is_refused() {
        let key = p256_key(10);
        let attributes = vec![extension_request(vec![san(vec![dns("a.example")]), san(vec![dns("b.example")])])];
        let der = request(cn("x"), p256_spki(&key), attributes, &p256_signer(&key));
        assert_eq!(parse_der(&der, &CsrLimits::default()), Err(CsrError::Duplicate(rfc5912::ID_CE_SUBJECT_ALT_NAME)));
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let limits = CsrLimits { max_input_len: 100, ..CsrLimits::default() };
        assert_eq!(parse(&[0u8; 101], &limits), Err(CsrError::TooLarge { len: 101, max: 100 }));
        assert_eq!(parse_der(&[0u8; 101], &limits), Err(CsrError::TooLarge { len: 101, max: 100 }));
    }

    #[test]
    fn every_truncation_and_trailing_garbage_is_malformed() {
        let der = p256_request();
        let limits = CsrLimits::default();
        for len in 0..der.len() {
            assert!(matches!(parse_der(&der[..len], &limits), Err(CsrError::Malformed(_))), "length {len}");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert!(matches!(parse_der(&longer, &limits), Err(CsrError::Malformed(_))));
        assert!(matches!(parse(b"garbage", &limits), Err(CsrError::Malformed(_))));
    }

    #[test]
    fn the_unsigned_info_re_encodes_to_what_was_signed() {
        // Sanity for the test helper itself: the parsed info encodes back to the signed bytes.
        let der = p256_request();
        let (info, _, _) = split_signed(&der).unwrap();
        assert_eq!(CertReqInfo::from_der(info).unwrap().to_der().unwrap(), info);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes, &CsrLimits::default());
        }

        #[test]
        fn corrupted_requests_never_panic_and_never_verify_as_changed(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)
        ) {
            let der = p256_request();
            let mut bytes = der.clone();
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Ok(csr) = parse_der(&bytes, &CsrLimits::default()) {
                // Only edits outside the signed info and signature value (e.g. none) can pass.
                prop_assert_eq!(csr, parse_der(&der, &CsrLimits::default()).unwrap());
            }
        }
    }
}
