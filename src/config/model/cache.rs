//! The cache's runtime config: the one store every route shares (`cache_store`) and a route's
//! policy (`routes[].cache`). What the policy means on a request is in `src/cache/`.

use http::{HeaderName, Method};
use std::sync::Arc;
use std::time::Duration;

/// `cache_store`: the process's one response cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStoreSpec {
    /// Bound on stored bodies and headers together, in bytes; eviction keeps the store under it.
    pub max_size_bytes: usize,
    /// A response whose body is larger than this is passed through and not stored.
    pub max_object_bytes: usize,
    /// How long requests for a key that is being fetched wait for that fetch (and how long one
    /// fetch may hold the others back).
    pub lock_timeout: Duration,
}

/// One part of a route's cache key (`routes[].cache.key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The request's `Host`.
    Host,
    /// The path, without the query.
    Path,
    /// The query string, as sent.
    Query,
    /// A request header's value (absent and empty are the same).
    Header(HeaderName),
    /// A cookie's value.
    Cookie(String),
    /// The consumer (or verified identity) an earlier filter found.
    Consumer,
}

/// `routes[].cache`: what a route stores and for how long.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// The route's name, the first part of every key (two routes never share an entry).
    pub route: Arc<str>,
    /// Freshness when the origin gives none (`Cache-Control` and `Expires` win).
    pub ttl: Duration,
    /// Request headers the entry varies on, beside the origin's own `Vary`.
    pub vary: Vec<HeaderName>,
    /// The parts of the key, in order.
    pub key: Vec<KeyPart>,
    /// Methods answered from the cache (`GET`, `HEAD`).
    pub methods: Vec<Method>,
    /// How long after expiry a stale entry is served at once while one request refreshes it
    /// (the origin's `stale-while-revalidate` wins).
    pub stale_while_revalidate: Duration,
    /// How long after expiry a stale entry is served when the origin fails (the origin's
    /// `stale-if-error` wins).
    pub stale_if_error: Duration,
}
