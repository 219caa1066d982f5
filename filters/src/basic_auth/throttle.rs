//! Failed logins per client address: a client that failed `failures_per_minute` times in quick
//! succession is answered 429 without a hash until its budget refills.
//!
//! GCRA over the client address (IPv4 per address, IPv6 per /64, as `rate_limit` counts them),
//! kept in `rate_limit`'s local store: sharded, lock-free for known keys, bounded (it forgets keys
//! at rest first). Each failure spends one unit of a budget of `failures_per_minute` that refills
//! at that rate; a login is refused while the budget is empty. Checking does not spend, so logins
//! that succeed cost nothing; the price is that logins arriving together all pass the check
//! before their failures are counted, which the hashing pool bounds (at most its capacity more).

#[cfg(doc)]
use crate::rate_limit::gcra::now_ns;
use crate::rate_limit::gcra::Gcra;
use crate::rate_limit::key::{write_ip, KeyBuf, DEFAULT_IPV6_PREFIX};
use crate::rate_limit::local::LocalLimiter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

/// The default `failures_per_minute`.
pub(super) const DEFAULT_FAILURES_PER_MINUTE: u64 = 20;

/// Logins refused with 429 for too many failures, since the process started.
static THROTTLED: AtomicU64 = AtomicU64::new(0);

/// How many logins every `basic_auth` filter of this process refused with 429 because their
/// client had failed too often: a counter for metrics, never reset.
pub fn throttled_total() -> u64 {
    THROTTLED.load(Ordering::Relaxed)
}

/// Failed logins by client address.
#[derive(Debug)]
pub(super) struct FailedLogins {
    counts: Arc<LocalLimiter>,
}

impl FailedLogins {
    /// The counts of every `basic_auth` filter with this `failures_per_minute` in a config that
    /// runs now, so that failures on one route count on the others and survive a reload. `None`
    /// when `per_minute` is 0 (no throttling).
    pub(super) fn shared(per_minute: u64) -> Result<Option<FailedLogins>, String> {
        type Shared = Mutex<HashMap<u64, Weak<LocalLimiter>>>;
        static SHARED: LazyLock<Shared> = LazyLock::new(Default::default);
        if per_minute == 0 {
            return Ok(None);
        }
        let gcra = Gcra::new(per_minute, Duration::from_secs(60), per_minute)?;
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        shared.retain(|_, counts| counts.strong_count() > 0);
        if let Some(counts) = shared.get(&per_minute).and_then(Weak::upgrade) {
            return Ok(Some(FailedLogins { counts }));
        }
        let counts = Arc::new(LocalLimiter::new(gcra));
        shared.insert(per_minute, Arc::downgrade(&counts));
        Ok(Some(FailedLogins { counts }))
    }

    /// Counts of their own (for tests).
    #[cfg(test)]
    pub(super) fn new(per_minute: u64) -> FailedLogins {
        let gcra = Gcra::new(per_minute, Duration::from_secs(60), per_minute).expect("a valid test rate");
        FailedLogins { counts: Arc::new(LocalLimiter::new(gcra)) }
    }

    /// When `client` has no failures left at `now_ns` ([`now_ns`]): the seconds until it has
    /// one (`Retry-After`), counted in [`throttled_total`]. A request without a client address is
    /// never throttled (one shared budget would let anyone lock everyone out).
    pub(super) fn retry_after(&self, client: Option<IpAddr>, now_ns: u64) -> Option<u64> {
        let key = key(client?);
        let decision = self.counts.peek(key.as_str(), now_ns);
        if decision.allowed {
            return None;
        }
        THROTTLED.fetch_add(1, Ordering::Relaxed);
        Some(decision.retry_after_secs())
    }

    /// Counts a failed login by `client` at `now_ns`.
    pub(super) fn failed(&self, client: Option<IpAddr>, now_ns: u64) {
        if let Some(ip) = client {
            self.counts.check(key(ip).as_str(), now_ns);
        }
    }
}

fn key(ip: IpAddr) -> KeyBuf {
    let mut key = KeyBuf::new();
    // Writing to a KeyBuf cannot fail: it cuts what does not fit.
    let _ = write_ip(&mut key, Some(ip), DEFAULT_IPV6_PREFIX);
    key
}
