//! Four replicas derive the same bytes and sign them jointly, also with a Byzantine one.

use ca_api::command::{Command, KeyRevocation, KeyRevocationStatement, RevocationReason};
use ca_server::entry::{EntryKind, LogEntry};
use ca_server::signing::SigningMessage;

use crate::support::*;

/// Everything a replica stores that must be identical across replicas.
async fn snapshot(net: &Net, id: usize) -> (Vec<Vec<u8>>, Vec<Option<Vec<u8>>>, Vec<Option<Vec<u8>>>, Vec<String>) {
    let ca = net.ca(id);
    let entries = ca.entries(0, 10_000).await.unwrap().into_iter().map(|e| e.leaf).collect();
    let certificates = ca.certificates(None, 1000).await.unwrap().into_iter().map(|c| c.der).collect();
    let crls = ca.crls().await.unwrap().into_iter().map(|c| c.der).collect();
    let heads = ca
        .tree_heads()
        .await
        .unwrap()
        .into_iter()
        .map(|h| format!("{:?} {}", h.head, hex::encode(h.signature.unwrap_or_default())))
        .collect();
    (entries, certificates, crls, heads)
}

pub async fn assert_identical(net: &Net) {
    let first = snapshot(net, net.running()[0]).await;
    for id in net.running() {
        assert_eq!(snapshot(net, id).await, first, "replica {id} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_store_byte_identical_signed_entries_certificates_crls_and_tree_heads() {
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    let op = operator();
    let ed_key = Key::ed25519(3);
    let round0 = rounds.round(vec![
        issue(&op, &csr(&Key::p256(1), "a.localhost", &["a.localhost", "b.localhost"]), "default", None, "r0a"),
        issue(&op, &csr(&ed_key, "www.example.com", &["www.example.com"]), "default", Some(7), "r0b"),
        issue(&op, &csr(&Key::p256(2), "c.localhost", &[]), "default", Some(90), "r0c"),
    ]);
    net.apply(&round0).await;
    net.settle().await;

    let certificates = net.ca(0).certificates(None, 10).await.unwrap();
    assert_eq!(certificates.len(), 3);
    assert!(certificates.iter().all(|c| c.der.is_some()), "every certificate is signed");
    assert_eq!(certificates[0].dns_names, ["a.localhost", "b.localhost"]);
    assert_eq!(certificates[2].dns_names, ["c.localhost"], "the CN is used without a subjectAltName");
    assert_eq!(certificates[1].not_after - certificates[1].not_before, 7 * 86_400 - 1);
    assert_eq!(certificates[0].not_before, rounds.time_ms(0) / 1000);

    // Revoke one by account and one by its own key.
    let serial_hex = hex::encode(&certificates[0].serial);
    let by_key = KeyRevocation::sign_with(
        &KeyRevocationStatement {
            serial_hex: hex::encode(&certificates[1].serial),
            reason: RevocationReason::KeyCompromise,
            nonce: "k1".into(),
        },
        |message| ed_key.sign(message).1,
    );
    let round1 = rounds.round(vec![
        signed(&op, &Command::Revoke { serial_hex, reason: RevocationReason::Superseded, nonce: "r1a".into() }),
        ca_api::command::CaRequest::RevokeByKey(by_key).to_bytes(),
    ]);
    net.apply(&round1).await;
    net.settle().await;
    assert_identical(&net).await;

    let ca = net.ca(0);
    let entries = ca.entries(0, 100).await.unwrap();
    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EntryKind::Issued, EntryKind::Issued, EntryKind::Issued, EntryKind::Revoked, EntryKind::Revoked]
    );
    for entry in &entries {
        assert_eq!(LogEntry::decode(&entry.leaf).unwrap().log_index, entry.log_index);
    }
    let status = ca.request_status(&round0.requests[1].digest).await.unwrap().unwrap();
    assert_eq!((status.log_index, status.kind, status.certificate_der.is_some()), (1, EntryKind::Issued, true));
    let revoked = ca.certificate(&certificates[1].serial).await.unwrap().unwrap();
    assert_eq!(revoked.revocation_reason, Some(RevocationReason::KeyCompromise.code()));
    let crls = ca.crls().await.unwrap();
    assert_eq!(crls.iter().map(|c| c.crl_number).collect::<Vec<_>>(), [1, 2], "the first round and the revocation");
    assert_eq!(crls[1].next_update - crls[1].this_update, 7 * 86_400);
    assert_eq!(ca.latest_tree_head().await.unwrap().unwrap().head.tree_size, 5);
    let metrics = ca.metrics().await.unwrap();
    assert_eq!(metrics.next_round, 2);
    assert!(metrics.faults.iter().all(|f| f.total() == 0), "{:?}", metrics.faults);

    // openssl agrees: the certificates verify, and the CRL revokes exactly the revoked ones.
    let dir = tempfile::tempdir().unwrap();
    let root = dealt().root_pem.to_str().unwrap().to_string();
    std::fs::write(dir.path().join("crl.pem"), pem("X509 CRL", &ca.current_crl().await.unwrap().unwrap())).unwrap();
    let (ok, text) = openssl(dir.path(), &["crl", "-in", "crl.pem", "-CAfile", &root, "-noout", "-text"]);
    assert!(ok && text.contains("verify OK"), "{text}");
    for (i, certificate) in certificates.iter().enumerate() {
        let chain = ca.certificate_chain_pem(&certificate.serial).await.unwrap().unwrap();
        let name = format!("cert{i}.pem");
        std::fs::write(dir.path().join(&name), &chain).unwrap();
        let (ok, text) = openssl(dir.path(), &["verify", "-x509_strict", "-CAfile", &root, &name]);
        assert!(ok, "certificate {i}: {text}");
        let serial_upper = hex::encode_upper(&certificate.serial);
        let (ok, listing) = openssl(dir.path(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
        assert!(ok);
        let revoked = i < 2;
        assert_eq!(listing.contains(&serial_upper), revoked, "certificate {i} in the CRL:\n{listing}");
        let (ok, text) = openssl(
            dir.path(),
            &["verify", "-x509_strict", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", &root, &name],
        );
        assert_eq!(ok, !revoked, "certificate {i} with the CRL: {text}");
        if revoked {
            assert!(text.contains("certificate revoked"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_for_rsa_p256_p384_and_ed25519_keys_pass_openssl_strict_verification() {
    let dir = tempfile::tempdir().unwrap();
    let kinds: [&[&str]; 4] = [
        &["-newkey", "rsa:2048"],
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        &["-newkey", "ed25519"],
    ];
    let op = operator();
    let mut payloads = Vec::new();
    for (i, newkey) in kinds.iter().enumerate() {
        let mut args = vec!["req", "-new", "-nodes", "-keyout", "key.pem", "-outform", "DER", "-subj", "/CN=ignored"];
        let out = format!("req{i}.der");
        args.extend_from_slice(&["-out", &out]);
        args.extend_from_slice(newkey);
        args.extend_from_slice(&["-addext", "subjectAltName=DNS:www.example.com,DNS:api.localhost"]);
        let (ok, text) = openssl(dir.path(), &args);
        assert!(ok, "{text}");
        let der = std::fs::read(dir.path().join(&out)).unwrap();
        payloads.push(issue(&op, &der, "default", None, &format!("k{i}")));
    }
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    net.apply(&rounds.round(payloads)).await;
    net.settle().await;
    assert_identical(&net).await;
    let root = dealt().root_pem.to_str().unwrap().to_string();
    let certificates = net.ca(2).certificates(None, 10).await.unwrap();
    assert_eq!(certificates.len(), 4, "every key type is issued");
    for (i, certificate) in certificates.iter().enumerate() {
        let name = format!("cert{i}.pem");
        std::fs::write(dir.path().join(&name), pem("CERTIFICATE", certificate.der.as_ref().unwrap())).unwrap();
        let (ok, text) =
            openssl(dir.path(), &["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", &root, &name]);
        assert!(ok && text.contains(": OK"), "{:?}: {text}", kinds[i]);
        let (_, text) = openssl(dir.path(), &["x509", "-in", &name, "-noout", "-text"]);
        for expected in ["Subject: CN = www.example.com", "URI:https://127.0.0.1:18600/v1/crl", "DNS:api.localhost"] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_share_is_attributed_to_its_sender_and_does_not_prevent_signing() {
    let mut net = Net::new().await;
    // Replica 1 corrupts every share it sends (its proofs, computed for the real value, then
    // fail). It is kept from finishing itself, so it answers requests for proofs with its
    // (corrupted) shares rather than with the signature the others would also accept.
    net.starved.insert(1);
    net.tamper[1] = Some(Box::new(|message| match message {
        SigningMessage::Shares { mut shares } => {
            for share in &mut shares {
                if let Some(last) = share.share.value.last_mut() {
                    *last ^= 0x02;
                }
            }
            SigningMessage::Shares { shares }
        }
        other => other,
    }));
    let mut rounds = Rounds::new();
    let op = operator();
    for r in 0..2u8 {
        let payloads = (0..3u8)
            .map(|i| {
                let name = format!("h{r}{i}.localhost");
                issue(&op, &csr(&Key::p256(10 + 3 * r + i), &name, &[&name]), "default", None, &format!("f{r}{i}"))
            })
            .collect();
        net.apply(&rounds.round(payloads)).await;
        net.settle().await;
    }
    // Once it hears from the others again, it ends with the same signed objects.
    net.starved.clear();
    net.settle().await;
    assert_identical(&net).await;
    assert_eq!(net.ca(0).certificates(None, 10).await.unwrap().iter().filter(|c| c.der.is_some()).count(), 6);
    let mut attributed = 0;
    for id in [0, 2, 3] {
        let faults = net.ca(id).metrics().await.unwrap().faults;
        for honest in [0, 2, 3] {
            assert_eq!(faults[honest].total(), 0, "replica {id} blamed honest replica {honest}: {faults:?}");
        }
        attributed += faults[1].invalid_shares;
    }
    assert!(attributed > 0, "the forger was never caught");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_replica_live_each_object_costs_t_plus_one_shares_and_one_combination() {
    // Counts combinations, which a combiner slowed by another test's load leaves to its peers.
    let _alone = HEAVY.lock().await;
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    let op = operator();
    let payloads = (0..8u8)
        .map(|i| {
            let name = format!("s{i}.localhost");
            issue(&op, &csr(&Key::p256(40 + i), &name, &[&name]), "default", None, &format!("s{i}"))
        })
        .collect();
    net.apply(&rounds.round(payloads)).await;
    net.settle().await;
    assert_identical(&net).await;
    let objects = net.ca(0).metrics().await.unwrap().signatures_completed;
    assert!(objects >= 9, "eight certificates and a tree head: {objects}");
    let (mut shares, mut combinations) = (0, 0);
    for id in 0..N {
        let metrics = net.ca(id).metrics().await.unwrap();
        assert_eq!(metrics.signatures_completed, objects, "replica {id} signed everything");
        shares += metrics.shares_computed;
        combinations += metrics.combinations;
    }
    assert_eq!(shares, 2 * objects, "t + 1 = 2 shares per object, not {N}");
    assert_eq!(combinations, objects, "each object combined once, by its combiner, not by all {N}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_round_leaves_share_computation_to_the_signing_task() {
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    let op = operator();
    let round = rounds.round(vec![issue(&op, &csr(&Key::p256(1), "a.localhost", &[]), "default", None, "s0")]);
    for id in 0..N {
        net.ca(id).apply_round(round.clone()).await.unwrap();
    }
    let sent = |net: &mut Net, id: usize| {
        let outbox = &mut net.replicas[id].as_mut().expect("running").outbox;
        std::iter::from_fn(|| outbox.try_recv().ok()).count()
    };
    for id in 0..N {
        assert_eq!(sent(&mut net, id), 0, "apply computed no share at replica {id}");
    }
    let pending = net.ca(0).metrics().await.unwrap().pending_signatures as u64;
    assert!(pending >= 2, "certificate and tree head wait for signing");
    tokio::time::timeout(std::time::Duration::from_secs(5), net.ca(0).signing_work())
        .await
        .expect("apply announced work");
    let (mut shares, mut messages) = (0, 0);
    for id in 0..N {
        net.ca(id).sign_pending().await.unwrap();
        shares += net.ca(id).metrics().await.unwrap().shares_computed;
        messages += sent(&mut net, id);
    }
    assert_eq!(shares, 2 * pending, "the signing tasks computed t + 1 = 2 shares per object");
    assert!(messages > 0, "and sent them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_of_more_certificates_than_one_statement_holds_is_stored_and_signed_whole_everywhere() {
    let _alone = HEAVY.lock().await;
    // The store writes a round's rows, and a batch's signatures, in statements of at most 500
    // rows: 501 certificates take two of each.
    const CERTIFICATES: usize = 501;
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    let (op, key) = (operator(), Key::p256(5));
    let requests = (0..CERTIFICATES)
        .map(|i| {
            let name = format!("h{i}.localhost");
            issue(&op, &csr(&key, &name, &[&name]), "default", None, &format!("big{i}"))
        })
        .collect();
    net.apply(&rounds.round(requests)).await;
    net.settle().await;
    assert_identical(&net).await;

    let ca = net.ca(0);
    assert_eq!(ca.entries(0, 10_000).await.unwrap().len(), CERTIFICATES);
    let certificates = ca.certificates(None, 1000).await.unwrap();
    assert_eq!(certificates.len(), CERTIFICATES);
    assert!(certificates.iter().all(|c| c.der.is_some()), "every certificate is signed");
    assert_eq!(certificates[CERTIFICATES - 1].dns_names, [format!("h{}.localhost", CERTIFICATES - 1)]);
}

/// Held by the 501-certificate test, whose load would otherwise slow the combiners of a test
/// that counts who combined.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
