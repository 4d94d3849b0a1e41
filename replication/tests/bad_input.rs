//! Bad input from a peer: garbage, invalid shares, impossible instances and floods of far-future
//! messages are faults of that peer (or ignored), never a panic, and never unbounded memory.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replication::agreement::binary::{AbbaInput, AbbaMessage, BinaryAgreement, MAX_FUTURE_ROUNDS, ProofValidator};
use replication::agreement::validated::{MvbaMessage, ValidatedAgreement};
use replication::atomic::batch::SignedBatch;
use replication::atomic::{AbcConfig, AbcInput, AbcMessage, AtomicBroadcast};
use replication::broadcast::consistent::{CbcMessage, ConsistentBroadcast};
use replication::broadcast::reliable::RbcMessage;
use replication::crypto::standin::StandinCluster;
use replication::crypto::{NetworkInfo, SignatureShare};
use replication::{FaultKind, InstanceId, Protocol, wire};
use std::sync::Arc;

fn cluster(n: usize, t: usize) -> (StandinCluster, ChaCha8Rng) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (StandinCluster::deal(n, t, &mut rng), rng)
}

fn info(c: &StandinCluster, id: usize) -> Arc<NetworkInfo> {
    Arc::new(c.network_info(id))
}

#[test]
fn garbage_bytes_are_a_fault_of_their_sender_never_a_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let valid = wire::encode(&AbcMessage::Disseminate { sender: 1, seq: 0, message: RbcMessage::Send(vec![1, 2, 3]) })
        .expect("encodes");
    // Length prefixes claiming huge arrays, maps and byte strings must not allocate them.
    let mut samples: Vec<Vec<u8>> = vec![
        vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x81; 10_000],
        Vec::new(),
    ];
    for _ in 0..20_000 {
        let mut bytes =
            if rng.r#gen() { valid.clone() } else { (0..rng.gen_range(0..64)).map(|_| rng.r#gen()).collect() };
        if !bytes.is_empty() {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] ^= 1 << rng.gen_range(0..8);
        }
        samples.push(bytes);
    }
    for bytes in samples {
        if let Err(fault) = wire::decode::<AbcMessage>(3, &bytes) {
            assert_eq!((fault.party, fault.kind), (3, FaultKind::Undecodable));
        }
    }
    let oversized = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
    assert!(wire::decode::<AbcMessage>(2, &oversized).is_err());
}

#[test]
fn invalid_echo_share_is_attributed_to_its_signer() {
    let (c, mut rng) = cluster(4, 1);
    let id = InstanceId::root(1);
    let mut sender = ConsistentBroadcast::new(info(&c, 0), id.clone(), 0, Arc::new(|_: &[u8]| true));
    let _ = sender.handle_input(b"value".to_vec(), &mut rng);
    let mut echoes: Vec<CbcMessage> = (0..4)
        .map(|p| {
            let mut node = ConsistentBroadcast::new(info(&c, p), id.clone(), 0, Arc::new(|_: &[u8]| true));
            let step = node.handle_message(0, CbcMessage::Send(b"value".to_vec()), &mut rng);
            step.messages.into_iter().next().expect("an echo").message
        })
        .collect();
    let own = echoes.remove(0);
    let (good1, good3) = (echoes[0].clone(), echoes[2].clone());
    let bad2 = CbcMessage::Echo(SignatureShare { id: 2, bytes: vec![0; 32] });
    let mut faults = Vec::new();
    let mut finals = 0;
    for (from, msg) in [(1, good1), (2, bad2), (3, good3)] {
        let step = sender.handle_message(from, msg, &mut rng);
        faults.extend(step.faults);
        finals += step.messages.iter().filter(|m| matches!(m.message, CbcMessage::Final(..))).count();
    }
    assert_eq!(finals, 0, "two valid shares are not a quorum of three");
    assert!(faults.iter().all(|f| f.party == 2 && f.kind == FaultKind::InvalidSignatureShare));
    assert_eq!(faults.len(), 1);
    let step = sender.handle_message(0, own, &mut rng);
    assert!(step.messages.iter().any(|m| matches!(m.message, CbcMessage::Final(..))));
}

#[test]
fn far_future_binary_agreement_rounds_do_not_grow_memory() {
    let (c, mut rng) = cluster(4, 1);
    let mut abba = BinaryAgreement::new(info(&c, 0), InstanceId::root(2), None);
    for round in 1..20_000u64 {
        let share = SignatureShare { id: 1, bytes: vec![round as u8; 32] };
        let _ = abba.handle_message(1, AbbaMessage::Coin { round, share }, &mut rng);
    }
    assert!(abba.rounds_held() as u64 <= MAX_FUTURE_ROUNDS + 1, "{} rounds held", abba.rounds_held());
}

/// Proofs are not unique (a quorum certificate may have other signers), so a peer can make any
/// number of valid ones: its pre-processing vote is checked once, and repeats cost nothing.
#[test]
fn a_peer_repeating_its_pre_processing_vote_with_fresh_proofs_has_its_proof_checked_once() {
    let (c, mut rng) = cluster(4, 1);
    let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = checks.clone();
    let validator: ProofValidator = Arc::new(move |proof: &[u8]| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        proof.starts_with(b"valid")
    });
    let id = InstanceId::root(4);
    // Party 1's real vote for 1, with a valid proof.
    let mut peer = BinaryAgreement::new(info(&c, 1), id.clone(), Some(validator.clone()));
    let step = peer.handle_input(AbbaInput { value: true, proof: Some(b"valid 0".to_vec()) }, &mut rng);
    let Some(AbbaMessage::PreProcess { value, share, .. }) = step.messages.first().map(|m| m.message.clone()) else {
        panic!("no pre-processing vote: {:?}", step.messages);
    };
    let mut abba = BinaryAgreement::new(info(&c, 0), id, Some(validator));
    checks.store(0, std::sync::atomic::Ordering::Relaxed);
    for i in 0..100 {
        let proof = Some(format!("valid {i}").into_bytes());
        let step = abba.handle_message(1, AbbaMessage::PreProcess { value, share: share.clone(), proof }, &mut rng);
        assert!(step.faults.is_empty(), "repeat {i}: {:?}", step.faults);
    }
    assert_eq!(checks.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The other value is still an equivocation.
    let step = abba.handle_message(1, AbbaMessage::PreProcess { value: !value, share, proof: None }, &mut rng);
    assert_eq!(step.faults.iter().map(|f| f.kind).collect::<Vec<_>>(), vec![FaultKind::Equivocation]);
}

#[test]
fn far_future_atomic_broadcast_messages_are_bounded_per_peer() {
    let (c, mut rng) = cluster(4, 1);
    let config = AbcConfig::default();
    let mut abc = AtomicBroadcast::new(info(&c, 0), InstanceId::root(3), config);
    let _ = abc.handle_input(AbcInput::Clock(5), &mut rng);
    for i in 0..20_000u64 {
        let batch = SignedBatch { signer: 1, round: 1_000 + i, clock: 0, requests: Vec::new(), signature: Vec::new() };
        let _ = abc.handle_message(1, AbcMessage::Batch(batch), &mut rng);
        let committed = MvbaMessage::Committed { proposals: Vec::new() };
        let _ = abc.handle_message(1, AbcMessage::Mvba { round: 50_000 + i, message: committed }, &mut rng);
    }
    assert!(abc.future_buffered() <= config.future_buffer_per_peer);
    assert!(abc.instances_held() as u64 <= config.future_rounds + 1 + config.keep_rounds);
}

#[test]
fn messages_naming_impossible_instances_are_faults_of_their_sender() {
    let (c, mut rng) = cluster(4, 1);
    let mut mvba = ValidatedAgreement::new(info(&c, 0), InstanceId::root(4), Arc::new(|_: &[u8]| true));
    let step = mvba.handle_message(2, MvbaMessage::Cbc { proposer: 99, message: CbcMessage::Send(vec![1]) }, &mut rng);
    assert_eq!(step.faults.len(), 1);
    assert_eq!((step.faults[0].party, step.faults[0].kind), (2, FaultKind::ImpossibleInstance));
    let step = mvba.handle_message(3, MvbaMessage::Vote { index: 99, candidate: 0, proposal: None }, &mut rng);
    assert_eq!((step.faults[0].party, step.faults[0].kind), (3, FaultKind::ImpossibleInstance));
    let step = mvba.handle_message(3, MvbaMessage::Want { candidate: 99, digest: [0; 32] }, &mut rng);
    assert_eq!((step.faults[0].party, step.faults[0].kind), (3, FaultKind::ImpossibleInstance));
    let step = mvba.handle_message(
        1,
        MvbaMessage::Abba {
            index: u64::MAX,
            message: AbbaMessage::Coin { round: 1, share: SignatureShare { id: 1, bytes: vec![] } },
        },
        &mut rng,
    );
    assert_eq!((step.faults[0].party, step.faults[0].kind), (1, FaultKind::ImpossibleInstance));
    let _ = rng.next_u32();
}
