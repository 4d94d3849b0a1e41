//! A bounded memory of signatures and proofs that verified: the same justification travels in
//! many votes, and checking it again costs a pairing (BLS) or a quorum's worth of Ed25519
//! verifications. Bounded because a Byzantine peer can make any number of distinct valid quorum
//! certificates: when full, the memory is cleared (what it forgets is only checked again).

use super::{Signature, digest};
use std::collections::HashSet;
use std::sync::Mutex;

pub(crate) struct VerifiedCache {
    limit: usize,
    keys: Mutex<HashSet<[u8; 32]>>,
}

impl Default for VerifiedCache {
    /// Room for a scheme's verifications over many rounds.
    fn default() -> Self {
        VerifiedCache::with_limit(1 << 16)
    }
}

impl VerifiedCache {
    pub fn with_limit(limit: usize) -> Self {
        VerifiedCache { limit, keys: Mutex::default() }
    }

    /// The key of `signature` on `(dst, msg)`.
    pub fn key(dst: &[u8], msg: &[u8], signature: &Signature) -> [u8; 32] {
        digest(&crate::id::statement(&[dst, msg, &signature.0]))
    }

    /// Whether `key` verified before.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.lock().is_ok_and(|v| v.contains(key))
    }

    pub fn remember(&self, key: [u8; 32]) {
        if let Ok(mut v) = self.keys.lock() {
            if v.len() >= self.limit {
                v.clear();
            }
            v.insert(key);
        }
    }
}
