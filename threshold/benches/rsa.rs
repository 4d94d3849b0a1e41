//! Shoup threshold RSA costs at production sizes (n = 4, t = 1), against a single-key RSA
//! signature with the `rsa` crate as the baseline; and combining at n = 10 (t = 3), whose cost
//! grows with `t` (`rsa_n10`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rsa::signature::Signer;
use threshold::rsa::{RsaDealing, SignatureShare, deal};

const N: usize = 4;
const T: usize = 1;
const MSG: &[u8] = b"a TBSCertificate of a few hundred bytes would go here";

fn dealt(bits: u32) -> RsaDealing {
    deal(bits, N, T, &mut ChaCha20Rng::seed_from_u64(u64::from(bits)), &mut |_| {}).expect("deal")
}

fn threshold_rsa(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa");
    for bits in [2048u32, 3072] {
        let dealing = dealt(bits);
        let (public, share) = (&dealing.public, &dealing.shares[0]);
        let mut rng = ChaCha20Rng::seed_from_u64(1);

        group.bench_function(BenchmarkId::new("share", bits), |b| b.iter(|| share.sign(public, black_box(MSG))));
        group.bench_function(BenchmarkId::new("share_with_proof", bits), |b| {
            b.iter(|| share.sign_with_proof(public, black_box(MSG), &mut rng))
        });
        let proven = share.sign_with_proof(public, MSG, &mut rng);
        group.bench_function(BenchmarkId::new("verify_share_proof", bits), |b| {
            b.iter(|| public.verify_share(black_box(MSG), &proven).expect("valid proof"))
        });
        let shares: Vec<SignatureShare> = dealing.shares[..=T].iter().map(|s| s.sign(public, MSG)).collect();
        group.bench_function(BenchmarkId::new("combine_t_plus_1", bits), |b| {
            b.iter(|| public.combine(black_box(MSG), &shares).expect("combines"))
        });
        // What every replica but the combiner does per object: check the combined signature.
        let signature = public.combine(MSG, &shares).expect("combines").value;
        group.bench_function(BenchmarkId::new("verify_signature", bits), |b| {
            b.iter(|| assert!(public.verify(black_box(MSG), &signature)))
        });
        // Eight objects at once (a replica's usual batch under load), one shared inversion; the
        // time is for all eight.
        let batch: Vec<(&[u8], &[SignatureShare])> = (0..8).map(|_| (MSG, shares.as_slice())).collect();
        group.bench_function(BenchmarkId::new("combine_many_8", bits), |b| {
            b.iter(|| public.combine_many(black_box(&batch)))
        });

        let key = rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(2), bits as usize).expect("rsa key");
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
        group.bench_function(BenchmarkId::new("rsa_crate_sign", bits), |b| b.iter(|| signer.sign(black_box(MSG))));
    }
    group.finish();
}

fn dealing(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa_deal");
    group.sample_size(10);
    let mut seed = 0u64;
    group.bench_function(BenchmarkId::new("deal", 2048), |b| {
        b.iter(|| {
            seed += 1;
            deal(2048, N, T, &mut ChaCha20Rng::seed_from_u64(seed), &mut |_| {}).expect("deal")
        })
    });
    group.finish();
}

/// Combining `t + 1 = 4` shares at n = 10: every replica combines every certificate, so this is
/// part of how the cost per certificate grows with n.
fn combine_n10(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa_n10");
    let dealing = deal(2048, 10, 3, &mut ChaCha20Rng::seed_from_u64(10), &mut |_| {}).expect("deal");
    let shares: Vec<SignatureShare> = dealing.shares[..4].iter().map(|s| s.sign(&dealing.public, MSG)).collect();
    group.bench_function(BenchmarkId::new("combine_t_plus_1", 2048), |b| {
        b.iter(|| dealing.public.combine(black_box(MSG), &shares).expect("combines"))
    });
    group.finish();
}

criterion_group!(benches, threshold_rsa, dealing, combine_n10);
criterion_main!(benches);
