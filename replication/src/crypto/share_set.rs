//! Signature shares on one statement, collected from distinct parties and combined
//! optimistically: combine once enough are present; only a failed combination costs per-share
//! checks, and the parties whose shares were bad are returned so the caller can blame them and
//! drop their votes.

use super::{CombineError, Signature, SignatureShare, ThresholdPublic};
use crate::PartyId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShareSet {
    shares: BTreeMap<PartyId, SignatureShare>,
    combined: Option<Signature>,
}

impl ShareSet {
    pub fn insert(&mut self, share: SignatureShare) -> bool {
        if self.shares.contains_key(&share.id) {
            return false;
        }
        self.shares.insert(share.id, share);
        true
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    pub fn remove(&mut self, party: PartyId) {
        self.shares.remove(&party);
    }

    pub fn combined(&self) -> Option<&Signature> {
        self.combined.as_ref()
    }

    /// Combines if enough shares are present. Returns the signature (cached) and the parties
    /// whose shares were invalid (already removed).
    pub fn combine(
        &mut self,
        scheme: &dyn ThresholdPublic,
        dst: &[u8],
        msg: &[u8],
    ) -> (Option<Signature>, Vec<PartyId>) {
        if let Some(sig) = &self.combined {
            return (Some(sig.clone()), Vec::new());
        }
        if self.shares.len() < scheme.required() {
            return (None, Vec::new());
        }
        let shares: Vec<SignatureShare> = self.shares.values().cloned().collect();
        let (sig, faulty) = match scheme.combine(dst, msg, &shares) {
            Ok(c) => (Some(c.value), c.faulty),
            Err(CombineError::NotEnoughValidShares { faulty, .. }) => (None, faulty),
            Err(CombineError::NotEnoughShares { .. }) => (None, Vec::new()),
        };
        for p in &faulty {
            self.shares.remove(p);
        }
        self.combined = sig.clone();
        (sig, faulty)
    }
}
