//! What replicas' CA state machines send each other: `ca_server::signing::SigningMessage`
//! (JSON signature shares, share requests and combined signatures), decoded from a peer.
//!
//! Properties beyond "no panic": an accepted message holds at most the item limit, and
//! `decode(encode(m)) == m`.
#![no_main]

use ca_server::signing::{MAX_ITEMS_PER_MESSAGE, SigningMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = SigningMessage::decode(data) else {
        return;
    };
    let items = match &message {
        SigningMessage::Shares { shares } => shares.len(),
        SigningMessage::Request { hashes, .. } => hashes.len(),
        SigningMessage::Signatures { signatures } => signatures.len(),
    };
    assert!(items <= MAX_ITEMS_PER_MESSAGE, "{items} items accepted");
    let encoded = message.encode();
    assert_eq!(SigningMessage::decode(&encoded).as_ref(), Ok(&message), "decode(encode(m)) != m");
});
