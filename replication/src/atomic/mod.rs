//! Atomic broadcast (Cachin-Kursawe-Petzold-Shoup): rounds of validated agreement on `n-t`
//! signed batches, with request dissemination by reliable broadcast and a verifiable proof for
//! every delivered round.

pub mod batch;
pub mod broadcast;
pub mod dissemination;
pub mod round_proof;
pub mod secure;

pub use broadcast::{AbcConfig, AbcInput, AbcMessage, AtomicBroadcast, DeliveredRound};
pub use round_proof::{RoundProofError, verify_round_proof};
