//! Atomic broadcast under every adversary: agreement, total order, validity, integrity (the
//! request every node submits is delivered once), agreed time within honest clocks and
//! monotonic, agreed seeds, verifiable round proofs, termination, no honest node blamed; and
//! termination when replicas submit more requests than a dissemination window.

mod common;
use replication::atomic::AbcConfig;
use replication::atomic::dissemination::WINDOW;
use replication::sim::scenarios::atomic::AtomicScenario;
use replication::sim::{Adversary, Campaign, seeds_from_env};

/// `n` nodes of one atomic broadcast instance with stand-in keys, each with its clock at 1 s,
/// and the randomness that drives them.
fn nodes(
    n: usize,
    seed: u64,
    config: AbcConfig,
) -> (Vec<replication::atomic::AtomicBroadcast>, rand_chacha::ChaCha8Rng) {
    use rand::SeedableRng;
    use replication::atomic::{AbcInput, AtomicBroadcast};
    use replication::crypto::standin::StandinCluster;
    use replication::{InstanceId, Protocol};
    use std::sync::Arc;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let cluster = StandinCluster::deal(n, (n - 1) / 3, &mut rng);
    let mut nodes: Vec<AtomicBroadcast> = (0..n)
        .map(|i| AtomicBroadcast::new(Arc::new(cluster.network_info(i)), InstanceId::root(seed), config))
        .collect();
    for node in nodes.iter_mut() {
        let _ = node.handle_input(AbcInput::Clock(1_000), &mut rng);
    }
    (nodes, rng)
}

#[test]
fn atomic_broadcast_total_order_validity_integrity_termination_under_all_adversaries() {
    common::run_all_adversaries(
        &AtomicScenario::default(),
        "atomic_broadcast_total_order_validity_integrity_termination_under_all_adversaries",
        common::seeds(1000, 100),
    );
}

#[test]
fn held_replicas_still_join_rounds_and_their_requests_are_ordered_under_all_adversaries() {
    let scenario = AtomicScenario { hold_first_t: true, ..AtomicScenario::default() };
    common::run_all_adversaries(
        &scenario,
        "held_replicas_still_join_rounds_and_their_requests_are_ordered_under_all_adversaries",
        common::seeds(300, 30),
    );
}

#[test]
fn every_request_is_ordered_when_replicas_submit_more_than_a_dissemination_window_with_t_down() {
    // More requests per replica than a dissemination window, with `t` replicas down or silent
    // at n = 3t + 1: every live replica's echo is needed, and a replica slow to deliver must
    // keep the broadcasts that reach it ahead of its window (they are sent once).
    let scenario = AtomicScenario {
        config: AbcConfig { max_batch: 100, ..AbcConfig::default() },
        max_requests_per_node: 2 * WINDOW as u32 + 16,
        ..AtomicScenario::default()
    };
    let seeds = seeds_from_env(common::seeds(20, 3));
    for (_, adversary) in Adversary::all() {
        Campaign::new(4, 1, adversary).assert_seeds(
            &scenario,
            "every_request_is_ordered_when_replicas_submit_more_than_a_dissemination_window_with_t_down",
            seeds,
        );
    }
}

#[test]
fn a_round_starts_only_once_t_plus_one_replicas_are_not_held() {
    use replication::Protocol;
    use replication::atomic::AbcInput;

    let (mut nodes, mut rng) = nodes(4, 3, AbcConfig { max_batch: 4, ..AbcConfig::default() });
    for node in nodes.iter_mut() {
        let _ = node.handle_input(AbcInput::Hold(true), &mut rng);
    }
    let outputs = common::input_and_deliver(&mut nodes, 0, AbcInput::Submit(b"held request".to_vec()), &mut rng);
    assert!(outputs.iter().all(Vec::is_empty), "all held: the request is disseminated but no round starts");
    assert!(nodes.iter().all(|node| node.round() == 0));

    // One released replica starts the round alone; the held ones join only at t + 1 batches.
    let outputs = common::input_and_deliver(&mut nodes, 0, AbcInput::Hold(false), &mut rng);
    assert!(outputs.iter().all(Vec::is_empty), "t released replicas are not enough");
    let outputs = common::input_and_deliver(&mut nodes, 1, AbcInput::Hold(false), &mut rng);
    for delivered in &outputs {
        assert_eq!(delivered.len(), 1, "t + 1 released: every replica, held ones too, delivers the round");
        assert_eq!(delivered[0].requests, vec![b"held request".to_vec()]);
    }
}

#[test]
fn a_request_submitted_again_is_dropped_within_the_remembered_rounds_and_ordered_after_them() {
    use replication::atomic::{AbcInput, AtomicBroadcast, DeliveredRound};

    let n = 4;
    let (mut nodes, mut rng) = nodes(n, 7, AbcConfig { max_batch: 4, remember_rounds: 2, ..AbcConfig::default() });
    // Submits `request` at replica 0 and runs the network dry: what each replica delivered.
    let mut submit = |nodes: &mut Vec<AtomicBroadcast>, request: &[u8]| -> Vec<Vec<DeliveredRound>> {
        common::input_and_deliver(nodes, 0, AbcInput::Submit(request.to_vec()), &mut rng)
    };
    let requests_of = |outputs: &[Vec<DeliveredRound>]| -> Vec<Vec<Vec<u8>>> {
        outputs.iter().map(|rounds| rounds.iter().flat_map(|r| r.requests.clone()).collect()).collect()
    };

    let every = |requests: &[&[u8]]| vec![requests.iter().map(|r| r.to_vec()).collect::<Vec<_>>(); n];
    assert_eq!(requests_of(&submit(&mut nodes, b"renew")), every(&[b"renew"]), "round 0");
    assert_eq!(requests_of(&submit(&mut nodes, b"renew")), every(&[]), "round 0 is remembered: a duplicate");
    assert_eq!(requests_of(&submit(&mut nodes, b"a")), every(&[b"a"]), "round 1");
    assert_eq!(requests_of(&submit(&mut nodes, b"b")), every(&[b"b"]), "round 2: round 0 is forgotten");
    assert_eq!(
        requests_of(&submit(&mut nodes, b"renew")),
        every(&[b"renew"]),
        "beyond the remembered rounds the request is ordered again, by every replica alike"
    );
}

#[test]
fn a_replica_knows_a_request_once_accepted_or_disseminated_to_it_and_while_its_round_is_remembered() {
    use replication::Protocol;
    use replication::atomic::{AbcInput, AtomicBroadcast};
    use replication::crypto::digest;

    let n = 4;
    let (mut nodes, mut rng) = nodes(n, 11, AbcConfig { max_batch: 4, remember_rounds: 1, ..AbcConfig::default() });
    for node in nodes.iter_mut() {
        let _ = node.handle_input(AbcInput::Hold(true), &mut rng);
    }
    let knowing = |nodes: &[AtomicBroadcast], request: &[u8]| -> Vec<bool> {
        nodes.iter().map(|node| node.knows(&digest(request))).collect()
    };

    let step = nodes[0].handle_input(AbcInput::Submit(b"first".to_vec()), &mut rng);
    assert_eq!(knowing(&nodes, b"first"), [true, false, false, false], "accepted by replica 0 only");
    common::deliver_all(&mut nodes, step.messages.into_iter().map(|m| (0, m.target, m.message)).collect(), &mut rng);
    assert_eq!(knowing(&nodes, b"first"), [true; 4], "disseminated, not ordered yet (all held)");
    assert_eq!(knowing(&nodes, b"never submitted"), [false; 4]);

    // Ordered in round 0: still known while that round is remembered, then only the log has it.
    for id in 0..n {
        common::input_and_deliver(&mut nodes, id, AbcInput::Hold(false), &mut rng);
    }
    assert!(nodes.iter().all(|node| node.round() == 1), "round 0 delivered");
    assert_eq!(knowing(&nodes, b"first"), [true; 4], "delivered in a remembered round");
    common::input_and_deliver(&mut nodes, 1, AbcInput::Submit(b"second".to_vec()), &mut rng);
    assert!(nodes.iter().all(|node| node.round() == 2), "round 1 delivered");
    assert_eq!(knowing(&nodes, b"second"), [true; 4]);
    assert_eq!(knowing(&nodes, b"first"), [false; 4], "round 0 is forgotten");
}
