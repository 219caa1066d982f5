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
//! - `ipv6_prefix` (default 64, 1 to 128): IPv6 clients are counted by their network of this
//!   many bits, since one client usually holds a whole /64; IPv4 clients (and IPv4-mapped IPv6)
//!   are counted per address. `128` counts each IPv6 address on its own.
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
//! # How it decides
//!
//! With GCRA (`gcra.rs`), which keeps one number per key: exact at the limit, no timer, and a key
//! at rest is the same as a key never seen. `pingora-limits` was considered and not used: its
//! `Rate` estimates a rate per interval from a count-min sketch (hash collisions over-count, a
//! key cannot be refused precisely at its limit, it reads `Instant::now()` itself), and it has no
//! burst, no "remaining" and no "reset", which the headers need.
//!
//! The local store (`local.rs`) keeps about 131,072 keys in 64 shards, lock-free for known keys;
//! when full it forgets keys at rest first, then the half nearest to rest (those start over with
//! a full burst). Keys longer than 256 bytes are cut to their first 256 bytes.
//!
//! # The Redis store
//!
//! `rate_limit_store.redis` is `redis://` or, for TLS, `rediss://` (OpenSSL, the same library
//! Portico's listeners use, through `native-tls`; the system's trust store verifies the server,
//! and `rediss://host:port/#insecure` skips that check). The TAT lives in Redis under
//! `portico:rl:{scope}:{key}`, updated by one Lua script (the
//! same GCRA, on Redis's own clock, so instances' clocks do not matter) and expiring when the
//! key is back at rest. The connection is a `redis` `ConnectionManager` (reconnects by itself),
//! made on first use; every call is bounded by `redis_timeout_ms`. After a failure Redis is left
//! alone for 500 ms (the failure policy applies at once instead of each request waiting for the
//! timeout), and a warning is logged at most once a second.
//!
//! The fast path, and its trade-off: each instance also keeps a local store at the full rate as
//! a pre-check, and adopts the TAT Redis returns for a key as its own (held to at most one
//! window ahead, the most GCRA ever stores: a garbage value in Redis locks a key for one window
//! at most, and the script overwrites it). A key that is over its
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

mod config;
pub(crate) mod gcra;
pub(crate) mod key;
pub(crate) mod local;
mod redis;

#[cfg(test)]
mod tests;

pub use config::{FailurePolicy, RateLimitConfig, Store};
pub use key::{client_network, KeyKind, DEFAULT_IPV6_PREFIX};

use crate::{Filter, Flow, Reject, RequestCtx, ResponseHeader, Session};
use async_trait::async_trait;
use gcra::{now_ns, Decision};
use http::HeaderValue;
use key::KeyBuf;
use local::LocalLimiter;
use redis::RedisStore;
use std::sync::Arc;

/// The local store on its own, for `benches/limiter.rs`: its figures are tens of nanoseconds, and
/// driving it through a request (a session, the key, the boxed future, the context) would bury
/// them. Not an API: hidden from the docs and free to change.
#[doc(hidden)]
pub mod bench {
    pub use super::gcra::{now_ns, Decision, Gcra};
    pub use super::local::LocalLimiter;
}

// === impl RateLimit ===

/// The `rate_limit` filter.
#[derive(Debug)]
pub struct RateLimit {
    key: KeyKind,
    /// IPv6 client addresses are counted by their network of this many bits.
    ipv6_prefix: u8,
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

    /// Asks Redis to count one request for `key` and adopts its TAT (held to at most one window
    /// ahead, see [`redis::adopted_tat`]); `None` when Redis is down,
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
                let tat = redis::adopted_tat(now, tat_in_ns, self.local.gcra.window_ns);
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

#[async_trait]
impl Filter for RateLimit {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let mut key = KeyBuf::new();
        self.key.write_key(&mut key, session.req_header(), ctx, self.ipv6_prefix);
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
