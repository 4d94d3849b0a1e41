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

/// Why a protocol snapshot could not be restored. A snapshot is written by the replica itself,
/// so these mean corruption or a configuration change, never a peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    #[error(
        "snapshot format version {found}, this build reads version {expected}: the replica's state was \
         written by another build; run that build on it, or start from a new data folder"
    )]
    Version { expected: u32, found: u32 },
    #[error("snapshot is of party {found}, this replica is party {expected}")]
    WrongParty { expected: PartyId, found: PartyId },
    #[error("snapshot is of a cluster with n={found_n}, t={found_t}; this one has n={n}, t={t}")]
    WrongCluster { n: usize, t: usize, found_n: usize, found_t: usize },
    #[error("snapshot is of instance {found}, not {expected}")]
    WrongInstance { expected: crate::InstanceId, found: crate::InstanceId },
    /// Another configuration would make the restored replica send other messages than the
    /// original did for the same inputs.
    #[error("snapshot was taken with configuration {found:?}, not {expected:?}")]
    WrongConfig { expected: crate::atomic::AbcConfig, found: crate::atomic::AbcConfig },
    #[error("snapshot state is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// Decodes a snapshot (local bytes, so of any size; an error is corruption, named in the
/// result, not a peer's fault).
pub fn decode_snapshot<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    let mut reader = bytes;
    let value = ciborium::from_reader(&mut reader).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    if !reader.is_empty() {
        return Err(SnapshotError::Decode(format!("{} trailing bytes", reader.len())));
    }
    Ok(value)
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

/// A byte string as a serde value: [`bytes`] for places where `#[serde(with)]` cannot reach
/// (inside maps and sequences of the snapshot helpers below).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ByteBuf(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bytes::deserialize(d).map(ByteBuf)
    }
}

struct ByteRef<'a>(&'a [u8]);

impl serde::Serialize for ByteRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// [`bytes`] for any sequence of byte strings (`Vec`, `VecDeque`, ...).
pub mod seq_bytes {
    use super::{ByteBuf, ByteRef};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<'a, S, T>(value: &'a T, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        &'a T: IntoIterator<Item = &'a Vec<u8>>,
    {
        s.collect_seq(value.into_iter().map(|v| ByteRef(v)))
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromIterator<Vec<u8>>,
    {
        Ok(Vec::<ByteBuf>::deserialize(d)?.into_iter().map(|b| b.0).collect())
    }
}

/// Digests (`[u8; 32]`) in any collection (`BTreeSet`, `VecDeque`, ...), as one byte string of
/// their concatenation: a set of delivered request digests is the bulk of a snapshot, and serde
/// would otherwise write each digest as an array of 32 integers.
pub mod digests {
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub fn serialize<'a, S, T>(value: &'a T, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        &'a T: IntoIterator<Item = &'a [u8; 32]>,
    {
        let joined: Vec<u8> = value.into_iter().flat_map(|d| d.iter().copied()).collect();
        s.serialize_bytes(&joined)
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromIterator<[u8; 32]>,
    {
        let joined = super::bytes::deserialize(d)?;
        if !joined.len().is_multiple_of(32) {
            return Err(D::Error::custom("digest list length is not a multiple of 32"));
        }
        Ok(joined
            .chunks_exact(32)
            .map(|chunk| {
                let mut digest = [0u8; 32];
                digest.copy_from_slice(chunk);
                digest
            })
            .collect())
    }
}

/// A `BTreeMap<[u8; 32], Vec<u8>>` (requests by digest) as a map of byte strings.
pub mod digest_map_bytes {
    use super::{ByteBuf, ByteRef};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(value: &BTreeMap<[u8; 32], Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(value.iter().map(|(k, v)| (ByteRef(k), ByteRef(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<[u8; 32], Vec<u8>>, D::Error> {
        BTreeMap::<ByteBuf, ByteBuf>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                let key =
                    <[u8; 32]>::try_from(k.0.as_slice()).map_err(|_| D::Error::custom("digest is not 32 bytes"))?;
                Ok((key, v.0))
            })
            .collect()
    }
}

/// One digest (`[u8; 32]`) as a byte string (serde would write an array of 32 integers).
pub mod digest {
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let bytes = super::bytes::deserialize(d)?;
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| D::Error::custom("digest is not 32 bytes"))
    }
}

/// [`digest`] for `Option<[u8; 32]>`.
pub mod opt_digest {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "super::digest")] [u8; 32]);

    pub fn serialize<S: Serializer>(value: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        value.map(Wrapped).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
