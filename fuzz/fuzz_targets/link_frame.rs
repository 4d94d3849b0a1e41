//! The replica link's frame decoder (`replication::runtime::link::frame`): bytes a peer writes
//! on its TLS connection, fed in arbitrary chunks under an arbitrary frame limit.
//!
//! Properties beyond "no panic": every frame returned re-encodes to exactly the bytes it was
//! decoded from (so the consumed stream is the concatenation of the frames' encodings), none
//! exceeds the limit, the decoder holds exactly the bytes not yet returned, and once it has failed it
//! stays failed. A single body decoded on its own re-encodes to itself too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replication::runtime::link::frame::{Frame, FrameDecoder, LENGTH_PREFIX};

fuzz_target!(|data: &[u8]| {
    let [chunk, limit, stream @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk % 64) + 1;
    // Small limits hit the oversize path; 255 selects a limit nothing here reaches.
    let max_frame = if *limit == 255 { 1 << 20 } else { usize::from(*limit) };

    let mut decoder = FrameDecoder::new(max_frame);
    let mut consumed = Vec::new();
    let mut failed = false;
    let mut pushed = 0;
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        pushed += piece.len();
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(!failed, "a failed decoder produced a frame");
                    assert!(frame.body_len() <= max_frame, "a frame over the limit got through");
                    frame.encode_into(&mut consumed).expect("a decoded frame encodes");
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    assert!(decoder.next_frame().is_err(), "a failed decoder recovered");
                    break;
                }
            }
        }
        if !failed {
            assert_eq!(decoder.buffered(), pushed - consumed.len(), "the decoder lost or invented bytes");
        }
    }
    assert_eq!(&stream[..consumed.len()], &consumed[..], "decoded frames do not re-encode to the stream");

    if let Ok(frame) = Frame::decode_body(stream) {
        let bytes = frame.encode().expect("a decoded body encodes");
        assert_eq!(&bytes[LENGTH_PREFIX..], stream, "a body does not re-encode to itself");
    }
});
