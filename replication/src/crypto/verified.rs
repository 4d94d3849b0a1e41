//! A bounded memory of signatures that verified: the same justification travels in many votes,
//! and checking it again costs a pairing (BLS) or a quorum's worth of Ed25519 verifications.

use super::{Signature, digest};
use std::collections::HashSet;
use std::sync::Mutex;

/// Remembered verifications per scheme before the memory is cleared.
const LIMIT: usize = 1 << 16;

#[derive(Default)]
pub struct VerifiedCache(Mutex<HashSet<[u8; 32]>>);

impl VerifiedCache {
    /// Whether `signature` on `(dst, msg)` verified before.
    pub fn contains(&self, dst: &[u8], msg: &[u8], signature: &Signature) -> bool {
        let key = key(dst, msg, signature);
        self.0.lock().is_ok_and(|v| v.contains(&key))
    }

    pub fn remember(&self, dst: &[u8], msg: &[u8], signature: &Signature) {
        let key = key(dst, msg, signature);
        if let Ok(mut v) = self.0.lock() {
            if v.len() >= LIMIT {
                v.clear();
            }
            v.insert(key);
        }
    }
}

fn key(dst: &[u8], msg: &[u8], signature: &Signature) -> [u8; 32] {
    digest(&crate::id::statement(&[dst, msg, &signature.0]))
}
