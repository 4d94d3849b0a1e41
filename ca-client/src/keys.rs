//! Certificate keys held by the client: generating them, reading and writing them as PEM,
//! building the PKCS#10 request (CSR) a certificate is asked for with, and signing a revocation
//! statement with the certificate's own key.
//!
//! Signature algorithms are the ones the CA verifies (`ca-api`'s `KeyRevocation` and the server's
//! CSR check): RSA PKCS#1 v1.5 with SHA-256, ECDSA P-256 with SHA-256 and P-384 with SHA-384
//! (DER-encoded signatures), and Ed25519. Private keys are wiped when dropped (each key type here
//! zeroizes itself) and their PEM text is held in `Zeroizing` buffers.

use std::fmt;
use std::str::FromStr;

use const_oid::db::{rfc5912, rfc8410};
use der::asn1::{BitString, Ia5String, SetOfVec};
use der::pem::LineEnding;
use der::{Any, Decode, Encode, Tag};
use p256::pkcs8;
use rand::{CryptoRng, RngCore};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use zeroize::Zeroizing;

/// Why a key or request could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} is not a key type; use ec-p256, ec-p384, rsa-2048 or ed25519")]
    UnknownType(String),
    /// The message names the structure that failed, never key material.
    #[error("not a supported private key (PKCS#8, SEC1 EC or PKCS#1 RSA PEM): {0}")]
    Unreadable(String),
    #[error("encoding: {0}")]
    Encoding(String),
    #[error("{0:?} cannot be put in a certificate request as a DNS name")]
    BadName(String),
    #[error("a certificate request needs at least one name")]
    NoNames,
    #[error("not a PEM certificate request: {0}")]
    Csr(String),
}

fn encoding(e: impl fmt::Display) -> KeyError {
    KeyError::Encoding(e.to_string())
}

/// The key types the client generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    #[default]
    EcP256,
    EcP384,
    Rsa2048,
    Ed25519,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048, KeyType::Ed25519];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| KeyError::UnknownType(text.to_string()))
    }
}

/// A certificate's private key.
pub enum PrivateKey {
    EcP256(p256::ecdsa::SigningKey),
    EcP384(p384::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for PrivateKey {
    /// Never the secret: only what kind of key it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.key_type())
    }
}

impl PrivateKey {
    pub fn generate<R: RngCore + CryptoRng>(key_type: KeyType, rng: &mut R) -> Result<PrivateKey, KeyError> {
        Ok(match key_type {
            KeyType::EcP256 => PrivateKey::EcP256(p256::ecdsa::SigningKey::random(rng)),
            KeyType::EcP384 => PrivateKey::EcP384(p384::ecdsa::SigningKey::random(rng)),
            KeyType::Rsa2048 => PrivateKey::Rsa(Box::new(rsa::RsaPrivateKey::new(rng, 2048).map_err(encoding)?)),
            KeyType::Ed25519 => PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(rng)),
        })
    }

    pub fn key_type(&self) -> KeyType {
        match self {
            PrivateKey::EcP256(_) => KeyType::EcP256,
            PrivateKey::EcP384(_) => KeyType::EcP384,
            // Only 2048-bit keys are generated; a loaded key of another size still signs the same way.
            PrivateKey::Rsa(_) => KeyType::Rsa2048,
            PrivateKey::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form OpenSSL and web servers read. Ed25519
    /// is written in the RFC 8410 form without the public key, which OpenSSL 3.0 requires.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        use pkcs8::EncodePrivateKey;
        match self {
            PrivateKey::EcP256(key) => key.to_pkcs8_pem(LineEnding::LF).map_err(encoding),
            PrivateKey::EcP384(key) => key.to_pkcs8_pem(LineEnding::LF).map_err(encoding),
            PrivateKey::Rsa(key) => key.to_pkcs8_pem(LineEnding::LF).map_err(encoding),
            PrivateKey::Ed25519(key) => {
                // `KeypairBytes` wipes its copy of the secret on drop (the `ed25519/zeroize` feature).
                let document = ed25519_dalek::pkcs8::KeypairBytes { secret_key: key.to_bytes(), public_key: None };
                ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_pem(&document, LineEnding::LF).map_err(encoding)
            }
        }
    }

    /// Reads a PEM private key: PKCS#8 of any supported type, or the SEC1 (`EC PRIVATE KEY`) and
    /// PKCS#1 (`RSA PRIVATE KEY`) forms OpenSSL also writes.
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        let (label, der) =
            der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| KeyError::Unreadable(e.to_string()))?;
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "EC PRIVATE KEY" => {
                if let Ok(key) = p256::SecretKey::from_sec1_der(&der) {
                    return Ok(PrivateKey::EcP256(key.into()));
                }
                p384::SecretKey::from_sec1_der(&der)
                    .map(|key| PrivateKey::EcP384(key.into()))
                    .map_err(|_| KeyError::Unreadable("an EC key on a curve other than P-256 or P-384".into()))
            }
            "RSA PRIVATE KEY" => {
                let key = <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_der(&der)
                    .map_err(|e| KeyError::Unreadable(e.to_string()))?;
                Ok(PrivateKey::Rsa(Box::new(key)))
            }
            other => Err(KeyError::Unreadable(format!("PEM label {other:?}"))),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        use pkcs8::DecodePrivateKey;
        let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| KeyError::Unreadable(e.to_string()))?;
        let unreadable = |e: pkcs8::Error| KeyError::Unreadable(e.to_string());
        match info.algorithm.oid {
            oid if oid == rfc5912::ID_EC_PUBLIC_KEY => {
                let curve = info.algorithm.parameters_oid().map_err(|e| KeyError::Unreadable(e.to_string()))?;
                if curve == rfc5912::SECP_256_R_1 {
                    Ok(PrivateKey::EcP256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(unreadable)?))
                } else if curve == rfc5912::SECP_384_R_1 {
                    Ok(PrivateKey::EcP384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(unreadable)?))
                } else {
                    Err(KeyError::Unreadable(format!("EC curve {curve} is not supported")))
                }
            }
            oid if oid == rfc5912::RSA_ENCRYPTION => {
                Ok(PrivateKey::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(unreadable)?)))
            }
            oid if oid == rfc8410::ID_ED_25519 => {
                Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(unreadable)?))
            }
            oid => Err(KeyError::Unreadable(format!("key algorithm {oid} is not supported"))),
        }
    }

    /// The subjectPublicKeyInfo DER: what a certificate for this key carries.
    pub fn public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        use spki::EncodePublicKey;
        let document = match self {
            PrivateKey::EcP256(key) => key.verifying_key().to_public_key_der(),
            PrivateKey::EcP384(key) => key.verifying_key().to_public_key_der(),
            PrivateKey::Rsa(key) => key.to_public_key().to_public_key_der(),
            PrivateKey::Ed25519(key) => key.verifying_key().to_public_key_der(),
        };
        Ok(document.map_err(encoding)?.as_bytes().to_vec())
    }

    /// Signs `message` with the algorithm the CA expects for this key type.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use rsa::signature::{SignatureEncoding, Signer};
        match self {
            PrivateKey::EcP256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            PrivateKey::EcP384(key) => {
                let signature: p384::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            PrivateKey::Rsa(key) => {
                // The signing key takes ownership of a copy, which wipes itself on drop.
                rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**key).clone()).sign(message).to_vec()
            }
            PrivateKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }

    /// The AlgorithmIdentifier of [`PrivateKey::sign`]'s signatures, as a CSR names it.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        let (oid, parameters) = match self {
            PrivateKey::EcP256(_) => (rfc5912::ECDSA_WITH_SHA_256, None),
            PrivateKey::EcP384(_) => (rfc5912::ECDSA_WITH_SHA_384, None),
            PrivateKey::Rsa(_) => (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, Some(Any::null())),
            PrivateKey::Ed25519(_) => (rfc8410::ID_ED_25519, None),
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }

    /// A PKCS#10 request for `names` (DER): subject CN = the first name (when it fits the 64
    /// characters of a CN), subjectAltName = all of them, self-signed with this key.
    pub fn csr(&self, names: &[String]) -> Result<Vec<u8>, KeyError> {
        let first = names.first().ok_or(KeyError::NoNames)?;
        let mut general_names = Vec::with_capacity(names.len());
        for name in names {
            let text = Ia5String::new(name).map_err(|_| KeyError::BadName(name.clone()))?;
            general_names.push(GeneralName::DnsName(text));
        }
        let san = SubjectAltName(general_names);
        // The SAN stays non-critical because the subject is set; a name too long for a CN leaves
        // the subject empty, and the CA then marks its SAN critical (RFC 5280 4.2.1.6).
        let subject = if first.len() <= 64 { common_name(first)? } else { RdnSequence(Vec::new()) };
        let extension = Extension {
            extn_id: <SubjectAltName as const_oid::AssociatedOid>::OID,
            critical: false,
            extn_value: der::asn1::OctetString::new(san.to_der().map_err(encoding)?).map_err(encoding)?,
        };
        let attribute = Attribute::try_from(ExtensionReq(vec![extension])).map_err(encoding)?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&self.public_key_der()?).map_err(encoding)?;
        let info = CertReqInfo {
            version: x509_cert::request::Version::V1,
            subject,
            public_key: spki,
            attributes: SetOfVec::try_from(vec![attribute]).map_err(encoding)?,
        };
        let signature = self.sign(&info.to_der().map_err(encoding)?);
        let request = CertReq {
            info,
            algorithm: self.signature_algorithm(),
            signature: BitString::from_bytes(&signature).map_err(encoding)?,
        };
        request.to_der().map_err(encoding)
    }
}

fn common_name(text: &str) -> Result<Name, KeyError> {
    let value = Any::new(Tag::Utf8String, text.as_bytes()).map_err(encoding)?;
    let atv = AttributeTypeAndValue { oid: const_oid::db::rfc4519::CN, value };
    let rdn = RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv]).map_err(encoding)?);
    Ok(RdnSequence(vec![rdn]))
}

/// A CSR read from a PEM file (`--csr`): its DER, the DNS names it asks for and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    pub der: Vec<u8>,
    pub dns_names: Vec<String>,
    pub public_key: Vec<u8>,
}

/// Reads a PEM CSR (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`). Its self-signature is
/// left to the CA, which checks it and refuses the request otherwise.
pub fn read_csr_pem(text: &str) -> Result<CsrInfo, KeyError> {
    let (label, der) = der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| KeyError::Csr(e.to_string()))?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(KeyError::Csr(format!("PEM label {label:?}")));
    }
    let request = CertReq::from_der(&der).map_err(|e| KeyError::Csr(e.to_string()))?;
    let mut dns_names = Vec::new();
    for attribute in request.info.attributes.iter() {
        if attribute.oid != <ExtensionReq as const_oid::AssociatedOid>::OID {
            continue;
        }
        for value in attribute.values.iter() {
            let extensions: Vec<Extension> = value.decode_as().map_err(|e| KeyError::Csr(e.to_string()))?;
            for extension in extensions {
                if extension.extn_id == <SubjectAltName as const_oid::AssociatedOid>::OID {
                    let san = SubjectAltName::from_der(extension.extn_value.as_bytes())
                        .map_err(|e| KeyError::Csr(e.to_string()))?;
                    dns_names.extend(san.0.into_iter().filter_map(|name| match name {
                        GeneralName::DnsName(dns) => Some(dns.to_string()),
                        _ => None,
                    }));
                }
            }
        }
    }
    let public_key = request.info.public_key.to_der().map_err(encoding)?;
    Ok(CsrInfo { der, dns_names, public_key })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(11)
    }

    /// Verifies a signature the way the CA does for a revocation by key.
    fn verifies(spki_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap();
        let key_bytes = spki.subject_public_key.raw_bytes();
        match spki.algorithm.oid {
            oid if oid == rfc5912::ID_EC_PUBLIC_KEY => {
                if let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes) {
                    let sig = p256::ecdsa::Signature::from_der(signature).unwrap();
                    key.verify(message, &sig).is_ok()
                } else {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes).unwrap();
                    let sig = p384::ecdsa::Signature::from_der(signature).unwrap();
                    key.verify(message, &sig).is_ok()
                }
            }
            oid if oid == rfc5912::RSA_ENCRYPTION => {
                let key = <rsa::RsaPublicKey as spki::DecodePublicKey>::from_public_key_der(spki_der).unwrap();
                let sig = rsa::pkcs1v15::Signature::try_from(signature).unwrap();
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig).is_ok()
            }
            _ => {
                let key = ed25519_dalek::VerifyingKey::from_bytes(key_bytes.try_into().unwrap()).unwrap();
                let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
                key.verify_strict(message, &sig).is_ok()
            }
        }
    }

    #[test]
    fn every_key_type_round_trips_through_pem_and_signs_verifiably() {
        for key_type in KeyType::ALL {
            let key = PrivateKey::generate(key_type, &mut rng()).unwrap();
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key_type}");
            let back = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(back.key_type(), key_type);
            assert_eq!(back.public_key_der().unwrap(), key.public_key_der().unwrap());
            let signature = back.sign(b"message");
            assert!(verifies(&key.public_key_der().unwrap(), b"message", &signature), "{key_type}");
            assert!(!verifies(&key.public_key_der().unwrap(), b"other", &signature), "{key_type}");
        }
    }

    #[test]
    fn a_csr_carries_the_names_and_the_key_and_reads_back() {
        let names = vec!["www.example.test".to_string(), "api.example.test".to_string()];
        for key_type in KeyType::ALL {
            let key = PrivateKey::generate(key_type, &mut rng()).unwrap();
            let der = key.csr(&names).unwrap();
            let request = CertReq::from_der(&der).unwrap();
            assert_eq!(request.info.subject.to_string(), "CN=www.example.test");
            // The self-signature covers the request info with the key's algorithm.
            let signature = request.signature.as_bytes().unwrap();
            assert!(verifies(&key.public_key_der().unwrap(), &request.info.to_der().unwrap(), signature), "{key_type}");
            let pem = der::pem::encode_string("CERTIFICATE REQUEST", LineEnding::LF, &der).unwrap();
            let info = read_csr_pem(&pem).unwrap();
            assert_eq!(info.dns_names, names);
            assert_eq!(info.public_key, key.public_key_der().unwrap());
        }
    }

    #[test]
    fn openssl_style_sec1_and_pkcs1_keys_are_read() {
        let ec = p256::SecretKey::random(&mut rng());
        let sec1 = ec.to_sec1_pem(LineEnding::LF).unwrap();
        let key = PrivateKey::from_pem(&sec1).unwrap();
        assert_eq!(key.key_type(), KeyType::EcP256);
        let rsa_key = rsa::RsaPrivateKey::new(&mut rng(), 1024).unwrap();
        let pkcs1 = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&rsa_key, LineEnding::LF).unwrap();
        assert_eq!(PrivateKey::from_pem(&pkcs1).unwrap().key_type(), KeyType::Rsa2048);
    }

    #[test]
    fn garbage_keys_names_and_types_are_refused_without_echoing_the_input() {
        let error =
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(matches!(error, KeyError::Unreadable(_)));
        assert!(!error.to_string().contains("c2VjcmV0"));
        assert!(matches!(PrivateKey::from_pem("nothing"), Err(KeyError::Unreadable(_))));
        let key = PrivateKey::generate(KeyType::EcP256, &mut rng()).unwrap();
        assert_eq!(key.csr(&[]), Err(KeyError::NoNames));
        assert!(matches!(key.csr(&["bad\u{e9}.test".to_string()]), Err(KeyError::BadName(_))));
        assert!("dsa".parse::<KeyType>().is_err());
        assert_eq!(format!("{key:?}"), "PrivateKey(ec-p256)");
    }
}
