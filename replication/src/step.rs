//! What a protocol returns from each input or message: messages to send, outputs, and faults it
//! observed. Parents lift their children's steps into their own.

use crate::{Fault, PartyId};

/// Who a message goes to. `All` includes the sender itself: a protocol counts its own votes by
/// receiving them like anyone else's, which keeps every state machine uniform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    All,
    Node(PartyId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetedMessage<M> {
    pub target: Target,
    pub message: M,
}

/// The result of handling one input or message.
#[must_use = "a step carries messages that must be sent and outputs that must be handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<M, O> {
    pub messages: Vec<TargetedMessage<M>>,
    pub output: Vec<O>,
    pub faults: Vec<Fault>,
}

impl<M, O> Default for Step<M, O> {
    fn default() -> Self {
        Step { messages: Vec::new(), output: Vec::new(), faults: Vec::new() }
    }
}

impl<M, O> Step<M, O> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn broadcast(&mut self, message: M) {
        self.messages.push(TargetedMessage { target: Target::All, message });
    }

    pub fn send(&mut self, to: PartyId, message: M) {
        self.messages.push(TargetedMessage { target: Target::Node(to), message });
    }

    pub fn fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    pub fn output(&mut self, output: O) {
        self.output.push(output);
    }

    /// Takes a child's messages (wrapped by `wrap`) and faults into this step and returns the
    /// child's outputs, which the parent interprets.
    pub fn absorb<M2, O2>(&mut self, child: Step<M2, O2>, wrap: impl Fn(M2) -> M) -> Vec<O2> {
        self.messages.extend(
            child.messages.into_iter().map(|tm| TargetedMessage { target: tm.target, message: wrap(tm.message) }),
        );
        self.faults.extend(child.faults);
        child.output
    }

    /// Appends another step of the same type.
    pub fn extend(&mut self, other: Step<M, O>) {
        self.messages.extend(other.messages);
        self.output.extend(other.output);
        self.faults.extend(other.faults);
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.output.is_empty() && self.faults.is_empty()
    }
}
