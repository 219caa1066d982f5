//! The canonical request reading of `src/canonical/`: the path, the host, the framing checks and
//! the edge's identity-header strip, for an already-canonical request (the common case, which
//! must not allocate) and for dirty ones.
//!
//! Run: `cargo bench --bench canonical -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures (2026-12-01; 2-core AMD EPYC VM at load average 9-10 from other builds, so the
//! figures are inflated and move by +-50% between runs: `path/clean` gave 69 ns and 114 ns on the
//! same code; bench profile = release without LTO, system allocator), criterion's
//! `time: [lower, estimate, upper]`:
//!
//! ```text
//! canonical/path/clean                 [108.64 ns 113.60 ns 117.89 ns]   /api/v1/users/12345/orders
//! canonical/path/dirty                 [450.40 ns 464.03 ns 476.82 ns]   //api/v1/x/../users/%31.../
//! canonical/target/clean_with_query    [156.87 ns 167.95 ns 177.97 ns]
//! canonical/host/clean_with_port       [158.49 ns 165.09 ns 172.45 ns]   api.example.com:8443
//! canonical/host/upper_case            [227.87 ns 248.57 ns 270.13 ns]   API.Example.com.
//! canonical/framing/typical            [130.39 ns 142.16 ns 154.93 ns]   9 fields, no TE
//! canonical/identity/strip_clean       [232.94 ns 246.60 ns 259.93 ns]   9 fields, none forged
//! canonical/identity/strip_two_forged  [1.1476 us 1.3542 us 1.5655 us]   + X-Real-IP, X-Original-URL
//! ```
//!
//! The clean cases allocate nothing (borrowed results); the dirty path pays one allocation and
//! the rewrite; `strip_two_forged` also pays for requests built outside the cache (criterion
//! batches). `identity/strip_clean` was 1.03 us with a binary search per field; the
//! first-byte/length bitmap in front of it rules most fields out with one load (4x).

use criterion::{criterion_group, criterion_main, Criterion};
use pingora::http::RequestHeader;
use portico::canonical::{
    canonical_host, canonical_path, canonical_target, check_framing, strip_forgeable, HeaderLimits,
};
use std::hint::black_box;

/// A typical API path, already canonical.
const CLEAN: &str = "/api/v1/users/12345/orders";
/// The same path as an attacker or a sloppy client might send it.
const DIRTY: &str = "//api/v1/x/../users/%31%32%33%34%35/./orders/";

/// A request as a browser-ish API client sends it: 9 fields, no forgeable one.
fn typical_request() -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/api/v1/users/12345/orders?page=2", None).expect("request");
    for (k, v) in [
        ("Host", "api.example.com"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"),
        ("Accept", "application/json"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"),
        ("Cookie", "session=0123456789abcdef; theme=dark"),
        ("X-Request-Id", "9f8e7d6c-5b4a-3c2d-1e0f-a1b2c3d4e5f6"),
        ("Connection", "keep-alive"),
    ] {
        req.append_header(k, v).expect("header");
    }
    req
}

/// Every case of the module documentation, in one group.
fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("canonical");
    g.bench_function("path/clean", |b| b.iter(|| canonical_path(black_box(CLEAN)).map(|p| p.len())));
    g.bench_function("path/dirty", |b| b.iter(|| canonical_path(black_box(DIRTY)).map(|p| p.len())));
    g.bench_function("target/clean_with_query", |b| {
        b.iter(|| canonical_target(black_box("/api/v1/users/12345/orders?page=2&sort=desc")).map(|p| p.len()))
    });
    g.bench_function("host/clean_with_port", |b| {
        b.iter(|| canonical_host(black_box(b"api.example.com:8443")).map(|h| h.len()))
    });
    g.bench_function("host/upper_case", |b| b.iter(|| canonical_host(black_box(b"API.Example.com.")).map(|h| h.len())));
    let req = typical_request();
    let limits = HeaderLimits::default();
    g.bench_function("framing/typical", |b| b.iter(|| check_framing(black_box(&req), None, &limits)));
    // A clean request is not changed by the strip, so the same one serves every iteration.
    let mut clean = typical_request();
    g.bench_function("identity/strip_clean", |b| b.iter(|| strip_forgeable(black_box(&mut clean), &[])));
    let forged = || {
        let mut r = typical_request();
        r.append_header("X-Real-IP", "10.0.0.1").expect("header");
        r.append_header("X-Original-URL", "/admin").expect("header");
        r
    };
    g.bench_function("identity/strip_two_forged", |b| {
        b.iter_batched_ref(forged, |r| strip_forgeable(r, &[]), criterion::BatchSize::SmallInput)
    });
    g.finish();
}

/// The group `criterion_main!` runs (in a private module: the macro's `pub fn` has no docs).
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
criterion_main!(group::benches);
