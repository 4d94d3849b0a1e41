//! Broadcast primitives: reliable (Bracha) and verifiable consistent (echo) broadcast.

pub mod consistent;
pub mod reliable;
