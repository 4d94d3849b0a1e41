//! Versioned serde formats shared by every stored key, share and public description.
//!
//! Each stored object is a JSON object `{"format": ..., "version": ..., "data": {...}}`: what it
//! is, the version of that format, and the value. A reader checks the first two before it looks
//! at the value, so a file that is not what it expects is refused with a clear error instead of
//! misread. The value is nested rather than flattened because serde buffers flattened fields in
//! copies it never wipes, and some values are secret.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use zeroize::Zeroizing;

/// A type stored in a versioned file.
pub trait Versioned: Serialize + DeserializeOwned {
    /// What the file holds, e.g. `"itca.rsa-key-share"`.
    const FORMAT: &'static str;
    /// The version of that format this code writes and reads.
    const VERSION: u32;
}

/// Why a stored object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a {expected} file (it says format {found:?})")]
    WrongFormat { expected: &'static str, found: String },
    #[error("{format} version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { format: &'static str, found: u32, supported: u32 },
    #[error("malformed {format}: {reason}")]
    Malformed { format: &'static str, reason: String },
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    format: &'static str,
    version: u32,
    data: &'a T,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

/// Serialises `value` with its format header, pretty-printed. The buffer is zeroized on drop
/// because the value may be secret.
pub fn to_json<T: Versioned>(value: &T) -> Zeroizing<String> {
    let envelope = EnvelopeRef { format: T::FORMAT, version: T::VERSION, data: value };
    // Serialising plain structs of strings and numbers to a String cannot fail.
    Zeroizing::new(serde_json::to_string_pretty(&envelope).expect("in-memory JSON serialisation"))
}

/// Parses a versioned object, checking its format and version first.
pub fn from_json<T: Versioned>(text: &str) -> Result<T, FormatError> {
    let header: Header =
        serde_json::from_str(text).map_err(|e| FormatError::Malformed { format: T::FORMAT, reason: e.to_string() })?;
    if header.format != T::FORMAT {
        return Err(FormatError::WrongFormat { expected: T::FORMAT, found: header.format });
    }
    if header.version != T::VERSION {
        return Err(FormatError::UnsupportedVersion {
            format: T::FORMAT,
            found: header.version,
            supported: T::VERSION,
        });
    }
    let envelope: Envelope<T> =
        serde_json::from_str(text).map_err(|e| FormatError::Malformed { format: T::FORMAT, reason: e.to_string() })?;
    Ok(envelope.data)
}

/// Serde helper: bytes as lowercase hex.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, B: AsRef<[u8]>>(bytes: B, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(text.as_ref()).map_err(serde::de::Error::custom)
    }
}

/// Serde helper: a fixed-size byte array as lowercase hex.
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    }

    impl Versioned for Sample {
        const FORMAT: &'static str = "itca.sample";
        const VERSION: u32 = 2;
    }

    #[test]
    fn round_trips_with_header() {
        let sample = Sample { data: vec![1, 2, 0xff] };
        let text = to_json(&sample);
        assert!(text.contains("\"format\": \"itca.sample\""));
        assert!(text.contains("\"version\": 2"));
        assert!(text.contains("0102ff"));
        assert_eq!(from_json::<Sample>(&text).unwrap(), sample);
    }

    #[test]
    fn refuses_another_format_or_version() {
        let wrong_format = r#"{"format":"itca.other","version":2,"data":{"data":"00"}}"#;
        assert!(matches!(from_json::<Sample>(wrong_format), Err(FormatError::WrongFormat { .. })));
        let wrong_version = r#"{"format":"itca.sample","version":3,"data":{"data":"00"}}"#;
        assert!(matches!(from_json::<Sample>(wrong_version), Err(FormatError::UnsupportedVersion { found: 3, .. })));
        assert!(matches!(from_json::<Sample>("not json"), Err(FormatError::Malformed { .. })));
    }
}
