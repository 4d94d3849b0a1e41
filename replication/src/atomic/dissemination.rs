//! Request dissemination: each replica reliably broadcasts the requests it accepts, so a request
//! accepted by one honest replica reaches every honest replica's queue.
//!
//! Memory is bounded per sender: only instances with sequence numbers in
//! `[lowest undelivered, lowest undelivered + WINDOW)` hold state; an honest sender keeps at most
//! `WINDOW / 2` of its own broadcasts undelivered (further requests wait in its local queue).
//! Messages beyond the window are ignored without blame (an honest sender may be that far
//! ahead of a slow receiver; the runtime's retransmission delivers them again later).

use crate::broadcast::reliable::{RbcMessage, ReliableBroadcast};
use crate::crypto::NetworkInfo;
use crate::id::{IdPart, ProtocolKind};
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

pub const WINDOW: u64 = 64;

/// A request delivered by dissemination, with who broadcast it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disseminated {
    pub sender: PartyId,
    pub request: Vec<u8>,
}

pub type DisseminationStep = Step<(PartyId, u64, RbcMessage), Disseminated>;

#[derive(Default)]
struct SenderState {
    /// Lowest sequence number not yet delivered.
    low: u64,
    /// Delivered sequence numbers at or above `low`.
    delivered_above: BTreeSet<u64>,
    instances: BTreeMap<u64, ReliableBroadcast>,
}

pub struct Dissemination {
    info: Arc<NetworkInfo>,
    id: InstanceId,
    senders: Vec<SenderState>,
    next_seq: u64,
    waiting: VecDeque<Vec<u8>>,
}

impl Dissemination {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId) -> Self {
        let senders = (0..info.n()).map(|_| SenderState::default()).collect();
        Dissemination { info, id, senders, next_seq: 0, waiting: VecDeque::new() }
    }

    fn instance_id(&self, sender: PartyId, seq: u64) -> InstanceId {
        self.id.child(&[IdPart::Protocol(ProtocolKind::ReliableBroadcast), IdPart::Party(sender), IdPart::Index(seq)])
    }

    /// Broadcasts a request accepted by this replica (or queues it while the window is full).
    pub fn submit(&mut self, request: Vec<u8>, rng: &mut dyn RngCore) -> DisseminationStep {
        self.waiting.push_back(request);
        self.start_waiting(rng)
    }

    fn start_waiting(&mut self, rng: &mut dyn RngCore) -> DisseminationStep {
        let mut step = Step::new();
        let me = self.info.id;
        while self.next_seq < self.senders[me].low + WINDOW / 2 {
            let Some(request) = self.waiting.pop_front() else {
                break;
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            let id = self.instance_id(me, seq);
            let rbc = self.senders[me]
                .instances
                .entry(seq)
                .or_insert_with(|| ReliableBroadcast::new(self.info.clone(), id, me));
            let child = rbc.handle_input(request, rng);
            let outputs = step.absorb(child, |m| (me, seq, m));
            self.deliver(me, seq, outputs, &mut step);
        }
        step
    }

    fn deliver(&mut self, sender: PartyId, seq: u64, outputs: Vec<Vec<u8>>, step: &mut DisseminationStep) {
        for request in outputs {
            let state = &mut self.senders[sender];
            state.instances.remove(&seq);
            state.delivered_above.insert(seq);
            while state.delivered_above.remove(&state.low) {
                state.low += 1;
            }
            step.output(Disseminated { sender, request });
        }
    }

    pub fn handle_message(
        &mut self,
        from: PartyId,
        sender: PartyId,
        seq: u64,
        message: RbcMessage,
        rng: &mut dyn RngCore,
    ) -> DisseminationStep {
        let mut step = Step::new();
        if sender >= self.info.n() {
            step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
            return step;
        }
        let state = &self.senders[sender];
        if seq < state.low || state.delivered_above.contains(&seq) || seq >= state.low + WINDOW {
            return step;
        }
        let id = self.instance_id(sender, seq);
        let info = self.info.clone();
        let rbc = self.senders[sender].instances.entry(seq).or_insert_with(|| ReliableBroadcast::new(info, id, sender));
        let child = rbc.handle_message(from, message, rng);
        let outputs = step.absorb(child, |m| (sender, seq, m));
        self.deliver(sender, seq, outputs, &mut step);
        if sender == self.info.id {
            step.extend(self.start_waiting(rng));
        }
        step
    }
}
