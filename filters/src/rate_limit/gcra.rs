//! The generic cell rate algorithm (GCRA), as pure functions of the time they are given.
//!
//! GCRA keeps one number per key, its *theoretical arrival time* (TAT): when the key would be
//! back at rest if its requests had been spaced exactly at the rate. A request at `now` is
//! admitted when `max(TAT, now) + interval <= now + burst * interval`, and then the TAT moves on
//! by one interval; a refused request changes nothing. It is exact (no window edges letting 2x
//! through), needs no timer, and a key whose TAT is in the past is the same as a key never seen,
//! so forgetting it loses nothing. [`Gcra`] takes `now_ns` as a parameter, which is how the
//! tests step time without sleeping.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest window GCRA accepts (about 146 years): keeps `now + window` far from overflow.
const MAX_WINDOW_NS: u64 = 1 << 62;

/// GCRA parameters: a rate and a burst, in nanoseconds. Every method is a pure function of the
/// times it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gcra {
    pub(super) interval_ns: u64,
    burst: u64,
    pub(super) window_ns: u64,
}

impl Gcra {
    /// `requests` per `period`, and at most `burst` at once from rest. Fails when a number is
    /// zero, the rate is above one request per nanosecond, or the window (`burst` intervals) is
    /// absurdly long.
    pub fn new(requests: u64, period: Duration, burst: u64) -> Result<Gcra, String> {
        if requests == 0 || burst == 0 {
            return Err("the rate and the burst must be at least 1".into());
        }
        let period_ns = u64::try_from(period.as_nanos()).map_err(|_| "period is too long".to_string())?;
        let interval_ns = period_ns / requests;
        if interval_ns == 0 {
            return Err("more than one request per nanosecond".into());
        }
        let window_ns = interval_ns
            .checked_mul(burst)
            .filter(|w| *w <= MAX_WINDOW_NS)
            .ok_or_else(|| "burst is too large for this rate".to_string())?;
        Ok(Gcra { interval_ns, burst, window_ns })
    }

    /// Time between two requests at the sustained rate.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Requests a key at rest may send at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// One request at `now_ns` for a key whose theoretical arrival time is `tat` (0 for a new
    /// key): `Some(new_tat)` admits it, `None` refuses it (and the TAT stays).
    pub fn step(&self, tat: u64, now_ns: u64) -> Option<u64> {
        let new_tat = tat.max(now_ns) + self.interval_ns;
        (new_tat <= now_ns + self.window_ns).then_some(new_tat)
    }

    /// The decision to report for a key whose TAT is now `tat` (after an admission, the new
    /// one).
    pub fn decision(&self, allowed: bool, tat: u64, now_ns: u64) -> Decision {
        let reset_ns = tat.saturating_sub(now_ns);
        let remaining = self.window_ns.saturating_sub(reset_ns) / self.interval_ns;
        let retry_after_ns = if allowed { 0 } else { (reset_ns + self.interval_ns).saturating_sub(self.window_ns) };
        Decision { allowed, limit: self.burst, remaining, reset_ns, retry_after_ns }
    }
}

/// What the limiter decided for one request, with what the response headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The burst: what a key at rest may send at once (`RateLimit-Limit`).
    pub limit: u64,
    /// Requests the key may still send right now (`RateLimit-Remaining`).
    pub remaining: u64,
    /// Time until the key is back at rest, with its whole burst available.
    pub reset_ns: u64,
    /// For a refused request, the time until the next one would pass; 0 when admitted.
    pub retry_after_ns: u64,
}

impl Decision {
    /// `RateLimit-Reset`: seconds until the key is back at rest, rounded up.
    pub fn reset_secs(&self) -> u64 {
        self.reset_ns.div_ceil(NANOS_PER_SEC)
    }

    /// `Retry-After`: seconds until the next request would pass, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_ns.div_ceil(NANOS_PER_SEC).max(1)
    }
}

pub(super) const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Nanoseconds on a monotonic clock since this process first asked: the `now_ns` the limiters
/// take.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
