//! The REST API's JSON bodies (`ca_api::api`), both ways: what a client posts to a replica
//! (a submission, its base64 request, a serial number in a path) and what a replica answers a
//! client (which a client must survive when the replica is compromised). The first byte picks
//! the type.
//!
//! Properties beyond "no panic": every body that parses re-serialises to JSON that parses to an
//! equal value; a serial number that parses prints back to itself.
#![no_main]

use std::fmt::Debug;

use base64::Engine;
use ca_api::api;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(bytes).ok()?;
    let text = serde_json::to_vec(&value).expect("a parsed body serialises");
    let again: T = serde_json::from_slice(&text).expect("a re-serialised body parses");
    assert_eq!(again, value, "parse(serialise(v)) != v");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 12 {
        0 => {
            // What the submit handlers do with a body before anything is ordered.
            let Some(submission) = round_trip::<api::Submission>(rest) else {
                return;
            };
            let (tag, encoded) = match &submission {
                api::Submission::Plain { request } => (0, request),
                api::Submission::Sealed { request } => (1, request),
            };
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) {
                let _ = api::Submission::request_id(tag, &bytes);
                if tag == 0 {
                    let _ = ca_api::command::CaRequest::from_bytes(&bytes);
                }
            }
        }
        1 => {
            let _ = round_trip::<api::RequestStatus>(rest);
        }
        2 => {
            let _ = round_trip::<api::CertificateInfo>(rest);
        }
        3 => {
            let _ = round_trip::<api::CertificateList>(rest);
        }
        4 => {
            let _ = round_trip::<api::CaInfo>(rest);
        }
        5 => {
            let _ = round_trip::<api::SignedTreeHead>(rest);
        }
        6 => {
            let _ = round_trip::<api::Entries>(rest);
        }
        7 => {
            let _ = round_trip::<api::InclusionProof>(rest);
        }
        8 => {
            let _ = round_trip::<api::ConsistencyProof>(rest);
        }
        9 => {
            let _ = round_trip::<api::Health>(rest);
        }
        10 => {
            let _ = round_trip::<api::Refusal>(rest);
        }
        _ => {
            // A serial number as it appears in `/v1/certificates/{serial}`.
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(serial) = ca_api::command::parse_serial_hex(text) {
                assert!(!serial.is_empty() && serial[0] != 0, "a serial kept a leading zero octet");
                assert_eq!(ca_api::command::parse_serial_hex(&hex::encode(&serial)), Ok(serial), "serial round trip");
            }
        }
    }
});
