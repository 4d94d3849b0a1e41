//! `dealer ceremony --n 4 --t 1` at 2048 bits, end to end (keys, certificates, files); the target
//! is a median of at most 5 s on the 2-core reference machine.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts;
use rand::SeedableRng;

fn ceremony_2048(c: &mut Criterion) {
    let mut group = c.benchmark_group("ceremony");
    group.sample_size(10).measurement_time(Duration::from_secs(60));
    let mut seed = 0u64;
    group.bench_function("n4_t1_2048", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            seed += 1;
            let params = CeremonyParams {
                n: 4,
                t: 1,
                name: "Bench Root CA".into(),
                hosts: hosts::local_hosts(4, 8440).expect("ports"),
                bits: 2048,
                out: dir.path().join("ca"),
                names: vec![ca_api::policy::NameRule::Subdomain("localhost".into())],
            };
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            ceremony::run(&params, ceremony::MIN_PRODUCTION_BITS, &mut rng, &mut |_| {}).expect("ceremony")
        })
    });
    group.finish();
}

criterion_group!(benches, ceremony_2048);
criterion_main!(benches);
