//! The `rate_limit` filter's config, and its validation into a [`RateLimit`]; local counts are
//! carried over a reload here.

use super::gcra::Gcra;
use super::key::{KeyKind, DEFAULT_IPV6_PREFIX};
use super::local::LocalLimiter;
use super::redis::{RedisStore, GCRA_LUA};
use super::{Limiter, RateLimit};
use crate::{BuildContext, BuildError, FilterFactory};
use http::HeaderValue;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::Duration;

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
    /// IPv6 client addresses are counted by their network of this many bits (1 to 128); 64 by
    /// default. IPv4 addresses are counted one by one.
    pub ipv6_prefix: Option<u8>,
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
        let ipv6_prefix = config.ipv6_prefix.unwrap_or(DEFAULT_IPV6_PREFIX);
        if !(1..=128).contains(&ipv6_prefix) {
            return Err(BuildError::at("ipv6_prefix", "must be from 1 to 128"));
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
        Ok(RateLimit { key: config.key, ipv6_prefix, shared: Arc::new(Limiter { local, redis, policy }) })
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
