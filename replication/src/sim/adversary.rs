//! What the adversary controls: the delivery order and up to `t` faulty nodes.

use crate::PartyId;

/// How the scheduler picks the next message. Every honest message is eventually delivered: a
/// message held back is delivered once nothing else is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerKind {
    /// Uniformly random reordering.
    Random,
    /// Messages to and from one honest node wait until nothing else is deliverable.
    StarveOne,
    /// Two groups; messages between them wait until a random number of deliveries (up to
    /// `50 n^2`) has happened, or nothing else is deliverable.
    Partition,
    /// The coin-timing attack's scheduler: coin shares are held back until nothing else is
    /// deliverable, so votes race ahead of the coin and the faulty node's equivocations land
    /// before any coin is revealed.
    CoinLast,
    /// The adaptive coin attack's scheduler ([`super::coin_adversary`]): once it knows an ABBA
    /// round's coin (`t+1` shares exist, its own included), votes against the coin reach honest
    /// parties first, votes for it, abstentions and coin shares last.
    CoinAdaptive,
}

/// What the faulty nodes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// No faulty node.
    None,
    /// Crashed before sending anything.
    CrashFromStart,
    /// Honest until a random delivery, then silent.
    CrashAtRandomStep,
    /// Byzantine, sending nothing (but counted as Byzantine: may be blamed).
    Silent,
    /// Byzantine: different recipients get conflicting versions.
    Equivocate,
    /// Byzantine: shares, signatures and proofs corrupted.
    InvalidShares,
    /// Byzantine: honest messages plus replays of old messages.
    Replay,
    /// Byzantine: honest messages plus undecodable or bit-flipped bytes.
    Garbage,
    /// Byzantine: votes against each ABBA coin it knows, with valid justifications taken from
    /// the network, and no coin shares ([`super::coin_adversary`]); honest otherwise.
    AgainstCoin,
}

/// A named adversary: a scheduler and the behaviour of `t` faulty nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adversary {
    pub scheduler: SchedulerKind,
    pub behaviour: Behaviour,
}

impl Adversary {
    pub const fn new(scheduler: SchedulerKind, behaviour: Behaviour) -> Self {
        Adversary { scheduler, behaviour }
    }

    /// Every adversary the test suite runs, by name.
    pub fn all() -> Vec<(&'static str, Adversary)> {
        use Behaviour::*;
        use SchedulerKind::*;
        vec![
            ("random", Adversary::new(Random, None)),
            ("starve", Adversary::new(StarveOne, None)),
            ("partition", Adversary::new(Partition, None)),
            ("crash-start", Adversary::new(Random, CrashFromStart)),
            ("crash-random", Adversary::new(Random, CrashAtRandomStep)),
            ("silent", Adversary::new(StarveOne, Silent)),
            ("equivocate", Adversary::new(Random, Equivocate)),
            ("invalid-shares", Adversary::new(Random, InvalidShares)),
            ("replay", Adversary::new(Random, Replay)),
            ("garbage", Adversary::new(Partition, Garbage)),
            ("coin-timing", Adversary::new(CoinLast, Equivocate)),
            ("coin-adaptive", Adversary::new(CoinAdaptive, AgainstCoin)),
        ]
    }

    pub fn by_name(name: &str) -> Option<Adversary> {
        Self::all().into_iter().find(|(n, _)| *n == name).map(|(_, a)| a)
    }

    pub fn is_byzantine(&self) -> bool {
        !matches!(self.behaviour, Behaviour::None | Behaviour::CrashFromStart | Behaviour::CrashAtRandomStep)
    }

    pub fn faulty_count(&self, t: usize) -> usize {
        if self.behaviour == Behaviour::None { 0 } else { t }
    }
}

/// Parties `0..n` other than `faulty`.
pub fn honest_parties(n: usize, faulty: &[PartyId]) -> Vec<PartyId> {
    (0..n).filter(|p| !faulty.contains(p)).collect()
}
