//! Test-only misbehaviour of a replica's outgoing protocol messages (feature `byzantine`, never
//! in a release build of the daemon): the replica runs the honest protocol, and what it sends is
//! falsified on the way out with the simulator's adversary moves, so the fault campaign can
//! attack a real cluster with a real replica's code.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::PartyId;
use crate::atomic::secure::ScabcMessage;
use crate::crypto::NetworkInfo;
use crate::sim::byzantine::Adversarial;
use crate::wire;

/// What a Byzantine replica does to its protocol messages (any combination).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Misbehaviour {
    /// Invalid signature, coin and decryption shares and proofs.
    pub corrupt: bool,
    /// Conflicting values and votes to the odd-numbered peers.
    pub equivocate: bool,
    /// Nothing at all to the even-numbered peers.
    pub withhold: bool,
    /// Old messages sent again beside the new ones.
    pub replay: bool,
    /// Undecodable payloads beside the real ones.
    pub garbage: bool,
}

impl Misbehaviour {
    /// The names [`Misbehaviour::parse`] takes.
    pub const NAMES: [&'static str; 5] = ["corrupt", "equivocate", "withhold", "replay", "garbage"];

    /// A comma-separated list of [`Misbehaviour::NAMES`].
    pub fn parse(list: &str) -> Result<Misbehaviour, String> {
        let mut out = Misbehaviour::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "corrupt" => out.corrupt = true,
                "equivocate" => out.equivocate = true,
                "withhold" => out.withhold = true,
                "replay" => out.replay = true,
                "garbage" => out.garbage = true,
                other => return Err(format!("unknown protocol misbehaviour {other:?} (known: {:?})", Self::NAMES)),
            }
        }
        Ok(out)
    }

    pub fn is_honest(&self) -> bool {
        *self == Misbehaviour::default()
    }
}

/// Old payloads kept for replaying.
const HISTORY: usize = 256;

/// Applies a [`Misbehaviour`] to each message as it leaves for each peer.
pub(super) struct Tamperer {
    misbehaviour: Misbehaviour,
    rng: ChaCha20Rng,
    history: VecDeque<Arc<[u8]>>,
}

impl Tamperer {
    pub fn new(misbehaviour: Misbehaviour, seed: u64) -> Tamperer {
        Tamperer { misbehaviour, rng: ChaCha20Rng::seed_from_u64(seed), history: VecDeque::new() }
    }

    /// The payloads `peer` gets instead of `message` (none, one or several).
    pub fn outgoing(&mut self, keys: &NetworkInfo, peer: PartyId, message: &ScabcMessage) -> Vec<Arc<[u8]>> {
        let m = &self.misbehaviour;
        if m.withhold && peer.is_multiple_of(2) {
            return Vec::new();
        }
        let mut message = message.clone();
        if m.equivocate
            && peer % 2 == 1
            && let Some(other) = message.equivocate(keys, &mut self.rng)
        {
            message = other;
        }
        if m.corrupt
            && let Some(bad) = message.corrupt(keys, &mut self.rng)
        {
            message = bad;
        }
        let mut out = Vec::new();
        if let Ok(bytes) = wire::encode(&message) {
            let payload: Arc<[u8]> = bytes.into();
            if m.replay {
                self.history.push_back(payload.clone());
                if self.history.len() > HISTORY {
                    self.history.pop_front();
                }
            }
            out.push(payload);
        }
        if m.replay && !self.history.is_empty() {
            let old = self.rng.gen_range(0..self.history.len());
            out.push(self.history[old].clone());
        }
        if m.garbage {
            let mut junk = vec![0u8; self.rng.gen_range(1..512)];
            self.rng.fill_bytes(&mut junk);
            out.push(junk.into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_misbehaviour_parses_and_an_unknown_one_is_refused() {
        let all = Misbehaviour::parse(&Misbehaviour::NAMES.join(",")).expect("known names");
        assert!(all.corrupt && all.equivocate && all.withhold && all.replay && all.garbage);
        assert!(Misbehaviour::parse("").expect("empty").is_honest());
        assert!(Misbehaviour::parse("corrupt,lie").is_err());
    }
}
