//! Atomic broadcast under every adversary: agreement, total order, validity, integrity (the
//! request every node submits is delivered once), agreed time within honest clocks and
//! monotonic, agreed seeds, verifiable round proofs, termination, no honest node blamed.

mod common;
use replication::sim::scenarios::atomic::AtomicScenario;

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
