//! The link's wire format, sans-IO: a `u32` big-endian length prefix, then a body of one kind
//! byte and the kind's fields (integers big-endian, payloads as the rest of the body).
//!
//! The decoder checks a frame's claimed length against the limit before buffering any of its
//! body, and only ever holds the bytes actually received, so a peer cannot make it allocate
//! what it merely claims. Every decoding failure is a [`FrameError`], never a panic.

use std::sync::Arc;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

const KIND_HELLO: u8 = 0;
const KIND_DATA: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_CONTROL: u8 = 3;
const KIND_SKIP: u8 = 4;

/// One link frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first frame in both directions after the TLS handshake: the highest contiguous
    /// sequence number the sender has accepted from the receiver.
    Hello { received_up_to: u64 },
    /// A sequenced message of the reliable channel.
    Data { seq: u64, payload: Arc<[u8]> },
    /// The sender has accepted every `Data` up to and including `up_to`.
    Ack { up_to: u64 },
    /// The sender will never send (again) any `Data` with `seq <= up_to`: it dropped them on
    /// purpose (reclaimed rounds, byte cap, or already acknowledged). Lets the receiver move
    /// past a hole instead of waiting for it forever.
    Skip { up_to: u64 },
    /// An unsequenced message (status, catch-up requests); lost if the connection drops.
    Control { payload: Arc<[u8]> },
}

impl Frame {
    /// Length of the body (everything after the length prefix).
    pub fn body_len(&self) -> usize {
        match self {
            Frame::Hello { .. } | Frame::Ack { .. } | Frame::Skip { .. } => 1 + 8,
            Frame::Data { payload, .. } => 1 + 8 + payload.len(),
            Frame::Control { payload } => 1 + payload.len(),
        }
    }

    /// Length on the wire, prefix included.
    pub fn wire_len(&self) -> usize {
        LENGTH_PREFIX + self.body_len()
    }

    /// Appends the frame (prefix and body) to `out`. Fails only if the body does not fit the
    /// `u32` prefix; callers also check their configured maximum before sending.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = u32::try_from(self.body_len())
            .map_err(|_| FrameError::Oversized { len: self.body_len() as u64, max: u32::MAX as usize })?;
        out.reserve(LENGTH_PREFIX + len as usize);
        out.extend_from_slice(&len.to_be_bytes());
        match self {
            Frame::Hello { received_up_to } => {
                out.push(KIND_HELLO);
                out.extend_from_slice(&received_up_to.to_be_bytes());
            }
            Frame::Data { seq, payload } => {
                out.push(KIND_DATA);
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(payload);
            }
            Frame::Ack { up_to } => {
                out.push(KIND_ACK);
                out.extend_from_slice(&up_to.to_be_bytes());
            }
            Frame::Skip { up_to } => {
                out.push(KIND_SKIP);
                out.extend_from_slice(&up_to.to_be_bytes());
            }
            Frame::Control { payload } => {
                out.push(KIND_CONTROL);
                out.extend_from_slice(payload);
            }
        }
        Ok(())
    }

    /// The frame's bytes, prefix included.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes one body (without its prefix).
    pub fn decode_body(body: &[u8]) -> Result<Frame, FrameError> {
        let (&kind, rest) = body.split_first().ok_or(FrameError::Empty)?;
        let fixed = |rest: &[u8]| -> Result<u64, FrameError> {
            let bytes: [u8; 8] = rest.try_into().map_err(|_| FrameError::BadLength { kind, len: body.len() })?;
            Ok(u64::from_be_bytes(bytes))
        };
        match kind {
            KIND_HELLO => Ok(Frame::Hello { received_up_to: fixed(rest)? }),
            KIND_ACK => Ok(Frame::Ack { up_to: fixed(rest)? }),
            KIND_SKIP => Ok(Frame::Skip { up_to: fixed(rest)? }),
            KIND_DATA => {
                if rest.len() < 8 {
                    return Err(FrameError::BadLength { kind, len: body.len() });
                }
                let (seq, payload) = rest.split_at(8);
                Ok(Frame::Data { seq: fixed(seq)?, payload: Arc::from(payload) })
            }
            KIND_CONTROL => Ok(Frame::Control { payload: Arc::from(rest) }),
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// A short name for logs and counters.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Data { .. } => "data",
            Frame::Ack { .. } => "ack",
            Frame::Skip { .. } => "skip",
            Frame::Control { .. } => "control",
        }
    }
}

/// Why bytes from a peer are not a frame. Each one is that peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversized { len: u64, max: usize },
    #[error("empty frame body")]
    Empty,
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame of kind {kind} has an impossible length {len}")]
    BadLength { kind: u8, len: usize },
}

/// Incremental decoder: push the bytes read from the connection, pull whole frames.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf` (consumed bytes are dropped lazily, so many small
    /// frames in one read cost one move).
    start: usize,
    /// Set after an error: the stream is out of sync and nothing more can be decoded.
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder refusing bodies longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame, buf: Vec::new(), start: 0, failed: None }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends bytes read from the connection. Callers read in bounded chunks and call
    /// [`FrameDecoder::next_frame`] in between, so the buffer stays below one frame plus one chunk.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= 64 * 1024) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` if more bytes are needed. After an error the decoder keeps
    /// returning it (the connection must be dropped).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = &self.buf[self.start..];
        let Some(prefix) = pending.first_chunk::<LENGTH_PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        // Checked as soon as the prefix is in: the body is never buffered beyond the limit.
        if len > self.max_frame {
            return Err(self.fail(FrameError::Oversized { len: len as u64, max: self.max_frame }));
        }
        let Some(body) = pending.get(LENGTH_PREFIX..LENGTH_PREFIX + len) else {
            return Ok(None);
        };
        match Frame::decode_body(body) {
            Ok(frame) => {
                self.start += LENGTH_PREFIX + len;
                Ok(Some(frame))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        // The buffered bytes are garbage now; free them at once.
        self.buf = Vec::new();
        self.start = 0;
        self.failed = Some(e.clone());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello { received_up_to: 0 },
            Frame::Hello { received_up_to: u64::MAX },
            Frame::Data { seq: 1, payload: Arc::from(&b"hello"[..]) },
            Frame::Data { seq: 7, payload: Arc::from(&[][..]) },
            Frame::Ack { up_to: 42 },
            Frame::Skip { up_to: 9 },
            Frame::Control { payload: Arc::from(&b"status?"[..]) },
            Frame::Control { payload: Arc::from(&[][..]) },
        ]
    }

    #[test]
    fn every_frame_kind_round_trips() {
        for frame in samples() {
            let bytes = frame.encode().unwrap();
            assert_eq!(bytes.len(), frame.wire_len());
            let mut decoder = FrameDecoder::new(1024);
            decoder.push(&bytes);
            assert_eq!(decoder.next_frame().unwrap(), Some(frame));
            assert_eq!(decoder.next_frame().unwrap(), None);
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn frames_split_at_every_byte_boundary_decode_in_order() {
        let frames = samples();
        let mut stream = Vec::new();
        for f in &frames {
            f.encode_into(&mut stream).unwrap();
        }
        for chunk in [1, 2, 3, 5, 13, stream.len()] {
            let mut decoder = FrameDecoder::new(1024);
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.push(piece);
                while let Some(f) = decoder.next_frame().unwrap() {
                    out.push(f);
                }
            }
            assert_eq!(out, frames, "chunk size {chunk}");
        }
    }

    #[test]
    fn oversized_length_is_refused_from_the_prefix_alone() {
        let mut decoder = FrameDecoder::new(100);
        // Claims 4 GiB - 1 but sends only the prefix: refused without waiting for (or
        // allocating) the body.
        decoder.push(&u32::MAX.to_be_bytes());
        assert_eq!(decoder.next_frame(), Err(FrameError::Oversized { len: u32::MAX as u64, max: 100 }));
        assert!(decoder.next_frame().is_err(), "a failed decoder stays failed");
        let mut decoder = FrameDecoder::new(100);
        decoder.push(&101u32.to_be_bytes());
        assert!(matches!(decoder.next_frame(), Err(FrameError::Oversized { len: 101, .. })));
        let mut decoder = FrameDecoder::new(100);
        decoder.push(&100u32.to_be_bytes());
        assert_eq!(decoder.next_frame(), Ok(None), "exactly the limit is allowed");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(Frame::decode_body(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::decode_body(&[9, 0]), Err(FrameError::UnknownKind(9)));
        assert_eq!(Frame::decode_body(&[KIND_HELLO, 1, 2]), Err(FrameError::BadLength { kind: 0, len: 3 }));
        assert!(matches!(Frame::decode_body(&[KIND_ACK; 10]), Err(FrameError::BadLength { .. })));
        assert!(matches!(Frame::decode_body(&[KIND_DATA, 0, 0, 0]), Err(FrameError::BadLength { .. })));
        let mut decoder = FrameDecoder::new(100);
        decoder.push(&[0, 0, 0, 0]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Empty));
    }

    fn frame_strategy() -> impl Strategy<Value = Frame> {
        let payload = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Arc::<[u8]>::from);
        prop_oneof![
            any::<u64>().prop_map(|received_up_to| Frame::Hello { received_up_to }),
            (any::<u64>(), payload.clone()).prop_map(|(seq, payload)| Frame::Data { seq, payload }),
            any::<u64>().prop_map(|up_to| Frame::Ack { up_to }),
            any::<u64>().prop_map(|up_to| Frame::Skip { up_to }),
            payload.prop_map(|payload| Frame::Control { payload }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            chunk in 1usize..64,
            max in 0usize..256,
        ) {
            let mut decoder = FrameDecoder::new(max);
            for piece in bytes.chunks(chunk) {
                decoder.push(piece);
                while let Ok(Some(frame)) = decoder.next_frame() {
                    prop_assert!(frame.body_len() <= max);
                }
            }
            prop_assert!(decoder.buffered() <= bytes.len());
        }

        #[test]
        fn arbitrary_frames_round_trip(frames in proptest::collection::vec(frame_strategy(), 0..8)) {
            let mut stream = Vec::new();
            for f in &frames {
                f.encode_into(&mut stream).unwrap();
            }
            let mut decoder = FrameDecoder::new(1 << 16);
            decoder.push(&stream);
            let mut out = Vec::new();
            while let Some(f) = decoder.next_frame().unwrap() {
                out.push(f);
            }
            prop_assert_eq!(out, frames);
        }
    }
}
