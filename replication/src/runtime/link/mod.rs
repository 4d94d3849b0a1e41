//! Replica-to-replica links: mutually authenticated TLS with pinned peer certificates,
//! length-prefixed frames, reconnection, and per-peer reliable delivery.
