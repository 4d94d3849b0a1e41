//! The protocols over the real threshold cryptography (BLS12-381 signatures and coin, Ed25519
//! batches): 50 seeds per configuration and protocol, every adversary covered.

mod common;
use replication::sim::scenarios::atomic::AtomicScenario;
use replication::sim::scenarios::binary::BinaryScenario;
use replication::sim::scenarios::consistent::ConsistentScenario;
use replication::sim::scenarios::reliable::ReliableScenario;
use replication::sim::scenarios::validated::ValidatedScenario;

/// Seeds per configuration and protocol, in every profile (the test profile compiles this crate
/// optimised, see the workspace `Cargo.toml`).
const SEEDS: u64 = 50;

#[test]
fn real_crypto_reliable_broadcast_properties_hold() {
    common::run_real_crypto(&ReliableScenario, "real_crypto_reliable_broadcast_properties_hold", SEEDS);
}

#[test]
fn real_crypto_consistent_broadcast_properties_hold() {
    common::run_real_crypto(&ConsistentScenario, "real_crypto_consistent_broadcast_properties_hold", SEEDS);
}

#[test]
fn real_crypto_binary_agreement_properties_hold() {
    common::run_real_crypto(&BinaryScenario { validated: true }, "real_crypto_binary_agreement_properties_hold", SEEDS);
}

#[test]
fn real_crypto_validated_agreement_properties_hold() {
    common::run_real_crypto(&ValidatedScenario, "real_crypto_validated_agreement_properties_hold", SEEDS);
}

#[test]
fn real_crypto_atomic_broadcast_properties_hold() {
    common::run_real_crypto(&AtomicScenario::default(), "real_crypto_atomic_broadcast_properties_hold", SEEDS);
}

#[test]
fn real_crypto_secure_causal_atomic_broadcast_properties_hold() {
    common::run_real_crypto(
        &replication::sim::scenarios::secure::SecureScenario::default(),
        "real_crypto_secure_causal_atomic_broadcast_properties_hold",
        SEEDS,
    );
}
