//! The client library and CLI (not yet built): request, verify, revoke and audit, trusting
//! nothing but the root certificate.
