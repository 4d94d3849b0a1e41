//! Every refused request is a log entry with its stable code, the same at every replica.

use std::collections::BTreeSet;

use ca_api::command::{CaRequest, Command, KeyRevocation, KeyRevocationStatement, RevocationReason, SignedCommand};
use ca_api::policy::{Account, KeyType, NameRule, Profile};
use ca_server::entry::{EntryKind, RefusalCode};
use ca_server::{RequestInput, RoundInput};

use crate::replicas::assert_identical;
use crate::support::*;

/// What became of a request.
type Outcome = Result<EntryKind, RefusalCode>;

/// The outcome of every request of a round at replica 0, after checking all agree.
async fn outcomes(net: &Net, round: &RoundInput) -> Vec<Outcome> {
    let mut results = Vec::new();
    for id in net.running() {
        let report = net.ca(id).apply_round(round.clone()).await.unwrap();
        let outcome: Vec<_> = report.entries.iter().map(|e| e.refusal.map_or(Ok(e.kind), Err)).collect();
        results.push(outcome);
    }
    for other in &results[1..] {
        assert_eq!(other, &results[0]);
    }
    results.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_reason_is_logged_with_its_stable_code_at_every_replica() {
    let net = Net::new().await;
    let mut rounds = Rounds::new();
    let op = operator();
    let (alice, expired, stranger) = (account(11), account(12), account(13));

    // Round 0: the policy gains alice (default and narrow profiles) and an account expiring
    // before round 1; the operator gets a certificate alice may not revoke.
    let mut policy = dealt_policy();
    policy.profiles.push(Profile {
        name: "narrow".into(),
        names: vec![NameRule::Exact("only.localhost".into())],
        key_types: vec![KeyType::Ed25519],
        max_validity_days: 10,
        default_validity_days: 5,
        extended_key_usage: vec![ca_api::policy::ExtendedKeyUsage::ClientAuth],
    });
    policy.profiles.push(Profile { name: "secret".into(), ..policy.profiles[0].clone() });
    let member = |name: &str, key: &ca_api::AccountSecret, expires_at| Account {
        name: name.into(),
        public_key: key.public(),
        admin: false,
        profiles: vec!["default".into(), "narrow".into()],
        may_revoke_any: false,
        expires_at,
    };
    policy.accounts.push(member("alice", &alice, None));
    policy.accounts.push(member("expired", &expired, Some(rounds.time_ms(1) / 1000)));
    let op_csr = csr(&Key::p256(40), "op.localhost", &["op.localhost"]);
    let round0 = rounds.round(vec![set_policy(&op, &policy, "p0"), issue(&op, &op_csr, "default", None, "o0")]);
    assert_eq!(outcomes(&net, &round0).await, [Ok(EntryKind::PolicyChanged), Ok(EntryKind::Issued)]);
    let op_serial = hex::encode(net.ca(0).certificates(None, 1).await.unwrap()[0].serial.clone());
    assert_eq!(net.ca(2).current_policy().policy, policy);

    let good = |seed: u8, name: &str| csr(&Key::p256(seed), name, &[name]);
    let mut bad_signature =
        SignedCommand::sign(&alice, &Command::issue(&good(41, "x.localhost"), "default", None, "b".into()));
    bad_signature.signature[0] ^= 1;
    let mut broken_csr = good(42, "y.localhost");
    let last = broken_csr.len() - 1;
    broken_csr[last] ^= 1;
    let wrong_key = KeyRevocation::sign_with(
        &KeyRevocationStatement {
            serial_hex: op_serial.clone(),
            reason: RevocationReason::Unspecified,
            nonce: "w".into(),
        },
        |message| Key::p256(99).sign(message).1,
    );
    let alice_admin = set_policy(&alice, &policy, "aa");
    let mut no_admin = policy.clone();
    no_admin.accounts.iter_mut().for_each(|a| a.admin = false);
    let no_admin = threshold::encoding::to_json(&no_admin).to_string();
    let alice_issue = issue(&alice, &good(43, "z.localhost"), "default", None, "ok");

    let cases: Vec<(Option<Vec<u8>>, Outcome)> = vec![
        (Some(b"not json".to_vec()), Err(RefusalCode::Undecodable)),
        (None, Err(RefusalCode::Undecodable)),
        (Some(issue(&stranger, &good(44, "s.localhost"), "default", None, "s")), Err(RefusalCode::UnknownAccount)),
        (Some(CaRequest::Signed(bad_signature).to_bytes()), Err(RefusalCode::BadSignature)),
        (Some(issue(&expired, &good(45, "e.localhost"), "default", None, "e")), Err(RefusalCode::AccountExpired)),
        (Some(issue(&alice, &good(46, "a.localhost"), "secret", None, "p")), Err(RefusalCode::ProfileNotAllowed)),
        (Some(issue(&alice, &good(47, "evil.example"), "default", None, "n")), Err(RefusalCode::NameNotAllowed)),
        (Some(issue(&alice, &good(48, "only.localhost"), "narrow", None, "k")), Err(RefusalCode::KeyTypeNotAllowed)),
        (
            Some(issue(
                &alice,
                &csr(&Key::ed25519(49), "only.localhost", &["only.localhost"]),
                "narrow",
                Some(11),
                "v",
            )),
            Err(RefusalCode::ValidityTooLong),
        ),
        (Some(issue(&alice, &good(50, "v.localhost"), "default", Some(0), "z")), Err(RefusalCode::InvalidValidity)),
        (Some(issue(&alice, &broken_csr, "default", None, "c")), Err(RefusalCode::CsrInvalid)),
        (
            Some(signed(
                &alice,
                &Command::Revoke {
                    serial_hex: "0badc0de".into(),
                    reason: RevocationReason::Unspecified,
                    nonce: "u".into(),
                },
            )),
            Err(RefusalCode::UnknownSerial),
        ),
        (
            Some(signed(
                &alice,
                &Command::Revoke {
                    serial_hex: op_serial.clone(),
                    reason: RevocationReason::Unspecified,
                    nonce: "r".into(),
                },
            )),
            Err(RefusalCode::NotAuthorized),
        ),
        (Some(alice_admin), Err(RefusalCode::NotAuthorized)),
        (
            Some(signed(&op, &Command::SetPolicy { policy_json: no_admin, nonce: "i".into() })),
            Err(RefusalCode::InvalidPolicy),
        ),
        (Some(CaRequest::RevokeByKey(wrong_key).to_bytes()), Err(RefusalCode::BadSignature)),
        (Some(alice_issue.clone()), Ok(EntryKind::Issued)),
        (
            Some(signed(
                &op,
                &Command::Revoke {
                    serial_hex: op_serial.clone(),
                    reason: RevocationReason::KeyCompromise,
                    nonce: "x1".into(),
                },
            )),
            Ok(EntryKind::Revoked),
        ),
        (
            Some(signed(
                &op,
                &Command::Revoke {
                    serial_hex: op_serial.clone(),
                    reason: RevocationReason::KeyCompromise,
                    nonce: "x2".into(),
                },
            )),
            Err(RefusalCode::AlreadyRevoked),
        ),
    ];
    let round1 = RoundInput {
        round: 1,
        time: rounds.time_ms(1),
        seed: [1; 32],
        requests: cases
            .iter()
            .enumerate()
            .map(|(i, (payload, _))| match payload {
                Some(payload) => plain(payload.clone()),
                None => RequestInput { digest: [i as u8; 32], sealed: true, payload: None },
            })
            .collect(),
    };
    let _ = rounds.round(vec![]);
    let expected: Vec<_> = cases.iter().map(|(_, outcome)| *outcome).collect();
    // The advisory check the HTTP layer runs before submitting gives the same verdicts (each
    // request alone against the current state, so the one that depends on an earlier request of
    // the round is left out).
    for (i, (payload, outcome)) in cases.iter().enumerate() {
        let Some(payload) = payload else { continue };
        if matches!(outcome, Err(RefusalCode::AlreadyRevoked)) {
            continue;
        }
        let verdict = net.ca(3).precheck(payload, rounds.time_ms(1)).await.unwrap().map_err(|(code, _)| code);
        assert_eq!(verdict, *outcome, "precheck of case {i}");
    }
    assert_eq!(outcomes(&net, &round1).await, expected);

    // The same signed command again (in a later round, as a replay would be).
    let round2 = rounds.round(vec![alice_issue]);
    assert_eq!(outcomes(&net, &round2).await, [Err(RefusalCode::Replayed)]);

    let covered: BTreeSet<RefusalCode> =
        expected.iter().chain(&[Err(RefusalCode::Replayed)]).filter_map(|o| o.err()).collect();
    assert_eq!(covered, RefusalCode::ALL.into_iter().collect(), "every code is exercised");

    // The status of a refused request carries its code and a message.
    let status = net.ca(1).request_status(&round1.requests[6].digest).await.unwrap().unwrap();
    assert_eq!(status.kind, EntryKind::Refused);
    assert_eq!(status.refusal_code.as_deref(), Some("name_not_allowed"));
    assert!(status.refusal_message.unwrap().contains("evil.example"));
    assert_identical(&net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_applies_from_the_next_request_of_the_same_round() {
    let net = Net::new().await;
    let mut rounds = Rounds::new();
    let (op, bob) = (operator(), account(21));
    let mut policy = dealt_policy();
    policy.accounts.push(Account {
        name: "bob".into(),
        public_key: bob.public(),
        admin: false,
        profiles: vec!["default".into()],
        may_revoke_any: false,
        expires_at: None,
    });
    let request =
        |nonce: &str| issue(&bob, &csr(&Key::p256(22), "bob.localhost", &["bob.localhost"]), "default", None, nonce);
    let round = rounds.round(vec![request("before"), set_policy(&op, &policy, "p"), request("after")]);
    assert_eq!(
        outcomes(&net, &round).await,
        [Err(RefusalCode::UnknownAccount), Ok(EntryKind::PolicyChanged), Ok(EntryKind::Issued)]
    );
    let current = net.ca(0).current_policy();
    assert_eq!(current.policy, policy);
    assert_eq!(current.sha256, ca_api::policy_sha256(current.json.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_delivered_again_is_ignored_and_a_skipped_round_is_an_error() {
    let net = Net::new().await;
    let mut rounds = Rounds::new();
    let op = operator();
    let round0 =
        rounds.round(vec![issue(&op, &csr(&Key::p256(30), "r.localhost", &["r.localhost"]), "default", None, "a")]);
    let ca = net.ca(0);
    assert!(!ca.apply_round(round0.clone()).await.unwrap().already_applied);
    assert!(ca.apply_round(round0).await.unwrap().already_applied);
    assert_eq!(ca.log_size(), 1);
    let _skipped = rounds.round(vec![]);
    let round2 = rounds.round(vec![]);
    assert!(matches!(ca.apply_round(round2).await, Err(ca_server::CaError::RoundGap { expected: 1, got: 2 })));
    assert_eq!(ca.next_round(), 1);
}
