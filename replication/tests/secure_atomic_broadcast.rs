//! Secure causal atomic broadcast under every adversary: agreement and total order on opened
//! requests, validity (only sealed client requests, opened to their plaintext), integrity,
//! causality (no decryption share before the position is fixed), termination, no honest node
//! blamed.

mod common;
use replication::sim::scenarios::secure::SecureScenario;

#[test]
fn secure_causal_atomic_broadcast_causality_order_validity_under_all_adversaries() {
    common::run_all_adversaries(
        &SecureScenario::default(),
        "secure_causal_atomic_broadcast_causality_order_validity_under_all_adversaries",
        common::seeds(1000, 100),
    );
}
