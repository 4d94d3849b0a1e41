//! One simulated run: nodes, the in-flight messages, the adversarial scheduler and the faulty
//! nodes' behaviour.

use super::adversary::{Behaviour, SchedulerKind, honest_parties};
use super::byzantine::{Adversarial, flip_bit};
use super::coin_adversary::{Class, CoinAdversary, Tag};
use super::{Campaign, RunOptions, Scenario, SimCluster, deal};
use crate::crypto::NetworkInfo;
use crate::step::{Step, Target};
use crate::{Fault, PartyId, Protocol, wire};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Runs that have not finished after this many deliveries count as not terminating.
const MAX_DELIVERIES: u64 = 3_000_000;
/// How many received messages a replaying Byzantine node remembers.
const REPLAY_LOG: usize = 256;

enum Payload<M> {
    Typed(M),
    /// Raw bytes on the wire (garbage, or a tampered encoding): goes through the decode path.
    Raw(Vec<u8>),
}

struct InFlight<M> {
    from: PartyId,
    to: PartyId,
    payload: Payload<M>,
    /// What the adaptive coin adversary noted when it was sent.
    tag: Tag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Honest,
    /// Honest until `at` deliveries have happened overall.
    Crashing {
        at: u64,
    },
    Byzantine(Behaviour),
}

/// The state of a finished run, for the property checks.
pub struct RunReport<P: Protocol> {
    pub seed: u64,
    pub n: usize,
    pub t: usize,
    pub nodes: Vec<P>,
    /// Every node's keys (to build more instances of the cluster after the run).
    pub keys: Vec<Arc<NetworkInfo>>,
    pub inputs: Vec<Vec<P::Input>>,
    pub outputs: Vec<Vec<P::Output>>,
    /// Faults reported by non-Byzantine nodes, with the reporter.
    pub faults: Vec<(PartyId, Fault)>,
    pub byzantine: Vec<PartyId>,
    pub crashed: Vec<PartyId>,
    pub messages: u64,
    pub bytes: u64,
    pub deliveries: u64,
    /// Rounds nodes output from records fetched by catch-up ([`Scenario::catch_up`]).
    pub caught_up: u64,
    /// ABBA coins the adaptive coin adversary learned from the shares sent (its own included),
    /// and Byzantine votes it changed to work against them.
    pub coins_learned: u64,
    pub votes_steered: u64,
    /// Every honest node finished (per [`Scenario::done`]).
    pub finished: bool,
    /// Why the run stopped early, if it did.
    pub stuck: Option<String>,
    /// A failure of the simulation itself (a node that could not be restored), if any.
    pub failure: Option<String>,
    /// With [`RunOptions::trace`]: one digest per step a node returned, in order, over the node,
    /// its messages (encoded) with their targets, its outputs and its faults.
    pub trace: Vec<[u8; 32]>,
}

impl<P: Protocol> RunReport<P> {
    /// Nodes that were honest throughout (neither Byzantine nor crashed).
    pub fn honest_nodes(&self) -> Vec<PartyId> {
        let mut faulty = self.byzantine.clone();
        faulty.extend(&self.crashed);
        honest_parties(self.n, &faulty)
    }
}

pub struct Simulation<P: Protocol> {
    seed: u64,
    n: usize,
    t: usize,
    rng: ChaCha8Rng,
    cluster: Box<dyn SimCluster>,
    nodes: Vec<P>,
    keys: Vec<Arc<NetworkInfo>>,
    roles: Vec<Role>,
    inputs: Vec<Vec<P::Input>>,
    outputs: Vec<Vec<P::Output>>,
    faults: Vec<(PartyId, Fault)>,
    queue: Vec<InFlight<P::Message>>,
    scheduler: SchedulerKind,
    victim: PartyId,
    group: Vec<bool>,
    heal_at: u64,
    replay_log: Vec<Vec<P::Message>>,
    coin_adversary: Option<CoinAdversary>,
    /// Scratch space of the adaptive scheduler: the class of each message in flight.
    classes: Vec<Class>,
    deliveries: u64,
    messages: u64,
    bytes: u64,
    caught_up: u64,
    count_bytes: bool,
    options: RunOptions,
    trace: Vec<[u8; 32]>,
}

impl<P> Simulation<P>
where
    P: Protocol<Message: Adversarial, Input: Clone>,
{
    pub fn new<S: Scenario<P = P>>(scenario: &S, campaign: &Campaign, seed: u64) -> Self {
        let (n, t) = (campaign.n, campaign.t);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cluster = deal(campaign.crypto, n, t, &mut rng);
        let adversary = campaign.adversary;
        let mut parties: Vec<PartyId> = (0..n).collect();
        parties.shuffle(&mut rng);
        let faulty: Vec<PartyId> = parties[..adversary.faulty_count(t)].to_vec();
        let roles: Vec<Role> = (0..n)
            .map(|p| {
                if !faulty.contains(&p) {
                    return Role::Honest;
                }
                match adversary.behaviour {
                    Behaviour::CrashFromStart => Role::Crashing { at: 0 },
                    Behaviour::CrashAtRandomStep => Role::Crashing { at: rng.gen_range(0..(20 * n * n) as u64) },
                    b => Role::Byzantine(b),
                }
            })
            .collect();
        let honest = honest_parties(n, &faulty);
        let victim = honest[rng.gen_range(0..honest.len())];
        let group: Vec<bool> = (0..n).map(|_| rng.r#gen()).collect();
        let heal_at = rng.gen_range(0..(50 * n * n) as u64);
        let keys: Vec<Arc<NetworkInfo>> = (0..n).map(|id| cluster.network_info(id)).collect();
        let nodes: Vec<P> = keys.iter().map(|k| scenario.create(k.clone(), cluster.as_ref())).collect();
        let coin_adversary = (adversary.scheduler == SchedulerKind::CoinAdaptive
            || adversary.behaviour == Behaviour::AgainstCoin)
            .then(|| {
                let byzantine = faulty.iter().map(|&p| keys[p].clone()).collect();
                CoinAdversary::new(n, keys[0].public.clone(), byzantine, &honest[..t.min(honest.len())])
            });
        let inputs: Vec<Vec<P::Input>> = (0..n)
            .map(|id| {
                let is_honest = !matches!(roles[id], Role::Byzantine(_));
                scenario.inputs(id, is_honest, cluster.as_ref(), &mut rng)
            })
            .collect();
        Simulation {
            seed,
            n,
            t,
            rng,
            cluster,
            nodes,
            keys,
            roles,
            inputs,
            outputs: vec![Vec::new(); n],
            faults: Vec::new(),
            queue: Vec::new(),
            scheduler: adversary.scheduler,
            victim,
            group,
            heal_at,
            replay_log: vec![Vec::new(); n],
            coin_adversary,
            classes: Vec::new(),
            deliveries: 0,
            messages: 0,
            bytes: 0,
            caught_up: 0,
            count_bytes: campaign.count_bytes,
            options: RunOptions::default(),
            trace: Vec::new(),
        }
    }

    /// Tracing and node restarts for this run (neither draws on the run's randomness, so the
    /// run is otherwise the same).
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self.options.restarts.sort_unstable();
        self
    }

    pub fn cluster(&self) -> &dyn SimCluster {
        self.cluster.as_ref()
    }

    fn alive(&self, id: PartyId) -> bool {
        match self.roles[id] {
            Role::Crashing { at } => self.deliveries < at,
            _ => true,
        }
    }

    fn finished<S: Scenario<P = P>>(&self, scenario: &S, honest: &[PartyId]) -> bool {
        honest.iter().all(|&id| scenario.done(&self.nodes[id], &self.outputs[id], &self.inputs, honest))
    }

    /// Runs until every honest node is done, nothing is left to deliver, or the delivery budget
    /// is spent.
    pub fn run<S: Scenario<P = P>>(mut self, scenario: &S) -> RunReport<P> {
        for id in 0..self.n {
            if !self.alive(id) {
                continue;
            }
            for input in self.inputs[id].clone() {
                let step = self.nodes[id].handle_input(input, &mut self.rng);
                self.dispatch(id, step);
            }
        }
        let mut stuck = None;
        let mut failure = None;
        let mut restarts = std::mem::take(&mut self.options.restarts).into_iter().peekable();
        let honest: Vec<PartyId> = (0..self.n).filter(|&id| self.roles[id] == Role::Honest).collect();
        loop {
            while let Some(&(at, node)) = restarts.peek()
                && at <= self.deliveries
            {
                restarts.next();
                match scenario.restore(&self.nodes[node], self.keys[node].clone()) {
                    Ok(restored) => self.nodes[node] = restored,
                    Err(e) => failure = Some(format!("restoring node {node} after {at} deliveries: {e}")),
                }
            }
            if failure.is_some() {
                break;
            }
            // Checking every step is costly for long-running protocols; a few extra deliveries
            // after everyone is done change nothing.
            if (self.deliveries.is_multiple_of(8) || self.queue.is_empty()) && self.finished(scenario, &honest) {
                break;
            }
            if self.queue.is_empty() {
                if self.catch_up(scenario) {
                    continue;
                }
                stuck = Some(self.stuck(scenario, &honest, "no message left to deliver"));
                break;
            }
            if self.deliveries >= MAX_DELIVERIES {
                stuck = Some(self.stuck(scenario, &honest, "delivery budget exhausted"));
                break;
            }
            let index = self.pick();
            let InFlight { from, to, payload, .. } = self.queue.swap_remove(index);
            self.deliveries += 1;
            if !self.alive(to) {
                continue;
            }
            let message = match payload {
                Payload::Typed(m) => m,
                Payload::Raw(bytes) => match wire::decode(from, &bytes) {
                    Ok(m) => m,
                    Err(fault) => {
                        self.record_faults(to, &[fault]);
                        continue;
                    }
                },
            };
            if matches!(self.roles[to], Role::Byzantine(Behaviour::Replay)) {
                let log = &mut self.replay_log[to];
                if log.len() < REPLAY_LOG {
                    log.push(message.clone());
                }
            }
            let step = self.nodes[to].handle_message(from, message, &mut self.rng);
            self.dispatch(to, step);
        }
        let crashed = (0..self.n).filter(|&id| matches!(self.roles[id], Role::Crashing { .. })).collect();
        let byzantine = (0..self.n).filter(|&id| matches!(self.roles[id], Role::Byzantine(_))).collect();
        RunReport {
            seed: self.seed,
            n: self.n,
            t: self.t,
            nodes: self.nodes,
            keys: self.keys,
            inputs: self.inputs,
            outputs: self.outputs,
            faults: self.faults,
            byzantine,
            crashed,
            messages: self.messages,
            bytes: self.bytes,
            deliveries: self.deliveries,
            caught_up: self.caught_up,
            coins_learned: self.coin_adversary.as_ref().map_or(0, |a| a.learned),
            votes_steered: self.coin_adversary.as_ref().map_or(0, |a| a.steered),
            finished: stuck.is_none() && failure.is_none(),
            stuck,
            failure,
            trace: self.trace,
        }
    }

    fn stuck<S: Scenario<P = P>>(&self, scenario: &S, honest: &[PartyId], why: &str) -> String {
        let waiting: Vec<PartyId> = honest
            .iter()
            .copied()
            .filter(|&id| !scenario.done(&self.nodes[id], &self.outputs[id], &self.inputs, honest))
            .collect();
        format!("termination: {why} after {} deliveries; unfinished honest nodes {waiting:?}", self.deliveries)
    }

    /// Nothing is left to deliver: as the runtime does for a replica that is behind a peer and
    /// makes no progress, every live node with fewer outputs than the live peer furthest ahead
    /// (the lowest-numbered among equals) fetches the rounds it lacks from that peer and applies
    /// them ([`Scenario::catch_up`]). A node far behind needs this: its peers' messages for rounds
    /// beyond its window are dropped or capped (decryption shares, for one), and nobody sends
    /// them again. True if that output anything or put messages in flight.
    fn catch_up<S: Scenario<P = P>>(&mut self, scenario: &S) -> bool {
        let live: Vec<PartyId> = (0..self.n).filter(|&id| self.alive(id)).collect();
        let mut moved = false;
        for &id in &live {
            let ahead = live
                .iter()
                .copied()
                .filter(|&p| p != id)
                .max_by_key(|&p| (self.outputs[p].len(), std::cmp::Reverse(p)));
            let Some(peer) = ahead.filter(|&p| self.outputs[p].len() > self.outputs[id].len()) else {
                continue;
            };
            let Some(step) = scenario.catch_up(&mut self.nodes[id], peer, &self.outputs[peer], &mut self.rng) else {
                continue;
            };
            self.caught_up += step.output.len() as u64;
            moved |= !step.output.is_empty();
            self.dispatch(id, step);
        }
        moved || !self.queue.is_empty()
    }

    fn record_faults(&mut self, reporter: PartyId, faults: &[Fault]) {
        if !matches!(self.roles[reporter], Role::Byzantine(_)) {
            self.faults.extend(faults.iter().map(|f| (reporter, *f)));
        }
    }

    /// The index of the next message to deliver, as the adversary chooses.
    fn pick(&mut self) -> usize {
        let len = self.queue.len();
        match self.scheduler {
            SchedulerKind::Random => self.rng.gen_range(0..len),
            SchedulerKind::StarveOne => {
                let victim = self.victim;
                self.preferred(|m| m.from != victim && m.to != victim)
            }
            SchedulerKind::CoinLast => self.preferred(|m| match &m.payload {
                Payload::Typed(message) => !message.is_coin_share(),
                Payload::Raw(_) => true,
            }),
            SchedulerKind::CoinAdaptive => self.adaptive_pick(),
            SchedulerKind::Partition => {
                if self.deliveries >= self.heal_at {
                    self.rng.gen_range(0..len)
                } else {
                    let group = self.group.clone();
                    self.preferred(|m| group[m.from] == group[m.to])
                }
            }
        }
    }

    /// A random message of the best class the adaptive coin adversary gives (messages to
    /// Byzantine parties are all `Normal`: it needs nothing from them).
    fn adaptive_pick(&mut self) -> usize {
        let Some(adversary) = &self.coin_adversary else {
            return self.rng.gen_range(0..self.queue.len());
        };
        let roles = &self.roles;
        self.classes.clear();
        self.classes.extend(self.queue.iter().map(|m| match roles[m.to] {
            Role::Byzantine(_) => Class::Normal,
            _ => adversary.class(m.tag, m.to),
        }));
        let best = self.classes.iter().copied().min().unwrap_or(Class::Normal);
        let count = self.classes.iter().filter(|&&c| c == best).count();
        let k = self.rng.gen_range(0..count.max(1));
        self.classes.iter().enumerate().filter(|&(_, &c)| c == best).nth(k).map_or(0, |(i, _)| i)
    }

    /// A random message satisfying `allowed`, or any message if none does (eventual delivery).
    fn preferred(&mut self, allowed: impl Fn(&InFlight<P::Message>) -> bool) -> usize {
        let len = self.queue.len();
        for _ in 0..32 {
            let i = self.rng.gen_range(0..len);
            if allowed(&self.queue[i]) {
                return i;
            }
        }
        let candidates: Vec<usize> = (0..len).filter(|&i| allowed(&self.queue[i])).collect();
        if candidates.is_empty() {
            self.rng.gen_range(0..len)
        } else {
            candidates[self.rng.gen_range(0..candidates.len())]
        }
    }

    fn push(&mut self, from: PartyId, to: PartyId, payload: Payload<P::Message>) {
        self.messages += 1;
        if self.count_bytes {
            self.bytes += match &payload {
                Payload::Typed(m) => wire::encode(m).map(|b| b.len() as u64).unwrap_or(0),
                Payload::Raw(b) => b.len() as u64,
            };
        }
        let tag = match (&mut self.coin_adversary, &payload) {
            (Some(adversary), Payload::Typed(m)) => adversary.observe(m),
            _ => Tag::Other,
        };
        self.queue.push(InFlight { from, to, payload, tag });
    }

    fn recipients(&self, target: Target) -> Vec<PartyId> {
        match target {
            Target::All => (0..self.n).collect(),
            Target::Node(id) if id < self.n => vec![id],
            Target::Node(_) => Vec::new(),
        }
    }

    /// Sends a node's step according to its role.
    fn dispatch(&mut self, id: PartyId, step: Step<P::Message, P::Output>) {
        if self.options.trace {
            self.trace.push(step_digest(id, &step));
        }
        self.outputs[id].extend(step.output);
        self.record_faults(id, &step.faults);
        if !self.alive(id) {
            return;
        }
        let behaviour = match self.roles[id] {
            Role::Byzantine(b) => b,
            _ => Behaviour::None,
        };
        for tm in step.messages {
            let recipients = self.recipients(tm.target);
            match behaviour {
                Behaviour::Silent => {}
                Behaviour::Equivocate => {
                    for to in recipients {
                        let m = if self.rng.r#gen() {
                            tm.message.equivocate(&self.keys[id], &mut self.rng).unwrap_or_else(|| tm.message.clone())
                        } else {
                            tm.message.clone()
                        };
                        self.push(id, to, Payload::Typed(m));
                    }
                }
                Behaviour::InvalidShares => {
                    let corrupted =
                        if self.rng.gen_bool(0.75) { tm.message.corrupt(&self.keys[id], &mut self.rng) } else { None };
                    let m = corrupted.unwrap_or(tm.message);
                    for to in recipients {
                        self.push(id, to, Payload::Typed(m.clone()));
                    }
                }
                Behaviour::Replay => {
                    for to in recipients {
                        self.push(id, to, Payload::Typed(tm.message.clone()));
                    }
                    let log = &self.replay_log[id];
                    if !log.is_empty() && self.rng.r#gen() {
                        let old = log[self.rng.gen_range(0..log.len())].clone();
                        let to = self.rng.gen_range(0..self.n);
                        self.push(id, to, Payload::Typed(old));
                    }
                }
                Behaviour::AgainstCoin => {
                    for to in recipients {
                        let steered = match &mut self.coin_adversary {
                            Some(adversary) => adversary.steer(&self.keys[id], &tm.message, to),
                            None => Some(tm.message.clone()),
                        };
                        if let Some(m) = steered {
                            self.push(id, to, Payload::Typed(m));
                        }
                    }
                }
                Behaviour::Garbage => {
                    for to in recipients {
                        if self.rng.gen_bool(0.3) {
                            let bytes = self.garbage(&tm.message);
                            self.push(id, to, Payload::Raw(bytes));
                        }
                        self.push(id, to, Payload::Typed(tm.message.clone()));
                    }
                }
                _ => {
                    for to in recipients {
                        self.push(id, to, Payload::Typed(tm.message.clone()));
                    }
                }
            }
        }
    }

    fn garbage(&mut self, message: &P::Message) -> Vec<u8> {
        match self.rng.gen_range(0..3) {
            0 => {
                let len = self.rng.gen_range(0..64);
                (0..len).map(|_| self.rng.r#gen()).collect()
            }
            1 => {
                let mut bytes = wire::encode(message).unwrap_or_default();
                flip_bit(&mut bytes, &mut self.rng);
                bytes
            }
            _ => {
                let mut bytes = wire::encode(message).unwrap_or_default();
                let keep = self.rng.gen_range(0..=bytes.len());
                bytes.truncate(keep);
                bytes
            }
        }
    }
}

/// The digest of one step of node `id`: its messages byte for byte (with targets), its outputs
/// and faults (through `Debug`, which shows every field).
fn step_digest<M: serde::Serialize, O: std::fmt::Debug>(id: PartyId, step: &Step<M, O>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((id as u64).to_be_bytes());
    for tm in &step.messages {
        let target = match tm.target {
            Target::All => u64::MAX,
            Target::Node(to) => to as u64,
        };
        hasher.update(target.to_be_bytes());
        let bytes = wire::encode(&tm.message).unwrap_or_default();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    for output in &step.output {
        let text = format!("{output:?}");
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    let faults = format!("{:?}", step.faults);
    hasher.update(faults.as_bytes());
    hasher.finalize().into()
}
