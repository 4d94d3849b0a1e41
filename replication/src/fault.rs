//! Misbehaviour observed by a protocol, always attributed to the peer whose message showed it.

use crate::PartyId;

/// What a peer did wrong. Every variant is evidence from that peer's own (authenticated)
/// message; honest peers never produce any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FaultKind {
    #[error("message does not decode")]
    Undecodable,
    #[error("message names an instance that cannot exist")]
    ImpossibleInstance,
    #[error("too many messages for instances far ahead")]
    FarFutureFlood,
    #[error("message only the instance's sender may send")]
    NotTheSender,
    #[error("two different messages where one was allowed")]
    Equivocation,
    #[error("invalid signature share")]
    InvalidSignatureShare,
    #[error("invalid threshold signature")]
    InvalidSignature,
    #[error("invalid coin share")]
    InvalidCoinShare,
    #[error("invalid decryption share")]
    InvalidDecryptionShare,
    #[error("invalid justification")]
    InvalidJustification,
    #[error("value fails the external validity predicate")]
    InvalidValue,
    #[error("invalid individual signature")]
    InvalidIndividualSignature,
    #[error("share signed by another party than its sender")]
    ShareOfAnotherParty,
    /// A round record (a delivered round for catch-up) whose proof or decryption shares do not
    /// verify, or whose shares do not match the round's requests.
    #[error("invalid round record")]
    InvalidRoundRecord,
}

/// One observed fault: who, and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fault {
    pub party: PartyId,
    pub kind: FaultKind,
}

impl Fault {
    pub fn new(party: PartyId, kind: FaultKind) -> Self {
        Fault { party, kind }
    }
}
