//! `basic_auth`: identify the consumer by `Authorization: Basic base64(user:password)`, checked
//! against the consumers' bcrypt or argon2 password hashes; answer 401 otherwise.
//!
//! ```yaml
//! - basic_auth: {realm: portico, max_concurrent_hashes: 1, max_queued_hashes: 16, failures_per_minute: 20}
//! consumers:
//!   - {name: ops, basic: {username: ops, password_hash: "$2b$10$..."}}   # or "$argon2id$v=19$..."
//! ```
//!
//! Hashing is slow on purpose (milliseconds of CPU), which makes it the target of a flood of
//! wrong passwords. So, in the order a login meets them:
//!
//! 1. Each header value that verified is remembered for [`CACHE_TTL`] (by its SHA-256, in a
//!    bounded cache carried across reloads, and only while the consumer's hash is unchanged): a
//!    client sending the same credentials again costs a lookup, not a hash.
//! 2. A client address (IPv4, or IPv6 /64) that failed `failures_per_minute` logins (default
//!    20, `0`: off) is answered 429 `rate_limited` with `Retry-After`, without hashing, until its
//!    budget refills at that rate (`throttle.rs`).
//! 3. Hashes run on Tokio's blocking threads, at most `max_concurrent_hashes` at once (default:
//!    half the CPUs) and at most `max_queued_hashes` waiting (default 16), process-wide: every
//!    `basic_auth` filter with the same two numbers (by default, all of them) shares one pool,
//!    across reloads too. A login beyond that is answered 503 `overloaded` with `Retry-After: 1`
//!    at once (`hashing.rs`).
//!
//! Both refusals are counted ([`overloaded_total`], [`throttled_total`]). An unknown username
//! is checked against a decoy hash, so it takes as long (and counts as a failure) as a wrong
//! password.

mod hashing;
mod throttle;

#[cfg(test)]
mod tests;

pub use hashing::overloaded_total;
pub use throttle::throttled_total;

use crate::credentials::{digest, VerifiedCache};
use crate::rate_limit::gcra::now_ns;
use crate::{BuildContext, BuildError, Consumer, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use async_trait::async_trait;
use base64::Engine;
use hashing::{HashPool, Scheme};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::HeaderValue;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use throttle::FailedLogins;

/// How many verified header values are remembered.
const CACHE_ENTRIES: usize = 10_000;

/// How long a verified header value is remembered: a valid client pays one hash this often.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// The `basic_auth` filter's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The realm named in `WWW-Authenticate`; `portico` by default.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// How many password hashes run at once, process-wide; half the CPUs by default (at least 1).
    #[serde(default)]
    pub max_concurrent_hashes: Option<usize>,
    /// How many logins may wait for a hashing thread before more are refused with 503; 16 by
    /// default.
    #[serde(default)]
    pub max_queued_hashes: Option<usize>,
    /// Failed logins one client address may make per minute (and at once) before it is refused
    /// with 429 without hashing; 20 by default, 0 to never refuse.
    #[serde(default)]
    pub failures_per_minute: Option<u64>,
}

fn default_realm() -> String {
    "portico".to_string()
}

/// One consumer's login.
#[derive(Debug)]
struct Login {
    scheme: Scheme,
    hash: Arc<str>,
    consumer: Arc<Consumer>,
}

/// A header value that verified: against which username and hash, and until when.
#[derive(Debug, Clone)]
struct Verified {
    username: Arc<str>,
    /// The hash it matched: a hit counts only while the consumer still has this hash.
    hash: Arc<str>,
    /// On the [`now_ns`] clock.
    expires_ns: u64,
}

/// The `basic_auth` filter.
pub struct BasicAuth {
    logins: HashMap<Arc<str>, Login>,
    /// SHA-256 of an `Authorization` value that verified, to what it verified against.
    verified: Arc<VerifiedCache<Verified>>,
    /// Where hashes run, bounded (shared by the process's `basic_auth` filters).
    hashing: Arc<HashPool>,
    /// Failed logins by client address; `None` when `failures_per_minute` is 0.
    failures: Option<FailedLogins>,
    /// A bcrypt hash of the configured cost, checked for unknown usernames so that they take as
    /// long as wrong passwords (made on first use).
    decoy: OnceLock<Arc<str>>,
    decoy_cost: u32,
    challenge: HeaderValue,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("logins", &self.logins.len()).finish_non_exhaustive()
    }
}

/// Splits `Basic base64(user:password)` into its username and password.
fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// The verified-login cache of the `basic_auth` filter at `place` in the config that runs now,
/// so a reload does not make every client pay a hash again at once (a hit still needs the
/// consumer's hash to be the one that verified). A fresh cache outside a config.
fn carried_cache(place: &str) -> Arc<VerifiedCache<Verified>> {
    type Carried = Mutex<HashMap<String, Weak<VerifiedCache<Verified>>>>;
    static CARRIED: LazyLock<Carried> = LazyLock::new(Default::default);
    if place.is_empty() {
        return Arc::new(VerifiedCache::new(CACHE_ENTRIES));
    }
    let mut carried = CARRIED.lock().unwrap_or_else(PoisonError::into_inner);
    carried.retain(|_, cache| cache.strong_count() > 0);
    if let Some(cache) = carried.get(place).and_then(Weak::upgrade) {
        return cache;
    }
    let cache = Arc::new(VerifiedCache::new(CACHE_ENTRIES));
    carried.insert(place.to_string(), Arc::downgrade(&cache));
    cache
}

impl BasicAuth {
    fn unauthorized(&self, message: &'static str) -> Reject {
        let mut reject = Reject::new(401, "unauthorized", message);
        reject.headers.push((WWW_AUTHENTICATE, self.challenge.clone()));
        reject
    }

    fn decoy(&self) -> Arc<str> {
        self.decoy
            .get_or_init(|| {
                bcrypt::hash_with_salt(b"portico decoy", self.decoy_cost, [0x5a; 16])
                    .map(|h| Arc::from(h.to_string()))
                    .unwrap_or_else(|_| Arc::from(""))
            })
            .clone()
    }

    /// The consumer a remembered verification of `key` stands for, if it is still good.
    fn remembered(&self, key: &[u8; 32], now_ns: u64) -> Option<Arc<Consumer>> {
        let v = self.verified.get(key)?;
        let login = self.logins.get(&v.username).filter(|l| l.hash == v.hash && now_ns < v.expires_ns);
        if login.is_none() {
            self.verified.remove(key);
        }
        login.map(|l| l.consumer.clone())
    }

    /// Finds the consumer whose credentials `authorization` (the header's value) carries, or
    /// refuses: 401 for missing or wrong credentials, 429 when `client` failed too often, 503
    /// when the hashing pool is full.
    async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<Arc<Consumer>, Reject> {
        let Some(value) = authorization.filter(|v| !v.is_empty()) else {
            return Err(self.unauthorized("missing credentials"));
        };
        // 1. Seen and verified before: no hash.
        let key = digest(value);
        if let Some(consumer) = self.remembered(&key, now_ns()) {
            return Ok(consumer);
        }
        let Some((user, password)) = parse_basic(value) else {
            return Err(self.unauthorized("malformed basic credentials"));
        };
        // 2. A client that keeps failing gets no more hashes for a while.
        if let Some(secs) = self.failures.as_ref().and_then(|f| f.retry_after(client, now_ns())) {
            return Err(
                Reject::new(429, "rate_limited", "too many failed logins").with_header(RETRY_AFTER, &secs.to_string())
            );
        }
        // 3. A place in the hashing pool, or 503 at once.
        let Some(admission) = self.hashing.try_admit() else {
            return Err(Reject::new(503, "overloaded", "too many logins being checked; retry shortly")
                .with_header(RETRY_AFTER, "1"));
        };
        let login = self.logins.get_key_value(user.as_str());
        let (scheme, hash) = match login {
            Some((_, l)) => (l.scheme, l.hash.clone()),
            None => (Scheme::Bcrypt, self.decoy()),
        };
        let matched = self.hashing.verify(admission, scheme, password, hash).await;
        match login {
            Some((username, l)) if matched => {
                let ttl_ns = u64::try_from(CACHE_TTL.as_nanos()).unwrap_or(u64::MAX);
                let verified = Verified {
                    username: username.clone(),
                    hash: l.hash.clone(),
                    expires_ns: now_ns().saturating_add(ttl_ns),
                };
                self.verified.insert(key, verified);
                Ok(l.consumer.clone())
            }
            _ => {
                if let Some(failures) = &self.failures {
                    failures.failed(client, now_ns());
                }
                Err(self.unauthorized("invalid username or password"))
            }
        }
    }
}
impl FilterFactory for BasicAuth {
    const NAME: &'static str = "basic_auth";
    type Config = BasicAuthConfig;

    fn build(config: BasicAuthConfig, cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        if config.realm.contains('"') || config.realm.contains('\\') {
            return Err(BuildError::at("realm", "must not contain quotes or backslashes"));
        }
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\", charset=\"UTF-8\"", config.realm))
            .map_err(|_| BuildError::at("realm", "not valid in a header"))?;
        let mut logins = HashMap::new();
        let mut decoy_cost = None;
        for consumer in cx.consumers {
            let Some(basic) = &consumer.basic else {
                continue;
            };
            let scheme = Scheme::of(&basic.password_hash).ok_or_else(|| {
                BuildError::whole(format!(
                    "consumer \"{}\": basic.password_hash is not a bcrypt (\"$2b$...\") or argon2 \
                     (\"$argon2id$...\") hash",
                    consumer.name
                ))
            })?;
            if scheme == Scheme::Bcrypt && decoy_cost.is_none() {
                decoy_cost = basic.password_hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost());
            }
            let login = Login { scheme, hash: basic.password_hash.as_str().into(), consumer: consumer.clone() };
            if let Some(other) = logins.insert(Arc::from(basic.username.as_str()), login) {
                return Err(BuildError::whole(format!(
                    "consumers \"{}\" and \"{}\" have the same basic username \"{}\"",
                    other.consumer.name, consumer.name, basic.username
                )));
            }
        }
        if logins.is_empty() {
            return Err(BuildError::whole("no consumer has `basic` credentials"));
        }
        let max_concurrent = config.max_concurrent_hashes.unwrap_or_else(hashing::default_max_concurrent);
        if max_concurrent == 0 {
            return Err(BuildError::at("max_concurrent_hashes", "must be at least 1"));
        }
        let max_queued = config.max_queued_hashes.unwrap_or(hashing::DEFAULT_MAX_QUEUED);
        let failures_per_minute = config.failures_per_minute.unwrap_or(throttle::DEFAULT_FAILURES_PER_MINUTE);
        let failures =
            FailedLogins::shared(failures_per_minute).map_err(|e| BuildError::at("failures_per_minute", e))?;
        Ok(BasicAuth {
            logins,
            verified: carried_cache(cx.place),
            hashing: HashPool::shared(max_concurrent, max_queued),
            failures,
            decoy: OnceLock::new(),
            decoy_cost: decoy_cost.unwrap_or(10),
            challenge,
        })
    }
}

#[async_trait]
impl Filter for BasicAuth {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let authorization = session.req_header().headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        match self.authenticate(authorization, ctx.client_ip).await {
            Ok(consumer) => {
                ctx.consumer = Some(consumer);
                Ok(Flow::Continue)
            }
            Err(reject) => Ok(Flow::Reject(reject)),
        }
    }
}
