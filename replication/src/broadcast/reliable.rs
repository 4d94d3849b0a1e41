//! Reliable broadcast (Bracha): send / echo / ready. If any honest party delivers `v`, every
//! honest party delivers `v`, and an honest sender's value is delivered by all. Echoes carry the
//! value (so a party that missed the sender's message still learns it); readys carry its digest.

use crate::crypto::{NetworkInfo, digest};
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RbcMessage {
    Send(#[serde(with = "crate::wire::bytes")] Vec<u8>),
    Echo(#[serde(with = "crate::wire::bytes")] Vec<u8>),
    Ready([u8; 32]),
}

pub type RbcStep = Step<RbcMessage, Vec<u8>>;

/// Serializable for snapshots: the keys are skipped and supplied again by `rebind`.
#[derive(Serialize, Deserialize)]
pub struct ReliableBroadcast {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    id: InstanceId,
    sender: PartyId,
    sent_echo: bool,
    sent_ready: bool,
    delivered: bool,
    echo_from: BTreeMap<PartyId, [u8; 32]>,
    ready_from: BTreeMap<PartyId, [u8; 32]>,
    /// Values seen in the sender's message or in echoes, by digest.
    #[serde(with = "crate::wire::digest_map_bytes")]
    values: BTreeMap<[u8; 32], Vec<u8>>,
}

impl ReliableBroadcast {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, sender: PartyId) -> Self {
        ReliableBroadcast {
            info,
            id,
            sender,
            sent_echo: false,
            sent_ready: false,
            delivered: false,
            echo_from: BTreeMap::new(),
            ready_from: BTreeMap::new(),
            values: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Supplies the keys to an instance decoded from a snapshot (what [`Self::new`] was given).
    pub(crate) fn rebind(&mut self, info: &Arc<NetworkInfo>) {
        self.info = info.clone();
    }

    fn count(votes: &BTreeMap<PartyId, [u8; 32]>, d: &[u8; 32]) -> usize {
        votes.values().filter(|v| *v == d).count()
    }

    /// Sends ready and delivers when the thresholds are met.
    fn progress(&mut self, d: [u8; 32], step: &mut RbcStep) {
        let t = self.info.t();
        if !self.sent_ready
            && (Self::count(&self.echo_from, &d) >= self.info.echo_quorum() || Self::count(&self.ready_from, &d) > t)
        {
            self.sent_ready = true;
            step.broadcast(RbcMessage::Ready(d));
        }
        if !self.delivered
            && Self::count(&self.ready_from, &d) > 2 * t
            && let Some(value) = self.values.get(&d)
        {
            self.delivered = true;
            step.output(value.clone());
            // Only the delivered value is needed from now on.
            self.values.clear();
        }
    }
}

impl Protocol for ReliableBroadcast {
    type Input = Vec<u8>;
    type Message = RbcMessage;
    type Output = Vec<u8>;

    fn our_id(&self) -> PartyId {
        self.info.id
    }

    fn handle_input(&mut self, value: Vec<u8>, _rng: &mut dyn RngCore) -> RbcStep {
        let mut step = Step::new();
        if self.info.id == self.sender {
            step.broadcast(RbcMessage::Send(value));
        }
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: RbcMessage, _rng: &mut dyn RngCore) -> RbcStep {
        let mut step = Step::new();
        if self.delivered {
            return step;
        }
        match msg {
            RbcMessage::Send(value) => {
                if from != self.sender {
                    step.fault(Fault::new(from, FaultKind::NotTheSender));
                    return step;
                }
                if !self.sent_echo {
                    self.sent_echo = true;
                    step.broadcast(RbcMessage::Echo(value));
                }
            }
            RbcMessage::Echo(value) => {
                let d = digest(&value);
                match self.echo_from.get(&from) {
                    Some(prev) if *prev == d => return step,
                    Some(_) => {
                        step.fault(Fault::new(from, FaultKind::Equivocation));
                        return step;
                    }
                    None => {}
                }
                self.echo_from.insert(from, d);
                self.values.entry(d).or_insert(value);
                self.progress(d, &mut step);
            }
            RbcMessage::Ready(d) => {
                match self.ready_from.get(&from) {
                    Some(prev) if *prev == d => return step,
                    Some(_) => {
                        step.fault(Fault::new(from, FaultKind::Equivocation));
                        return step;
                    }
                    None => {}
                }
                self.ready_from.insert(from, d);
                self.progress(d, &mut step);
            }
        }
        step
    }

    fn terminated(&self) -> bool {
        self.delivered
    }
}
