//! The interface every protocol state machine implements (in the style of hbbft's
//! `ConsensusProtocol`).

use crate::{PartyId, Step};
use rand::RngCore;
use serde::{Serialize, de::DeserializeOwned};

/// A sans-IO protocol instance at one party. Randomness is injected so a seeded run replays
/// exactly; time, sockets and tasks belong to the runtime.
pub trait Protocol {
    type Input;
    type Message: Clone + std::fmt::Debug + Serialize + DeserializeOwned;
    type Output: Clone + std::fmt::Debug;

    fn our_id(&self) -> PartyId;

    fn handle_input(&mut self, input: Self::Input, rng: &mut dyn RngCore) -> Step<Self::Message, Self::Output>;

    /// `from` is the authenticated sender (the link, never a field inside the message).
    fn handle_message(
        &mut self,
        from: PartyId,
        message: Self::Message,
        rng: &mut dyn RngCore,
    ) -> Step<Self::Message, Self::Output>;

    /// True once the instance has produced its final output and needs no more messages.
    fn terminated(&self) -> bool;
}
