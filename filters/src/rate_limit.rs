//! `rate_limit`: limits how often one key (a client address, a consumer, a route or a header's
//! value) may call, answering 429 with `Retry-After` when it is over; every response of a limited
//! route carries the IETF draft `RateLimit-*` headers.
//!
//! ```yaml
//! - rate_limit: {key: client_ip, requests_per_second: 100, burst: 50}
//! - rate_limit: {key: consumer, requests_per_minute: 600, store: redis, failure_policy: closed}
//! ```
//!
//! - `key` (default `client_ip`): `client_ip`, `consumer` (the consumer's name, else the
//!   verified identity), `route` (one budget for every caller of the route) or `header:NAME`;
//!   `consumer` and `header:NAME` fall back to the client's address when the request has none.
//! - `requests_per_second` or `requests_per_minute` (exactly one): the sustained rate.
//! - `burst` (default: the per-period limit, so `requests_per_minute: 60` lets a key at rest send
//!   60 at once, then one a second): how many requests one key may send at once.
//! - `store` (default `local`): `local` (this instance only) or `redis` (shared by every instance
//!   using `rate_limit_store.redis`; a build error without it).
//! - Redis only: `failure_policy` (default `open`): when Redis errs or is slower than
//!   `redis_timeout_ms` (default 50), `open` admits and `closed` answers 503
//!   `rate_limiter_unavailable`; `sync_ms` (default unset): decide locally for a key Redis
//!   confirmed within this many ms (see below); `scope` (default
//!   `{limit}/{s|min}/b{burst}/{key}`): the counters' namespace, so filters with the same numbers
//!   and key share counters unless given different scopes.
//!
//! Responses carry `RateLimit-Limit` (the burst: what a key at rest may send at once),
//! `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the key is back at rest) and
//! `RateLimit-Policy` (`100;w=1;burst=50`); a 429 also carries `Retry-After` (seconds, at least
//! 1). With two `rate_limit` filters on one request the headers show the one with least
//! remaining.
//!
//! # The algorithm: GCRA
//!
//! The generic cell rate algorithm keeps one number per key, its *theoretical arrival time*
//! (TAT): when the key would be back at rest if its requests had been spaced exactly at the
//! rate. A request at `now` is admitted when `max(TAT, now) + interval <= now + burst * interval`,
//! and then the TAT moves on by one interval; a refused request changes nothing. It is exact
//! (no window edges letting 2x through), needs no timer, and a key whose TAT is in the past is
//! the same as a key never seen, so forgetting it loses nothing. [`Gcra`] is a pure function of
//! `now_ns`, which is how the tests step time without sleeping.
//!
//! `pingora-limits` was considered and not used: its `Rate` estimates a rate per interval from
//! a count-min sketch (hash collisions over-count, a key cannot be refused precisely at its
//! limit, it reads `Instant::now()` itself), and it has no burst, no "remaining" and no "reset",
//! which the headers need.
//!
//! # The local store
//!
//! [`LocalLimiter`]: 64 shards, each an `RwLock<HashMap<key, AtomicU64 TAT>>`. A request for a
//! known key takes the shard's read lock and updates the TAT with a compare-and-swap, so
//! requests never wait on each other except to insert a key never seen (write lock). A shard
//! that reaches its share of [`DEFAULT_MAX_KEYS`] first drops the keys at rest (no loss, see
//! above), then, if still full, the half closest to rest; those keys start over with a full
//! burst, which is the price of bounded memory under a flood of distinct keys. Keys longer than
//! 256 bytes are cut to their first 256 bytes.
//!
//! # The Redis store
//!
//! The TAT lives in Redis under `portico:rl:{scope}:{key}`, updated by one Lua script (the
//! same GCRA, on Redis's own clock, so instances' clocks do not matter) and expiring when the
//! key is back at rest. The connection is a `redis` `ConnectionManager` (reconnects by itself),
//! made on first use; every call is bounded by `redis_timeout_ms`. After a failure Redis is left
//! alone for 500 ms (the failure policy applies at once instead of each request waiting for the
//! timeout), and a warning is logged at most once a second.
//!
//! The fast path, and its trade-off: each instance also keeps a [`LocalLimiter`] at the full rate
//! as a pre-check, and adopts the TAT Redis returns for a key as its own. A key that is over its
//! limit as far as this instance knows is refused at once without asking Redis (a flood from one
//! key costs Redis about one call per freed slot on each instance, not one per request); every
//! request the pre-check admits waits for Redis's verdict. So refusals are local, admissions
//! cost one round trip, and Redis alone admits: instances sharing one Redis admit at most the
//! limit in total (tolerance zero). When Redis is down, the pre-check still holds each instance
//! to the limit on its own, so `failure_policy: open` admits at most the limit per instance, not
//! without bound.
//!
//! `sync_ms` trades exactness for latency: a key whose TAT Redis returned within the last
//! `sync_ms` is admitted on this instance's view alone and Redis is told in the background (its
//! answer refreshes the view). A request then never waits for Redis on a busy key, but instances
//! may each admit what their views allow before they hear of the others: in the worst case each
//! instance admits up to one burst beyond the limit per `sync_ms`; typically the overshoot is one
//! Redis round trip of traffic (the tests see 1 over a limit of 20 with two instances). Redis
//! still gets one call per admitted request, off the request's path, and `failure_policy`
//! applies only to keys whose view is older than `sync_ms`.
//!
//! A reload carries local counts over to a limiter at the same place (listener or route, and
//! position in its chain) with the same key and rate; a changed limit starts afresh. Redis
//! counts carry on in any case.

use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, RequestHeader};
use crate::{ResponseHeader, Session};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

// === Config ===

/// What requests are counted together: the `key` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// `client_ip`: the downstream client's address.
    ClientIp,
    /// `consumer`: the authenticated consumer's name, else the verified identity; anonymous
    /// requests fall back to the client's address.
    Consumer,
    /// `route`: the matched route, one budget shared by every caller.
    Route,
    /// `header:NAME`: the value of a request header; requests without it fall back to the
    /// client's address.
    Header(HeaderName),
}

impl std::str::FromStr for KeyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client_ip" => Ok(KeyKind::ClientIp),
            "consumer" => Ok(KeyKind::Consumer),
            "route" => Ok(KeyKind::Route),
            _ => match s.strip_prefix("header:") {
                Some(name) => HeaderName::from_bytes(name.as_bytes())
                    .map(KeyKind::Header)
                    .map_err(|_| format!("\"{name}\" is not a header name")),
                None => Err(format!("unknown key \"{s}\": expected client_ip, consumer, route or header:NAME")),
            },
        }
    }
}

impl<'de> Deserialize<'de> for KeyKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::ClientIp => f.write_str("client_ip"),
            KeyKind::Consumer => f.write_str("consumer"),
            KeyKind::Route => f.write_str("route"),
            KeyKind::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// Where the counters live: the `store` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// In this instance's memory.
    #[default]
    Local,
    /// In the Redis of `rate_limit_store.redis`, shared by every instance using it.
    Redis,
}

/// What to do when Redis cannot answer in time: the `failure_policy` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Admit (still within this instance's own count of the limit).
    #[default]
    Open,
    /// Answer 503 `rate_limiter_unavailable`.
    Closed,
}

/// The `rate_limit` filter's config; see the module docs for each key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// What requests are counted together; `client_ip` by default.
    #[serde(default = "default_key")]
    pub key: KeyKind,
    /// The sustained rate, per second (this or `requests_per_minute`).
    pub requests_per_second: Option<u64>,
    /// The sustained rate, per minute (this or `requests_per_second`).
    pub requests_per_minute: Option<u64>,
    /// How many requests a key at rest may send at once; the per-period limit by default.
    pub burst: Option<u64>,
    /// `local` (default) or `redis`.
    #[serde(default)]
    pub store: Store,
    /// Redis only: `open` (default) or `closed`.
    pub failure_policy: Option<FailurePolicy>,
    /// Redis only: the longest a request waits for Redis, 50 ms by default.
    pub redis_timeout_ms: Option<u64>,
    /// Redis only: decide locally for a key Redis confirmed within this many ms.
    pub sync_ms: Option<u64>,
    /// Redis only: the counters' namespace; `{limit}/{s|min}/b{burst}/{key}` by default.
    pub scope: Option<String>,
}

fn default_key() -> KeyKind {
    KeyKind::ClientIp
}

/// Redis calls wait this long by default.
const DEFAULT_REDIS_TIMEOUT_MS: u64 = 50;

// === impl Gcra ===

/// The longest window GCRA accepts (about 146 years): keeps `now + window` far from overflow.
const MAX_WINDOW_NS: u64 = 1 << 62;

/// GCRA parameters: a rate and a burst, in nanoseconds. Every method is a pure function of the
/// times it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gcra {
    interval_ns: u64,
    burst: u64,
    window_ns: u64,
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

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Nanoseconds on a monotonic clock since this process first asked: the `now_ns` the limiters
/// take.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// === impl LocalLimiter ===

/// Shards of a [`LocalLimiter`]; a power of two.
const SHARDS: usize = 64;

/// Keys a [`LocalLimiter`] remembers at most (spread over its shards) before it forgets some.
pub const DEFAULT_MAX_KEYS: usize = 1 << 17;

/// Longest key kept; longer keys are cut.
const KEY_MAX: usize = 256;

/// One key's state.
#[derive(Debug, Default)]
struct Slot {
    /// Theoretical arrival time, on the [`now_ns`] clock.
    tat: AtomicU64,
    /// When Redis last told us this key's TAT; 0 for never (Redis store only).
    synced_ns: AtomicU64,
}

type SlotMap = HashMap<Box<str>, Slot, ahash::RandomState>;

/// A shard on its own cache lines, so threads on different shards do not share lock words.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(RwLock<SlotMap>);

/// GCRA per key in this process's memory, lock-free for known keys (read lock + CAS).
#[derive(Debug)]
pub struct LocalLimiter {
    gcra: Gcra,
    shards: Box<[Shard]>,
    shard_hasher: ahash::RandomState,
    shard_cap: usize,
}

impl LocalLimiter {
    /// A limiter that remembers up to [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(gcra: Gcra) -> Self {
        Self::with_max_keys(gcra, DEFAULT_MAX_KEYS)
    }

    /// A limiter that remembers about `max_keys` keys (at least one per shard).
    pub fn with_max_keys(gcra: Gcra, max_keys: usize) -> Self {
        LocalLimiter {
            gcra,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            shard_hasher: ahash::RandomState::new(),
            shard_cap: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// The limiter's rate and burst.
    pub fn gcra(&self) -> &Gcra {
        &self.gcra
    }

    /// Counts one request for `key` at `now_ns` (see [`now_ns`]) and decides it.
    pub fn check(&self, key: &str, now_ns: u64) -> Decision {
        self.with_slot(key, now_ns, |slot| self.acquire(slot, now_ns))
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.read().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`LocalLimiter::check`], also returning when Redis last confirmed the key (0: never).
    fn check_synced(&self, key: &str, now_ns: u64) -> (Decision, u64) {
        self.with_slot(key, now_ns, |slot| (self.acquire(slot, now_ns), slot.synced_ns.load(Ordering::Relaxed)))
    }

    /// Takes Redis's TAT for `key` as this instance's view.
    fn adopt(&self, key: &str, now_ns: u64, tat: u64) {
        self.with_slot(key, now_ns, |slot| {
            slot.tat.store(tat, Ordering::Relaxed);
            slot.synced_ns.store(now_ns.max(1), Ordering::Relaxed);
        })
    }

    /// The GCRA step on one slot, retried until no other thread raced it.
    fn acquire(&self, slot: &Slot, now_ns: u64) -> Decision {
        let mut tat = slot.tat.load(Ordering::Relaxed);
        loop {
            let Some(new_tat) = self.gcra.step(tat, now_ns) else {
                return self.gcra.decision(false, tat, now_ns);
            };
            match slot.tat.compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return self.gcra.decision(true, new_tat, now_ns),
                Err(actual) => tat = actual,
            }
        }
    }

    /// Runs `f` on `key`'s slot: under the shard's read lock when the key is known, else under
    /// its write lock after inserting it (making room first when the shard is full).
    fn with_slot<R>(&self, key: &str, now_ns: u64, f: impl FnOnce(&Slot) -> R) -> R {
        let index = self.shard_hasher.hash_one(key) as usize & (SHARDS - 1);
        let shard = &self.shards[index].0;
        if let Some(slot) = shard.read().unwrap_or_else(PoisonError::into_inner).get(key) {
            return f(slot);
        }
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.shard_cap && !map.contains_key(key) {
            make_room(&mut map, now_ns, self.shard_cap);
        }
        f(map.entry(Box::from(key)).or_default())
    }
}

/// Drops the keys at rest (the same as never seen); if the shard is still full, drops the half
/// nearest to rest, which then start over with a full burst.
fn make_room(map: &mut SlotMap, now_ns: u64, cap: usize) {
    map.retain(|_, slot| slot.tat.load(Ordering::Relaxed) > now_ns);
    if map.len() < cap {
        return;
    }
    let mut tats: Vec<u64> = map.values().map(|slot| slot.tat.load(Ordering::Relaxed)).collect();
    let middle = tats.len() / 2;
    let cut = *tats.select_nth_unstable(middle).1;
    map.retain(|_, slot| slot.tat.load(Ordering::Relaxed) > cut);
}

// === impl RedisStore ===

/// GCRA on Redis's clock, in microseconds (Lua numbers are doubles: exact to 2^53).
/// KEYS[1]: the key; ARGV[1]: interval (ns); ARGV[2]: window, burst * interval (ns).
/// Returns {1 admitted | 0 refused, TAT - now in ns}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1]) / 1000
local window = tonumber(ARGV[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
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
struct RedisStore {
    client: redis::Client,
    /// Made on first use, inside the runtime that serves requests.
    manager: OnceLock<redis::aio::ConnectionManager>,
    script: redis::Script,
    /// `portico:rl:{scope}:`
    prefix: String,
    timeout: Duration,
    failure_policy: FailurePolicy,
    /// `sync_ms` in ns.
    sync_ns: Option<u64>,
    /// Redis is skipped until then ([`now_ns`] clock).
    down_until_ns: AtomicU64,
    /// When the last failure warning was logged; 0 for never.
    last_warn_ns: AtomicU64,
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
    async fn call(&self, key: &str, gcra: &Gcra) -> Result<(bool, u64), String> {
        let mut conn = self.connection()?;
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation.arg(gcra.interval_ns).arg(gcra.window_ns);
        match tokio::time::timeout(self.timeout, invocation.invoke_async::<(i64, i64)>(&mut conn)).await {
            Ok(Ok((admitted, tat_in_ns))) => Ok((admitted == 1, u64::try_from(tat_in_ns).unwrap_or(0))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    fn is_down(&self, now_ns: u64) -> bool {
        now_ns < self.down_until_ns.load(Ordering::Relaxed)
    }

    /// Whether a key Redis confirmed at `synced_ns` may be decided locally (`sync_ms`).
    fn is_fresh(&self, synced_ns: u64, now_ns: u64) -> bool {
        self.sync_ns.is_some_and(|sync| synced_ns != 0 && now_ns.saturating_sub(synced_ns) <= sync)
    }

    fn failed(&self, now_ns: u64, error: &str) {
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

// === impl RateLimit ===

/// The `rate_limit` filter.
#[derive(Debug)]
pub struct RateLimit {
    key: KeyKind,
    shared: Arc<Limiter>,
}

/// What the filter shares with the background Redis calls of `sync_ms`.
#[derive(Debug)]
struct Limiter {
    local: Arc<LocalLimiter>,
    redis: Option<RedisStore>,
    /// `RateLimit-Policy`, made once.
    policy: HeaderValue,
}

/// One request's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Admitted(Decision),
    Limited(Decision),
    /// Redis failed and `failure_policy` is `closed`.
    Unavailable,
}

impl Outcome {
    fn of(decision: Decision) -> Self {
        if decision.allowed {
            Outcome::Admitted(decision)
        } else {
            Outcome::Limited(decision)
        }
    }
}

/// The decision the response headers report, kept in [`RequestCtx::state`].
#[derive(Debug, Clone)]
struct RateLimitState {
    decision: Decision,
    policy: HeaderValue,
}

impl Limiter {
    async fn decide(self: &Arc<Self>, key: &str) -> Outcome {
        let now = now_ns();
        let Some(redis) = &self.redis else {
            return Outcome::of(self.local.check(key, now));
        };
        // 1. The local pre-check: refuse without a round trip what this instance knows is over.
        let (local, synced) = self.local.check_synced(key, now);
        if !local.allowed {
            return Outcome::Limited(local);
        }
        // 2. `sync_ms`: a key Redis confirmed recently passes now; Redis hears of it meanwhile.
        if redis.is_fresh(synced, now) {
            let this = Arc::clone(self);
            let key = key.to_owned();
            tokio::spawn(async move { this.ask_redis(&key).await });
            return Outcome::Admitted(local);
        }
        // 3. Redis decides; when it cannot, the failure policy does.
        match self.ask_redis(key).await {
            Some(decision) => Outcome::of(decision),
            None if redis.failure_policy == FailurePolicy::Open => Outcome::Admitted(local),
            None => Outcome::Unavailable,
        }
    }

    /// Asks Redis to count one request for `key` and adopts its TAT; `None` when Redis is down,
    /// failed or was too slow.
    async fn ask_redis(&self, key: &str) -> Option<Decision> {
        let redis = self.redis.as_ref()?;
        if redis.is_down(now_ns()) {
            return None;
        }
        let answer = redis.call(key, &self.local.gcra).await;
        let now = now_ns();
        match answer {
            Ok((admitted, tat_in_ns)) => {
                let tat = now + tat_in_ns;
                self.local.adopt(key, now, tat);
                Some(self.local.gcra.decision(admitted, tat, now))
            }
            Err(error) => {
                redis.failed(now, &error);
                None
            }
        }
    }

    /// Records the outcome for the response headers and turns it into the request's flow.
    fn apply(&self, outcome: Outcome, ctx: &mut RequestCtx) -> Flow {
        let decision = match outcome {
            Outcome::Admitted(d) | Outcome::Limited(d) => d,
            Outcome::Unavailable => {
                return Flow::Reject(Reject::new(503, "rate_limiter_unavailable", "rate limiter unavailable"));
            }
        };
        let tighter = ctx.state.get::<RateLimitState>().is_none_or(|s| decision.remaining < s.decision.remaining);
        if tighter {
            ctx.state.insert(RateLimitState { decision, policy: self.policy.clone() });
        }
        if decision.allowed {
            Flow::Continue
        } else {
            Flow::Reject(
                Reject::new(429, "rate_limited", "rate limit exceeded")
                    .with_header(http::header::RETRY_AFTER, &decision.retry_after_secs().to_string()),
            )
        }
    }
}

impl KeyKind {
    /// Writes the request's key (`ip:..`, `c:..`, `r:..`, `h:..`) into `out`.
    fn write_key(&self, out: &mut KeyBuf, request: &RequestHeader, ctx: &RequestCtx) {
        // Writing to a KeyBuf cannot fail: it cuts what does not fit.
        let _ = match self {
            KeyKind::Route => write!(out, "r:{}", ctx.route),
            KeyKind::Consumer => match ctx.caller() {
                Some(name) => write!(out, "c:{name}"),
                None => write_ip(out, ctx.client_ip),
            },
            KeyKind::Header(name) => match request.headers.get(name).and_then(|v| v.to_str().ok()) {
                Some(value) => write!(out, "h:{value}"),
                None => write_ip(out, ctx.client_ip),
            },
            KeyKind::ClientIp => write_ip(out, ctx.client_ip),
        };
    }
}

fn write_ip(out: &mut KeyBuf, ip: Option<IpAddr>) -> fmt::Result {
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => write!(out, "ip:{v4}"),
            None => write!(out, "ip:{v6}"),
        },
        Some(v4) => write!(out, "ip:{v4}"),
        None => out.write_str("ip:unknown"),
    }
}

/// A key built on the stack: up to [`KEY_MAX`] bytes, cut at a character boundary.
struct KeyBuf {
    bytes: [u8; KEY_MAX],
    len: usize,
}

impl KeyBuf {
    fn new() -> Self {
        KeyBuf { bytes: [0; KEY_MAX], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this never falls back.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut n = s.len().min(KEY_MAX - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl FilterFactory for RateLimit {
    const NAME: &'static str = "rate_limit";
    type Config = RateLimitConfig;

    fn build(config: RateLimitConfig, cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let (requests, period_s, field) = match (config.requests_per_second, config.requests_per_minute) {
            (Some(n), None) => (n, 1, "requests_per_second"),
            (None, Some(n)) => (n, 60, "requests_per_minute"),
            (Some(_), Some(_)) => {
                return Err(BuildError::whole("set requests_per_second or requests_per_minute, not both"))
            }
            (None, None) => return Err(BuildError::whole("set requests_per_second or requests_per_minute")),
        };
        if requests == 0 {
            return Err(BuildError::at(field, "must be at least 1"));
        }
        let burst = config.burst.unwrap_or(requests);
        if burst == 0 {
            return Err(BuildError::at("burst", "must be at least 1"));
        }
        let gcra = Gcra::new(requests, Duration::from_secs(period_s), burst).map_err(BuildError::whole)?;
        let policy = HeaderValue::try_from(format!("{requests};w={period_s};burst={burst}"))
            .map_err(|_| BuildError::whole("cannot render RateLimit-Policy"))?;

        let redis = match config.store {
            Store::Local => {
                let redis_only = [
                    ("failure_policy", config.failure_policy.is_some()),
                    ("redis_timeout_ms", config.redis_timeout_ms.is_some()),
                    ("sync_ms", config.sync_ms.is_some()),
                    ("scope", config.scope.is_some()),
                ];
                if let Some((field, _)) = redis_only.iter().find(|(_, set)| *set) {
                    return Err(BuildError::at(*field, "only applies with store: redis"));
                }
                None
            }
            Store::Redis => {
                let url = cx.redis_url.ok_or_else(|| BuildError::at("store", "redis needs rate_limit_store.redis"))?;
                let client = redis::Client::open(url)
                    .map_err(|e| BuildError::at("store", format!("rate_limit_store.redis: {e}")))?;
                let timeout_ms = config.redis_timeout_ms.unwrap_or(DEFAULT_REDIS_TIMEOUT_MS);
                if timeout_ms == 0 {
                    return Err(BuildError::at("redis_timeout_ms", "must be at least 1"));
                }
                let unit = if period_s == 1 { "s" } else { "min" };
                let scope = config.scope.unwrap_or_else(|| format!("{requests}/{unit}/b{burst}/{}", config.key));
                Some(RedisStore {
                    client,
                    manager: OnceLock::new(),
                    script: redis::Script::new(GCRA_LUA),
                    prefix: format!("portico:rl:{scope}:"),
                    timeout: Duration::from_millis(timeout_ms),
                    failure_policy: config.failure_policy.unwrap_or_default(),
                    sync_ns: config.sync_ms.map(|ms| ms.saturating_mul(1_000_000)),
                    down_until_ns: AtomicU64::new(0),
                    last_warn_ns: AtomicU64::new(0),
                })
            }
        };
        let local = carried_counts(cx.place, &config.key, gcra);
        Ok(RateLimit { key: config.key, shared: Arc::new(Limiter { local, redis, policy }) })
    }
}

/// The local counts of a limiter at the same place with the same key and rate in the config
/// that runs now, so a reload does not hand every client a fresh burst; new counts otherwise.
///
/// Only config loading takes this lock; requests reach their `LocalLimiter` through the filter.
/// Entries are weak: counts die with the last config that uses them.
fn carried_counts(place: &str, key: &KeyKind, gcra: Gcra) -> Arc<LocalLimiter> {
    type Carried = std::sync::Mutex<HashMap<(String, String, Gcra), std::sync::Weak<LocalLimiter>>>;
    static CARRIED: OnceLock<Carried> = OnceLock::new();
    if place.is_empty() {
        return Arc::new(LocalLimiter::new(gcra));
    }
    let mut carried = CARRIED.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    carried.retain(|_, counts| counts.strong_count() > 0);
    let id = (place.to_string(), key.to_string(), gcra);
    if let Some(counts) = carried.get(&id).and_then(std::sync::Weak::upgrade) {
        return counts;
    }
    let counts = Arc::new(LocalLimiter::new(gcra));
    carried.insert(id, Arc::downgrade(&counts));
    counts
}

#[async_trait]
impl Filter for RateLimit {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let mut key = KeyBuf::new();
        self.key.write_key(&mut key, session.req_header(), ctx);
        let outcome = self.shared.decide(key.as_str()).await;
        Ok(self.shared.apply(outcome, ctx))
    }

    fn response(&self, response: &mut ResponseHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(state) = ctx.state.get::<RateLimitState>() else {
            return Ok(());
        };
        let d = &state.decision;
        response.insert_header("RateLimit-Limit", HeaderValue::from(d.limit))?;
        response.insert_header("RateLimit-Remaining", HeaderValue::from(d.remaining))?;
        response.insert_header("RateLimit-Reset", HeaderValue::from(d.reset_secs()))?;
        response.insert_header("RateLimit-Policy", state.policy.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;

    fn gcra(per_second: u64, burst: u64) -> Gcra {
        Gcra::new(per_second, Duration::from_secs(1), burst).expect("valid gcra")
    }

    fn build(yaml: &str, redis_url: Option<&str>) -> Result<RateLimit, BuildError> {
        let config: RateLimitConfig = serde_yaml::from_str(yaml).map_err(|e| BuildError::whole(e.to_string()))?;
        RateLimit::build(config, &BuildContext { consumers: &[], base_dir: Path::new("."), redis_url, place: "" })
    }

    #[test]
    fn admits_the_burst_then_refuses() {
        let limiter = LocalLimiter::new(gcra(10, 5));
        let now = 42 * SEC;
        for remaining in (0..5).rev() {
            let d = limiter.check("k", now);
            assert!(d.allowed);
            assert_eq!(d.remaining, remaining);
        }
        let refused = limiter.check("k", now);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // The next cell is one interval (100 ms) away; the whole burst five intervals.
        assert_eq!(refused.retry_after_ns, 100 * MS);
        assert_eq!(refused.reset_ns, 500 * MS);
    }

    #[test]
    fn refills_at_the_rate() {
        let limiter = LocalLimiter::new(gcra(10, 5));
        let t0 = SEC;
        while limiter.check("k", t0).allowed {}
        assert!(!limiter.check("k", t0 + 99 * MS).allowed, "not yet one interval");
        assert!(limiter.check("k", t0 + 100 * MS).allowed, "one cell back after 100 ms");
        assert!(!limiter.check("k", t0 + 100 * MS).allowed, "and only one");
        // At rest again after the whole window: a full burst.
        let later = t0 + 10 * SEC;
        assert_eq!((0..10).filter(|_| limiter.check("k", later).allowed).count(), 5);
    }

    #[test]
    fn sustained_rate_over_a_minute() {
        let limiter = LocalLimiter::new(Gcra::new(60, Duration::from_secs(60), 1).expect("valid"));
        // One request every 100 ms for a minute: 600 tries, 60 admitted (one per second).
        let admitted = (0..600).filter(|i| limiter.check("k", SEC + i * 100 * MS).allowed).count();
        assert_eq!(admitted, 60);
    }

    #[test]
    fn keys_are_independent() {
        let limiter = LocalLimiter::new(gcra(1, 2));
        assert!(limiter.check("a", SEC).allowed);
        assert!(limiter.check("a", SEC).allowed);
        assert!(!limiter.check("a", SEC).allowed);
        assert!(limiter.check("b", SEC).allowed, "b has its own budget");
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn memory_is_bounded_and_rested_keys_go_first() {
        let limiter = LocalLimiter::with_max_keys(gcra(1, 1), SHARDS * 4);
        for i in 0..10_000 {
            limiter.check(&format!("k{i}"), SEC);
        }
        assert!(limiter.len() <= SHARDS * 4, "{} keys kept", limiter.len());
        // Much later every key is at rest: inserting more drops them rather than growing.
        for i in 0..10_000 {
            limiter.check(&format!("later{i}"), 100 * SEC);
        }
        assert!(limiter.len() <= SHARDS * 4);
    }

    #[test]
    fn concurrent_requests_never_overshoot() {
        let limiter = Arc::new(LocalLimiter::new(gcra(1, 1000)));
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let limiter = Arc::clone(&limiter);
                    s.spawn(move || (0..1000).filter(|_| limiter.check("shared", SEC).allowed).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        assert_eq!(admitted, 1000);
    }

    #[test]
    fn header_values() {
        let g = gcra(100, 50);
        let d = g.decision(true, SEC + 10 * MS, SEC);
        assert_eq!((d.limit, d.remaining, d.reset_secs()), (50, 49, 1));
        let at_rest = g.decision(true, 0, SEC);
        assert_eq!((at_rest.remaining, at_rest.reset_secs()), (50, 0));
        let refused = g.decision(false, SEC + 500 * MS, SEC);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_secs(), 1, "10 ms rounds up to 1 s");

        let f = build("{requests_per_minute: 2, burst: 1}", None).expect("valid");
        let mut ctx = RequestCtx::default();
        assert!(matches!(f.shared.apply(Outcome::of(f.shared.local.check("k", SEC)), &mut ctx), Flow::Continue));
        let flow = f.shared.apply(Outcome::of(f.shared.local.check("k", SEC)), &mut ctx);
        let Flow::Reject(reject) = flow else { panic!("expected 429, got {flow:?}") };
        assert_eq!((reject.status, reject.error), (429, "rate_limited"));
        assert_eq!(reject.headers[0].0, http::header::RETRY_AFTER);
        assert_eq!(reject.headers[0].1, "30");

        let mut response = ResponseHeader::build(429, None).expect("response");
        f.response(&mut response, &mut ctx).expect("headers");
        let header = |name: &str| response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("ratelimit-limit").as_deref(), Some("1"));
        assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(header("ratelimit-reset").as_deref(), Some("30"));
        assert_eq!(header("ratelimit-policy").as_deref(), Some("2;w=60;burst=1"));
    }

    #[test]
    fn two_limits_report_the_tighter() {
        let loose = build("{requests_per_second: 100}", None).expect("valid");
        let tight = build("{requests_per_second: 1, burst: 3}", None).expect("valid");
        let mut ctx = RequestCtx::default();
        tight.shared.apply(Outcome::of(tight.shared.local.check("k", SEC)), &mut ctx);
        loose.shared.apply(Outcome::of(loose.shared.local.check("k", SEC)), &mut ctx);
        let state = ctx.state.get::<RateLimitState>().expect("state");
        assert_eq!((state.decision.limit, state.decision.remaining), (3, 2));
    }

    #[test]
    fn keys_from_the_request() {
        let request = RequestHeader::build("GET", b"/", None).expect("request");
        let mut with_header = request.clone();
        with_header.insert_header("x-api-key", "abc").expect("header");
        let mut ctx = RequestCtx {
            client_ip: Some("::ffff:10.1.2.3".parse().expect("ip")),
            route: "users".into(),
            ..Default::default()
        };
        let key = |kind: &str, request: &RequestHeader, ctx: &RequestCtx| {
            let mut buf = KeyBuf::new();
            kind.parse::<KeyKind>().expect("key kind").write_key(&mut buf, request, ctx);
            buf.as_str().to_owned()
        };
        assert_eq!(key("client_ip", &request, &ctx), "ip:10.1.2.3");
        assert_eq!(key("route", &request, &ctx), "r:users");
        assert_eq!(key("consumer", &request, &ctx), "ip:10.1.2.3", "anonymous: by address");
        assert_eq!(key("header:X-Api-Key", &request, &ctx), "ip:10.1.2.3", "no header: by address");
        assert_eq!(key("header:X-Api-Key", &with_header, &ctx), "h:abc");
        ctx.consumer = Some(Arc::new(crate::Consumer { name: "mobile".into(), ..Default::default() }));
        assert_eq!(key("consumer", &request, &ctx), "c:mobile");

        let mut long = KeyBuf::new();
        let _ = write!(long, "h:{}", "é".repeat(KEY_MAX));
        assert!(long.as_str().len() <= KEY_MAX && long.as_str().len() >= KEY_MAX - 1);
    }

    #[test]
    fn config_errors() {
        let err = |yaml: &str, url: Option<&str>| build(yaml, url).expect_err(yaml);
        assert!(err("{key: nonsense, requests_per_second: 1}", None).message.contains("expected client_ip"));
        assert!(err("{key: \"header:bad name\", requests_per_second: 1}", None).message.contains("header name"));
        assert!(err("{}", None).message.contains("requests_per_second or requests_per_minute"));
        assert!(err("{requests_per_second: 1, requests_per_minute: 1}", None).message.contains("not both"));
        assert_eq!(err("{requests_per_second: 0}", None).path, "requests_per_second");
        assert_eq!(err("{requests_per_second: 1, burst: 0}", None).path, "burst");
        let no_url = err("{requests_per_second: 1, store: redis}", None);
        assert_eq!((no_url.path.as_str(), no_url.message.as_str()), ("store", "redis needs rate_limit_store.redis"));
        assert_eq!(err("{requests_per_second: 1, sync_ms: 10}", None).path, "sync_ms");
        assert_eq!(
            err("{requests_per_second: 1, store: redis, redis_timeout_ms: 0}", Some("redis://127.0.0.1")).path,
            "redis_timeout_ms"
        );
        assert!(err("{requests_per_second: 1, store: memcached}", None).message.contains("unknown variant"));
        assert!(err("{requests_per_second: 1, colour: red}", None).message.contains("unknown field"));
        build(
            "{key: consumer, requests_per_minute: 60, store: redis, failure_policy: closed}",
            Some("redis://127.0.0.1:6379"),
        )
        .expect("valid redis config");
    }

    // === Redis, against a real redis-server ===

    /// A `redis-server` on a free port, killed on drop.
    struct RedisServer {
        child: Option<tokio::process::Child>,
        url: String,
    }

    impl RedisServer {
        /// Starts one, or `None` (with a note) where redis-server is not installed.
        async fn start() -> Option<RedisServer> {
            let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
            let child = tokio::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn();
            let Ok(child) = child else {
                eprintln!("redis-server is not installed: skipping the Redis test");
                return None;
            };
            // Ready once it answers PING.
            let url = format!("redis://127.0.0.1:{port}");
            let client = redis::Client::open(url.as_str()).expect("url");
            for _ in 0..200 {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    if redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok() {
                        return Some(RedisServer { child: Some(child), url });
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("redis-server did not come up on port {port}");
        }

        async fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                child.kill().await.expect("kill redis-server");
            }
        }
    }

    fn instance(yaml: &str, url: &str) -> RateLimit {
        build(yaml, Some(url)).expect("valid redis config")
    }

    async fn admitted(instances: &[&RateLimit], key: &str, tries: usize) -> usize {
        let mut count = 0;
        for i in 0..tries {
            if matches!(instances[i % instances.len()].shared.decide(key).await, Outcome::Admitted(_)) {
                count += 1;
            }
        }
        count
    }

    #[tokio::test]
    async fn redis_is_shared_by_instances_and_failure_policy_holds() {
        let Some(mut server) = RedisServer::start().await else {
            return;
        };
        // Two "Portico instances": separate filters, local counts and connections.
        let config = "{key: consumer, requests_per_minute: 10, store: redis, redis_timeout_ms: 200}";
        let a = instance(config, &server.url);
        let b = instance(config, &server.url);
        // One cell per 6 s: within this test nothing refills, so exactly the burst passes.
        assert_eq!(admitted(&[&a, &b], "c:shared", 30).await, 10);
        // Both instances now know the key is over, and refuse it without asking Redis.
        let Outcome::Limited(d) = b.shared.decide("c:shared").await else { panic!("expected limited") };
        assert!(d.retry_after_secs() >= 1);
        // Redis's verdicts feed the headers: after one request of ten, nine remain.
        let Outcome::Admitted(d) = a.shared.decide("c:other").await else { panic!("expected admitted") };
        assert_eq!((d.limit, d.remaining), (10, 9));

        // Redis gone: open admits on local counts, closed answers 503, both without waiting long.
        let open = instance("{requests_per_second: 100, store: redis, redis_timeout_ms: 200}", &server.url);
        let closed = instance(
            "{requests_per_second: 100, store: redis, failure_policy: closed, redis_timeout_ms: 200}",
            &server.url,
        );
        assert!(matches!(closed.shared.decide("ip:1").await, Outcome::Admitted(_)), "connects while up");
        server.stop().await;
        let started = Instant::now();
        for _ in 0..20 {
            assert!(matches!(open.shared.decide("ip:2").await, Outcome::Admitted(_)));
            assert_eq!(closed.shared.decide("ip:2").await, Outcome::Unavailable);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        let mut ctx = RequestCtx::default();
        let Flow::Reject(r) = closed.shared.apply(Outcome::Unavailable, &mut ctx) else { panic!("expected 503") };
        assert_eq!((r.status, r.error), (503, "rate_limiter_unavailable"));
    }

    #[tokio::test]
    async fn sync_ms_stays_within_its_tolerance() {
        let Some(_server) = RedisServer::start().await else {
            return;
        };
        let url = _server.url.clone();
        let config = "{requests_per_minute: 20, burst: 20, store: redis, sync_ms: 1000, redis_timeout_ms: 200}";
        let a = instance(config, &url);
        let b = instance(config, &url);
        // Back to back, the background reports cannot even start (one-thread runtime): the worst
        // case, where each instance passes up to one burst on its own view.
        let got = admitted(&[&a, &b], "ip:9", 100).await;
        assert!((20..=2 * 20).contains(&got), "admitted {got}");
        // The reports arrive: Redis ends up knowing the key is exhausted.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let c = instance(config, &url);
        assert!(matches!(c.shared.decide("ip:9").await, Outcome::Limited(_)));

        // Paced a little, views stay within a few requests of Redis.
        let mut got = 0;
        for i in 0..100 {
            let instance = if i % 2 == 0 { &a } else { &b };
            got += usize::from(matches!(instance.shared.decide("ip:10").await, Outcome::Admitted(_)));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!((20..=20 + 4).contains(&got), "admitted {got}");
    }
}
