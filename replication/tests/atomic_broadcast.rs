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
