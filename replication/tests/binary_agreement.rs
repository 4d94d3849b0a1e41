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

/// The adaptive coin attacker: as soon as `t+1` coin shares of a round exist it knows the coin
/// and schedules (and has the Byzantine parties vote) to keep the honest parties split around
/// it. The coin is released only after the round's main-votes, when the value a hard pre-vote
/// can carry is already fixed, so agreement, validity and termination hold and the rounds stay
/// few for n = 4, 7, 10.
#[test]
fn adaptive_coin_attacker_cannot_delay_binary_agreement() {
    use replication::sim::{Adversary, Campaign};
    let adversary = Adversary::by_name("coin-adaptive").expect("adversary exists");
    for (n, t) in common::CONFIGS {
        for validated in [false, true] {
            let stats = Campaign::new(n, t, adversary).assert_seeds(
                &BinaryScenario { validated },
                "adaptive_coin_attacker_cannot_delay_binary_agreement",
                replication::sim::seeds_from_env(common::seeds(1000, 200)),
            );
            let mean = stats.mean_abba_rounds();
            assert!(mean <= 3.0, "n={n} validated={validated}: mean rounds {mean}");
            assert!(stats.abba_rounds_max <= 20, "n={n} validated={validated}: max rounds {}", stats.abba_rounds_max);
            // The attack ran: coins were known to the adversary and Byzantine votes turned.
            assert!(stats.coins_learned > 0 && stats.votes_steered > 0, "n={n} validated={validated}: no attack");
        }
    }
}
