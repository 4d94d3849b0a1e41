//! The networked runtime (DESIGN.md §5): the only part of `replication` that does I/O. It runs
//! one replica's secure causal atomic broadcast over mutually authenticated TLS links, logs every
//! input before the messages it causes leave (write-ahead), restores its state after a crash,
//! fetches and verifies rounds it missed, and hands ordered requests to the application.

pub mod link;
