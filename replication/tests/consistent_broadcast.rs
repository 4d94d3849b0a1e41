//! Verifiable consistent broadcast under every adversary: consistency, validity, verifiable
//! proofs, external validity, and no honest node blamed.

mod common;
use replication::sim::scenarios::consistent::ConsistentScenario;

#[test]
fn consistent_broadcast_consistency_validity_proofs_under_all_adversaries() {
    common::run_all_adversaries(
        &ConsistentScenario,
        "consistent_broadcast_consistency_validity_proofs_under_all_adversaries",
        common::seeds(1000, 1000),
    );
}
