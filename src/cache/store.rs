//! Portico's storage behind pingora-cache's [`Storage`] trait: whole objects in memory, in a
//! sharded map, each body one contiguous [`Bytes`] (hits and ranges are slices, never copies).
//!
//! The store does not bound itself: pingora-cache admits every finished write to the eviction
//! manager ([`super::Cache`]) and purges what it returns, so the bound holds as soon as a write
//! finishes. A write in progress is counted once it finishes (at most `max_object_mb` each).
//!
//! Partial (streaming) reads of a write in progress are not offered
//! ([`Storage::support_streaming_partial_write`] is false), on purpose: with them pingora-proxy
//! fails the whole client response when a chunked body grows past `max_object_mb` midway,
//! where without them the response streams on and is simply not stored. The first client is
//! still served as the body arrives (pingora writes to the client and to the store side by
//! side); the requests collapsed behind it wait for the finished object.
//!
//! Headers are kept parsed ([`StoredMeta`]), not serialized: a hit clones a header map instead
//! of decompressing and parsing one (pingora-cache's serialization is zstd).
//!
//! A purge also reaches writes in progress: the store keeps the last [`RECENT_PURGES`] purges,
//! numbered, and a write that started before one of them that selects it finishes without
//! storing, so a response fetched before a purge cannot come back after it.

use super::metrics::StoreMetrics;
use super::purge::{EntryTag, PurgeRequest};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use pingora::cache::key::{CacheHashKey, CompactCacheKey, HashBinary};
use pingora::cache::storage::{HandleHit, HandleMiss, MissFinishType, PurgeOutcome, PurgeTarget};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheKey, CacheMeta, HitHandler, MissHandler, PurgeType, Storage};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What one stored object costs beside its body and headers: the map slot, the entry, the
/// eviction manager's node, the key (measured order of magnitude, so that many small objects
/// still respect the bound).
const ENTRY_OVERHEAD: usize = 256;
/// What one header field costs beside its name and value bytes.
const HEADER_OVERHEAD: usize = 32;
/// Purges kept for the writes in progress to check; a write older than all of them is not
/// stored (purges are rare, writes short).
pub const RECENT_PURGES: usize = 64;

/// A response's cache metadata, kept parsed.
#[derive(Debug, Clone)]
pub struct StoredMeta {
    header: ResponseHeader,
    fresh_until: SystemTime,
    created: SystemTime,
    epoch: SystemTime,
    stale_while_revalidate: u32,
    stale_if_error: u32,
    variance: Option<HashBinary>,
}

impl StoredMeta {
    /// What is kept of `meta`.
    pub fn of(meta: &CacheMeta) -> Self {
        StoredMeta {
            header: meta.response_header_copy(),
            fresh_until: meta.fresh_until(),
            created: meta.created(),
            epoch: meta.epoch(),
            stale_while_revalidate: meta.stale_while_revalidate_sec(),
            stale_if_error: meta.stale_if_error_sec(),
            variance: meta.variance(),
        }
    }

    /// The metadata again, as pingora-cache reads it: same freshness, age and variance.
    pub fn to_meta(&self) -> CacheMeta {
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.created,
            self.stale_while_revalidate,
            self.stale_if_error,
            self.header.clone(),
        );
        if let Some(v) = self.variance {
            meta.set_variance(v);
        }
        // A revalidated entry's age counts from the revalidation, not from its first store.
        if self.epoch != self.created {
            meta.set_epoch_override(self.epoch);
        }
        meta
    }

    fn weight(&self) -> usize {
        self.header.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + HEADER_OVERHEAD).sum::<usize>()
            + self.header.get_reason_phrase().map_or(0, str::len)
    }
}

/// One stored object.
#[derive(Debug)]
struct Entry {
    meta: StoredMeta,
    body: Bytes,
    tag: Arc<EntryTag>,
    /// The key the eviction manager knows the entry by (with its variance).
    key: CompactCacheKey,
    weight: usize,
}

/// The in-memory store. `&'static` because pingora-cache's [`Storage`] methods take
/// `&'static self`: one is leaked per process (see [`super::Cache`]).
pub struct Store {
    entries: DashMap<u128, Arc<Entry>>,
    metrics: StoreMetrics,
    /// How many purges have run.
    purges: AtomicU64,
    /// The last [`RECENT_PURGES`] purges with their numbers, oldest first.
    recent_purges: ArcSwap<Vec<(u64, Arc<PurgeRequest>)>>,
}

fn slot(key: &impl CacheHashKey) -> u128 {
    u128::from_be_bytes(key.combined_bin())
}

impl Store {
    /// An empty store that reports its size to `metrics`.
    pub fn new(metrics: StoreMetrics) -> Self {
        Store { entries: DashMap::new(), metrics, purges: AtomicU64::new(0), recent_purges: Default::default() }
    }

    /// Bytes stored now (bodies, headers, per-entry overhead), as the eviction manager counts
    /// them.
    pub fn stored_bytes(&self) -> usize {
        self.metrics.bytes.get().max(0) as usize
    }

    /// Objects evicted so far (to keep under the bound).
    pub fn evictions(&self) -> u64 {
        self.metrics.evictions.get()
    }

    /// Objects stored now.
    pub fn objects(&self) -> usize {
        self.entries.len()
    }

    /// Removes every entry `request` selects, and keeps writes in progress that it selects
    /// from storing; returns the removed entries' keys, for the eviction manager to forget.
    pub fn purge_matching(&self, request: &PurgeRequest) -> Vec<CompactCacheKey> {
        // Recorded before anything is removed, so a write finishing from here on sees it.
        let request = Arc::new(request.clone());
        let number = self.purges.fetch_add(1, Ordering::AcqRel) + 1;
        self.recent_purges.rcu(|recent| {
            let mut next: Vec<_> = recent.iter().rev().take(RECENT_PURGES - 1).rev().cloned().collect();
            next.push((number, request.clone()));
            next.sort_by_key(|(n, _)| *n);
            next
        });
        let mut removed = Vec::new();
        self.entries.retain(|_, e| {
            if request.matches(&e.tag) {
                removed.push(e.key.clone());
                self.metrics.removed(e.weight);
                false
            } else {
                true
            }
        });
        removed
    }

    /// Whether a purge since purge number `since` selects `tag` (or may have: one too old to be
    /// kept any more).
    fn purged_since(&self, since: u64, tag: &EntryTag) -> bool {
        if self.purges.load(Ordering::Acquire) == since {
            return false;
        }
        let recent = self.recent_purges.load();
        let oldest_kept = recent.first().map_or(u64::MAX, |(n, _)| *n);
        oldest_kept > since + 1 || recent.iter().any(|(n, p)| *n > since && p.matches(tag))
    }

    fn insert(&self, slot: u128, entry: Entry) {
        let weight = entry.weight;
        if let Some(old) = self.entries.insert(slot, Arc::new(entry)) {
            self.metrics.removed(old.weight);
        }
        self.metrics.added(weight);
    }
}

#[async_trait]
impl Storage for Store {
    async fn lookup(&'static self, key: &CacheKey, _trace: &SpanHandle) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(entry) = self.entries.get(&slot(key)).map(|e| e.value().clone()) else {
            return Ok(None);
        };
        let end = entry.body.len();
        let meta = entry.meta.to_meta();
        Ok(Some((meta, Box::new(Hit { entry, start: 0, end, done: false }))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let tag = Arc::new(super::key::tag(key));
        // The body's length when the origin said it (bounded by max_object_mb before this is
        // called), so the buffer is allocated once.
        let hint = meta
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(0)
            .min(1 << 24);
        Ok(Box::new(Miss {
            store: self,
            purges_before: self.purges.load(Ordering::Acquire),
            slot: slot(key),
            key: key.to_compact(),
            meta: StoredMeta::of(meta),
            tag,
            body: BytesMut::with_capacity(hint),
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let Some((_, old)) = self.entries.remove(&slot(target.key())) else {
            return Ok(PurgeOutcome::NotFound);
        };
        self.metrics.removed(old.weight);
        if matches!(purge_type, PurgeType::Eviction) {
            self.metrics.evictions.inc();
        }
        Ok(PurgeOutcome::Purged(None))
    }

    async fn update_meta(&'static self, key: &CacheKey, meta: &CacheMeta, _trace: &SpanHandle) -> Result<bool> {
        let Some(mut e) = self.entries.get_mut(&slot(key)) else {
            return Ok(false);
        };
        let meta = StoredMeta::of(meta);
        let weight = e.body.len() + meta.weight() + ENTRY_OVERHEAD;
        let old = e.weight;
        let updated = Entry { meta, body: e.body.clone(), tag: e.tag.clone(), key: e.key.clone(), weight };
        *e.value_mut() = Arc::new(updated);
        drop(e);
        self.metrics.removed(old);
        self.metrics.added(weight);
        Ok(true)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A hit: the stored body, or a range of it.
struct Hit {
    entry: Arc<Entry>,
    start: usize,
    end: usize,
    done: bool,
}

#[async_trait]
impl HandleHit for Hit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done || self.start >= self.end {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.entry.body.slice(self.start..self.end)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.entry.body.len();
        if start >= len {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start {start} past the body's {len} bytes"),
            );
        }
        self.start = start;
        self.end = end.map_or(len, |e| e.min(len));
        // A seek starts a new read, so one handler serves every part of a multipart range.
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.entry.weight
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A write: the body collects here and becomes visible, whole, in [`HandleMiss::finish`]. A
/// write dropped before that (the origin failed midway) leaves nothing behind.
struct Miss {
    store: &'static Store,
    /// How many purges had run when the write started.
    purges_before: u64,
    slot: u128,
    key: CompactCacheKey,
    meta: StoredMeta,
    tag: Arc<EntryTag>,
    body: BytesMut,
}

#[async_trait]
impl HandleMiss for Miss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let Miss { store, purges_before, slot, key, meta, tag, body } = *self;
        let body = body.freeze();
        let weight = body.len() + meta.weight() + ENTRY_OVERHEAD;
        if store.purged_since(purges_before, &tag) {
            // Fetched before a purge that selects it: served to its client, not stored. The
            // eviction manager counts one unit for it until it is evicted.
            return Ok(MissFinishType::Created(1));
        }
        store.insert(slot, Entry { meta, body, tag, key, weight });
        Ok(MissFinishType::Created(weight))
    }
}
