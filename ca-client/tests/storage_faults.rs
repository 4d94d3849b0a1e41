//! A replica whose whole data folder (the replication runtime's write-ahead log, round store and
//! snapshots, and its SQLite database) is on a small tmpfs that fills up under a request load:
//! it pauses instead of stopping, says why in `/healthz` and its log while the others go on
//! issuing, and once the disk has room again it resumes by itself, catches up and ends with the
//! same log, tree head and certificates as the others, having lost no request any replica
//! accepted. Needs root to mount the tmpfs; skipped (with the reason) where that is not allowed.

mod support;

use std::time::{Duration, Instant};

use ca_client::transport::HttpRequest;
use support::cluster::{Load, Replicas, campaign_seed, settle_time, wait_accepted};
use support::disk::SmallDisk;

/// How long the full disk stays full at least: more than the runtime's longest pause between
/// retries (5 s).
const PAUSED_AT_LEAST: Duration = Duration::from_secs(8);

/// Polls `check` every 200 ms until it returns `Some`, or panics with `what` after `timeout`.
fn wait_for<T>(replicas: &Replicas, what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < timeout, "{what} not within {timeout:?}\n{}", replicas.logs(30));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_replica_whose_data_folder_fills_up_pauses_says_why_and_resumes_without_losing_an_accepted_request() {
    let seed = campaign_seed("full data folder");
    let victim = 3;
    let mut replicas = Replicas::local(seed);
    // Declared after the replicas, so it is unmounted before their folder is removed.
    let Some(disk) = SmallDisk::mount(&replicas.replica_dir(victim).join("data"), "64m") else {
        return;
    };
    replicas.start_all();
    replicas.wait_healthy(&[0, 1, 2, 3], Duration::from_secs(60));
    let load = Load::start(&replicas, 3, Duration::from_millis(150), seed);
    assert!(wait_accepted(&load, 5, Duration::from_secs(30)), "the load never got going\n{}", replicas.logs(20));
    // The victim has accepted requests of its own: they are in the log that is about to fill.
    let accepted_by_victim = || accepted_by(&load.accepted.lock().expect("accepted"), victim);
    wait_for(&replicas, "a request accepted by the victim", Duration::from_secs(30), || {
        (accepted_by_victim() > 0).then_some(())
    });

    let filler = disk.fill();
    let reason = wait_for(&replicas, "the paused ordering in /healthz", Duration::from_secs(30), || {
        let (status, health) = replicas.health_reply(victim)?;
        let reason = health.reason.filter(|r| r.contains("ordering paused"))?;
        assert_eq!((status, health.status.as_str()), (503, "degraded"), "{reason}");
        Some(reason)
    });
    assert!(reason.contains("No space left on device"), "the reason names the fault: {reason}");
    assert!(replicas.log(victim).contains("replication storage failed: ordering is paused"), "the pause is logged");
    eprintln!("seed {seed}: replica {victim} paused: {reason}");
    // The rest of the replica answers meanwhile.
    let metrics = replicas.send(victim, HttpRequest::get("/metrics")).expect("/metrics answers");
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("replication_storage_paused 1"), "the pause in /metrics");
    // (There may be no signed tree head yet if the disk filled early: any answer will do.)
    assert!(replicas.send(victim, HttpRequest::get("/v1/audit/sth")).is_some(), "the audit API answers");

    // The others go on issuing, far enough that the victim must fetch rounds its peers no longer
    // keep messages for, while the victim stays paused (long enough for its retries to reach
    // the longest pause between them).
    let pause_began = Instant::now();
    let accepted_before_pause = accepted_by_victim();
    let (paused_at, others_at) = {
        let sizes = replicas.log_sizes();
        (replicas.health_reply(victim).map(|(_, h)| h.next_round), sizes[0].expect("replica 0 answers"))
    };
    wait_for(&replicas, "progress at the other replicas", Duration::from_secs(60), || {
        let size = replicas.health(0)?.log_size;
        let round = replicas.health(0)?.next_round;
        let long_enough = pause_began.elapsed() >= PAUSED_AT_LEAST;
        (long_enough && size >= others_at + 10 && round >= paused_at.unwrap_or(0) + 12).then_some(())
    });
    let (status, health) = replicas.health_reply(victim).expect("the paused replica answers");
    assert_eq!(status, 503, "still paused while the disk is full: {health:?}");
    let accepted_while_paused = accepted_by_victim();
    // Requests sent to it meanwhile were refused (503), none accepted.
    assert_eq!(accepted_while_paused, accepted_before_pause, "the paused replica accepted requests");

    // Room again: it resumes by itself, and accepts requests again.
    std::fs::remove_file(filler).expect("remove the filler");
    replicas.wait_healthy(&[victim], Duration::from_secs(60));
    assert!(replicas.log(victim).contains("replication storage works again: ordering resumed"), "the resume is logged");
    wait_for(&replicas, "a request accepted by the resumed victim", Duration::from_secs(30), || {
        (accepted_by_victim() > accepted_while_paused).then_some(())
    });

    let attempts = load.attempts.load(std::sync::atomic::Ordering::SeqCst);
    let accepted = load.stop(&replicas);
    let ids: Vec<usize> = (0..replicas.n).collect();
    let (issued, refused) = replicas.wait_all_settled(&accepted, &ids, settle_time(accepted.len(), 120));
    let size = replicas.wait_converged(&ids, accepted.len() as u64, Duration::from_secs(120));
    let log = replicas.log(victim);
    for line in log.lines().filter(|l| l.contains("replication storage")) {
        eprintln!("replica {victim}: {line}");
    }
    let pauses = log.matches("ordering is paused").count();
    eprintln!(
        "seed {seed}: {} of {attempts} submissions accepted ({} by replica {victim}); {issued} issued and {refused} \
         refused at all {} replicas; one log of {size} entries; {pauses} pause episode(s) logged",
        accepted.len(),
        accepted_by(&accepted, victim),
        replicas.n
    );
}

fn accepted_by(accepted: &[support::cluster::Accepted], replica: usize) -> usize {
    accepted.iter().filter(|a| a.replica == replica).count()
}
