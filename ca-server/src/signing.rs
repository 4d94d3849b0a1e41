//! Joint signing with the threshold root key: the messages replicas exchange, and the bookkeeping
//! of each object still to be signed (a certificate's TBS, a CRL's TBS, a tree head).
//!
//! Protocol (best effort on the wire; every step may be repeated):
//! 1. After applying a round, the `t + 1` replicas designated for a new object (by its hash,
//!    see [`Signer::designated`]) compute their share on it (no proof: a proof costs about 3.4
//!    times the share) and send [`SigningMessage::Shares`] to all. `t + 1` shares are all a
//!    combination needs, so the others save theirs: that is `n - t - 1` of the `n` RSA
//!    exponentiations per object, the largest cost of issuing. A designated party whose share is
//!    missing is passed over, and the next party in the rotation signs instead, on evidence that
//!    it will not come: the party was caught cheating, its link is down, it already gave a share
//!    on a later object (honest replicas compute theirs in order), or it has been silent for
//!    [`SILENT_AFTER`]. Mere slowness is no evidence: passing over a live replica that is behind
//!    costs a share, and at saturation those extra shares made everyone slower still.
//! 2. A replica keeps the shares it receives; once `t + 1` parties not yet caught cheating have
//!    given one, the object's combiner (its first designated party whose link is up, see
//!    [`Signer::combiner`]) combines them ([`threshold::rsa::ThresholdRsaPublic::combine`]),
//!    which checks the result with one public exponentiation, and sends the signature to all
//!    ([`SigningMessage::Signatures`]); the others check it with the root key (one cheap
//!    verification) instead of combining. A replica whose shares have been ready for
//!    [`COMBINE_WAIT`] without a signature arriving combines them itself. Every replica thus
//!    stores the same signature (PKCS#1 v1.5 is deterministic).
//! 3. If a combination fails, it asks everyone for shares with proofs
//!    ([`SigningMessage::Request`] with `with_proof`), adds a proof to its own share, and combines
//!    again; shares with invalid proofs (and parties that sent two different shares for one
//!    object: honest shares are deterministic) are attributed to their sender, counted, and
//!    excluded; such parties' shares are used last from then on.
//! 4. Periodically ([`crate::ca::Ca::tick`]) a replica asks its peers again for what it still
//!    misses. A peer answers with its share or, if it already holds the signature,
//!    [`SigningMessage::Signatures`] (checked with the root key: one cheap verification).
//!    So a replica that restarted or was cut off still ends with every object signed.
//!
//! The bookkeeping here does no I/O and no heavy arithmetic: [`crate::ca::Ca`] stores what it
//! returns and runs the share computations and combinations on the blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use threshold::PartyId;
use threshold::encoding::{hex_array, hex_bytes};
use threshold::rsa::SignatureShare;

use crate::merkle::Hash;

/// At most this many items in one message: keeps every message far below the runtime's frame
/// limit (a 4096-bit share with its proof is under 3 KB of JSON).
pub const MAX_ITEMS_PER_MESSAGE: usize = 256;
/// Shares for objects this replica does not know yet (a peer is ahead) are kept, up to this
/// many; beyond, the oldest are dropped (the periodic requests recover them).
pub const MAX_EARLY_SHARES: usize = 16_384;
/// Unsigned objects that count as one owed share in [`Signer::pace_backlog`].
const UNSIGNED_PER_BACKLOG: usize = 16;
/// A designated party that has sent no share for this long, while its share on an object
/// registered at least this long ago is missing, is passed over for that object (step 1 above).
/// The backstop for a replica that hangs with its link up, or withholds everything: a crashed
/// one is passed over as soon as its link drops. At n = 10 under saturation, live replicas
/// applied a round more than 500 ms after others often enough that a 500 ms limit made all ten
/// sign most objects.
pub const SILENT_AFTER: Duration = Duration::from_secs(3);
/// A peer's request makes this replica compute a share it does not owe only once the object
/// has waited this long here (before that, the designated parties are presumed to be coming).
pub const ANSWER_ANY_REQUEST_AFTER: Duration = Duration::from_secs(6);
/// A replica that is not an object's combiner combines it itself once it has held `t + 1` shares
/// this long without the combiner's signature arriving: the backstop for a combiner that is
/// slow, behind, or withholding (one that crashed is replaced at once, when its link drops).
/// Combining costs a replica about 0.1 ms per object at n = 4 and 0.4 ms at n = 10 (2048 bits),
/// so with every replica combining, the `n` combinations grew faster than anything but the
/// messages.
pub const COMBINE_WAIT: Duration = Duration::from_secs(2);
/// Peers' signatures on objects not registered here yet are kept for this many objects.
const MAX_EARLY_SIGNATURES: usize = 4_096;
/// Objects signed recently, remembered so that late shares for them are ignored cheaply.
const RECENTLY_SIGNED: usize = 16_384;
/// Recently signed objects whose late shares are spot-checked (see [`Signer::spot_check`]).
const SPOT_CHECKED: usize = 64;
/// At most one spot check per party in this long, so checking costs little CPU.
const SPOT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Certificate,
    Crl,
    TreeHead,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Certificate => "certificate",
            ObjectKind::Crl => "crl",
            ObjectKind::TreeHead => "tree_head",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        [ObjectKind::Certificate, ObjectKind::Crl, ObjectKind::TreeHead]
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(())
    }
}

/// A share on the object whose signed bytes hash to `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashedShare {
    #[serde(with = "hex_array")]
    pub hash: Hash,
    pub share: SignatureShare,
}

/// A combined signature on the object whose signed bytes hash to `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashedSignature {
    #[serde(with = "hex_array")]
    pub hash: Hash,
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

/// What replicas' CA state machines send each other (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SigningMessage {
    /// The sender's own shares.
    Shares { shares: Vec<HashedShare> },
    /// "Send me your shares on these" (with proofs if asked).
    Request {
        #[serde(with = "hash_list")]
        hashes: Vec<Hash>,
        with_proof: bool,
    },
    /// Signatures the sender already combined.
    Signatures { signatures: Vec<HashedSignature> },
}

mod hash_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    use crate::merkle::Hash;

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for hash in hashes {
            seq.serialize_element(&hex::encode(hash))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|text| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(text, &mut hash).map_err(serde::de::Error::custom)?;
                Ok(hash)
            })
            .collect()
    }
}

/// Why a peer's message was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not a signing message: {0}")]
    Malformed(String),
    #[error("{0} items in one message; at most {MAX_ITEMS_PER_MESSAGE} are accepted")]
    TooManyItems(usize),
}

impl SigningMessage {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("in-memory JSON serialisation")
    }

    pub fn decode(bytes: &[u8]) -> Result<SigningMessage, MessageError> {
        let message: SigningMessage =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let items = match &message {
            SigningMessage::Shares { shares } => shares.len(),
            SigningMessage::Request { hashes, .. } => hashes.len(),
            SigningMessage::Signatures { signatures } => signatures.len(),
        };
        if items > MAX_ITEMS_PER_MESSAGE {
            return Err(MessageError::TooManyItems(items));
        }
        Ok(message)
    }
}

/// Splits items into messages of at most [`MAX_ITEMS_PER_MESSAGE`].
pub fn chunked<T: Clone>(items: &[T], make: impl Fn(Vec<T>) -> SigningMessage) -> Vec<SigningMessage> {
    items.chunks(MAX_ITEMS_PER_MESSAGE).map(|chunk| make(chunk.to_vec())).collect()
}

/// Faults attributed to one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartyFaults {
    /// Shares that failed their proof or were malformed.
    pub invalid_shares: u64,
    /// Two different shares for one object.
    pub equivocations: u64,
    /// Shares naming another party than the sender.
    pub impersonations: u64,
    /// Undecodable or oversized messages.
    pub malformed_messages: u64,
    /// Combined signatures that did not verify.
    pub invalid_signatures: u64,
}

impl PartyFaults {
    pub fn total(&self) -> u64 {
        self.invalid_shares
            + self.equivocations
            + self.impersonations
            + self.malformed_messages
            + self.invalid_signatures
    }
}

/// An object waiting for its signature.
#[derive(Debug, Clone)]
pub struct Pending {
    pub kind: ObjectKind,
    pub reference: u64,
    pub message: Arc<Vec<u8>>,
    pub shares: BTreeMap<PartyId, SignatureShare>,
    /// Parties caught cheating on this object: their shares are not taken again.
    pub excluded: BTreeSet<PartyId>,
    /// A combination failed: shares now need proofs.
    pub proofs_requested: bool,
    /// A combination is running on the blocking pool.
    pub combining: bool,
    /// Bumped on every change of `shares`; a failed combination is retried only after a change.
    pub version: u64,
    pub failed_version: Option<u64>,
    /// When peers were last asked for their shares.
    pub last_request: Instant,
    /// Registration order: own shares are computed oldest first.
    pub seq: u64,
    /// When it was registered: designated parties have [`SILENT_AFTER`] from then.
    pub registered: Instant,
    /// When this replica first found `t + 1` trusted shares for it (see [`COMBINE_WAIT`]).
    pub ready_since: Option<Instant>,
}

/// A combination to run.
#[derive(Debug, Clone)]
pub struct CombineJob {
    pub hash: Hash,
    pub message: Arc<Vec<u8>>,
    /// Parties not caught cheating first, then by party id: the first `t + 1` are tried.
    pub shares: Vec<SignatureShare>,
    pub version: u64,
}

/// What happened to a received share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New or better (now with a proof): store it.
    Stored,
    /// Already held.
    Duplicate,
    /// For an object this replica does not know yet: kept in memory for when it does.
    Early,
    /// For an object already signed.
    Late,
    /// The sender was caught cheating; its share is dropped.
    Fault,
}

/// How to answer a peer's request for this replica's share on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAnswer {
    /// With the share held (with a proof, if one was asked for).
    Held(SignatureShare),
    /// Compute the share on this message (once: it is kept, so repeated requests cost nothing
    /// more) and send it.
    Compute(Arc<Vec<u8>>),
    /// Not now; the peer asks again. A share this replica owes comes in its turn, sent to all
    /// (computed out of turn, peers would take this replica for one that skipped the older
    /// objects). One it does not owe waits until the designated parties have had
    /// [`ANSWER_ANY_REQUEST_AFTER`].
    Later,
    /// Not pending here: signed already (or not known yet), so the signature is looked up.
    Signed,
}

/// Items from peers for objects not registered here yet, at most one per peer and object, and
/// at most `limit` in all (beyond, the oldest objects' are dropped: the periodic requests
/// recover them).
#[derive(Debug)]
struct Early<T> {
    items: BTreeMap<Hash, Vec<(PartyId, T)>>,
    order: VecDeque<Hash>,
    count: usize,
    limit: usize,
}

impl<T> Early<T> {
    fn new(limit: usize) -> Self {
        Early { items: BTreeMap::new(), order: VecDeque::new(), count: 0, limit }
    }

    fn keep(&mut self, from: PartyId, hash: Hash, item: T) {
        let list = self.items.entry(hash).or_default();
        if list.iter().any(|(party, _)| *party == from) {
            return;
        }
        if list.is_empty() {
            self.order.push_back(hash);
        }
        list.push((from, item));
        self.count += 1;
        while self.count > self.limit {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(dropped) = self.items.remove(&oldest) {
                self.count -= dropped.len();
            }
        }
    }

    /// Removes and returns what is kept for `hash`. Its place in the order goes stale; once
    /// stale places outnumber live ones the order is compacted, so it does not grow with every
    /// object ever kept (even behind a front entry that is never taken).
    fn take(&mut self, hash: &Hash) -> Vec<(PartyId, T)> {
        let taken = self.items.remove(hash).unwrap_or_default();
        self.count -= taken.len();
        if self.order.len() > 2 * self.items.len() + 64 {
            let items = &self.items;
            self.order.retain(|h| items.contains_key(h));
        }
        taken
    }
}

/// The signing bookkeeping of one replica.
#[derive(Debug)]
pub struct Signer {
    me: PartyId,
    parties: usize,
    threshold: usize,
    /// The length of every share value (the modulus length).
    share_len: usize,
    pending: BTreeMap<Hash, Pending>,
    early: Early<SignatureShare>,
    /// Signatures combined by peers for objects not registered here yet (this replica is behind).
    early_signatures: Early<Vec<u8>>,
    recent: HashSet<Hash>,
    recent_order: VecDeque<Hash>,
    faults: Vec<PartyFaults>,
    signed: u64,
    next_seq: u64,
    /// Recently signed objects with this replica's own share on them.
    /// Per recently signed object: its message and `t` shares known to be valid.
    spot: VecDeque<(Hash, Arc<Vec<u8>>, Vec<SignatureShare>)>,
    last_spot_check: BTreeMap<PartyId, Instant>,
    /// By party: when its last shares arrived (`None`: not since start).
    heard: Vec<Option<Instant>>,
    /// By party: the latest registered object (by `seq`) it gave a share on.
    latest: Vec<Option<u64>>,
    /// By party: whether its link is down (as the runtime last said).
    down: Vec<bool>,
    /// Own shares computed since start (a share redone with a proof counts again).
    own_computed: u64,
    /// Of those, on objects this replica is not in the rotation's first `t + 1` of: shares
    /// another party's silence, a fault or a request cost.
    own_beyond_rotation: u64,
    /// How long shares wait for their combiner's signature ([`COMBINE_WAIT`]).
    combine_wait: Duration,
    /// Combinations run since start (successful or not).
    combinations: u64,
}

impl Signer {
    pub fn new(me: PartyId, parties: usize, threshold: usize, share_len: usize) -> Signer {
        Signer {
            me,
            parties,
            threshold,
            share_len,
            pending: BTreeMap::new(),
            early: Early::new(MAX_EARLY_SHARES),
            early_signatures: Early::new(MAX_EARLY_SIGNATURES),
            recent: HashSet::new(),
            recent_order: VecDeque::new(),
            faults: vec![PartyFaults::default(); parties],
            signed: 0,
            next_seq: 0,
            spot: VecDeque::new(),
            last_spot_check: BTreeMap::new(),
            heard: vec![None; parties],
            latest: vec![None; parties],
            down: vec![false; parties],
            own_computed: 0,
            own_beyond_rotation: 0,
            combine_wait: COMBINE_WAIT,
            combinations: 0,
        }
    }

    /// A signer whose shares wait `wait` instead of [`COMBINE_WAIT`] for the combiner's
    /// signature: zero makes every replica combine at once, as all did before combiners.
    pub fn with_combine_wait(mut self, wait: Duration) -> Signer {
        self.combine_wait = wait;
        self
    }

    /// Combinations this replica ran since start.
    pub fn combinations(&self) -> u64 {
        self.combinations
    }

    pub fn pending(&self) -> &BTreeMap<Hash, Pending> {
        &self.pending
    }

    pub fn get(&self, hash: &Hash) -> Option<&Pending> {
        self.pending.get(hash)
    }

    pub fn faults(&self) -> &[PartyFaults] {
        &self.faults
    }

    /// Signatures combined (or received) since start.
    pub fn signed_count(&self) -> u64 {
        self.signed
    }

    /// This replica's own shares computed since start.
    pub fn own_shares_computed(&self) -> u64 {
        self.own_computed
    }

    /// Of [`Signer::own_shares_computed`], those on objects this replica would not sign if every
    /// party were live and honest.
    pub fn own_shares_beyond_rotation(&self) -> u64 {
        self.own_beyond_rotation
    }

    /// The parties in the order they take turns on `hash`.
    fn rotation(&self, hash: &Hash) -> impl Iterator<Item = PartyId> + use<> {
        let start = usize::from(u16::from_be_bytes([hash[30], hash[31]])) % self.parties;
        let parties = self.parties;
        (0..parties).map(move |step| (start + step) % parties)
    }

    /// Shares from `from` arrived now: it is not silent (see [`SILENT_AFTER`]).
    pub fn heard_from(&mut self, from: PartyId, now: Instant) {
        if let Some(heard) = self.heard.get_mut(from) {
            *heard = Some(now);
        }
    }

    /// The runtime's view of the links: `down[p]` is whether party `p`'s is down.
    pub fn set_links_down(&mut self, down: &[bool]) {
        for (party, is_down) in down.iter().enumerate().take(self.parties) {
            self.down[party] = *is_down && party != self.me;
        }
    }

    /// Whether this replica is one of the `t + 1` parties to sign the object `hash` now. The
    /// parties take turns by object (a rotation starting at a party chosen by the hash, so each
    /// signs about `(t + 1) / n` of the objects). A party whose share on this object is missing
    /// is passed over, and the next one in the rotation takes its place, if it was caught
    /// cheating, its link is down, it gave a share on an object registered after this one, or it
    /// has sent no share for [`SILENT_AFTER`] since the object was registered. Replicas may
    /// disagree on who is passed over (each judges by what it received): that costs an extra
    /// share, or a wait until a replica that has the signature answers a request with it.
    pub fn designated(&self, hash: &Hash, pending: &Pending, now: Instant) -> bool {
        self.signers(hash, pending, now).any(|party| party == self.me)
    }

    /// The `t + 1` parties to sign `hash` now, in rotation order (see [`Signer::designated`]).
    fn signers(&self, hash: &Hash, pending: &Pending, now: Instant) -> impl Iterator<Item = PartyId> {
        self.rotation(hash).filter(move |party| !self.passed_over(*party, pending, now)).take(self.threshold + 1)
    }

    fn passed_over(&self, party: PartyId, pending: &Pending, now: Instant) -> bool {
        if party == self.me {
            return false;
        }
        if self.faults[party].total() > 0 {
            return true;
        }
        if pending.shares.contains_key(&party) {
            return false;
        }
        let since = self.heard[party].map_or(pending.registered, |heard| heard.max(pending.registered));
        self.down[party]
            || self.latest[party].is_some_and(|latest| latest > pending.seq)
            || now.saturating_duration_since(since) >= SILENT_AFTER
    }

    /// The party expected to combine the shares on `hash` and send everyone the signature: the
    /// first of its signers whose link is up (one that gave its share and then went down cannot
    /// send the signature). It holds its own share, so it waits for `t` others like everyone.
    pub fn combiner(&self, hash: &Hash, pending: &Pending, now: Instant) -> Option<PartyId> {
        self.signers(hash, pending, now).find(|party| !self.down[*party])
    }

    fn fault(&mut self, party: PartyId, record: impl FnOnce(&mut PartyFaults)) {
        if let Some(faults) = self.faults.get_mut(party) {
            record(faults);
        }
    }

    pub fn malformed_message(&mut self, from: PartyId) {
        self.fault(from, |f| f.malformed_messages += 1);
    }

    pub fn invalid_signature(&mut self, from: PartyId) {
        self.fault(from, |f| f.invalid_signatures += 1);
    }

    /// Registers an object to sign; returns the shares that had arrived early and are now held.
    pub fn add_object(
        &mut self,
        hash: Hash,
        kind: ObjectKind,
        reference: u64,
        message: Arc<Vec<u8>>,
        now: Instant,
    ) -> Vec<(PartyId, SignatureShare)> {
        if self.pending.contains_key(&hash) || self.recent.contains(&hash) {
            return Vec::new();
        }
        self.pending.insert(
            hash,
            Pending {
                kind,
                reference,
                message,
                shares: BTreeMap::new(),
                excluded: BTreeSet::new(),
                proofs_requested: false,
                combining: false,
                version: 0,
                failed_version: None,
                last_request: now,
                seq: self.next_seq,
                registered: now,
                ready_since: None,
            },
        );
        self.next_seq += 1;
        let mut stored = Vec::new();
        for (party, share) in self.early.take(&hash) {
            if self.receive(party, hash, share.clone()) == Received::Stored {
                stored.push((party, share));
            }
        }
        stored
    }

    /// A peer's signature on `hash`, which this replica cannot check yet: the object is not
    /// registered here. Kept (one per peer, the oldest dropped beyond a bound) for
    /// [`Signer::take_early_signatures`]. Signatures on objects signed here already are dropped,
    /// and so is anything not the length of a signature (the bound counts items, not bytes).
    pub fn keep_early_signature(&mut self, from: PartyId, hash: Hash, signature: Vec<u8>) {
        if from < self.parties
            && signature.len() == self.share_len
            && !self.recent.contains(&hash)
            && !self.pending.contains_key(&hash)
        {
            self.early_signatures.keep(from, hash, signature);
        }
    }

    /// The signatures peers sent on `hash` before it was registered here (see
    /// [`Signer::keep_early_signature`]), to check now.
    pub fn take_early_signatures(&mut self, hash: &Hash) -> Vec<(PartyId, Vec<u8>)> {
        self.early_signatures.take(hash)
    }

    /// Takes a share from `from` (this replica's own shares come through here too).
    pub fn receive(&mut self, from: PartyId, hash: Hash, share: SignatureShare) -> Received {
        if from >= self.parties {
            return Received::Fault;
        }
        if share.id != from {
            // Links are authenticated: a share naming another party is this sender's doing.
            self.fault(from, |f| f.impersonations += 1);
            return Received::Fault;
        }
        if share.value.len() != self.share_len {
            // Cannot be a share at all; no need to wait for a combination to find out.
            self.fault(from, |f| f.invalid_shares += 1);
            return Received::Fault;
        }
        if self.recent.contains(&hash) {
            return Received::Late;
        }
        let Some(pending) = self.pending.get_mut(&hash) else {
            self.keep_early(from, hash, share);
            return Received::Early;
        };
        if pending.excluded.contains(&from) {
            return Received::Fault;
        }
        #[allow(clippy::collapsible_match)] // Clearer as two steps: same value, then whether it adds a proof.
        match pending.shares.get(&from) {
            None => {}
            // The same value again; only a proof where there was none improves on it.
            Some(held) if held.value == share.value => {
                if held.proof.is_some() || share.proof.is_none() {
                    return Received::Duplicate;
                }
            }
            Some(_) => {
                // Honest shares are deterministic: two values mean one of them is forged.
                pending.shares.remove(&from);
                pending.excluded.insert(from);
                pending.version += 1;
                self.fault(from, |f| f.equivocations += 1);
                return Received::Fault;
            }
        }
        pending.shares.insert(from, share);
        pending.version += 1;
        let seq = pending.seq;
        if let Some(latest) = self.latest.get_mut(from) {
            *latest = Some(latest.map_or(seq, |l| l.max(seq)));
        }
        if from == self.me {
            self.own_computed += 1;
            if !self.rotation(&hash).take(self.threshold + 1).any(|party| party == self.me) {
                self.own_beyond_rotation += 1;
            }
        }
        Received::Stored
    }

    fn keep_early(&mut self, from: PartyId, hash: Hash, share: SignatureShare) {
        self.early.keep(from, hash, share);
    }

    /// Combinations that can run now: objects with `t + 1` shares from parties not caught
    /// cheating, whose share set changed since the last failure, and which this replica is to
    /// combine: it is their combiner, their shares have waited [`COMBINE_WAIT`] for the
    /// combiner's signature, or proofs were asked for (a combination failed here; then every
    /// replica that finds out combines). They are marked as running.
    pub fn take_ready(&mut self, now: Instant) -> Vec<CombineJob> {
        let needed = self.threshold + 1;
        let mut ready = Vec::new();
        for (hash, pending) in &self.pending {
            if pending.combining || pending.failed_version == Some(pending.version) {
                continue;
            }
            let trusted = pending.shares.keys().filter(|party| self.faults[**party].total() == 0).count();
            if trusted >= needed || (pending.proofs_requested && pending.shares.len() >= needed) {
                let waited =
                    pending.ready_since.is_some_and(|since| now.saturating_duration_since(since) >= self.combine_wait);
                let mine = pending.proofs_requested
                    || self.combine_wait.is_zero()
                    || waited
                    || self.combiner(hash, pending, now) == Some(self.me);
                ready.push((*hash, mine));
            }
        }
        let faults = &self.faults;
        let parties = self.parties;
        let mut jobs = Vec::new();
        for (hash, mine) in ready {
            let Some(pending) = self.pending.get_mut(&hash) else { continue };
            pending.ready_since.get_or_insert(now);
            if !mine {
                continue;
            }
            let mut shares: Vec<SignatureShare> = pending.shares.values().cloned().collect();
            // Parties caught cheating before go last, so the optimistic path avoids them. The
            // others take turns by object: with a fixed order a bad share from a high party id
            // would never be tried, and so never be caught and counted.
            let offset = usize::from(hash[0]);
            shares.sort_by_key(|share| (faults[share.id].total() > 0, (share.id + offset) % parties));
            pending.combining = true;
            jobs.push(CombineJob { hash, message: pending.message.clone(), shares, version: pending.version });
        }
        self.combinations += jobs.len() as u64;
        jobs
    }

    /// A combination succeeded (or a peer's signature verified): the object is done. Returns it.
    /// `faulty` are parties whose shares the combination found invalid; `valid` are shares it
    /// found valid (those it combined), kept with this replica's own as the reference that
    /// spot checks combine a share with.
    pub fn finished(&mut self, hash: &Hash, faulty: &[PartyId], valid: &[SignatureShare]) -> Option<Pending> {
        for party in faulty {
            self.fault(*party, |f| f.invalid_shares += 1);
        }
        let pending = self.pending.remove(hash)?;
        self.signed += 1;
        let mut reference: Vec<SignatureShare> = pending.shares.get(&self.me).cloned().into_iter().collect();
        for share in valid.iter().filter(|s| s.id != self.me) {
            if reference.len() == self.threshold {
                break;
            }
            reference.push(share.clone());
        }
        if reference.len() == self.threshold {
            self.spot.push_back((*hash, pending.message.clone(), reference));
            if self.spot.len() > SPOT_CHECKED {
                self.spot.pop_front();
            }
        }
        self.recent.insert(*hash);
        self.recent_order.push_back(*hash);
        while self.recent_order.len() > RECENTLY_SIGNED {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
        Some(pending)
    }

    /// The spot checks due for the shares held on `pending`, just signed as `hash` (see
    /// [`Signer::spot_check`]).
    pub fn spot_checks_of(&mut self, hash: &Hash, pending: &Pending, now: Instant) -> Vec<(PartyId, CombineJob)> {
        let mut checks = Vec::new();
        for (party, share) in &pending.shares {
            if let Some(check) = self.spot_check(*party, hash, share.clone(), now) {
                checks.push((*party, check));
            }
        }
        checks
    }

    /// A share the combination of a recently signed object did not need (held, or arriving
    /// late), to check now: `t` shares known valid (this replica's own and those the combination
    /// used) and `share` must combine to a valid signature, so if they do not, `from` is faulty
    /// (its bad share was never used, so it would otherwise go unnoticed).
    /// Returns the combination to run, at most one per party per [`SPOT_CHECK_EVERY`]; report a
    /// failure with [`Signer::spot_check_failed`].
    pub fn spot_check(
        &mut self,
        from: PartyId,
        hash: &Hash,
        share: SignatureShare,
        now: Instant,
    ) -> Option<CombineJob> {
        if from == self.me || share.id != from {
            return None;
        }
        if self.last_spot_check.get(&from).is_some_and(|last| now.duration_since(*last) < SPOT_CHECK_EVERY) {
            return None;
        }
        let (_, message, reference) = self.spot.iter().find(|(h, _, _)| h == hash)?;
        if reference.iter().any(|s| s.id == from) {
            return None;
        }
        self.last_spot_check.insert(from, now);
        let mut shares = reference.clone();
        shares.push(share);
        Some(CombineJob { hash: *hash, message: message.clone(), shares, version: 0 })
    }

    /// A spot check's combination failed: `from`'s share was invalid.
    pub fn spot_check_failed(&mut self, from: PartyId) {
        self.fault(from, |f| f.invalid_shares += 1);
    }

    /// A combination found too few shares (more may come).
    pub fn not_enough(&mut self, hash: &Hash, version: u64) {
        if let Some(pending) = self.pending.get_mut(hash) {
            pending.combining = false;
            pending.failed_version = Some(version);
        }
    }

    /// A combination failed: excludes and counts the `faulty` parties and switches the object to
    /// proven shares. Returns whether proofs were newly requested (so the caller asks the peers
    /// and proves its own share) and the shares it must forget.
    pub fn failed(&mut self, hash: &Hash, version: u64, faulty: &[PartyId]) -> (bool, Vec<PartyId>) {
        for party in faulty {
            self.fault(*party, |f| f.invalid_shares += 1);
        }
        let Some(pending) = self.pending.get_mut(hash) else {
            return (false, Vec::new());
        };
        pending.combining = false;
        let mut forgotten = Vec::new();
        for party in faulty {
            if pending.shares.remove(party).is_some() {
                forgotten.push(*party);
            }
            pending.excluded.insert(*party);
        }
        if forgotten.is_empty() {
            pending.failed_version = Some(version);
        } else {
            pending.version += 1;
        }
        let newly = !pending.proofs_requested;
        pending.proofs_requested = true;
        (newly, forgotten)
    }

    /// Objects whose peers should be asked again (last asked before `due`); marks them asked.
    pub fn due_requests(&mut self, due: Instant, now: Instant) -> (Vec<Hash>, Vec<Hash>) {
        let (mut plain, mut proven) = (Vec::new(), Vec::new());
        for (hash, pending) in self.pending.iter_mut() {
            if pending.last_request <= due {
                pending.last_request = now;
                if pending.proofs_requested { proven.push(*hash) } else { plain.push(*hash) }
            }
        }
        (plain, proven)
    }

    /// Whether this replica owes a share on `hash` now: it is designated and has none yet, or
    /// proofs were asked for and its share has none.
    fn owes_share(&self, hash: &Hash, pending: &Pending, now: Instant) -> bool {
        match pending.shares.get(&self.me) {
            Some(share) => pending.proofs_requested && share.proof.is_none(),
            None => pending.proofs_requested || self.designated(hash, pending, now),
        }
    }

    /// How to answer a peer's request for this replica's share on `hash` (with a proof if
    /// `with_proof`).
    pub fn answer_request(&self, hash: &Hash, with_proof: bool, now: Instant) -> RequestAnswer {
        let Some(pending) = self.pending.get(hash) else {
            return RequestAnswer::Signed;
        };
        match pending.shares.get(&self.me) {
            Some(share) if !with_proof || share.proof.is_some() => RequestAnswer::Held(share.clone()),
            None if !with_proof
                && (self.owes_share(hash, pending, now)
                    || now.saturating_duration_since(pending.registered) < ANSWER_ANY_REQUEST_AFTER) =>
            {
                RequestAnswer::Later
            }
            _ => RequestAnswer::Compute(pending.message.clone()),
        }
    }

    /// How many objects still lack a share this replica owes ([`Signer::designated`]).
    pub fn own_backlog(&self, now: Instant) -> usize {
        self.pending.iter().filter(|(hash, pending)| self.owes_share(hash, pending, now)).count()
    }

    /// How far signing is behind ordering, for the ordering pace ([`crate::server::pace`]): the
    /// objects this replica owes its share on, plus one per [`UNSIGNED_PER_BACKLOG`] objects
    /// still unsigned for any reason. The second part matters at larger n: there a replica's
    /// own shares keep up while objects wait for the others' shares, and rounds of a few
    /// requests each kept starting (28 requests per round at n = 10 with 256 clients, against
    /// 83 with this count, and throughput 27 against 36 certificates/s).
    pub fn pace_backlog(&self, now: Instant) -> usize {
        self.own_backlog(now) + self.pending.len() / UNSIGNED_PER_BACKLOG
    }

    /// Up to `limit` objects this replica owes its share on (or a share with the proof now asked
    /// for), oldest first: `(hash, message, with_proof)`.
    pub fn missing_own(&self, limit: usize, now: Instant) -> Vec<(Hash, Arc<Vec<u8>>, bool)> {
        let mut missing: Vec<(u64, Hash, Arc<Vec<u8>>, bool)> = self
            .pending
            .iter()
            .filter(|(hash, pending)| self.owes_share(hash, pending, now))
            .map(|(hash, pending)| (pending.seq, *hash, pending.message.clone(), pending.proofs_requested))
            .collect();
        missing.sort_unstable_by_key(|(seq, ..)| *seq);
        missing.truncate(limit);
        missing.into_iter().map(|(_, hash, message, with_proof)| (hash, message, with_proof)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(id: PartyId, value: u8) -> SignatureShare {
        SignatureShare { id, value: vec![value; 4], proof: None }
    }

    /// Replica 0 of 4, combining every object at once (no combiner to wait for).
    fn signer() -> Signer {
        let mut signer = Signer::new(0, 4, 1, 4).with_combine_wait(Duration::ZERO);
        signer.add_object([1; 32], ObjectKind::Certificate, 0, Arc::new(b"m".to_vec()), Instant::now());
        signer
    }

    #[test]
    fn t_plus_one_trusted_shares_make_a_combination_and_only_once() {
        let mut s = signer();
        assert_eq!(s.receive(0, [1; 32], share(0, 1)), Received::Stored);
        assert!(s.take_ready(Instant::now()).is_empty());
        assert_eq!(s.receive(2, [1; 32], share(2, 3)), Received::Stored);
        let jobs = s.take_ready(Instant::now());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].shares.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 2]);
        assert!(s.take_ready(Instant::now()).is_empty(), "running");
        s.not_enough(&[1; 32], jobs[0].version);
        assert!(s.take_ready(Instant::now()).is_empty(), "nothing changed since");
        assert_eq!(s.receive(3, [1; 32], share(3, 4)), Received::Stored);
        assert_eq!(s.take_ready(Instant::now()).len(), 1);
    }

    #[test]
    fn impersonation_equivocation_and_malformed_shares_are_attributed_to_the_sender() {
        let mut s = signer();
        let short = SignatureShare { id: 3, value: vec![1; 3], proof: None };
        assert_eq!(s.receive(3, [1; 32], short), Received::Fault);
        assert_eq!(s.faults()[3].invalid_shares, 1);
        assert_eq!(s.receive(1, [1; 32], share(2, 1)), Received::Fault);
        assert_eq!(s.faults()[1].impersonations, 1);
        assert_eq!(s.receive(1, [1; 32], share(1, 1)), Received::Stored);
        assert_eq!(s.receive(1, [1; 32], share(1, 1)), Received::Duplicate);
        assert_eq!(s.receive(1, [1; 32], share(1, 9)), Received::Fault);
        assert_eq!(s.faults()[1].equivocations, 1);
        assert_eq!(s.receive(1, [1; 32], share(1, 1)), Received::Fault, "excluded for this object");
        assert!(s.get(&[1; 32]).unwrap().shares.is_empty());
    }

    #[test]
    fn early_shares_wait_for_their_object_and_late_ones_are_ignored() {
        let mut s = Signer::new(0, 4, 1, 4);
        assert_eq!(s.receive(2, [7; 32], share(2, 1)), Received::Early);
        let stored = s.add_object([7; 32], ObjectKind::Crl, 1, Arc::new(b"crl".to_vec()), Instant::now());
        assert_eq!(stored, [(2, share(2, 1))]);
        assert!(s.finished(&[7; 32], &[], &[]).is_some());
        assert_eq!(s.receive(3, [7; 32], share(3, 1)), Received::Late);
        assert_eq!(s.signed_count(), 1);
    }

    #[test]
    fn a_failed_combination_excludes_the_faulty_and_switches_to_proofs() {
        let mut s = signer();
        s.receive(0, [1; 32], share(0, 1));
        s.receive(1, [1; 32], share(1, 2));
        let job = s.take_ready(Instant::now()).pop().unwrap();
        let (newly, forgotten) = s.failed(&job.hash, job.version, &[1]);
        assert!(newly);
        assert_eq!(forgotten, [1]);
        assert_eq!(s.faults()[1].invalid_shares, 1);
        assert_eq!(s.missing_own(usize::MAX, Instant::now()).len(), 1, "own share needs a proof now");
        // Party 1 now goes last among trusted shares.
        s.add_object([2; 32], ObjectKind::Certificate, 1, Arc::new(b"n".to_vec()), Instant::now());
        for party in [1, 3, 0] {
            s.receive(party, [2; 32], share(party, 5));
        }
        let jobs = s.take_ready(Instant::now());
        let job = jobs.iter().find(|j| j.hash == [2; 32]).unwrap();
        let order: Vec<PartyId> = job.shares.iter().map(|s| s.id).collect();
        assert_eq!(order[2], 1, "the cheater is tried last: {order:?}");
    }

    #[test]
    fn a_late_share_is_spot_checked_against_the_own_share_at_most_once_a_second_per_party() {
        let mut s = Signer::new(0, 4, 1, 4).with_combine_wait(Duration::ZERO);
        s.add_object([9; 32], ObjectKind::Certificate, 0, Arc::new(b"m".to_vec()), Instant::now());
        s.receive(0, [9; 32], share(0, 1));
        s.receive(1, [9; 32], share(1, 2));
        let job = s.take_ready(Instant::now()).pop().unwrap();
        assert!(s.finished(&job.hash, &[], &job.shares).is_some());
        assert_eq!(s.receive(3, [9; 32], share(3, 7)), Received::Late);
        let now = Instant::now();
        let check = s.spot_check(3, &[9; 32], share(3, 7), now).expect("a check");
        assert_eq!(check.shares.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 3], "own share and the late one");
        assert!(s.spot_check(3, &[9; 32], share(3, 7), now).is_none(), "once a second per party");
        assert!(s.spot_check(2, &[1; 32], share(2, 7), now).is_none(), "only recently signed objects");
        s.spot_check_failed(3);
        assert_eq!(s.faults()[3].invalid_shares, 1);
    }

    #[test]
    fn with_t_above_one_a_late_share_is_checked_with_the_own_share_and_those_the_combination_used() {
        let mut s = Signer::new(0, 7, 2, 4).with_combine_wait(Duration::ZERO);
        s.add_object([9; 32], ObjectKind::Certificate, 0, Arc::new(b"m".to_vec()), Instant::now());
        for party in [0, 2, 4] {
            s.receive(party, [9; 32], share(party, party as u8));
        }
        let job = s.take_ready(Instant::now()).pop().unwrap();
        assert!(s.finished(&job.hash, &[], &job.shares).is_some());
        assert_eq!(s.receive(6, [9; 32], share(6, 7)), Received::Late);
        let check = s.spot_check(6, &[9; 32], share(6, 7), Instant::now()).expect("a check");
        let ids: Vec<PartyId> = check.shares.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), 3, "t known-valid shares and the one checked: {ids:?}");
        assert_eq!((ids[0], ids[2]), (0, 6), "own share first, the checked one last: {ids:?}");
        let reference = ids[1];
        assert!([2, 4].contains(&reference), "the other share the combination used: {ids:?}");
        let again = s.spot_check(reference, &[9; 32], share(reference, reference as u8), Instant::now());
        assert!(again.is_none(), "a reference share is not checked against itself");
    }

    #[test]
    fn every_party_share_is_tried_first_for_some_object() {
        let mut s = signer();
        let mut first = BTreeSet::new();
        for object in 0..8u8 {
            let hash = [object; 32];
            s.add_object(hash, ObjectKind::Certificate, u64::from(object), Arc::new(vec![object]), Instant::now());
            for party in 0..4 {
                s.receive(party, hash, share(party, object));
            }
        }
        for job in s.take_ready(Instant::now()) {
            first.insert(job.shares[0].id);
        }
        assert_eq!(first.len(), 4, "a bad share from any party is eventually tried and caught");
    }

    #[test]
    fn the_pace_backlog_counts_owed_shares_and_one_per_sixteen_unsigned_objects() {
        let mut s = Signer::new(0, 4, 1, 4);
        let now = Instant::now();
        for object in 0..32u8 {
            s.add_object([object; 32], ObjectKind::Certificate, 0, Arc::new(vec![object]), now);
        }
        // The rotation of [b; 32] starts at party b % 4: party 0 signs those starting at 3 or 0.
        assert_eq!(s.pace_backlog(now), 16 + 2, "designated for half, no share yet");
        for object in 0..32u8 {
            s.receive(0, [object; 32], share(0, 1));
        }
        assert_eq!(s.pace_backlog(now), 2, "own shares done; 32 objects still unsigned");
        for object in 0..17u8 {
            assert!(s.finished(&[object; 32], &[], &[]).is_some());
        }
        assert_eq!(s.pace_backlog(now), 0);
    }

    /// An object whose rotation starts at party `start` modulo the number of parties.
    fn rotated(start: u16) -> Hash {
        let mut hash = [0xaa; 32];
        hash[30..].copy_from_slice(&start.to_be_bytes());
        hash
    }

    #[test]
    fn every_object_is_signed_by_t_plus_one_parties_and_each_party_signs_its_fair_part() {
        for (n, t) in [(4, 1), (7, 2), (10, 3)] {
            let now = Instant::now();
            let mut signers: Vec<Signer> = (0..n).map(|me| Signer::new(me, n, t, 4)).collect();
            let objects: Vec<Hash> = (0..1000u16).map(|i| rotated(i.wrapping_mul(7919))).collect();
            let mut signed_by = vec![0usize; n];
            for (seq, hash) in objects.iter().enumerate() {
                for signer in &mut signers {
                    signer.add_object(*hash, ObjectKind::Certificate, seq as u64, Arc::new(vec![]), now);
                }
                let designated: Vec<PartyId> = (0..n)
                    .filter(|me| signers[*me].designated(hash, signers[*me].get(hash).expect("registered"), now))
                    .collect();
                assert_eq!(designated.len(), t + 1, "n = {n}, object {seq}: {designated:?}");
                for party in designated {
                    signed_by[party] += 1;
                }
            }
            let fair = 1000 * (t + 1) / n;
            for (party, count) in signed_by.iter().enumerate() {
                assert!(count.abs_diff(fair) <= fair / 10, "n = {n}: party {party} signs {count}, fair {fair}");
            }
            assert_eq!(
                signers[0].missing_own(usize::MAX, now).len(),
                signed_by[0],
                "it owes what it is designated for"
            );
        }
    }

    #[test]
    fn a_designated_party_silent_for_silent_after_is_passed_over_by_the_next_in_the_rotation() {
        let start = Instant::now();
        let later = |ms: u64| start + Duration::from_millis(ms);
        let silent = SILENT_AFTER.as_millis() as u64;
        let hash = rotated(0);
        let fresh = || {
            let mut s = Signer::new(3, 4, 1, 4);
            s.add_object(hash, ObjectKind::Certificate, 0, Arc::new(b"m".to_vec()), start);
            s
        };
        let owes = |s: &Signer, at: Instant| s.missing_own(usize::MAX, at).len() == 1;

        let mut s = fresh();
        assert!(!owes(&s, start), "parties 0 and 1 sign it");
        assert!(!owes(&s, later(silent - 1)), "they have until SILENT_AFTER");
        assert!(owes(&s, later(silent)), "both silent: parties 2 and 3 sign it");

        s.heard_from(1, later(silent - 100));
        s.heard_from(2, later(silent - 100));
        assert!(!owes(&s, later(silent)), "1 and 2 sent shares 100 ms ago: only 0 is passed over, 1 and 2 sign");
        assert!(owes(&s, later(2 * silent - 100)), "and then they fell silent too");

        let mut s = fresh();
        s.receive(0, hash, share(0, 1));
        s.receive(1, hash, share(1, 2));
        assert!(!owes(&s, later(10 * silent)), "their shares are in: silence afterwards does not matter");
    }

    /// Replica 2 of 4 (t = 1) with `objects` registered in this order.
    fn replica_2_of_4(objects: &[Hash], now: Instant) -> Signer {
        let mut s = Signer::new(2, 4, 1, 4);
        for (seq, hash) in objects.iter().enumerate() {
            s.add_object(*hash, ObjectKind::Certificate, seq as u64, Arc::new(vec![seq as u8]), now);
        }
        s
    }

    #[test]
    fn a_designated_party_whose_link_is_down_is_passed_over_at_once_and_taken_back_when_up() {
        let now = Instant::now();
        let mut s = replica_2_of_4(&[rotated(0)], now);
        assert!(s.missing_own(usize::MAX, now).is_empty(), "parties 0 and 1 sign it");
        s.set_links_down(&[false, true, false, false]);
        assert_eq!(s.missing_own(usize::MAX, now).len(), 1, "party 1 is down: parties 0 and 2 sign");
        s.set_links_down(&[false; 4]);
        assert!(s.missing_own(usize::MAX, now).is_empty());
    }

    /// Replica `me` of 4 (default combine wait) holding the shares of parties 0 and 1 on
    /// `rotated(0)`, which parties 0 and 1 sign and party 0 combines.
    fn shares_of_0_and_1_at(me: PartyId, now: Instant) -> Signer {
        let mut s = Signer::new(me, 4, 1, 4);
        s.add_object(rotated(0), ObjectKind::Certificate, 0, Arc::new(b"m".to_vec()), now);
        for party in [0, 1] {
            assert_eq!(s.receive(party, rotated(0), share(party, 1)), Received::Stored);
        }
        s
    }

    #[test]
    fn only_the_combiner_combines_at_once_and_the_others_after_waiting_for_its_signature() {
        let now = Instant::now();
        let mut combiner = shares_of_0_and_1_at(0, now);
        assert_eq!(combiner.combiner(&rotated(0), combiner.get(&rotated(0)).unwrap(), now), Some(0));
        assert_eq!(combiner.take_ready(now).len(), 1);
        for me in [1, 2, 3] {
            let mut s = shares_of_0_and_1_at(me, now);
            assert!(s.take_ready(now).is_empty(), "replica {me} waits for party 0's signature");
            assert!(s.take_ready(now + COMBINE_WAIT - Duration::from_millis(1)).is_empty());
            assert_eq!(s.take_ready(now + COMBINE_WAIT).len(), 1, "replica {me} waited long enough");
            assert_eq!(s.combinations(), 1);
        }
    }

    #[test]
    fn a_combiner_whose_link_is_down_is_replaced_at_once_by_the_next_signer() {
        let now = Instant::now();
        let mut s = shares_of_0_and_1_at(1, now);
        s.set_links_down(&[true, false, false, false]);
        assert_eq!(s.take_ready(now).len(), 1, "party 0 gave its share but cannot send the signature");
        let mut other = shares_of_0_and_1_at(2, now);
        other.set_links_down(&[true, false, false, false]);
        assert!(other.take_ready(now).is_empty(), "party 1 combines, not party 2");
    }

    #[test]
    fn after_a_failed_combination_every_replica_that_saw_it_combines_with_proofs() {
        let now = Instant::now();
        let mut s = shares_of_0_and_1_at(2, now);
        assert!(s.take_ready(now).is_empty());
        let job = s.take_ready(now + COMBINE_WAIT).pop().unwrap();
        let (newly, _) = s.failed(&rotated(0), job.version, &[]);
        assert!(newly, "proofs are asked for");
        let mut proven = share(1, 1);
        proven.proof = Some(threshold::rsa::ShareProof { c: vec![1], z: vec![2] });
        assert_eq!(s.receive(1, rotated(0), proven), Received::Stored);
        assert_eq!(s.take_ready(now).len(), 1, "no waiting for the combiner once proofs are needed");
    }

    #[test]
    fn a_replica_signed_by_a_peers_signature_spot_checks_the_shares_it_holds_against_its_own() {
        let now = Instant::now();
        let mut s = shares_of_0_and_1_at(1, now);
        assert!(s.take_ready(now).is_empty(), "party 0 combines");
        let pending = s.finished(&rotated(0), &[], &[]).expect("pending");
        let checks = s.spot_checks_of(&rotated(0), &pending, now);
        assert_eq!(checks.len(), 1);
        let (party, job) = &checks[0];
        assert_eq!(*party, 0, "party 0's share, which no combination here used");
        assert_eq!(job.shares.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 0], "checked with the own share");
        let mut bystander = shares_of_0_and_1_at(2, now);
        let pending = bystander.finished(&rotated(0), &[], &[]).expect("pending");
        assert!(bystander.spot_checks_of(&rotated(0), &pending, now).is_empty(), "no own share to check with");
    }

    #[test]
    fn what_is_kept_early_and_then_taken_leaves_no_trace_even_behind_an_object_never_registered() {
        let mut early: Early<u8> = Early::new(1_000);
        early.keep(0, [0xff; 32], 1);
        for i in 0..10_000u32 {
            let mut hash = [0; 32];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            early.keep(1, hash, 2);
            assert_eq!(early.take(&hash), [(1, 2)]);
        }
        assert_eq!(early.count, 1);
        assert!(early.order.len() <= 66, "{} places kept", early.order.len());
        assert_eq!(early.take(&[0xff; 32]), [(0, 1)]);
    }

    #[test]
    fn a_signature_for_an_object_not_registered_yet_is_kept_until_it_is() {
        let now = Instant::now();
        let mut s = Signer::new(2, 4, 1, 4);
        s.keep_early_signature(0, rotated(0), vec![7; 4]);
        s.keep_early_signature(0, rotated(0), vec![8; 4]);
        s.keep_early_signature(9, rotated(0), vec![9; 4]);
        s.keep_early_signature(1, rotated(0), vec![9; 5000]);
        s.add_object(rotated(0), ObjectKind::Certificate, 0, Arc::new(b"m".to_vec()), now);
        assert_eq!(s.take_early_signatures(&rotated(0)), [(0, vec![7; 4])], "one per known peer, of the right length");
        assert!(s.take_early_signatures(&rotated(0)).is_empty());
        s.keep_early_signature(1, rotated(0), vec![7; 4]);
        assert!(s.take_early_signatures(&rotated(0)).is_empty(), "registered: checked at once instead");
    }

    #[test]
    fn a_designated_party_that_gave_a_share_on_a_later_object_but_not_this_one_is_passed_over() {
        let (first, second) = (rotated(0), rotated(4));
        let now = Instant::now();
        let mut s = replica_2_of_4(&[first, second], now);
        assert!(s.missing_own(usize::MAX, now).is_empty(), "parties 0 and 1 sign both");
        s.receive(0, first, share(0, 1));
        s.receive(0, second, share(0, 2));
        s.receive(1, second, share(1, 3));
        let owed = s.missing_own(usize::MAX, now);
        assert_eq!(owed.len(), 1, "party 1 skipped the first object: party 2 signs it");
        assert_eq!(owed[0].0, first);
    }

    #[test]
    fn a_request_is_answered_with_a_held_share_and_computes_an_unowed_one_only_after_the_wait() {
        let (hash, message) = (rotated(0), Arc::new(vec![0u8]));
        let start = Instant::now();
        let wait = ANSWER_ANY_REQUEST_AFTER;
        let mut s = replica_2_of_4(&[hash], start);
        assert_eq!(s.answer_request(&[9; 32], false, start), RequestAnswer::Signed, "not pending here");
        assert_eq!(s.answer_request(&hash, false, start), RequestAnswer::Later, "parties 0 and 1 sign it");
        // Parties 0 and 1 are alive (so not passed over) but have not given their shares in time.
        s.heard_from(0, start + wait);
        s.heard_from(1, start + wait);
        assert_eq!(s.answer_request(&hash, false, start + wait), RequestAnswer::Compute(message.clone()));
        assert_eq!(s.answer_request(&hash, true, start), RequestAnswer::Compute(message.clone()), "proofs at once");
        s.receive(2, hash, share(2, 1));
        assert_eq!(s.answer_request(&hash, false, start), RequestAnswer::Held(share(2, 1)));
        assert_eq!(s.answer_request(&hash, true, start), RequestAnswer::Compute(message), "it has no proof");

        let mut s = replica_2_of_4(&[hash], start);
        s.set_links_down(&[false, true, false, false]);
        assert_eq!(s.answer_request(&hash, false, start), RequestAnswer::Later, "owed: it comes in its turn");
    }

    #[test]
    fn a_party_caught_cheating_is_passed_over_at_once() {
        let hash = rotated(0);
        let now = Instant::now();
        let mut s = replica_2_of_4(&[hash], now);
        assert!(s.missing_own(usize::MAX, now).is_empty());
        s.malformed_message(1);
        assert_eq!(s.missing_own(usize::MAX, now).len(), 1, "party 1 is passed over: parties 0 and 2 sign");
        assert_eq!(s.own_shares_computed(), 0);
        s.receive(2, hash, share(2, 1));
        assert_eq!(s.own_shares_computed(), 1);
        assert!(s.missing_own(usize::MAX, now).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Whatever object and whichever `t` or fewer parties are down (and seen down by all),
        /// exactly `t + 1` of the live parties sign it, so no share is missing and none is spent
        /// twice.
        #[test]
        fn with_up_to_t_parties_down_exactly_t_plus_one_live_parties_sign_each_object(
            config in 0usize..3,
            hash in proptest::prelude::any::<[u8; 32]>(),
            down_picks in proptest::collection::vec(0usize..10, 0..4),
        ) {
            let (n, t) = [(4, 1), (7, 2), (10, 3)][config];
            let mut down = vec![false; n];
            for pick in down_picks.into_iter().take(t) {
                down[pick % n] = true;
            }
            let now = Instant::now();
            let mut live_signers = 0;
            for me in (0..n).filter(|me| !down[*me]) {
                let mut s = Signer::new(me, n, t, 4);
                s.add_object(hash, ObjectKind::Certificate, 0, Arc::new(vec![]), now);
                s.set_links_down(&down);
                live_signers += usize::from(s.designated(&hash, s.get(&hash).expect("registered"), now));
            }
            proptest::prop_assert_eq!(live_signers, t + 1);
        }
    }

    #[test]
    fn messages_round_trip_and_oversized_ones_are_refused() {
        let message = SigningMessage::Request { hashes: vec![[3; 32]], with_proof: true };
        assert_eq!(SigningMessage::decode(&message.encode()), Ok(message));
        let shares = SigningMessage::Shares { shares: vec![HashedShare { hash: [1; 32], share: share(1, 2) }] };
        assert_eq!(SigningMessage::decode(&shares.encode()), Ok(shares));
        let big = SigningMessage::Request { hashes: vec![[0; 32]; MAX_ITEMS_PER_MESSAGE + 1], with_proof: false };
        assert_eq!(SigningMessage::decode(&big.encode()), Err(MessageError::TooManyItems(MAX_ITEMS_PER_MESSAGE + 1)));
        assert!(matches!(SigningMessage::decode(b"junk"), Err(MessageError::Malformed(_))));
        assert_eq!(chunked(&[[0u8; 32]; 600], |hashes| SigningMessage::Request { hashes, with_proof: false }).len(), 3);
    }
}
