//! Multi-valued validated agreement under every adversary: agreement, external validity,
//! verifiable outputs, termination, no honest node blamed.

mod common;
use replication::sim::scenarios::validated::ValidatedScenario;

#[test]
fn validated_agreement_agreement_external_validity_termination_under_all_adversaries() {
    common::run_all_adversaries(
        &ValidatedScenario,
        "validated_agreement_agreement_external_validity_termination_under_all_adversaries",
        common::seeds(1000, 1000),
    );
}
