//! Encodings the protocols rely on: a request's tagged encoding (what atomic broadcast orders,
//! so it must be canonical and injective) and the snapshot's compact serde helpers (which must
//! round-trip exactly).

use proptest::prelude::*;
use replication::atomic::secure::Request;
use replication::wire;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Request::Plain),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Request::Sealed),
    ]
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Helpers {
    #[serde(with = "replication::wire::digests")]
    set: BTreeSet<[u8; 32]>,
    #[serde(with = "replication::wire::digests")]
    queue: VecDeque<[u8; 32]>,
    #[serde(with = "replication::wire::digest_map_bytes")]
    map: BTreeMap<[u8; 32], Vec<u8>>,
    #[serde(with = "replication::wire::seq_bytes")]
    seq: VecDeque<Vec<u8>>,
}

proptest! {
    #[test]
    fn a_request_decodes_to_itself_and_nothing_else_encodes_the_same(a in request(), b in request()) {
        prop_assert_eq!(Request::decode(&a.encode()), Some(a.clone()));
        prop_assert_eq!(a.encode() == b.encode(), a == b);
    }

    #[test]
    fn any_bytes_that_decode_are_the_canonical_encoding_of_their_request(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Some(request) = Request::decode(&bytes) {
            prop_assert_eq!(request.encode(), bytes);
        } else {
            prop_assert!(bytes.is_empty() || bytes[0] > 1);
        }
    }

    #[test]
    fn snapshot_serde_helpers_round_trip_exactly(
        set in proptest::collection::btree_set(any::<[u8; 32]>(), 0..8),
        queue in proptest::collection::vec_deque(any::<[u8; 32]>(), 0..8),
        map in proptest::collection::btree_map(any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        seq in proptest::collection::vec_deque(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
    ) {
        let value = Helpers { set, queue, map, seq };
        let bytes = wire::encode(&value).expect("encodes");
        prop_assert_eq!(wire::decode::<Helpers>(0, &bytes).expect("decodes"), value);
    }
}

#[test]
fn a_digest_list_of_a_length_not_a_multiple_of_32_does_not_decode() {
    #[derive(Debug, Serialize)]
    struct Raw(#[serde(with = "replication::wire::bytes")] Vec<u8>);
    #[derive(Debug, Deserialize)]
    struct Digests(#[serde(with = "replication::wire::digests")] Vec<[u8; 32]>);
    let bytes = wire::encode(&Raw(vec![1; 33])).expect("encodes");
    assert!(wire::decode::<Digests>(0, &bytes).is_err());
    let bytes = wire::encode(&Raw(vec![1; 64])).expect("encodes");
    assert_eq!(wire::decode::<Digests>(0, &bytes).expect("decodes").0, vec![[1; 32]; 2]);
}
