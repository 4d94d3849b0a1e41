//! The wire encoding of protocol messages (CBOR). Decoding peer bytes never panics: bytes that do
//! not decode are a fault of the peer that sent them.

use crate::{Fault, FaultKind, PartyId};
use serde::{Serialize, de::DeserializeOwned};

/// Frames above this size are refused before decoding (the runtime enforces the same limit).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode message: {0}")]
    Cbor(String),
}

pub fn encode<M: Serialize>(message: &M) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    ciborium::into_writer(message, &mut out).map_err(|e| EncodeError::Cbor(e.to_string()))?;
    Ok(out)
}

/// Decodes a message received from `from`; garbage, trailing bytes or an oversized frame are
/// reported as `from`'s fault.
pub fn decode<M: DeserializeOwned>(from: PartyId, bytes: &[u8]) -> Result<M, Fault> {
    let fault = Fault::new(from, FaultKind::Undecodable);
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(fault);
    }
    let mut reader = bytes;
    let message = ciborium::from_reader(&mut reader).map_err(|_| fault)?;
    if !reader.is_empty() {
        return Err(fault);
    }
    Ok(message)
}

/// Serde helpers that encode byte strings as CBOR byte strings (one header and a copy) instead
/// of arrays of integers: smaller on the wire and much faster to decode. Decoding also accepts
/// an array of integers (e.g. from JSON).
pub mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    pub(super) struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a byte string")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Cap the pre-allocation: the length is peer-controlled.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

/// [`bytes`] for `Option<Vec<u8>>`.
pub mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "super::bytes")] Vec<u8>);

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        value.as_ref().map(|v| Wrapped(v.clone())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

/// [`bytes`] for `Vec<Vec<u8>>`.
pub mod vec_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Borrowed<'a>(#[serde(with = "super::bytes")] &'a [u8]);

    #[derive(Deserialize)]
    struct Owned(#[serde(with = "super::bytes")] Vec<u8>);

    pub fn serialize<S: Serializer>(value: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(value.iter().map(|v| Borrowed(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Ok(Vec::<Owned>::deserialize(d)?.into_iter().map(|o| o.0).collect())
    }
}
