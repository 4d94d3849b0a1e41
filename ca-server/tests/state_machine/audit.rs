//! The audit log as a client checks it with the root certificate alone: signed tree heads verify
//! with the `rsa` crate, and proofs with a Merkle implementation written here from RFC 6962 2.1.

use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};

use crate::support::*;

type Hash = [u8; 32];

fn leaf(bytes: &[u8]) -> Hash {
    Sha256::new().chain_update([0u8]).chain_update(bytes).finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
}

/// The largest power of two below `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH (RFC 6962 2.1).
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => node(&mth(&leaves[..split(n)]), &mth(&leaves[split(n)..])),
    }
}

/// The root implied by an inclusion path: PATH(m, D[n]) ends with the sibling at the top.
fn root_from_path(index: usize, size: usize, leaf: Hash, path: &[Hash]) -> Option<Hash> {
    if size == 1 {
        return path.is_empty().then_some(leaf);
    }
    let (last, rest) = path.split_last()?;
    let k = split(size);
    if index < k {
        Some(node(&root_from_path(index, k, leaf, rest)?, last))
    } else {
        Some(node(last, &root_from_path(index - k, size - k, leaf, rest)?))
    }
}

/// The (old, new) roots implied by SUBPROOF(m, D[n], b) (RFC 6962 2.1.2); `old` is the old
/// tree's root, known to the verifier, standing for the subtree it covers.
fn roots_from_subproof(m: usize, n: usize, b: bool, proof: &[Hash], old: Hash) -> Option<(Hash, Hash)> {
    if m == n {
        return if b {
            proof.is_empty().then_some((old, old))
        } else {
            match proof {
                [only] => Some((*only, *only)),
                _ => None,
            }
        };
    }
    let (last, rest) = proof.split_last()?;
    let k = split(n);
    if m <= k {
        let (o, new) = roots_from_subproof(m, k, b, rest, old)?;
        Some((o, node(&new, last)))
    } else {
        let (o, new) = roots_from_subproof(m - k, n - k, false, rest, old)?;
        Some((node(last, &o), node(last, &new)))
    }
}

fn consistent(first: usize, second: usize, old: Hash, new: Hash, proof: &[Hash]) -> bool {
    if first == second {
        return proof.is_empty() && old == new;
    }
    if first == 0 {
        return proof.is_empty();
    }
    roots_from_subproof(first, second, true, proof, old) == Some((old, new))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_heads_verify_with_the_root_key_and_proofs_with_an_independent_merkle_tree() {
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    let op = operator();
    let mut request = 0u8;
    // Rounds of 1, 2, 1 and 3 requests: tree sizes 1, 3, 4, 7.
    for count in [1, 2, 1, 3] {
        let payloads = (0..count)
            .map(|_| {
                request += 1;
                let name = format!("n{request}.localhost");
                issue(&op, &csr(&Key::ed25519(request), &name, &[&name]), "default", None, &format!("a{request}"))
            })
            .collect();
        net.apply(&rounds.round(payloads)).await;
        net.settle().await;
    }
    let ca = net.ca(3);
    let heads = ca.tree_heads().await.unwrap();
    assert_eq!(heads.iter().map(|h| h.head.tree_size).collect::<Vec<_>>(), [1, 3, 4, 7]);

    let root_der = der::pem::decode_vec(std::fs::read_to_string(&dealt().root_pem).unwrap().as_bytes()).unwrap().1;
    assert_eq!(root_der, ca.root_der());
    let root = x509_cert::Certificate::from_der(&root_der).unwrap();
    let spki = root.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(rsa::RsaPublicKey::from_public_key_der(&spki).unwrap());

    let entries = ca.entries(0, 100).await.unwrap();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf(&e.leaf)).collect();
    for (entry, hash) in entries.iter().zip(&leaves) {
        assert_eq!(entry.leaf_hash, *hash);
    }
    for (i, row) in heads.iter().enumerate() {
        let head = row.head;
        let size = head.tree_size as usize;
        assert_eq!(head.root, mth(&leaves[..size]), "root of {size}");
        let signature = rsa::pkcs1v15::Signature::try_from(row.signature.as_deref().unwrap()).unwrap();
        // RFC 6962 3.5 TreeHeadSignature, built here independently.
        let mut signed = vec![0u8, 1u8];
        signed.extend_from_slice(&head.timestamp_ms.to_be_bytes());
        signed.extend_from_slice(&head.tree_size.to_be_bytes());
        signed.extend_from_slice(&head.root);
        assert_eq!(signed, head.signed_bytes());
        key.verify(&signed, &signature).unwrap();
        assert_eq!(head.timestamp_ms, rounds.time_ms(i as u64));
        let mut tampered = signed.clone();
        tampered[17] ^= 1;
        assert!(key.verify(&tampered, &signature).is_err());

        for (index, leaf_hash) in leaves.iter().enumerate().take(size) {
            let proof = ca.inclusion_proof(index as u64, size as u64).unwrap();
            assert_eq!(proof.leaf_hash, *leaf_hash);
            assert_eq!(root_from_path(index, size, *leaf_hash, &proof.path), Some(head.root), "{index} in {size}");
            let by_hash = ca.inclusion_proof_by_hash(leaf_hash, size as u64).await.unwrap().unwrap();
            assert_eq!(by_hash, proof);
        }
        for earlier in &heads[..=i] {
            let first = earlier.head.tree_size;
            let proof = ca.consistency_proof(first, size as u64).unwrap();
            assert!(consistent(first as usize, size, earlier.head.root, head.root, &proof), "{first} to {size}");
        }
    }
    assert_eq!(ca.latest_tree_head().await.unwrap().unwrap().head, heads[3].head);
    assert!(ca.inclusion_proof(0, 8).is_err(), "no proof beyond the log");
    assert!(ca.inclusion_proof_by_hash(&[0; 32], 7).await.unwrap().is_none());
}
