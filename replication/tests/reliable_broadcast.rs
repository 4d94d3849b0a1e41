//! Reliable broadcast under every adversary: agreement, validity, integrity, totality, and no
//! honest node blamed.

mod common;
use replication::sim::scenarios::reliable::ReliableScenario;

#[test]
fn reliable_broadcast_agreement_validity_totality_under_all_adversaries() {
    common::run_all_adversaries(
        &ReliableScenario,
        "reliable_broadcast_agreement_validity_totality_under_all_adversaries",
        common::seeds(1000, 1000),
    );
}
