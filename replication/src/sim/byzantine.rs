//! How Byzantine nodes tamper with the messages of the honest protocol copy they run.

use crate::InstanceId;
use crate::agreement::binary::AbbaMessage;
use crate::crypto::NetworkInfo;
use rand::RngCore;

/// Protocol messages that a Byzantine node knows how to falsify. `keys` are the Byzantine
/// node's own: it can sign anything with them, so equivocation may carry valid shares.
pub trait Adversarial: Sized {
    /// A conflicting version (another value or vote), if the message carries one.
    fn equivocate(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self>;
    /// The message with its shares, signatures or proofs made invalid, if it carries any.
    fn corrupt(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self>;
    /// True for a coin share (the coin-timing schedulers hold these back).
    fn is_coin_share(&self) -> bool {
        false
    }
    /// The binary agreement message this carries, with the id of its instance (the adaptive
    /// coin adversary reads votes and coin shares from it).
    fn abba(&self) -> Option<(InstanceId, &AbbaMessage)> {
        None
    }
    /// This message with the binary agreement message it carries replaced by `message`.
    fn with_abba(&self, _message: AbbaMessage) -> Option<Self> {
        None
    }
}

/// Flips one random bit of `bytes` (if any).
pub fn flip_bit(bytes: &mut [u8], rng: &mut dyn RngCore) {
    if !bytes.is_empty() {
        let i = (rng.next_u32() as usize) % bytes.len();
        bytes[i] ^= 1 << (rng.next_u32() % 8);
    }
}

/// A different byte string of similar length.
pub fn other_bytes(bytes: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.is_empty() {
        out.push(rng.next_u32() as u8);
    } else {
        flip_bit(&mut out, rng);
    }
    out
}
