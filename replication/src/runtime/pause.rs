//! Riding out a storage fault that can pass (a full disk, a quota, storage made read-only)
//! instead of stopping the replica. One episode runs from the first failed attempt to the next
//! one that works; it is reported once (a log line when it starts and one when it ends, and a
//! reason in the status while it lasts) rather than per attempt, and attempts are spaced by a
//! capped exponential backoff.

use super::link::Backoff;
use super::link::backoff::BackoffState;
use std::fmt::Display;
use std::time::{Duration, Instant};

/// The pause after the first failed attempt, doubling up to the longest.
const BACKOFF: Backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5) };

/// What a failing kind of storage write costs while it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// The node stops taking inputs until the write works.
    Paused,
    /// Snapshots are skipped; the log keeps growing until one works.
    SnapshotsSkipped,
}

impl Effect {
    fn describe(self) -> &'static str {
        match self {
            Effect::Paused => "replication storage failing, ordering paused",
            Effect::SnapshotsSkipped => "replication storage failing, snapshots skipped",
        }
    }
}

struct Episode {
    error: String,
    since: Instant,
    attempts: u64,
}

pub(super) struct StoragePause {
    effect: Effect,
    backoff: BackoffState,
    episode: Option<Episode>,
}

impl StoragePause {
    pub fn new(effect: Effect) -> StoragePause {
        StoragePause { effect, backoff: BackoffState::new(BACKOFF), episode: None }
    }

    /// Records a failed attempt and returns how long to wait before the next one. Only the
    /// first failure of an episode is logged.
    pub fn failed(&mut self, error: &dyn Display) -> Duration {
        let error = error.to_string();
        match &mut self.episode {
            Some(episode) => {
                episode.attempts += 1;
                tracing::debug!(%error, attempts = episode.attempts, "{}: still failing", self.effect.describe());
                episode.error = error;
            }
            None => {
                match self.effect {
                    Effect::Paused => tracing::error!(
                        %error,
                        "replication storage failed: ordering is paused (nothing is logged, sent or delivered) \
                         and the write is retried until it works"
                    ),
                    Effect::SnapshotsSkipped => tracing::warn!(
                        %error,
                        "replication storage failed: snapshot skipped and retried later (the log keeps every \
                         input since the last one)"
                    ),
                }
                self.episode = Some(Episode { error, since: Instant::now(), attempts: 1 });
            }
        }
        self.backoff.next_delay(&mut rand::thread_rng())
    }

    /// Records an attempt that worked; true if it ended an episode (which is logged).
    pub fn succeeded(&mut self) -> bool {
        let Some(episode) = self.episode.take() else {
            return false;
        };
        self.backoff.reset();
        let (paused, attempts) = (episode.since.elapsed(), episode.attempts);
        match self.effect {
            Effect::Paused => {
                tracing::info!(?paused, attempts, "replication storage works again: ordering resumed")
            }
            Effect::SnapshotsSkipped => {
                tracing::info!(?paused, attempts, "replication storage works again: snapshot written")
            }
        }
        true
    }

    /// Why, while an episode lasts.
    pub fn reason(&self) -> Option<String> {
        self.episode
            .as_ref()
            .map(|e| format!("{} for {} s: {}; retrying", self.effect.describe(), e.since.elapsed().as_secs(), e.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_lasts_from_the_first_failure_to_the_next_success_with_growing_capped_pauses() {
        let mut pause = StoragePause::new(Effect::Paused);
        assert!(!pause.succeeded() && pause.reason().is_none());
        let waits: Vec<Duration> = (0..10).map(|i| pause.failed(&format!("No space left on device ({i})"))).collect();
        // Half of each pause is jitter: the fixed half doubles up to half the cap.
        for (wait, base_ms) in waits.iter().zip([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]) {
            let base = Duration::from_millis(base_ms);
            assert!(*wait >= base / 2 && *wait <= base, "{wait:?} for {base:?}");
        }
        let reason = pause.reason().unwrap();
        assert!(reason.contains("ordering paused") && reason.contains("(9)"), "the latest error: {reason}");
        assert!(pause.succeeded());
        assert!(pause.reason().is_none() && !pause.succeeded(), "one episode ends once");
        assert!(pause.failed(&"again") <= BACKOFF.initial, "a new episode starts from the shortest pause");
    }
}
