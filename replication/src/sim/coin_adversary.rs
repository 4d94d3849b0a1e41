//! The adaptive coin adversary. It is the network, so it sees every coin share sent, and it
//! holds the Byzantine parties' keys: with their `t` shares, the first honest coin share of an
//! ABBA round tells it that round's coin `c`. From then on it tries to keep the honest parties
//! split, which is what stops an agreement from deciding: it pushes `n-2t` honest parties (with
//! the `t` Byzantine ones, enough for `n-t` votes) toward `!c` and pulls the other `t` toward `c`.
//! Votes for a party's side reach it first, the others last; the pulled parties get the coin
//! shares first, the pushed ones last; while a round's coin is unknown, abstentions go first so
//! that no party sees `n-t` equal main-votes. The Byzantine parties vote for each recipient's
//! side whenever the network has shown them a valid justification for it (any justification of
//! a round serves every party), and never release coin shares.
//!
//! Cachin-Kursawe-Shoup ABBA releases the coin only after `n-t` main-votes of the round, when
//! the only value a hard pre-vote can carry into the next round is fixed: the adversary learns
//! the coin too late to choose that value, so each round still ends the split with probability
//! at least 1/2. Against a protocol that revealed the coin earlier it would carry `!c` every
//! round and keep the honest parties split for good.

use super::byzantine::Adversarial;
use crate::agreement::binary::{
    AbbaMessage, JustifiedPreVote, MainVote, coin_share, combine_coin, signed_main_vote, signed_pre_vote,
};
use crate::crypto::{CombineError, NetworkInfo, PublicKeys, SignatureShare};
use crate::{InstanceId, PartyId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the adversary noted about a message when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    /// Nothing it steers by.
    Other,
    /// A coin share outside ABBA (an agreement's candidate order): held back.
    CoinShare,
    Abba {
        instance: u32,
        round: u64,
        kind: Kind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    PreVote(bool),
    /// `None` for an abstention.
    MainVote(Option<bool>),
    Coin,
    /// Pre-processing and decisions.
    Other,
}

/// When a message is delivered to an honest party: every `First` message before any `Normal`
/// one, every `Normal` one before any `Last` one (each class in random order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Class {
    First,
    Normal,
    Last,
}

pub(super) struct CoinAdversary {
    public: PublicKeys,
    /// The Byzantine parties' keys.
    byzantine: Vec<Arc<NetworkInfo>>,
    /// Per party: pulled toward the coin (`t` honest parties) rather than pushed against it.
    pulled: Vec<bool>,
    /// ABBA instances seen, numbered (tags stay small and cheap to compare).
    numbers: BTreeMap<InstanceId, u32>,
    instances: Vec<InstanceId>,
    /// Coin shares of rounds whose coin is not known yet, the Byzantine parties' included.
    shares: BTreeMap<(u32, u64), Vec<SignatureShare>>,
    coins: BTreeMap<(u32, u64), bool>,
    /// A justified pre-vote and main-vote (`None`: abstaining) seen per instance, round and
    /// value: the justifications a Byzantine party may reuse.
    pre_votes: BTreeMap<(u32, u64, bool), JustifiedPreVote>,
    main_votes: BTreeMap<(u32, u64, Option<bool>), MainVote>,
    /// Coins learned, and Byzantine votes changed (statistics: tests check the attack runs).
    pub learned: u64,
    pub steered: u64,
}

impl CoinAdversary {
    /// `pulled` are the honest parties pulled toward the coin.
    pub fn new(n: usize, public: PublicKeys, byzantine: Vec<Arc<NetworkInfo>>, pulled: &[PartyId]) -> Self {
        CoinAdversary {
            public,
            byzantine,
            pulled: (0..n).map(|p| pulled.contains(&p)).collect(),
            numbers: BTreeMap::new(),
            instances: Vec::new(),
            shares: BTreeMap::new(),
            coins: BTreeMap::new(),
            pre_votes: BTreeMap::new(),
            main_votes: BTreeMap::new(),
            learned: 0,
            steered: 0,
        }
    }

    fn number(&mut self, id: InstanceId) -> u32 {
        if let Some(&number) = self.numbers.get(&id) {
            return number;
        }
        let number = self.instances.len() as u32;
        self.instances.push(id.clone());
        self.numbers.insert(id, number);
        number
    }

    /// Notes a message as it is sent (everything sent passes the adversary) and tags it.
    pub fn observe<M: Adversarial>(&mut self, message: &M) -> Tag {
        let Some((id, abba)) = message.abba() else {
            return if message.is_coin_share() { Tag::CoinShare } else { Tag::Other };
        };
        let instance = self.number(id);
        let (round, kind) = match abba {
            AbbaMessage::PreVote { round, vote, .. } => {
                self.pre_votes.entry((instance, *round, vote.value)).or_insert_with(|| vote.clone());
                (*round, Kind::PreVote(vote.value))
            }
            AbbaMessage::MainVote { round, vote, .. } => {
                let value = main_vote_value(vote);
                self.main_votes.entry((instance, *round, value)).or_insert_with(|| vote.clone());
                (*round, Kind::MainVote(value))
            }
            AbbaMessage::Coin { round, share } => {
                self.learn_coin(instance, *round, share.clone());
                (*round, Kind::Coin)
            }
            AbbaMessage::PreProcess { .. } | AbbaMessage::Decide { .. } => (0, Kind::Other),
        };
        Tag::Abba { instance, round, kind }
    }

    /// Adds a coin share seen; with `t+1` valid ones the coin is known.
    fn learn_coin(&mut self, instance: u32, round: u64, share: SignatureShare) {
        if self.coins.contains_key(&(instance, round)) {
            return;
        }
        let id = &self.instances[instance as usize];
        let byzantine = &self.byzantine;
        let shares = self
            .shares
            .entry((instance, round))
            .or_insert_with(|| byzantine.iter().map(|keys| coin_share(keys, id, round)).collect());
        if shares.iter().any(|s| s.id == share.id) {
            return;
        }
        shares.push(share);
        if shares.len() < self.public.coin.required() {
            return;
        }
        match combine_coin(&self.public, id, round, shares) {
            Ok(coin) => {
                self.shares.remove(&(instance, round));
                self.coins.insert((instance, round), coin);
                self.learned += 1;
            }
            Err(CombineError::NotEnoughValidShares { faulty, .. }) => shares.retain(|s| !faulty.contains(&s.id)),
            Err(CombineError::NotEnoughShares { .. }) => {}
        }
    }

    fn coin(&self, instance: u32, round: u64) -> Option<bool> {
        self.coins.get(&(instance, round)).copied()
    }

    /// The pre-vote of `round` that `to` is steered to: the coin of this round or else of the
    /// previous one (which this round's soft pre-votes follow) for a pulled party, the opposite
    /// for a pushed one.
    fn pre_vote_goal(&self, instance: u32, round: u64, to: PartyId) -> Option<bool> {
        let coin = self.coin(instance, round).or_else(|| self.coin(instance, round.checked_sub(1)?))?;
        Some(coin == self.pulled[to])
    }

    /// Whether a main-vote for `value` of `round` goes first to `to`: with the round's coin `c`
    /// known, `!c` for a pushed party and anything else for a pulled one; before, abstentions.
    fn main_vote_first(&self, instance: u32, round: u64, value: Option<bool>, to: PartyId) -> bool {
        match self.coin(instance, round) {
            Some(c) => (value == Some(!c)) != self.pulled[to],
            None => value.is_none(),
        }
    }

    /// When a message with `tag` goes to the honest party `to`.
    pub fn class(&self, tag: Tag, to: PartyId) -> Class {
        let (instance, round, kind) = match tag {
            Tag::Other => return Class::Normal,
            Tag::CoinShare => return Class::Last,
            Tag::Abba { instance, round, kind } => (instance, round, kind),
        };
        let first_or_last = |first: bool| if first { Class::First } else { Class::Last };
        match kind {
            Kind::Other => Class::Normal,
            Kind::Coin => first_or_last(self.pulled[to] && self.coin(instance, round).is_some()),
            Kind::PreVote(value) => match self.pre_vote_goal(instance, round, to) {
                Some(goal) => first_or_last(value == goal),
                None => Class::Normal,
            },
            Kind::MainVote(value) => {
                if self.main_vote_first(instance, round, value, to) {
                    Class::First
                } else if self.coin(instance, round).is_some() {
                    Class::Last
                } else {
                    Class::Normal
                }
            }
        }
    }

    /// What the Byzantine party `keys` sends to `to` instead of `message` (`None`: nothing): a
    /// vote for `to`'s side, signed with a justification seen in the network, when it has one.
    pub fn steer<M: Adversarial + Clone>(&mut self, keys: &NetworkInfo, message: &M, to: PartyId) -> Option<M> {
        let Some((id, abba)) = message.abba() else {
            return Some(message.clone());
        };
        let instance = self.number(id.clone());
        let forged = match abba {
            AbbaMessage::Coin { .. } => return None,
            AbbaMessage::PreVote { round, vote, .. } => self
                .pre_vote_goal(instance, *round, to)
                .filter(|&goal| goal != vote.value)
                .and_then(|goal| self.pre_votes.get(&(instance, *round, goal)))
                .map(|justified| signed_pre_vote(keys, &id, *round, justified.clone())),
            AbbaMessage::MainVote { round, vote, .. } => {
                let current = main_vote_value(vote);
                let wanted = [Some(false), Some(true), None]
                    .into_iter()
                    .filter(|&v| self.main_vote_first(instance, *round, v, to));
                let mut seen = wanted.filter_map(|v| self.main_votes.get(&(instance, *round, v)));
                match seen.next() {
                    Some(_) if self.main_vote_first(instance, *round, current, to) => None,
                    Some(justified) => Some(signed_main_vote(keys, &id, *round, justified.clone())),
                    None => None,
                }
            }
            AbbaMessage::PreProcess { .. } | AbbaMessage::Decide { .. } => None,
        };
        match forged.and_then(|m| message.with_abba(m)) {
            Some(m) => {
                self.steered += 1;
                Some(m)
            }
            None => Some(message.clone()),
        }
    }
}

fn main_vote_value(vote: &MainVote) -> Option<bool> {
    match vote {
        MainVote::Value { value, .. } => Some(*value),
        MainVote::Abstain { .. } => None,
    }
}
