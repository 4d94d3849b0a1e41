//! Wake-ups for HTTP handlers waiting on one request's outcome: a handler waits on its own key
//! (its request, or the certificate its request produced) and is woken only when that changes,
//! instead of every waiter re-querying the database after every change anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// What a handler waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitKey {
    /// The request with this digest was applied (issued, refused, revoked...).
    Request([u8; 32]),
    /// The certificate at this log index was signed.
    Certificate(u64),
}

/// The keys someone waits on. Keys nobody waits on are never stored, and a woken key is removed,
/// so this holds at most one entry per waiting handler.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Mutex<HashMap<WaitKey, Arc<Notify>>>,
}

impl Waiters {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<WaitKey, Arc<Notify>>> {
        // Every operation leaves the map whole, so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The notifier for `key`. Enable a `notified()` future on it before checking the state it
    /// guards, so a wake-up between the check and the wait is not missed.
    pub fn watch(&self, key: WaitKey) -> Arc<Notify> {
        self.map().entry(key).or_default().clone()
    }

    /// Gives up waiting on `key` (a handler that timed out): drops the entry if nobody else
    /// holds it.
    pub fn unwatch(&self, key: WaitKey, notify: &Arc<Notify>) {
        let mut map = self.map();
        if map.get(&key).is_some_and(|held| Arc::ptr_eq(held, notify)) && Arc::strong_count(notify) == 2 {
            map.remove(&key);
        }
    }

    /// Wakes everyone waiting on `key`.
    pub fn wake(&self, key: WaitKey) {
        if let Some(notify) = self.map().remove(&key) {
            notify.notify_waiters();
        }
    }

    /// Keys currently waited on.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_reaches_a_waiter_that_enabled_before_it() {
        let waiters = Waiters::default();
        let key = WaitKey::Request([1; 32]);
        let notify = waiters.watch(key);
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        waiters.wake(key);
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("woken");
        assert!(waiters.is_empty(), "a woken key is removed");
    }

    #[tokio::test]
    async fn a_wake_of_another_key_does_not_wake_a_waiter() {
        let waiters = Waiters::default();
        let notify = waiters.watch(WaitKey::Certificate(7));
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        waiters.wake(WaitKey::Certificate(8));
        waiters.wake(WaitKey::Request([7; 32]));
        assert!(tokio::time::timeout(Duration::from_millis(50), notified).await.is_err());
    }

    #[test]
    fn unwatch_removes_a_key_only_when_its_last_waiter_leaves() {
        let waiters = Waiters::default();
        let key = WaitKey::Certificate(1);
        let first = waiters.watch(key);
        let second = waiters.watch(key);
        waiters.unwatch(key, &first);
        drop(first);
        assert_eq!(waiters.len(), 1, "the second waiter still waits");
        waiters.unwatch(key, &second);
        assert!(waiters.is_empty());
    }
}
