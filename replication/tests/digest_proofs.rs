//! Proofs by digest: the agreement's votes, commitments and ABBA proofs name a proposal by
//! digest, and a party that decides a proposal it never received fetches it (`Want`, answered
//! with `Value`).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replication::agreement::validated::{MvbaMessage, MvbaOutput, ValidatedAgreement, verify_output};
use replication::atomic::{AbcConfig, AbcInput, AbcMessage, AtomicBroadcast, DeliveredRound};
use replication::broadcast::consistent::{
    CbcMessage, ConsistentBroadcast, Validator, verify_proof, verify_value_proof,
};
use replication::crypto::digest;
use replication::crypto::standin::StandinCluster;

mod common;
use common::deliver_all;
use replication::{Fault, FaultKind, InstanceId, PartyId, Protocol, Target, wire};
use std::collections::VecDeque;
use std::sync::Arc;

const N: usize = 4;
const T: usize = 1;

fn predicate() -> Validator {
    Arc::new(|v: &[u8]| v.first() != Some(&0xff))
}

fn instance() -> InstanceId {
    InstanceId::root(42)
}

/// A proposal of `len` bytes from `party`.
fn proposal(party: PartyId, len: usize) -> Vec<u8> {
    let mut value = vec![party as u8 + 1; len];
    value[0] = 1;
    value
}

/// What the test's network does with a message.
enum Fate {
    Deliver(MvbaMessage),
    Drop,
    /// Delivered once nothing else is left.
    Hold(MvbaMessage),
}

/// Four agreement instances and a FIFO network under the test's control.
struct Net {
    nodes: Vec<ValidatedAgreement>,
    queue: VecDeque<(PartyId, PartyId, MvbaMessage)>,
    outputs: Vec<Vec<MvbaOutput>>,
    faults: Vec<Vec<Fault>>,
    /// Every message sent: (from, to, message).
    sent: Vec<(PartyId, PartyId, MvbaMessage)>,
    rng: ChaCha8Rng,
}

impl Net {
    fn new(proposal_len: usize) -> Net {
        Net::with_seed(proposal_len, 11)
    }

    fn with_seed(proposal_len: usize, seed: u64) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cluster = StandinCluster::deal(N, T, &mut rng);
        let nodes = (0..N)
            .map(|i| ValidatedAgreement::new(Arc::new(cluster.network_info(i)), instance(), predicate()))
            .collect();
        let mut net = Net {
            nodes,
            queue: VecDeque::new(),
            outputs: vec![Vec::new(); N],
            faults: vec![Vec::new(); N],
            sent: Vec::new(),
            rng,
        };
        for i in 0..N {
            let step = net.nodes[i].handle_input(proposal(i, proposal_len), &mut net.rng);
            net.take(i, step);
        }
        net
    }

    fn take(&mut self, from: PartyId, step: replication::Step<MvbaMessage, MvbaOutput>) {
        for m in step.messages {
            let targets: Vec<PartyId> = match m.target {
                Target::All => (0..N).collect(),
                Target::Node(to) => vec![to],
            };
            for to in targets {
                self.sent.push((from, to, m.message.clone()));
                self.queue.push_back((from, to, m.message.clone()));
            }
        }
        self.outputs[from].extend(step.output);
        self.faults[from].extend(step.faults);
    }

    fn deliver(&mut self, from: PartyId, to: PartyId, message: MvbaMessage) {
        let step = self.nodes[to].handle_message(from, message, &mut self.rng);
        self.take(to, step);
    }

    /// Delivers everything, first in first out; `filter` may drop a message, change it, or
    /// hold it back until nothing else is left.
    fn run(&mut self, mut filter: impl FnMut(PartyId, PartyId, MvbaMessage) -> Fate) {
        let mut held: VecDeque<(PartyId, PartyId, MvbaMessage)> = VecDeque::new();
        loop {
            let (from, to, message, was_held) = match self.queue.pop_front() {
                Some((f, t, m)) => (f, t, m, false),
                None => match held.pop_front() {
                    Some((f, t, m)) => (f, t, m, true),
                    None => return,
                },
            };
            if was_held {
                self.deliver(from, to, message);
                continue;
            }
            match filter(from, to, message) {
                Fate::Deliver(message) => self.deliver(from, to, message),
                Fate::Drop => {}
                Fate::Hold(message) => held.push_back((from, to, message)),
            }
        }
    }
}

/// The consistent-broadcast messages of `proposer` that carry its value.
fn carries_value_of(message: &MvbaMessage, proposer: PartyId) -> bool {
    matches!(message, MvbaMessage::Cbc { proposer: p, message: CbcMessage::Send(_) | CbcMessage::Final(..) } if *p == proposer)
}

/// The candidate everyone decides when nothing is dropped (the coin, hence the order, does not
/// depend on the schedule), and a party other than it.
fn decided_candidate_and_victim() -> (PartyId, PartyId) {
    let mut net = Net::new(64);
    net.run(|_, _, m| Fate::Deliver(m));
    let decided = net.outputs[0][0].proposer;
    (decided, (decided + 1) % N)
}

fn assert_all_agree_and_verify(net: &Net) -> MvbaOutput {
    let first = net.outputs[0][0].clone();
    for (i, outputs) in net.outputs.iter().enumerate() {
        assert_eq!(outputs.len(), 1, "node {i} output {} values", outputs.len());
        assert_eq!(outputs[0], first, "node {i} decided something else");
        assert!(verify_output(&net.nodes[i].public_keys(), &instance(), &predicate(), &outputs[0]));
    }
    first
}

#[test]
fn a_party_that_never_received_a_candidates_proposal_still_outputs_it_after_abba_decides_one_via_want() {
    let (decided, victim) = decided_candidate_and_victim();
    let mut net = Net::new(64);
    // The victim never sees the decided candidate's value in its consistent broadcast.
    net.run(|_, to, m| if to == victim && carries_value_of(&m, decided) { Fate::Drop } else { Fate::Deliver(m) });
    let out = assert_all_agree_and_verify(&net);
    assert_eq!(out.proposer, decided);
    assert_eq!(out.value, proposal(decided, 64));
    let wants: Vec<_> = net.sent.iter().filter(|(_, _, m)| matches!(m, MvbaMessage::Want { .. })).collect();
    assert!(wants.iter().all(|(from, _, _)| *from == victim), "only the victim lacked the value");
    assert_eq!(wants.len(), N, "the victim asked once (a broadcast)");
    let answers = net.sent.iter().filter(|(_, to, m)| *to == victim && matches!(m, MvbaMessage::Value { .. })).count();
    assert!(answers >= 1);
    assert!(net.faults.iter().all(Vec::is_empty), "no honest party is blamed: {:?}", net.faults);
}

#[test]
fn a_forged_answer_to_want_is_blamed_on_its_sender_and_does_not_stop_the_party() {
    let (decided, victim) = decided_candidate_and_victim();
    let forger = (victim + 1) % N;
    let mut net = Net::new(64);
    let mut forged = false;
    net.run(|from, to, m| {
        if to == victim && carries_value_of(&m, decided) {
            return Fate::Drop;
        }
        match m {
            // The forger's answer is falsified and arrives first; the honest answers wait.
            MvbaMessage::Value { candidate, mut value } if to == victim && from == forger => {
                value[0] ^= 1;
                forged = true;
                Fate::Deliver(MvbaMessage::Value { candidate, value })
            }
            m @ MvbaMessage::Value { .. } if to == victim && !forged => Fate::Hold(m),
            m => Fate::Deliver(m),
        }
    });
    assert!(forged, "the forger answered the victim's Want");
    let out = assert_all_agree_and_verify(&net);
    assert_eq!(out.value, proposal(decided, 64));
    assert_eq!(net.faults[victim], vec![Fault::new(forger, FaultKind::InvalidValue)]);
    for (i, faults) in net.faults.iter().enumerate() {
        assert!(i == victim || faults.is_empty(), "node {i} blamed {faults:?}");
    }
}

#[test]
fn want_is_answered_after_deciding_once_per_asker_and_only_for_a_held_value() {
    let mut net = Net::new(64);
    net.run(|_, _, m| Fate::Deliver(m));
    let out = assert_all_agree_and_verify(&net);
    let want = MvbaMessage::Want { candidate: out.proposer, digest: digest(&out.value) };
    let answerer = (out.proposer + 1) % N;
    let asker = (out.proposer + 2) % N;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // A request for a digest nobody holds gets nothing, and does not use up the asker's answer.
    let unknown = MvbaMessage::Want { candidate: out.proposer, digest: [7; 32] };
    let step = net.nodes[answerer].handle_message(asker, unknown, &mut rng);
    assert!(step.messages.is_empty() && step.faults.is_empty());
    let step = net.nodes[answerer].handle_message(asker, want.clone(), &mut rng);
    assert_eq!(step.messages.len(), 1);
    assert_eq!(step.messages[0].target, Target::Node(asker));
    assert_eq!(step.messages[0].message, MvbaMessage::Value { candidate: out.proposer, value: out.value.clone() });
    // The same asker again, for any value: no more answers.
    for _ in 0..3 {
        let step = net.nodes[answerer].handle_message(asker, want.clone(), &mut rng);
        assert!(step.messages.is_empty());
    }
    // An unsolicited answer is ignored, not blamed (the receiver asked for nothing).
    let bogus = MvbaMessage::Value { candidate: out.proposer, value: vec![0xee; 10] };
    let step = net.nodes[answerer].handle_message(asker, bogus, &mut rng);
    assert!(step.is_empty());
}

#[test]
fn messages_other_than_the_broadcasts_and_want_answers_carry_no_proposal() {
    const LEN: usize = 50_000;
    let (decided, victim) = decided_candidate_and_victim();
    let mut net = Net::new(LEN);
    net.run(|_, to, m| if to == victim && carries_value_of(&m, decided) { Fate::Drop } else { Fate::Deliver(m) });
    assert_all_agree_and_verify(&net);
    for (from, to, m) in &net.sent {
        let size = wire::encode(m).expect("encodes").len();
        let carries = matches!(
            m,
            MvbaMessage::Cbc { message: CbcMessage::Send(_) | CbcMessage::Final(..), .. } | MvbaMessage::Value { .. }
        );
        if !carries {
            assert!(size < 2_000, "{from} -> {to}: {size} bytes in {m:?}");
        }
    }
}

#[test]
fn a_consistent_broadcast_proof_verifies_from_the_digest_alone() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cluster = StandinCluster::deal(N, T, &mut rng);
    let id = InstanceId::root(9);
    let mut nodes: Vec<ConsistentBroadcast> = (0..N)
        .map(|i| ConsistentBroadcast::new(Arc::new(cluster.network_info(i)), id.clone(), 0, predicate()))
        .collect();
    let value = proposal(0, 1_000);
    let mut queue: VecDeque<(PartyId, Target, CbcMessage)> = VecDeque::new();
    let step = nodes[0].handle_input(value.clone(), &mut rng);
    queue.extend(step.messages.into_iter().map(|m| (0, m.target, m.message)));
    let outputs: Vec<_> = deliver_all(&mut nodes, queue, &mut rng).into_iter().flatten().collect();
    assert_eq!(outputs.len(), N);
    let public = nodes[1].info_public();
    for out in &outputs {
        assert_eq!(out.digest, digest(&value));
        assert!(verify_proof(&public, &id, &out.digest, &out.proof));
        assert!(verify_value_proof(&public, &id, &value, &out.proof));
        assert!(!verify_proof(&public, &id, &digest(b"another value"), &out.proof));
        assert!(!verify_proof(&public, &InstanceId::root(10), &out.digest, &out.proof));
    }
}

/// Four atomic broadcast replicas run to round `rounds` delivered everywhere.
fn atomic_cluster() -> (Vec<AtomicBroadcast>, Vec<Vec<DeliveredRound>>, ChaCha8Rng) {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let cluster = StandinCluster::deal(N, T, &mut rng);
    let id = InstanceId::root(77);
    let config = AbcConfig { max_batch: 2, ..AbcConfig::default() };
    let mut nodes: Vec<AtomicBroadcast> =
        (0..N).map(|i| AtomicBroadcast::new(Arc::new(cluster.network_info(i)), id.clone(), config)).collect();
    let mut queue: VecDeque<(PartyId, Target, AbcMessage)> = VecDeque::new();
    let mut outputs = vec![Vec::new(); N];
    for (i, node) in nodes.iter_mut().enumerate() {
        let _ = node.handle_input(AbcInput::Clock(1_000 + i as u64), &mut rng);
        let step = node.handle_input(AbcInput::Submit(vec![i as u8; 100]), &mut rng);
        queue.extend(step.messages.into_iter().map(|m| (i, m.target, m.message)));
        outputs[i].extend(step.output);
    }
    for (node, delivered) in deliver_all(&mut nodes, queue, &mut rng).into_iter().enumerate() {
        outputs[node].extend(delivered);
    }
    (nodes, outputs, rng)
}

#[test]
fn a_delivered_rounds_agreement_still_answers_want_for_its_proposal() {
    let (mut nodes, outputs, mut rng) = atomic_cluster();
    let round = &outputs[0][0];
    assert!(outputs.iter().all(|o| o.first() == Some(round)));
    assert!(nodes[0].round() > round.round);
    let proof = &round.proof;
    let want = MvbaMessage::Want { candidate: proof.proposer, digest: digest(&proof.value) };
    let step = nodes[0].handle_message(2, AbcMessage::Mvba { round: round.round, message: want.clone() }, &mut rng);
    let answers: Vec<_> = step
        .messages
        .iter()
        .filter(|m| {
            m.target == Target::Node(2)
                && matches!(&m.message, AbcMessage::Mvba { message: MvbaMessage::Value { value, .. }, .. } if *value == proof.value)
        })
        .collect();
    assert_eq!(answers.len(), 1);
    assert!(step.faults.is_empty());
}

#[test]
fn a_commitment_to_fewer_than_n_minus_t_proposals_or_with_a_bad_proof_is_blamed_and_not_counted() {
    let mut net = Net::new(64);
    // Party 3 commits to one proposal towards party 0 and with a broken proof towards party 1.
    net.run(|from, to, m| match m {
        MvbaMessage::Committed { mut proposals } if from == 3 && to == 0 => {
            proposals.truncate(1);
            Fate::Deliver(MvbaMessage::Committed { proposals })
        }
        MvbaMessage::Committed { mut proposals } if from == 3 && to == 1 => {
            proposals[0].1.proof.0[0] ^= 1;
            Fate::Deliver(MvbaMessage::Committed { proposals })
        }
        m => Fate::Deliver(m),
    });
    assert_all_agree_and_verify(&net);
    assert_eq!(net.faults[0], vec![Fault::new(3, FaultKind::InvalidJustification)]);
    assert_eq!(net.faults[1], vec![Fault::new(3, FaultKind::InvalidSignature)]);
    assert!(net.faults[2].is_empty() && net.faults[3].is_empty());
}

#[test]
fn a_party_votes_with_the_proof_of_a_proposal_it_only_saw_in_commitments() {
    // Party 3 never receives any broadcast message about party 0's proposal, so it never
    // delivers it; the others commit to it, with its proof, and party 3 votes with that proof.
    // Over several seeds (the coin, hence whether 3 ever votes on candidate 0, depends on the
    // keys) it must vote on candidate 0 at least once, and always with the proof.
    let mut votes_on_0 = 0;
    for seed in 0..20 {
        let mut net = Net::with_seed(64, seed);
        net.run(|from, to, m| match m {
            MvbaMessage::Cbc { proposer: 0, .. } if to == 3 && from != 3 => Fate::Drop,
            m => Fate::Deliver(m),
        });
        assert_all_agree_and_verify(&net);
        for (from, _, m) in &net.sent {
            if let MvbaMessage::Vote { candidate: 0, proposal, .. } = m
                && *from == 3
            {
                assert!(proposal.is_some(), "seed {seed}: party 3 voted 0 for candidate 0");
                votes_on_0 += 1;
            }
        }
        assert!(net.faults.iter().all(Vec::is_empty), "seed {seed}: {:?}", net.faults);
    }
    assert!(votes_on_0 > 0, "party 3 never had to vote on candidate 0");
}
