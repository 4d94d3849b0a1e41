//! Keys, a root certificate and request builders for the unit tests. The root mirrors the
//! dealer's (`dealer/src/certs.rs`): CN only, CA critical, keyCertSign + cRLSign, SHA-1 key
//! identifiers. Keys come from fixed seeds, so every run sees the same bytes.

use std::sync::OnceLock;

use const_oid::db::{rfc4519, rfc5912, rfc8410};
use der::asn1::{BitString, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Tag};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::certificate::{extension, key_identifier, sha256_with_rsa};

/// 2024-01-01 and 2034-01-01, seconds since the epoch.
pub const ROOT_NOT_BEFORE: u64 = 1_704_067_200;
pub const ROOT_NOT_AFTER: u64 = 2_019_686_400;

pub struct TestRoot {
    pub key: rsa::RsaPrivateKey,
    pub der: Vec<u8>,
}

impl TestRoot {
    /// sha256WithRSAEncryption, standing in for the threshold signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        rsa::pkcs1v15::SigningKey::<Sha256>::new(self.key.clone()).sign(message).to_vec()
    }
}

pub fn cn(name: &str) -> Name {
    let atv = AttributeTypeAndValue { oid: rfc4519::CN, value: Any::new(Tag::Utf8String, name.as_bytes()).unwrap() };
    RdnSequence(vec![RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv]).unwrap())])
}

pub fn rsa_key(bits: usize, seed: u64) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(seed), bits).unwrap()
}

pub fn rsa_spki(key: &rsa::RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_der(key.to_public_key().to_public_key_der().unwrap().as_bytes()).unwrap()
}

pub fn root() -> &'static TestRoot {
    static ROOT: OnceLock<TestRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let key = rsa_key(2048, 1);
        let spki = rsa_spki(&key);
        let key_id = key_identifier(&spki);
        let subject = cn("Test Root CA");
        let time = |s: u64| Time::UtcTime(UtcTime::from_unix_duration(std::time::Duration::from_secs(s)).unwrap());
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_id.clone()).unwrap()),
            ..Default::default()
        };
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[0x42; 16]).unwrap(),
            signature: sha256_with_rsa(),
            issuer: subject.clone(),
            validity: Validity { not_before: time(ROOT_NOT_BEFORE), not_after: time(ROOT_NOT_AFTER) },
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![
                extension(&BasicConstraints { ca: true, path_len_constraint: None }, true).unwrap(),
                extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true).unwrap(),
                extension(&SubjectKeyIdentifier(OctetString::new(key_id).unwrap()), false).unwrap(),
                extension(&aki, false).unwrap(),
            ]),
        };
        let root = TestRoot { key, der: Vec::new() };
        let signature = root.sign(&tbs.to_der().unwrap());
        let certificate = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: sha256_with_rsa(),
            signature: BitString::from_bytes(&signature).unwrap(),
        };
        TestRoot { der: certificate.to_der().unwrap(), ..root }
    })
}

pub fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap()
}

pub fn p256_spki(key: &p256::ecdsa::SigningKey) -> SubjectPublicKeyInfoOwned {
    use p256::pkcs8::EncodePublicKey;
    SubjectPublicKeyInfoOwned::from_der(key.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap()
}

pub fn ed25519_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

pub fn ed25519_spki(key: &ed25519_dalek::SigningKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: rfc8410::ID_ED_25519, parameters: None },
        subject_public_key: BitString::from_bytes(key.verifying_key().as_bytes()).unwrap(),
    }
}

/// A signer for a request: the algorithm identifier and the signature over the request info.
pub type RequestSigner<'a> = &'a dyn Fn(&[u8]) -> (AlgorithmIdentifierOwned, Vec<u8>);

pub fn p256_signer(key: &p256::ecdsa::SigningKey) -> impl Fn(&[u8]) -> (AlgorithmIdentifierOwned, Vec<u8>) + '_ {
    move |message| {
        let signature: p256::ecdsa::DerSignature = key.sign(message);
        (AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None }, signature.to_vec())
    }
}

pub fn ed25519_signer(key: &ed25519_dalek::SigningKey) -> impl Fn(&[u8]) -> (AlgorithmIdentifierOwned, Vec<u8>) + '_ {
    move |message| {
        let signature = ed25519_dalek::Signer::sign(key, message);
        (AlgorithmIdentifierOwned { oid: rfc8410::ID_ED_25519, parameters: None }, signature.to_bytes().to_vec())
    }
}

pub fn rsa_signer(key: &rsa::RsaPrivateKey) -> impl Fn(&[u8]) -> (AlgorithmIdentifierOwned, Vec<u8>) + '_ {
    move |message| {
        let signature = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(message).to_vec();
        (sha256_with_rsa(), signature)
    }
}

/// An extensionRequest attribute holding `extensions`.
pub fn extension_request(extensions: Vec<Extension>) -> Attribute {
    let mut values = SetOfVec::new();
    values.insert(Any::encode_from(&extensions).unwrap()).unwrap();
    Attribute { oid: rfc5912::ID_EXTENSION_REQ, values }
}

/// A DER request with the given parts, signed by `sign`.
pub fn request(
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    attributes: Vec<Attribute>,
    sign: RequestSigner<'_>,
) -> Vec<u8> {
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject,
        public_key: spki,
        attributes: SetOfVec::try_from(attributes).unwrap(),
    };
    let (algorithm, signature) = sign(&info.to_der().unwrap());
    CertReq { info, algorithm, signature: BitString::from_bytes(&signature).unwrap() }.to_der().unwrap()
}
