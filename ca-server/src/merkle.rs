//! The audit log's Merkle tree (RFC 6962 2.1, the same hashing as Certificate Transparency):
//! leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right), the empty tree's hash is
//! SHA-256 of nothing. Proofs are generated as RFC 6962 2.1.1 / 2.1.2 define them and verified
//! with the algorithms of RFC 9162 2.1.3.2 / 2.1.4.2, so any CT-compatible verifier accepts them.
//!
//! The tree keeps, besides the leaf hashes, the hash of every complete aligned subtree (one more
//! level per power of two), so appending costs amortised O(1) hashes and a root or proof for any
//! earlier size costs O(log² n) hashes instead of rehashing the log.

pub use ca_api::merkle::{EMPTY_ROOT, Hash, leaf_hash, node_hash};

/// A request for a root or proof the tree cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("tree size {size} is larger than the log ({len} entries)")]
    SizeBeyondLog { size: u64, len: u64 },
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("the first tree size {first} is larger than the second {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
}

/// The log's tree: every leaf hash, and the complete subtrees above them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[k][i]` is the hash of leaves `i * 2^k .. (i + 1) * 2^k`; `levels[0]` the leaves.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over already hashed leaves (as stored), in log order.
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push_leaf_hash(leaf);
        }
        tree
    }

    /// Appends an entry; returns its leaf index.
    pub fn push(&mut self, entry: &[u8]) -> u64 {
        self.push_leaf_hash(leaf_hash(entry))
    }

    /// Appends a leaf hash; returns its leaf index.
    pub fn push_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.len();
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            // An even count means the new node completed a pair: its parent is complete too.
            if !nodes.len().is_multiple_of(2) {
                break;
            }
            hash = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            level += 1;
        }
        index
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(usize::try_from(index).ok()?).copied()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.subtree(0, self.len())
    }

    /// The root of the tree over the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        Ok(self.subtree(0, size))
    }

    /// RFC 6962 2.1.1 audit path of leaf `index` in the tree of the first `size` leaves, from the
    /// leaf's sibling up to the root's child.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexBeyondSize { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    /// RFC 6962 2.1.2 consistency proof between the trees of the first `first` and `second`
    /// leaves. Empty when `first` is 0 or equals `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(second)?;
        if first > second {
            return Err(TreeError::SizesOutOfOrder { first, second });
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        let len = self.len();
        if size > len { Err(TreeError::SizeBeyondLog { size, len }) } else { Ok(()) }
    }

    /// MTH(D[start:end]); the caller guarantees `end <= len`.
    fn subtree(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n == 0 {
            return EMPTY_ROOT;
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(start >> level) as usize];
        }
        let k = split(n);
        node_hash(&self.subtree(start, start + k), &self.subtree(start + k, end))
    }

    /// PATH(m, D[start:end]), with `m` relative to `start`.
    fn path(&self, m: u64, start: u64, end: u64, proof: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, start + k, proof);
            proof.push(self.subtree(start + k, end));
        } else {
            self.path(m - k, start + k, end, proof);
            proof.push(self.subtree(start, start + k));
        }
    }

    /// SUBPROOF(m, D[start:end], b), with `m` relative to `start`.
    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, proof: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                proof.push(self.subtree(start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, proof);
            proof.push(self.subtree(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, proof);
            proof.push(self.subtree(start, start + k));
        }
    }
}

/// The largest power of two smaller than `n` (n >= 2): where RFC 6962 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    // The verifier the client runs, independent of the tree code under test.
    use ca_api::merkle::{ProofError, verify_consistency, verify_inclusion};

    fn h(hex: &str) -> Hash {
        hex::decode(hex).unwrap().try_into().unwrap()
    }

    /// The Certificate Transparency test tree (RFC 6962 reference vectors).
    fn reference_tree() -> MerkleTree {
        let mut tree = MerkleTree::new();
        for entry in
            ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        {
            tree.push(&hex::decode(entry).unwrap());
        }
        tree
    }

    const REFERENCE_ROOTS: [&str; 9] = [
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

    #[test]
    fn roots_match_the_ct_reference_vectors() {
        let tree = reference_tree();
        for (size, root) in REFERENCE_ROOTS.iter().enumerate() {
            assert_eq!(tree.root_at(size as u64), Ok(h(root)), "size {size}");
        }
        assert_eq!(tree.root(), h(REFERENCE_ROOTS[8]));
        assert_eq!(MerkleTree::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn inclusion_proofs_match_the_ct_reference_vectors() {
        let tree = reference_tree();
        // (index, size, path)
        let vectors: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, path) in vectors {
            let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
            assert_eq!(tree.inclusion_proof(index, size).as_ref(), Ok(&expected), "{index} in {size}");
            let leaf = tree.leaf_hash(index).unwrap();
            let root = h(REFERENCE_ROOTS[size as usize]);
            assert_eq!(verify_inclusion(index, size, &leaf, &expected, &root), Ok(()));
        }
    }

    #[test]
    fn consistency_proofs_match_the_ct_reference_vectors() {
        let tree = reference_tree();
        let vectors: [(u64, u64, &[&str]); 4] = [
            (1, 1, &[]),
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
        for (first, second, path) in vectors {
            let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
            assert_eq!(tree.consistency_proof(first, second).as_ref(), Ok(&expected), "{first} to {second}");
            let (r1, r2) = (h(REFERENCE_ROOTS[first as usize]), h(REFERENCE_ROOTS[second as usize]));
            assert_eq!(verify_consistency(first, second, &r1, &r2, &expected), Ok(()));
        }
    }

    #[test]
    fn trivial_consistency_cases_follow_rfc9162() {
        let (a, b) = (h(REFERENCE_ROOTS[1]), h(REFERENCE_ROOTS[2]));
        assert_eq!(verify_consistency(0, 0, &a, &a, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &a, &b, &[]), Ok(()));
        assert_eq!(verify_consistency(3, 3, &b, &b, &[]), Ok(()));
        assert!(verify_consistency(3, 3, &a, &b, &[]).is_err());
        assert!(verify_consistency(0, 0, &a, &b, &[]).is_err());
        assert!(verify_consistency(3, 3, &a, &a, &[a]).is_err());
        assert!(verify_consistency(0, 1, &a, &a, &[a]).is_err());
        assert_eq!(verify_consistency(2, 1, &a, &b, &[]), Err(ProofError::SizesOutOfOrder { first: 2, second: 1 }));
        assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let tree = reference_tree();
        assert_eq!(tree.root_at(9), Err(TreeError::SizeBeyondLog { size: 9, len: 8 }));
        assert_eq!(tree.inclusion_proof(8, 8), Err(TreeError::IndexBeyondSize { index: 8, size: 8 }));
        assert_eq!(tree.inclusion_proof(0, 9), Err(TreeError::SizeBeyondLog { size: 9, len: 8 }));
        assert_eq!(tree.consistency_proof(5, 4), Err(TreeError::SizesOutOfOrder { first: 5, second: 4 }));
        assert_eq!(tree.consistency_proof(1, 9), Err(TreeError::SizeBeyondLog { size: 9, len: 8 }));
        let leaf = tree.leaf_hash(0).unwrap();
        assert_eq!(verify_inclusion(0, 0, &leaf, &[], &leaf), Err(ProofError::IndexBeyondSize { index: 0, size: 0 }));
    }

    #[test]
    fn every_proof_in_every_tree_up_to_64_leaves_verifies() {
        let tree = tree_of(64);
        for size in 0..=64 {
            let root = tree.root_at(size).unwrap();
            for index in 0..size {
                let proof = tree.inclusion_proof(index, size).unwrap();
                let leaf = tree.leaf_hash(index).unwrap();
                assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()), "{index} in {size}");
            }
            for first in 0..=size {
                let proof = tree.consistency_proof(first, size).unwrap();
                let old = tree.root_at(first).unwrap();
                assert_eq!(verify_consistency(first, size, &old, &root, &proof), Ok(()), "{first} to {size}");
            }
        }
    }

    /// A straightforward recursive MTH over a slice: the specification, to check the cache against.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn tree_of(n: u64) -> MerkleTree {
        MerkleTree::from_leaf_hashes((0..n).map(|i| leaf_hash(&i.to_be_bytes())))
    }

    proptest! {
        #[test]
        fn cached_roots_equal_the_recursive_definition(n in 0u64..300, size_seed in any::<u64>()) {
            let tree = tree_of(n);
            let leaves: Vec<Hash> = (0..n).map(|i| tree.leaf_hash(i).unwrap()).collect();
            let size = if n == 0 { 0 } else { size_seed % (n + 1) };
            prop_assert_eq!(tree.root_at(size).unwrap(), reference_root(&leaves[..size as usize]));
        }

        #[test]
        fn every_inclusion_proof_verifies_and_tampering_fails(
            size in 1u64..200, index_seed in any::<u64>(), flip in any::<(usize, u8)>()
        ) {
            let tree = tree_of(size + 7); // proofs for a prefix, not only for the whole log
            let index = index_seed % size;
            let root = tree.root_at(size).unwrap();
            let leaf = tree.leaf_hash(index).unwrap();
            let proof = tree.inclusion_proof(index, size).unwrap();
            prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));

            let mut other_leaf = leaf;
            other_leaf[flip.0 % 32] ^= 1 << (flip.1 % 8);
            prop_assert!(verify_inclusion(index, size, &other_leaf, &proof, &root).is_err());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let at = flip.0 % bad.len();
                bad[at][flip.0 % 32] ^= 1 << (flip.1 % 8);
                prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
                prop_assert!(verify_inclusion(index, size, &leaf, &proof[..proof.len() - 1], &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root);
            prop_assert!(verify_inclusion(index, size, &leaf, &longer, &root).is_err());
            if size > 1 {
                let other = (index + 1) % size;
                prop_assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_tampering_fails(
            second in 1u64..200, first_seed in any::<u64>(), flip in any::<(usize, u8)>()
        ) {
            let tree = tree_of(second + 3);
            let first = first_seed % (second + 1);
            let (r1, r2) = (tree.root_at(first).unwrap(), tree.root_at(second).unwrap());
            let proof = tree.consistency_proof(first, second).unwrap();
            prop_assert_eq!(verify_consistency(first, second, &r1, &r2, &proof), Ok(()));

            let mut other_root = r1;
            other_root[flip.0 % 32] ^= 1 << (flip.1 % 8);
            if first > 0 {
                prop_assert!(verify_consistency(first, second, &other_root, &r2, &proof).is_err());
            }
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let at = flip.0 % bad.len();
                bad[at][flip.0 % 32] ^= 1 << (flip.1 % 8);
                prop_assert!(verify_consistency(first, second, &r1, &r2, &bad).is_err());
                prop_assert!(verify_consistency(first, second, &r1, &r2, &proof[..proof.len() - 1]).is_err());
                let r2_changed = tree.root_at(second + 1).unwrap();
                prop_assert!(verify_consistency(first, second, &r1, &r2_changed, &proof).is_err());
            }
            let mut longer = proof.clone();
            longer.push(r2);
            prop_assert!(verify_consistency(first, second, &r1, &r2, &longer).is_err());
        }
    }
}
