//! The outcome of optimistic combining, shared by every threshold scheme here: combine the first
//! shares that suffice, check the one result, and only when that fails check shares one by one,
//! naming the parties whose shares were bad.

use crate::PartyId;

/// A combined value and the parties whose shares were found invalid on the way (empty on the
/// optimistic path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined<T> {
    pub value: T,
    pub faulty: Vec<PartyId>,
}

/// Why shares could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CombineError {
    #[error("{needed} shares are needed, {got} distinct ones were given")]
    NotEnoughShares { needed: usize, got: usize },
    /// After excluding bad shares too few remain. `unproven` lists parties whose shares carry no
    /// proof and so could be neither trusted nor blamed: ask them for proofs.
    #[error("{needed} valid shares are needed, {valid} remain (faulty: {faulty:?}, unproven: {unproven:?})")]
    NotEnoughValidShares { needed: usize, valid: usize, faulty: Vec<PartyId>, unproven: Vec<PartyId> },
}
