//! The verifying half of the audit log's Merkle tree (RFC 6962 2.1 hashing: leaf =
//! SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right), empty tree = SHA-256 of
//! nothing): roots recomputed from entries, and the proofs a replica serves checked with the
//! algorithms of RFC 9162 2.1.3.2 and 2.1.4.2. The server builds its tree and proofs with its own
//! code (`ca-server`'s `merkle`) and uses this module only to test them, so a client never runs
//! the code whose output it checks.

use sha2::{Digest, Sha256};

/// A SHA-256 value: a leaf hash, an interior node, or a tree head's root.
pub type Hash = [u8; 32];

/// The longest proof accepted: a tree of at most 2^64 leaves has at most 64 levels, so a longer
/// proof is garbage, refused before any hashing.
pub const MAX_PROOF_LEN: usize = 64;

/// Why a proof does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("the first tree size {first} is larger than the second {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the proof has {0} hashes; no tree needs more than {MAX_PROOF_LEN}")]
    TooLong(usize),
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongLength,
    #[error("equal tree sizes must have equal roots and an empty proof")]
    EqualSizes,
    #[error("the proof does not lead to the first tree's root")]
    FirstRootMismatch,
    #[error("the proof does not lead to the second tree's root")]
    SecondRootMismatch,
    #[error("the proof does not lead to the tree's root")]
    RootMismatch,
}

/// SHA-256 of the empty string: the root of the empty tree.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// RFC 6962 leaf hash of a log entry's bytes.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// RFC 6962 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The Merkle tree hash (RFC 6962 2.1 MTH) of the given leaf hashes: the left subtree holds the
/// largest power of two strictly below the count. Recursion depth is the tree height (at most 64).
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let split = largest_power_of_two_below(n as u64) as usize;
            node_hash(&root_of(&leaves[..split]), &root_of(&leaves[split..]))
        }
    }
}

/// The largest power of two strictly smaller than `n` (n >= 2).
fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 2.1.3.2: whether `proof` shows the leaf with hash `leaf` at `index` in the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLong(proof.len()));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 2.1.4.2: whether `proof` shows the tree of `first` leaves with root `first_root` is a
/// prefix of the tree of `second` leaves with root `second_root`. The empty tree is a prefix of
/// every tree; equal sizes need equal roots and an empty proof.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLong(proof.len()));
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root { Ok(()) } else { Err(ProofError::EqualSizes) };
    }
    if first == 0 {
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // Step 1: when the first tree is a complete subtree, its root is the proof's implicit start.
    let mut path = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(ProofError::SecondRootMismatch);
    }
    Ok(())
}

/// Parses a proof's hex hashes (replica-controlled: any malformed element is an error).
pub fn parse_hashes(hex_hashes: &[String]) -> Option<Vec<Hash>> {
    if hex_hashes.len() > MAX_PROOF_LEN {
        return None;
    }
    hex_hashes.iter().map(|h| parse_hash(h)).collect()
}

/// Parses one 64-digit hex hash.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// RFC 6962 2.1.1 / 2.1.2 proof generation as an independent, recursive transcription of the
/// RFC's definitions: what the iterative verifiers, and the server's tree, are checked against in
/// tests.
pub mod reference {
    use super::*;

    pub fn inclusion(index: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = largest_power_of_two_below(n as u64) as usize;
        if index < k {
            let mut path = inclusion(index, &leaves[..k]);
            path.push(root_of(&leaves[k..]));
            path
        } else {
            let mut path = inclusion(index - k, &leaves[k..]);
            path.push(root_of(&leaves[..k]));
            path
        }
    }

    pub fn consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        if m == 0 || m == leaves.len() {
            return Vec::new();
        }
        subproof(m, leaves, true)
    }

    fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if complete { Vec::new() } else { vec![root_of(leaves)] };
        }
        let k = largest_power_of_two_below(n as u64) as usize;
        if m <= k {
            let mut proof = subproof(m, &leaves[..k], complete);
            proof.push(root_of(&leaves[k..]));
            proof
        } else {
            let mut proof = subproof(m - k, &leaves[k..], false);
            proof.push(root_of(&leaves[..k]));
            proof
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Certificate Transparency reference leaves and the roots of their prefixes.
    const CT_LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const CT_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn h(text: &str) -> Hash {
        parse_hash(text).unwrap()
    }

    fn ct_leaves() -> Vec<Hash> {
        CT_LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect()
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    #[test]
    fn roots_match_the_certificate_transparency_reference_values() {
        let leaves = ct_leaves();
        for (size, root) in CT_ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root_of(&leaves[..size])), *root, "size {size}");
        }
    }

    #[test]
    fn the_published_consistency_proofs_verify() {
        let roots: Vec<Hash> = CT_ROOTS.iter().map(|r| h(r)).collect();
        let vectors: [(u64, u64, &[&str]); 3] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (first, second, proof) in vectors {
            let proof: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
            let (r1, r2) = (roots[first as usize], roots[second as usize]);
            assert_eq!(verify_consistency(first, second, &r1, &r2, &proof), Ok(()), "{first}..{second}");
            assert_eq!(reference::consistency(first as usize, &ct_leaves()[..second as usize]), proof);
        }
    }

    #[test]
    fn every_generated_inclusion_proof_verifies_and_tampering_fails() {
        for size in 1..=40usize {
            let leaves = leaves(size);
            let root = root_of(&leaves);
            for index in 0..size {
                let proof = reference::inclusion(index, &leaves);
                let (i, n) = (index as u64, size as u64);
                assert_eq!(verify_inclusion(i, n, &leaves[index], &proof, &root), Ok(()), "{index}/{size}");
                // Another leaf, another position, a changed hash, a shorter or longer proof: refused.
                let other = leaf_hash(b"other");
                assert!(verify_inclusion(i, n, &other, &proof, &root).is_err());
                if size > 1 {
                    assert!(verify_inclusion((i + 1) % n, n, &leaves[index], &proof, &root).is_err());
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_inclusion(i, n, &leaves[index], &bad, &root).is_err());
                    assert!(verify_inclusion(i, n, &leaves[index], &proof[1..], &root).is_err());
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(verify_inclusion(i, n, &leaves[index], &longer, &root).is_err());
            }
        }
    }

    #[test]
    fn every_generated_consistency_proof_verifies_and_tampering_fails() {
        let all = leaves(70);
        let roots: Vec<Hash> = (0..=all.len()).map(|n| root_of(&all[..n])).collect();
        for second in 0..=all.len() {
            for first in 0..=second {
                let proof = reference::consistency(first, &all[..second]);
                let (m, n) = (first as u64, second as u64);
                assert_eq!(
                    verify_consistency(m, n, &roots[first], &roots[second], &proof),
                    Ok(()),
                    "{first}..{second}"
                );
                if first == 0 || first == second {
                    continue;
                }
                let wrong = leaf_hash(b"forked");
                assert!(verify_consistency(m, n, &wrong, &roots[second], &proof).is_err());
                assert!(verify_consistency(m, n, &roots[first], &wrong, &proof).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][31] ^= 0x10;
                    assert!(verify_consistency(m, n, &roots[first], &roots[second], &bad).is_err());
                }
                assert!(verify_consistency(m, n, &roots[first], &roots[second], &proof[..proof.len() - 1]).is_err());
                let mut longer = proof.clone();
                longer.push(roots[second]);
                assert!(verify_consistency(m, n, &roots[first], &roots[second], &longer).is_err());
                assert!(verify_consistency(m + 1, n, &roots[first], &roots[second], &proof).is_err());
            }
        }
    }

    #[test]
    fn degenerate_sizes_follow_rfc9162() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert_eq!(verify_consistency(0, 0, &a, &a, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &a, &b, &[]), Ok(()));
        assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
        assert_eq!(verify_consistency(3, 3, &a, &b, &[]), Err(ProofError::EqualSizes));
        assert_eq!(verify_consistency(3, 3, &a, &a, &[a]), Err(ProofError::EqualSizes));
        assert_eq!(verify_consistency(0, 5, &a, &b, &[a]), Err(ProofError::WrongLength));
        assert_eq!(verify_consistency(4, 2, &a, &b, &[]), Err(ProofError::SizesOutOfOrder { first: 4, second: 2 }));
        assert_eq!(verify_consistency(1, 2, &a, &b, &[]), Err(ProofError::WrongLength));
        assert_eq!(verify_inclusion(2, 2, &a, &[], &a), Err(ProofError::IndexBeyondSize { index: 2, size: 2 }));
        assert_eq!(verify_inclusion(0, 1, &a, &[], &a), Ok(()));
        assert_eq!(verify_consistency(1, 2, &a, &b, &[a; 65]), Err(ProofError::TooLong(65)));
    }

    #[test]
    fn malformed_hex_hashes_are_refused() {
        assert!(parse_hash("00").is_none());
        assert!(parse_hash(&"zz".repeat(32)).is_none());
        assert_eq!(parse_hashes(&[CT_ROOTS[0].to_string()]), Some(vec![h(CT_ROOTS[0])]));
        assert!(parse_hashes(&vec![CT_ROOTS[0].to_string(); 65]).is_none());
    }
}
