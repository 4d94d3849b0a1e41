//! BLS threshold signatures, the common coin and sealed requests (DESIGN.md §3).
//! Run: `cargo bench -p threshold --bench bls -- --warm-up-time 1 --measurement-time 3`.

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use threshold::bls::{self, BlsSignatureShare};
use threshold::seal::{self, DecryptionShare};

const DST: &[u8] = b"itca/bench/v1";
const MSG: &[u8] = b"abba/42/round/3/main-vote/1";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("bls");
    let (keys, shares) = bls::deal(4, 3, &mut rng(1));
    let share = shares[0].sign(DST, MSG);
    group.bench_function("share_sign", |b| b.iter(|| shares[0].sign(DST, black_box(MSG))));
    group.bench_function("share_verify", |b| b.iter(|| assert!(keys.verify_share(DST, black_box(MSG), &share))));
    // Optimistic combine of n - t shares: interpolation plus one combined verification.
    for (n, t) in [(4, 1), (10, 3)] {
        let (keys, shares) = bls::deal(n, n - t, &mut rng(2));
        let sig_shares: Vec<BlsSignatureShare> = shares.iter().map(|k| k.sign(DST, MSG)).collect();
        group.bench_with_input(BenchmarkId::new("combine", format!("n={n}")), &sig_shares, |b, s| {
            b.iter(|| keys.combine(DST, MSG, s).unwrap())
        });
        // One bad share among the first n - t: verify shares one by one, exclude it.
        let mut with_bad = sig_shares.clone();
        with_bad[0] = shares[0].sign(DST, b"other");
        group.bench_with_input(BenchmarkId::new("combine_one_bad", format!("n={n}")), &with_bad, |b, s| {
            b.iter(|| keys.combine(DST, MSG, s).unwrap())
        });
    }
    let sig_shares: Vec<_> = shares.iter().map(|k| k.sign(DST, MSG)).collect();
    let sig = keys.combine(DST, MSG, &sig_shares).unwrap().value;
    group.bench_function("combined_verify", |b| b.iter(|| assert!(keys.verify(DST, black_box(MSG), &sig))));
    // The coin for n = 4, t = 1: a share, and combining t + 1 shares into the value.
    let (coin_keys, coin_shares) = bls::deal(4, 2, &mut rng(3));
    let name = b"abba/42/round/3";
    group.bench_function("coin_share", |b| b.iter(|| bls::coin_share(&coin_shares[1], black_box(name))));
    let released: Vec<_> = coin_shares.iter().map(|k| bls::coin_share(k, name)).collect();
    group.bench_function("coin_combine", |b| b.iter(|| bls::combine_coin(&coin_keys, name, &released).unwrap()));
    group.finish();
}

fn sealing(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    let request = vec![0x42u8; 1024];
    let (key, key_shares) = seal::deal(4, 2, &mut rng(4));
    let mut g = rng(5);
    group.bench_function("seal_1KiB", |b| {
        b.iter(|| seal::seal(&key, b"client-1", black_box(&request), &mut g).unwrap())
    });
    let sealed = seal::seal(&key, b"client-1", &request, &mut rng(6)).unwrap();
    group.bench_function("validate", |b| b.iter(|| black_box(&sealed).validate().unwrap()));
    group
        .bench_function("decryption_share", |b| b.iter(|| key_shares[0].decryption_share(black_box(&sealed)).unwrap()));
    let share = key_shares[0].decryption_share(&sealed).unwrap();
    group.bench_function("verify_decryption_share", |b| {
        b.iter(|| assert!(key.verify_decryption_share(&sealed, black_box(&share))))
    });
    for (n, t) in [(4, 1), (10, 3)] {
        let (key, key_shares) = seal::deal(n, t + 1, &mut rng(7));
        let sealed = seal::seal(&key, b"client-1", &request, &mut rng(8)).unwrap();
        let shares: Vec<DecryptionShare> = key_shares.iter().map(|k| k.decryption_share(&sealed).unwrap()).collect();
        group.bench_with_input(BenchmarkId::new("open", format!("n={n}")), &shares, |b, s| {
            b.iter(|| key.open(&sealed, s).unwrap())
        });
        let mut with_bad = shares.clone();
        with_bad[0] = DecryptionShare { id: 0, share: shares[1].share.clone() };
        group.bench_with_input(BenchmarkId::new("open_one_bad", format!("n={n}")), &with_bad, |b, s| {
            b.iter(|| key.open(&sealed, s).unwrap())
        });
    }
    group.finish();
}

fn ed25519(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519");
    let key = threshold::ed25519::generate(&mut rng(9));
    let public = key.verifying_key();
    let msg = vec![7u8; 256];
    let sig = key.sign(&msg);
    group.bench_function("sign_256B", |b| b.iter(|| key.sign(black_box(&msg))));
    group.bench_function("verify_256B", |b| b.iter(|| assert!(public.verify(black_box(&msg), &sig))));
    group.finish();
}

criterion_group!(benches, signatures, sealing, ed25519);
criterion_main!(benches);
