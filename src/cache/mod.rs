//! The one shared response cache: Portico's storage behind pingora-cache's `Storage` trait,
//! pingora-cache's LRU eviction manager and cache lock, key building, the RFC 9111 policy,
//! purges and metrics. The proxy's cache hooks (`src/proxy/cache.rs`) drive it through
//! pingora-cache's `HttpCache` state machine.
//!
//! | file          | what                                                             |
//! |---------------|------------------------------------------------------------------|
//! | [`store`]     | the in-memory [`Store`]: entries, hits (with ranges), writes      |
//! | [`key`]       | a route's `key:` parts of a request -> `CacheKey`                 |
//! | [`policy`]    | storable or not, freshness, stale windows, variance              |
//! | [`status`]    | `x-cache-status` in nginx's words                                 |
//! | [`purge`]     | what `POST /cache/purge` selects                                  |
//! | [`metrics`]   | the `portico_cache_*` series                                      |
//!
//! One [`Cache`] per process, made by the first config with a `cache_store` and kept by every
//! reload (its contents too): pingora-cache wants `&'static` parts, and a reload must not empty
//! the cache. A reload that changes `max_size_mb` moves the bound at once (the next write
//! evicts down to it); `lock_timeout_ms` bounds how long requests wait from the next request
//! on, while the age after which a fetch's lock is taken from it stays the first config's.

pub mod key;
pub mod metrics;
pub mod policy;
pub mod purge;
pub mod status;
pub mod store;
#[cfg(test)]
mod tests;

pub use metrics::{CacheMetrics, RouteCacheMetrics};
pub use purge::{EntryTag, PurgeRequest};
pub use status::CacheStatus;
pub use store::Store;

use crate::config::CacheStoreSpec;
use crate::telemetry::Metrics;
use pingora::cache::eviction::lru::Manager;
use pingora::cache::eviction::{CacheEntryKeyRef, EvictionManager};
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use std::sync::OnceLock;

/// Shards of a large cache's LRU (each behind its own lock).
const LRU_SHARDS: usize = 16;
/// Objects each LRU shard makes room for up front.
const LRU_SHARD_CAPACITY: usize = 1024;
/// Caches smaller than this keep one LRU. A sharded one evicts from the longer of two shards
/// picked at random, which is close to LRU only when each shard holds many objects: a 2 MiB
/// cache of 100 KB objects kept 2 to 10 of its 10 newest after a working set ten times its
/// size went through (16 shards), and all 10 with one. One lock per cache is what nginx has
/// too (one per `keys_zone`).
const SHARDED_FROM_BYTES: usize = 256 << 20;

/// pingora-cache's LRU eviction manager, with one shard or [`LRU_SHARDS`].
pub enum Eviction {
    /// A small cache: exact LRU.
    Single(&'static Manager<1>),
    /// A large cache: sharded, so hits on different objects seldom wait for one lock.
    Sharded(&'static Manager<LRU_SHARDS>),
}

impl Eviction {
    /// The manager for a cache of `max_size_bytes` (leaked: it lives as long as the process).
    fn new(max_size_bytes: usize) -> Eviction {
        if max_size_bytes < SHARDED_FROM_BYTES {
            Eviction::Single(Box::leak(Box::new(Manager::with_capacity(max_size_bytes, LRU_SHARD_CAPACITY))))
        } else {
            Eviction::Sharded(Box::leak(Box::new(Manager::with_capacity(max_size_bytes, LRU_SHARD_CAPACITY))))
        }
    }

    /// The manager, as pingora-cache takes it.
    pub fn manager(&self) -> &'static (dyn EvictionManager + Sync) {
        match self {
            Eviction::Single(m) => *m,
            Eviction::Sharded(m) => *m,
        }
    }

    /// Moves the bound (a reload).
    fn set_weight_limit(&self, limit: usize) {
        match self {
            Eviction::Single(m) => m.set_weight_limit(limit),
            Eviction::Sharded(m) => m.set_weight_limit(limit),
        }
    }
}

/// The process's cache.
pub struct Cache {
    /// Where objects are.
    pub store: &'static Store,
    /// What is evicted when the store is over `max_size_mb`.
    pub eviction: Eviction,
    /// Collapses concurrent misses for one key into one fetch.
    pub lock: &'static CacheKeyLockImpl,
    /// The `portico_cache_*` series.
    pub metrics: CacheMetrics,
}

static CACHE: OnceLock<&'static Cache> = OnceLock::new();

/// The process's cache, once a config has asked for one.
pub fn get() -> Option<&'static Cache> {
    CACHE.get().copied()
}

/// Makes the process's cache for `spec` (the first time) or moves its bound to `spec`'s (a
/// reload); nothing when the config has no `cache_store`.
pub fn configure(spec: Option<&CacheStoreSpec>, registry: &Metrics) -> Option<&'static Cache> {
    let spec = spec?;
    let cache = *CACHE.get_or_init(|| Box::leak(Box::new(Cache::new(spec, CacheMetrics::new(registry)))));
    cache.eviction.set_weight_limit(spec.max_size_bytes);
    Some(cache)
}

impl Cache {
    /// A cache bounded by `spec`, reporting to `metrics` (leaked: it lives as long as the
    /// process).
    pub fn new(spec: &CacheStoreSpec, metrics: CacheMetrics) -> Self {
        let store: &'static Store = Box::leak(Box::new(Store::new(metrics.store.clone())));
        let eviction = Eviction::new(spec.max_size_bytes);
        let lock: &'static CacheLock = Box::leak(Box::new(CacheLock::new(spec.lock_timeout)));
        Cache { store, eviction, lock, metrics }
    }

    /// Removes every entry `request` selects (every variant of each URL); how many went.
    pub fn purge(&self, request: &PurgeRequest) -> usize {
        let removed = self.store.purge_matching(request);
        for key in &removed {
            self.eviction.manager().remove(CacheEntryKeyRef::KeyOnly(key));
        }
        removed.len()
    }
}
