//! The Redis store: the TAT of each key lives in Redis under `portico:rl:{scope}:{key}`,
//! updated by one Lua script (the same GCRA, on Redis's own clock, so instances' clocks do not
//! matter) and expiring when the key is back at rest.

use super::config::FailurePolicy;
use super::gcra::{Gcra, NANOS_PER_SEC};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// GCRA on Redis's clock, in microseconds (Lua numbers are doubles: exact to 2^53).
/// KEYS[1]: the key; ARGV[1]: interval (ns); ARGV[2]: window, burst * interval (ns).
/// Returns {1 admitted | 0 refused, TAT - now in ns}.
///
/// The script never stores a TAT beyond `now + window`, so a value beyond it (or not a number)
/// was written by something else: it is held to `now + window` and stored so, with an expiry,
/// so that the key is refused for one window at most and then heals, rather than for ever.
pub(super) const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1]) / 1000
local window = tonumber(ARGV[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat ~= tat or tat < now then tat = now end
if tat > now + window then
  tat = now + window
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(window / 1000))
end
local new_tat = tat + interval
if new_tat - now <= window then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  return {1, math.floor((new_tat - now) * 1000)}
end
return {0, math.floor((tat - now) * 1000)}
";

/// After a failure, Redis is not asked again for this long.
const BACKOFF_AFTER_FAILURE_NS: u64 = 500_000_000;

/// Failure warnings are logged at most this often.
const WARN_EVERY_NS: u64 = NANOS_PER_SEC;

/// The shared counters in Redis.
pub(super) struct RedisStore {
    pub(super) client: redis::Client,
    /// Made on first use, inside the runtime that serves requests.
    pub(super) manager: OnceLock<redis::aio::ConnectionManager>,
    pub(super) script: redis::Script,
    /// `portico:rl:{scope}:`
    pub(super) prefix: String,
    pub(super) timeout: Duration,
    pub(super) failure_policy: FailurePolicy,
    /// `sync_ms` in ns.
    pub(super) sync_ns: Option<u64>,
    /// Redis is skipped until then ([`now_ns`](super::gcra::now_ns) clock).
    pub(super) down_until_ns: AtomicU64,
    /// When the last failure warning was logged; 0 for never.
    pub(super) last_warn_ns: AtomicU64,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("failure_policy", &self.failure_policy)
            .field("sync_ns", &self.sync_ns)
            .finish_non_exhaustive()
    }
}

/// The TAT Redis answered (`tat_in_ns` after Redis's now) as a time on this instance's clock,
/// held to `[now_ns, now_ns + window_ns]`: the only values GCRA ever produces, so anything
/// beyond (a key another program wrote, a script of another version) cannot lock the key in
/// this instance's local view for longer than one window.
pub(super) fn adopted_tat(now_ns: u64, tat_in_ns: u64, window_ns: u64) -> u64 {
    now_ns.saturating_add(tat_in_ns.min(window_ns))
}

impl RedisStore {
    fn connection(&self) -> Result<redis::aio::ConnectionManager, String> {
        if let Some(manager) = self.manager.get() {
            return Ok(manager.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let manager = redis::aio::ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| e.to_string())?;
        // Two first requests may race here; the loser's manager (not connected yet) is dropped.
        Ok(self.manager.get_or_init(|| manager).clone())
    }

    /// Runs the script for `key`: whether Redis admitted, and the key's TAT minus Redis's now.
    pub(super) async fn call(&self, key: &str, gcra: &Gcra) -> Result<(bool, u64), String> {
        let mut conn = self.connection()?;
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation.arg(gcra.interval_ns).arg(gcra.window_ns);
        match tokio::time::timeout(self.timeout, invocation.invoke_async::<(i64, i64)>(&mut conn)).await {
            Ok(Ok((admitted, tat_in_ns))) => Ok((admitted == 1, u64::try_from(tat_in_ns).unwrap_or(0))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    pub(super) fn is_down(&self, now_ns: u64) -> bool {
        now_ns < self.down_until_ns.load(Ordering::Relaxed)
    }

    /// Whether a key Redis confirmed at `synced_ns` may be decided locally (`sync_ms`).
    pub(super) fn is_fresh(&self, synced_ns: u64, now_ns: u64) -> bool {
        self.sync_ns.is_some_and(|sync| synced_ns != 0 && now_ns.saturating_sub(synced_ns) <= sync)
    }

    pub(super) fn failed(&self, now_ns: u64, error: &str) {
        self.down_until_ns.store(now_ns + BACKOFF_AFTER_FAILURE_NS, Ordering::Relaxed);
        let last = self.last_warn_ns.load(Ordering::Relaxed);
        let due = last == 0 || now_ns.saturating_sub(last) >= WARN_EVERY_NS;
        if due && self.last_warn_ns.compare_exchange(last, now_ns.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let policy = match self.failure_policy {
                FailurePolicy::Open => "admitting on local counts",
                FailurePolicy::Closed => "refusing with 503",
            };
            log::warn!("rate_limit: redis failed ({error}); {policy} for {} ms", BACKOFF_AFTER_FAILURE_NS / 1_000_000);
        }
    }
}
