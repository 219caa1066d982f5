//! The shared cache's storage: a hit as pingora-cache makes it (`Storage::lookup`, reading the
//! body, the eviction manager's `access`) and a store (`get_miss_handler`, `write_body`,
//! `finish`, `admit`, purging what eviction returns), on one thread and on two at once.
//!
//! `cargo bench --bench cache_store`. The storage's futures never wait (everything is in
//! memory), so each is polled once with a no-op waker instead of going through a runtime.
//! `threads/N/...` is the time per operation seen by each of N threads working at once, each
//! on its own keys. Objects are 1 KiB bodies with five headers; the store holds 10 000 of them
//! (bound 64 MiB: one exact LRU) for lookups, and inserts run against a 4 MiB bound so most of
//! them evict. `threads/2/lookup_sharded_lru` makes the same lookups in a 256 MiB cache, whose
//! LRU has 16 shards.
//!
//! Latest figures (session 8, `--warm-up-time 1 --measurement-time 3`, 3 runs): a two-thread
//! lookup 1.80-2.06 us in the one-LRU cache, 1.74-2.02 us in the sharded one; one thread 1.73
//! us a lookup, 4.07 us an insert; see benches/RESULTS.md.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pingora::cache::eviction::CacheEntryKey;
use pingora::cache::storage::{MissFinishType, PurgeTarget};
use pingora::cache::trace::Span;
use pingora::cache::{CacheKey, CacheMeta, PurgeType, Storage};
use pingora::http::ResponseHeader;
use portico::cache::{Cache, CacheMetrics};
use portico::config::CacheStoreSpec;
use std::future::Future;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

/// Runs a future that never waits.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

fn cache(max_mb: usize) -> &'static Cache {
    let spec = CacheStoreSpec {
        max_size_bytes: max_mb << 20,
        max_object_bytes: 1 << 20,
        lock_timeout: Duration::from_secs(3),
    };
    let metrics = portico::telemetry::Metrics::new().expect("metrics");
    Box::leak(Box::new(Cache::new(&spec, CacheMetrics::new(&metrics))))
}

fn meta() -> CacheMeta {
    let mut h = ResponseHeader::build(200, None).expect("header");
    for (k, v) in [
        ("content-type", "application/json"),
        ("cache-control", "max-age=60"),
        ("etag", "\"0123456789abcdef\""),
        ("content-length", "1024"),
        ("x-origin", "bench"),
    ] {
        h.append_header(k, v).expect("header");
    }
    let t = SystemTime::now();
    CacheMeta::new(t + Duration::from_secs(600), t, 0, 0, h)
}

fn keys(prefix: &str, n: usize) -> Vec<CacheKey> {
    (0..n).map(|i| CacheKey::new(format!("route\0h{prefix}\0p/items/{i}"), "")).collect()
}

/// Stores `key` as pingora-cache does after a miss.
fn insert(c: &'static Cache, key: &CacheKey, body: &bytes::Bytes) {
    let span = Span::inactive().handle();
    let mut miss = now(c.store.get_miss_handler(key, &meta(), &span)).expect("miss handler");
    now(miss.write_body(body.clone(), true)).expect("write");
    let MissFinishType::Created(weight) = now(miss.finish()).expect("finish") else { unreachable!() };
    for item in c.eviction.manager().admit(CacheEntryKey::key_only(key.to_compact()), weight, SystemTime::now()) {
        now(c.store.purge(PurgeTarget::Exact(&item), PurgeType::Eviction, &span)).expect("purge");
    }
}

/// Serves `key` as pingora-cache does on a hit.
fn lookup(c: &'static Cache, key: &CacheKey) -> usize {
    let span = Span::inactive().handle();
    let (meta, mut hit) = now(c.store.lookup(key, &span)).expect("lookup").expect("a hit");
    let entry = CacheEntryKey::key_only(key.to_compact());
    c.eviction.manager().access(&entry, hit.get_eviction_weight(), meta.fresh_until());
    let mut n = 0;
    while let Some(b) = now(hit.read_body()).expect("read") {
        n += b.len();
    }
    n
}

fn one_thread(c: &mut Criterion) {
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let mut g = c.benchmark_group("threads/1");
    let warm = cache(64);
    let ks = keys("a", 10_000);
    for k in &ks {
        insert(warm, k, &body);
    }
    let mut i = 0;
    g.bench_function("lookup", |b| {
        b.iter(|| {
            i = (i + 1) % ks.len();
            black_box(lookup(warm, &ks[i]))
        })
    });
    let small = cache(4);
    let fresh = keys("b", 100_000);
    let mut j = 0;
    g.bench_function("insert", |b| {
        b.iter(|| {
            j = (j + 1) % fresh.len();
            insert(small, &fresh[j], &body)
        })
    });
    g.finish();
}

/// Two threads each run `iters` operations at once; the time is the slower thread's.
fn run_two(iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(t, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn two_threads(c: &mut Criterion) {
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let mut g = c.benchmark_group("threads/2");
    let warm = cache(64);
    let ks = [keys("a", 5_000), keys("b", 5_000)];
    for k in ks.iter().flatten() {
        insert(warm, k, &body);
    }
    // The same lookups in a cache of 256 MiB, whose LRU is sharded (16 locks, not one): what
    // one lock costs two threads that hit at once.
    let sharded = cache(256);
    for k in ks.iter().flatten() {
        insert(sharded, k, &body);
    }
    for (name, store) in [("lookup", warm), ("lookup_sharded_lru", sharded)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run_two(iters, |t, i| {
                    black_box(lookup(store, &ks[t][i as usize % ks[t].len()]));
                })
            })
        });
    }
    let small = cache(4);
    let fresh = [keys("c", 50_000), keys("d", 50_000)];
    g.bench_function("insert", |b| {
        b.iter_custom(|iters| run_two(iters, |t, i| insert(small, &fresh[t][i as usize % fresh[t].len()], &body)))
    });
    g.finish();
}

criterion_group!(benches, one_thread, two_threads);
criterion_main!(benches);
