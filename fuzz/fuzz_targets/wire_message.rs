//! What a peer sends inside link frames (`replication::wire`, CBOR): protocol messages, runtime
//! control messages, sealed requests, stored rounds and ordered request envelopes. The first
//! byte picks the type; for protocol messages the second picks the (authenticated) sender, and
//! the decoded message is handed to a fresh replica of a real n = 4 cluster.
//!
//! Properties beyond "no panic": whatever decodes re-encodes to bytes that decode to the same
//! value (equal, or re-encoding identically where the type has no equality); a request
//! envelope re-encodes to exactly its bytes; and a single message from a peer never makes the
//! receiver blame another party.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use replication::atomic::AbcConfig;
use replication::atomic::secure::{Request, ScabcMessage, SecureAtomicBroadcast};
use replication::runtime::control::{Control, StoredRound};
use replication::{Protocol, wire};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes, re-encodes and decodes again: the second encoding must be a fixed point.
fn stable<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value: T = wire::decode(1, bytes).ok()?;
    let encoded = wire::encode(&value).expect("a decoded value encodes");
    let again: T = wire::decode(1, &encoded).expect("a re-encoded value decodes");
    assert_eq!(wire::encode(&again).expect("encodes"), encoded, "re-encoding is not stable");
    Some(again)
}

fuzz_target!(|data: &[u8]| {
    let [kind, sender, rest @ ..] = data else {
        return;
    };
    match kind % 5 {
        0 => {
            let Some(message) = stable::<ScabcMessage>(rest) else {
                return;
            };
            let decoded: ScabcMessage = wire::decode(1, rest).expect("decoded once");
            assert_eq!(decoded, message, "decode(encode(m)) != m");
            let from = usize::from(sender % 3) + 1;
            let cluster = itca_fuzz::cluster();
            let info = Arc::new(cluster.network_info(0));
            let mut replica = SecureAtomicBroadcast::new(info, itca_fuzz::instance(), AbcConfig::default());
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(*sender));
            let step = replica.handle_message(from, message, &mut rng);
            for fault in &step.faults {
                assert_eq!(fault.party, from, "a message from {from} blamed party {}: {fault:?}", fault.party);
            }
        }
        1 => {
            let _ = stable::<Control>(rest);
        }
        2 => {
            let Some(sealed) = replication::crypto::threshold_backend::decode_sealed(rest) else {
                return;
            };
            let encoded = wire::encode(&sealed).expect("a decoded sealed request encodes");
            let again = replication::crypto::threshold_backend::decode_sealed(&encoded).expect("re-decodes");
            assert!(again == sealed, "decode(encode(sealed)) != sealed");
            let _ = sealed.validate();
        }
        3 => {
            let _ = stable::<StoredRound>(rest);
        }
        _ => {
            if let Some(request) = Request::decode(rest) {
                assert_eq!(request.encode(), rest, "a request envelope does not re-encode to itself");
            }
        }
    }
});
