//! Ordering pace: holds this replica's ordering while its signing is behind
//! ([`crate::signing::Signer::pace_backlog`]: the shares it owes, and objects still unsigned).
//!
//! Ordering runs ahead of signing under load: each agreement round costs a fixed amount of
//! CPU (threshold signatures, pairings, a group fsync) and, left alone, rounds follow each other
//! as fast as requests arrive, carrying a dozen requests each. While this replica has many
//! objects waiting for the RSA share it owes, it asks the ordering to hold (start rounds only when
//! `t+1` others do), so the requests that arrive meanwhile go into one larger round. The
//! thresholds leave about one round's worth of signing to do while the next round is ordered,
//! so the cores are not left idle in between.

use replication::runtime::Runtime;
use std::sync::Arc;
use tokio::sync::watch;

/// Hold once the backlog is this large (objects this replica owes its share on, plus one for
/// each 16 unsigned objects).
pub const HOLD_AT: usize = 8;
/// Release once at most this many do.
pub const RELEASE_AT: usize = 2;

/// Whether to hold, given the backlog and whether the ordering is held now (hysteresis, so a
/// backlog near one threshold does not flip the state with every share).
pub fn should_hold(backlog: usize, held: bool) -> bool {
    if held { backlog > RELEASE_AT } else { backlog >= HOLD_AT }
}

/// Follows the backlog until the CA is dropped. Starts by releasing: a restarted replica's
/// log may end held, and its backlog may since have drained without a change to report.
pub async fn follow(runtime: Arc<Runtime>, mut backlog: watch::Receiver<usize>) {
    let mut held = false;
    runtime.hold(false).await;
    loop {
        let want = should_hold(*backlog.borrow_and_update(), held);
        if want != held {
            held = want;
            tracing::debug!(held, "ordering pace");
            runtime.hold(held).await;
        }
        if backlog.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_starts_at_the_upper_threshold_and_ends_only_below_the_lower_one() {
        assert!(!should_hold(HOLD_AT - 1, false));
        assert!(should_hold(HOLD_AT, false));
        assert!(should_hold(RELEASE_AT + 1, true));
        assert!(!should_hold(RELEASE_AT, true));
        assert!(!should_hold(0, true));
    }
}
