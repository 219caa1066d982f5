//! The local store: GCRA per key in this process's memory.
//!
//! 64 shards, each an `RwLock<HashMap<key, AtomicU64 TAT>>`. A request for a known key takes the
//! shard's read lock and updates the TAT with a compare-and-swap, so requests never wait on each
//! other except to insert a key never seen (write lock). A shard that reaches its share of
//! [`DEFAULT_MAX_KEYS`] first drops the keys at rest (no loss: a key at rest is the same as one
//! never seen), then, if still full, the half closest to rest; those keys start over with a full
//! burst, which is the price of bounded memory under a flood of distinct keys.

use super::gcra::{Decision, Gcra};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

/// Shards of a [`LocalLimiter`]; a power of two.
pub(super) const SHARDS: usize = 64;

/// Keys a [`LocalLimiter`] remembers at most (spread over its shards) before it forgets some.
const DEFAULT_MAX_KEYS: usize = 1 << 17;

/// One key's state.
#[derive(Debug, Default)]
struct Slot {
    /// Theoretical arrival time, on the [`now_ns`](super::gcra::now_ns) clock.
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
    pub(super) gcra: Gcra,
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

    /// Counts one request for `key` at `now_ns` (see [`now_ns`](super::gcra::now_ns)) and decides it.
    pub fn check(&self, key: &str, now_ns: u64) -> Decision {
        self.with_slot(key, now_ns, |slot| self.acquire(slot, now_ns))
    }

    /// What [`LocalLimiter::check`] would decide for `key` at `now_ns`, counting nothing (a key
    /// never seen is at rest, and is not remembered).
    pub(crate) fn peek(&self, key: &str, now_ns: u64) -> Decision {
        let index = self.shard_hasher.hash_one(key) as usize & (SHARDS - 1);
        let shard = self.shards[index].0.read().unwrap_or_else(PoisonError::into_inner);
        let tat = shard.get(key).map_or(0, |slot| slot.tat.load(Ordering::Relaxed));
        let allowed = self.gcra.step(tat, now_ns).is_some();
        self.gcra.decision(allowed, tat.max(now_ns), now_ns)
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
    pub(super) fn check_synced(&self, key: &str, now_ns: u64) -> (Decision, u64) {
        self.with_slot(key, now_ns, |slot| (self.acquire(slot, now_ns), slot.synced_ns.load(Ordering::Relaxed)))
    }

    /// Takes Redis's TAT for `key` as this instance's view.
    pub(super) fn adopt(&self, key: &str, now_ns: u64, tat: u64) {
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
