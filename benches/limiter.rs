//! The local rate limiter's decision (`LocalLimiter::check`): one GCRA step on a sharded map of
//! atomic TATs.
//!
//! The store is reached through `portico_filters::rate_limit::bench`, a hook hidden from the
//! docs: these figures are tens of nanoseconds, and a whole request phase (a session, the key,
//! the boxed future, the context) would bury them. The filter itself is tested through its
//! phases (`filters/src/rate_limit/tests.rs`).
//!
//! `cargo bench --bench limiter`. Latest figures, two runs (2-core AMD EPYC VM at load average
//! ~3.7 from other builds, bench profile without LTO: read them as upper bounds).
//! `contended/N` is the time per check seen by each of N threads checking at once; `same_key`
//! has every thread on one key (one TAT and one shard lock word bouncing between cores),
//! `own_keys` one key per thread.
//!
//! | bench | time per check |
//! |---|---|
//! | `uncontended/admit_one_key` | 57 ns, 40 ns |
//! | `uncontended/refuse_one_key` | 38 ns, 51 ns |
//! | `uncontended/admit_10k_keys` | 82 ns, 114 ns |
//! | `uncontended/admit_one_key_with_clock` (`now_ns()` included) | 117 ns, 130 ns |
//! | `contended/2/same_key` | 203 ns, 173 ns |
//! | `contended/2/own_keys` | 79 ns, 57 ns |
//! | `contended/4/same_key` (4 threads on 2 cores) | 284 ns, 228 ns |
//! | `contended/4/own_keys` (4 threads on 2 cores) | 153 ns, 97 ns |

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portico_filters::rate_limit::bench::{now_ns, Gcra, LocalLimiter};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// A rate no bench run exhausts: one request per nanosecond, a burst of 2^40.
fn roomy() -> LocalLimiter {
    LocalLimiter::new(Gcra::new(1_000_000_000, Duration::from_secs(1), 1 << 40).expect("valid gcra"))
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended");

    let limiter = roomy();
    g.bench_function("admit_one_key", |b| b.iter(|| limiter.check(black_box("ip:203.0.113.7"), black_box(1))));

    let strict = LocalLimiter::new(Gcra::new(1, Duration::from_secs(1), 1).expect("valid gcra"));
    strict.check("ip:203.0.113.7", 1);
    g.bench_function("refuse_one_key", |b| b.iter(|| strict.check(black_box("ip:203.0.113.7"), black_box(1))));

    let keys: Vec<String> = (0..10_000).map(|i| format!("ip:10.0.{}.{}", i / 256, i % 256)).collect();
    let limiter = roomy();
    let mut i = 0;
    g.bench_function("admit_10k_keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            limiter.check(black_box(&keys[i]), black_box(1))
        })
    });

    let limiter = roomy();
    g.bench_function("admit_one_key_with_clock", |b| b.iter(|| limiter.check(black_box("ip:203.0.113.7"), now_ns())));
    g.finish();
}

/// `threads` threads each run `iters` checks at once; the time is the slowest thread's.
fn run_threads(limiter: &LocalLimiter, threads: usize, iters: u64, same_key: bool) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let key = if same_key { "ip:203.0.113.7".to_string() } else { format!("ip:198.51.100.{t}") };
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(limiter.check(black_box(&key), black_box(1)));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn contended(c: &mut Criterion) {
    for threads in [2, 4] {
        let mut g = c.benchmark_group(format!("contended/{threads}"));
        let limiter = roomy();
        g.bench_function("same_key", |b| b.iter_custom(|iters| run_threads(&limiter, threads, iters, true)));
        let limiter = roomy();
        g.bench_function("own_keys", |b| b.iter_custom(|iters| run_threads(&limiter, threads, iters, false)));
        g.finish();
    }
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
