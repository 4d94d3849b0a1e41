//! Reconnection delays: capped exponential backoff with "equal jitter" (half the delay fixed,
//! half random), so replicas that lost each other at the same moment do not redial in lockstep
//! and a peer that is down costs at most one attempt per `max`.

use std::time::Duration;

use rand::Rng;

use super::config::Backoff;

#[derive(Debug, Clone)]
pub(in crate::runtime) struct BackoffState {
    config: Backoff,
    current: Duration,
}

impl BackoffState {
    pub fn new(config: Backoff) -> Self {
        BackoffState { config, current: config.initial.min(config.max) }
    }

    /// After a connection that got established: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.current = self.config.initial.min(self.config.max);
    }

    /// The delay before the next attempt; doubles the following one up to `max`.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let base = self.current;
        self.current = self.current.saturating_mul(2).min(self.config.max);
        let half = base / 2;
        let jitter_nanos = u64::try_from((base - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.gen_range(0..=jitter_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let ms = Duration::from_millis;
        let mut b = BackoffState::new(Backoff { initial: ms(100), max: ms(5000) });
        let expected_bases = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
        for base in expected_bases {
            let d = b.next_delay(&mut rng);
            assert!(d >= ms(base) / 2 && d <= ms(base), "{d:?} not within [{base}/2, {base}] ms");
        }
        b.reset();
        let d = b.next_delay(&mut rng);
        assert!(d >= ms(50) && d <= ms(100));
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let config = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(1) };
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| BackoffState::new(config).next_delay(&mut rng)).collect();
        assert!(delays.len() > 15);
    }
}
