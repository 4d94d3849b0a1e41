//! Binary agreement (ABBA) under every adversary: agreement, validity, decision certificates,
//! coin released only after the round's main-votes, termination, no honest node blamed.

mod common;
use replication::sim::scenarios::binary::BinaryScenario;

#[test]
fn binary_agreement_agreement_validity_termination_under_all_adversaries() {
    common::run_all_adversaries(
        &BinaryScenario { validated: false },
        "binary_agreement_agreement_validity_termination_under_all_adversaries",
        common::seeds(1000, 1000),
    );
}

#[test]
fn validated_binary_agreement_decides_one_only_with_valid_proof() {
    common::run_all_adversaries(
        &BinaryScenario { validated: true },
        "validated_binary_agreement_decides_one_only_with_valid_proof",
        common::seeds(1000, 1000),
    );
}

/// Regression test for the coin-timing attack (n = 4, one Byzantine party plus the scheduler):
/// coin shares are delivered last and the Byzantine party equivocates. Every honest coin share
/// must come after `n-t` main-votes of its round (checked per run), and agreement must still end
/// in few rounds.
#[test]
fn coin_timing_attack_cannot_delay_binary_agreement() {
    use replication::sim::{Adversary, Campaign};
    let adversary = Adversary::by_name("coin-timing").expect("adversary exists");
    for validated in [false, true] {
        let stats = Campaign::new(4, 1, adversary).assert_seeds(
            &BinaryScenario { validated },
            "coin_timing_attack_cannot_delay_binary_agreement",
            replication::sim::seeds_from_env(1000),
        );
        assert!(stats.mean_abba_rounds() <= 3.0, "mean rounds {}", stats.mean_abba_rounds());
        assert!(stats.abba_rounds_max <= 20, "max rounds {}", stats.abba_rounds_max);
    }
}
