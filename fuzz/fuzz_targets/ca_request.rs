//! What a client submits for ordering: `ca_api::command::CaRequest::from_bytes` (signed commands
//! and key-signed revocations, JSON), then what every replica does with an ordered request
//! before touching its state: the signature check, command parsing, the revocation statement
//! and the CSR's base64, and the replay key.
//!
//! Properties beyond "no panic": `from_bytes(to_bytes(r)) == r` with the same replay key; a
//! parsed command re-serialises to JSON that parses to the same command; a signature that
//! verifies over the original still verifies over the round-tripped request.
#![no_main]

use ca_api::command::{CaRequest, parse_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CaRequest::from_bytes(data) else {
        return;
    };
    let again = CaRequest::from_bytes(&request.to_bytes()).expect("a re-encoded request decodes");
    assert_eq!(again, request, "from_bytes(to_bytes(r)) != r");
    assert_eq!(again.replay_key(), request.replay_key(), "the replay key depends on the spelling");
    match &request {
        CaRequest::Signed(signed) => {
            let verified = signed.verify();
            if let CaRequest::Signed(other) = &again {
                assert_eq!(other.verify(), verified, "verification changed with the round trip");
            }
            if let Ok(command) = parse_command(&signed.command) {
                let text = serde_json::to_string(&command).expect("a command serialises");
                assert_eq!(parse_command(&text), Ok(command.clone()), "parse(serialise(c)) != c");
                if let Some(Ok(csr)) = command.csr_der() {
                    let _ = ca_server::csr::parse_der(&csr, &ca_server::csr::CsrLimits::default());
                }
            }
        }
        CaRequest::RevokeByKey(revocation) => {
            if let Ok(statement) = revocation.parse_statement() {
                let _ = ca_api::command::parse_serial_hex(&statement.serial_hex);
            }
        }
    }
});
