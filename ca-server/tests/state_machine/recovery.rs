//! Crashes and lost messages: a replica killed at any point resumes at the right round, applies
//! every entry exactly once, and still ends with everything signed like its peers.

use ca_server::CaError;

use crate::disk::SmallDisk;
use crate::replicas::assert_identical;
use crate::support::*;

fn issues(round: u8, count: u8) -> Vec<Vec<u8>> {
    let op = operator();
    (0..count)
        .map(|i| {
            let name = format!("r{round}-{i}.localhost");
            issue(
                &op,
                &csr(&Key::p256(100 + 10 * round + i), &name, &[&name]),
                "default",
                None,
                &format!("n{round}{i}"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_just_before_a_commit_resumes_at_that_round_and_applies_every_entry_once() {
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    let round0 = rounds.round(issues(0, 2));
    net.apply(&round0).await;
    net.settle().await;

    // Replica 3 dies while committing round 1: everything it wrote for the round is lost.
    let round1 = rounds.round(issues(1, 2));
    net.ca(3).abandon_commit_of(1);
    for id in 0..N {
        let result = net.ca(id).apply_round(round1.clone()).await;
        if id == 3 {
            assert!(matches!(result, Err(CaError::Abandoned(1))), "{result:?}");
        } else {
            result.unwrap();
        }
    }
    let later = ca_server::RoundInput { round: 2, time: rounds.time_ms(2), seed: [2; 32], requests: vec![] };
    assert!(matches!(net.ca(3).apply_round(later).await, Err(CaError::Poisoned)), "it refuses to go on");
    let database = net.kill(3);
    net.restart(3, &database).await;
    let ca = net.ca(3);
    assert_eq!(ca.next_round(), 1, "resumes at the round whose commit was lost");
    assert_eq!(ca.log_size(), 2);

    // The runtime hands it the stored rounds from `resume_from` on (an earlier one is ignored).
    assert!(ca.apply_round(round0.clone()).await.unwrap().already_applied);
    ca.apply_round(round1.clone()).await.unwrap();
    let round2 = rounds.round(issues(2, 1));
    net.apply(&round2).await;
    net.settle().await;
    assert_identical(&net).await;
    let ca = net.ca(3);
    assert_eq!(ca.log_size(), 5, "each of the 5 requests is exactly one entry");
    let entries = ca.entries(0, 100).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.log_index).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(entries.iter().map(|e| e.round).collect::<Vec<_>>(), [0, 0, 1, 1, 2]);
    let signed = ca.certificates(None, 10).await.unwrap().iter().filter(|c| c.der.is_some()).count();
    assert_eq!(signed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_lost_their_shares_or_missed_every_message_still_sign_everything() {
    let mut net = Net::new().await;
    let mut rounds = Rounds::new();
    // Replica 2 hears nothing from its peers for a while.
    net.deaf.insert(2);
    for r in 0..2 {
        net.apply(&rounds.round(issues(r, 2))).await;
        net.settle().await;
    }
    assert!(net.ca(2).metrics().await.unwrap().counts.unsigned_objects > 0, "replica 2 could not sign alone");

    // Replica 1 applies a round and dies before any of its messages leave.
    let round2 = rounds.round(issues(2, 2));
    net.apply(&round2).await;
    let database = net.kill(1);
    net.restart(1, &database).await;
    assert_eq!(net.ca(1).next_round(), 3);

    net.deaf.clear();
    net.settle().await;
    assert_identical(&net).await;
    for id in 0..N {
        let metrics = net.ca(id).metrics().await.unwrap();
        assert_eq!(metrics.counts.unsigned_objects, 0, "replica {id}");
        assert_eq!(metrics.counts.signed_certificates, 6, "replica {id}");
        assert!(metrics.faults.iter().all(|f| f.total() == 0), "replica {id}: {:?}", metrics.faults);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_refuses_a_key_share_of_another_replica_and_a_policy_the_cluster_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let outbox: std::sync::Arc<dyn ca_server::Outbox> = std::sync::Arc::new(tx);
    let mut wrong_share = config(0, &dir.path().join("a.sqlite"));
    wrong_share.rsa_share = config(1, &dir.path().join("unused.sqlite")).rsa_share;
    assert!(matches!(ca_server::Ca::open(wrong_share, outbox.clone()).await, Err(CaError::Config(_))));

    let mut wrong_policy = config(0, &dir.path().join("b.sqlite"));
    wrong_policy.initial_policy_json.push(' ');
    assert!(matches!(ca_server::Ca::open(wrong_policy, outbox.clone()).await, Err(CaError::Config(_))));

    let loaded = config(2, &dir.path().join("c.sqlite"));
    assert_eq!(loaded.id, 2);
    assert_eq!(loaded.crl_url.as_deref(), Some("https://127.0.0.1:18600/v1/crl"));
    let ca = ca_server::Ca::open(loaded, outbox).await.unwrap();
    assert_eq!(ca.next_round(), 0);
    assert_eq!(ca.current_policy().sha256, dealt().cluster.policy_sha256);
}

/// SQLite may end a transaction itself when its COMMIT fails on a full disk, while the connection
/// pool still counts it open; a connection reused after that nested its next transactions in one
/// that never ended, so a round "committed" afterwards was lost when the replica restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_disk_filled_while_it_stored_signatures_commits_its_later_rounds_for_real() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "8m") else {
        return;
    };
    let mut net = Net::new().await;
    net.kill(3);
    net.restart(3, &disk.0.join("replica-3.sqlite")).await;
    let mut rounds = Rounds::new();
    net.apply(&rounds.round(issues(0, 2))).await;

    // Replica 3 combines the round's signatures and cannot store them, again and again.
    let filler = disk.fill();
    let mut failures = 0;
    for _ in 0..6 {
        let (_, failed) = net.deliver().await;
        assert!(failed.iter().all(|(id, _)| *id == 3), "only the full disk fails: {failed:?}");
        failures += failed.len() + usize::from(net.ca(3).tick().await.is_err());
    }
    assert!(failures >= 2, "storing on the full disk failed {failures} times");

    // Room again: it stores them, and applies the next rounds like its peers.
    std::fs::remove_file(filler).unwrap();
    net.settle().await;
    for round in 1..3 {
        net.apply(&rounds.round(issues(round, 2))).await;
        net.settle().await;
    }
    assert_identical(&net).await;
    let database = net.kill(3);
    net.restart(3, &database).await;
    let ca = net.ca(3);
    assert_eq!((ca.next_round(), ca.log_size()), (3, 6), "every round it applied is in its database");
    net.settle().await;
    assert_identical(&net).await;
}
