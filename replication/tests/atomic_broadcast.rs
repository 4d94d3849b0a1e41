//! Atomic broadcast under every adversary: agreement, total order, validity, integrity (the
//! request every node submits is delivered once), agreed time within honest clocks and
//! monotonic, agreed seeds, verifiable round proofs, termination, no honest node blamed; and
//! termination when replicas submit more requests than a dissemination window.

mod common;
use replication::atomic::AbcConfig;
use replication::atomic::dissemination::WINDOW;
use replication::sim::scenarios::atomic::AtomicScenario;
use replication::sim::{Adversary, Campaign, seeds_from_env};

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
