//! Structured instance ids. Every signed statement includes its instance's id, so a signature or
//! share made for one instance can never count in another.

use serde::{Deserialize, Serialize};

/// One level of an instance path, e.g. `Round(3)`, `Protocol(Mvba)`, `Party(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdPart {
    Protocol(ProtocolKind),
    Round(u64),
    Party(usize),
    Index(u64),
    /// A free tag chosen by the application (e.g. a cluster or epoch number).
    Tag(u64),
}

/// Which protocol an instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProtocolKind {
    ReliableBroadcast,
    ConsistentBroadcast,
    BinaryAgreement,
    ValidatedAgreement,
    AtomicBroadcast,
}

/// A path naming one protocol instance, from the outermost protocol inwards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct InstanceId(pub Vec<IdPart>);

impl InstanceId {
    pub fn root(tag: u64) -> Self {
        InstanceId(vec![IdPart::Tag(tag)])
    }

    /// The id of a child instance: this path extended by `parts`.
    pub fn child(&self, parts: &[IdPart]) -> Self {
        let mut path = self.0.clone();
        path.extend_from_slice(parts);
        InstanceId(path)
    }

    /// Canonical, injective byte encoding (used inside signed messages).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.0.len() * 9);
        out.push(self.0.len() as u8);
        for part in &self.0 {
            let (tag, value) = match *part {
                IdPart::Protocol(kind) => (0u8, kind as u64),
                IdPart::Round(r) => (1, r),
                IdPart::Party(p) => (2, p as u64),
                IdPart::Index(i) => (3, i),
                IdPart::Tag(t) => (4, t),
            };
            out.push(tag);
            out.extend_from_slice(&value.to_be_bytes());
        }
        out
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match part {
                IdPart::Protocol(kind) => write!(f, "{kind:?}")?,
                IdPart::Round(r) => write!(f, "r{r}")?,
                IdPart::Party(p) => write!(f, "p{p}")?,
                IdPart::Index(i) => write!(f, "i{i}")?,
                IdPart::Tag(t) => write!(f, "t{t}")?,
            }
        }
        Ok(())
    }
}

/// Concatenates length-prefixed fields: the canonical encoding of a statement to be signed.
pub fn statement(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}
