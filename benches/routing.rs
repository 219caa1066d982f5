//! Route matching: one `ListenerRouter::find` per iteration, with 10 and 1,000 routes, for a
//! request that matches a route near the end of the list.
//!
//! The routes look like a real gateway's: distinct first path segments (`/svc{i}/api`), a
//! quarter bound to an exact host, a quarter to a `*.example.com` wildcard, half limited to
//! `GET, POST`. A second case, `shared_prefix`, puts every route under `/api/svc{i}`, where a
//! first-segment index could not narrow the candidates.
//!
//! Run: `cargo bench --bench routing -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures (2026-11-23; 2-core AMD EPYC VM with other work running, so expect +-20%;
//! bench profile = release without LTO), criterion's `time: [lower, estimate, upper]`:
//!
//! ```text
//! routing/distinct_prefixes/10      [191.11 ns 194.06 ns 197.82 ns]
//! routing/distinct_prefixes/1000    [206.40 ns 214.46 ns 222.90 ns]
//! routing/shared_prefix/1000        [246.55 ns 249.77 ns 253.70 ns]
//! ```
//!
//! Routes are indexed in a path-segment trie per host rule, so a request only checks the routes
//! on its own path: 1,000 routes cost about what 10 do, and sharing a first segment no longer
//! matters. Before the trie (first-segment index only), `shared_prefix/1000` took 13.1 us.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use portico::config::{Action, HostPattern, MatchSpec, PathPattern, RouteSpec};
use portico::routing::{ListenerRouter, RequestView, RouteMatch};
use std::hint::black_box;
use std::sync::Arc;

/// Route `i` of a generated table; `prefix` is the path prefix it matches.
fn route(i: usize, prefix: String) -> Arc<RouteSpec> {
    let hosts = match i % 4 {
        0 => vec![HostPattern::Exact("api.example.com".into())],
        1 => vec![HostPattern::Suffix(".example.com".into())],
        _ => vec![],
    };
    let methods = (i % 2 == 0).then(|| vec![Method::GET, Method::POST]);
    Arc::new(RouteSpec::new(
        &format!("svc{i}"),
        i,
        MatchSpec { hosts, path: PathPattern::Prefix(prefix), methods, headers: vec![], query: vec![] },
        Action::Upstream(format!("pool{}", i % 16).into()),
    ))
}

/// The headers a typical API client sends.
fn client_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("api.example.com"));
    h.insert("user-agent", HeaderValue::from_static("curl/8.5.0"));
    h.insert("accept", HeaderValue::from_static("application/json"));
    h.insert("authorization", HeaderValue::from_static("Bearer abc.def.ghi"));
    h
}

/// Builds `n` routes, checks that the request for one near the end finds it, then times `find`.
fn bench_find(c: &mut Criterion, name: &str, n: usize, make_prefix: fn(usize) -> String) {
    let routes: Vec<_> = (0..n).map(|i| route(i, make_prefix(i))).collect();
    let router = ListenerRouter::new(routes);
    // Near the end, on an exact-host route with a method list (i % 4 == 0).
    let target = (n - 4) / 4 * 4;
    let path = format!("{}/users/42", make_prefix(target));
    let headers = client_headers();
    let req = RequestView {
        method: &Method::GET,
        host: "api.example.com",
        path: &path,
        query: Some("page=2"),
        headers: &headers,
    };
    match router.find(&req) {
        RouteMatch::Found(r) => assert_eq!(&*r.name, format!("svc{target}"), "wrong route"),
        other => panic!("expected a match, got {other:?}"),
    }

    let mut g = c.benchmark_group("routing");
    g.bench_with_input(BenchmarkId::new(name, n), &req, |b, req| {
        b.iter(|| matches!(router.find(black_box(req)), RouteMatch::Found(_)))
    });
    g.finish();
}

fn distinct_prefixes(c: &mut Criterion) {
    for n in [10, 1000] {
        bench_find(c, "distinct_prefixes", n, |i| format!("/svc{i}/api"));
    }
}

fn shared_prefix(c: &mut Criterion) {
    bench_find(c, "shared_prefix", 1000, |i| format!("/api/svc{i}"));
}

/// The group `criterion_main!` runs (in a private module: the macro's `pub fn` has no docs).
mod group {
    use super::*;
    criterion_group!(benches, distinct_prefixes, shared_prefix);
}
criterion_main!(group::benches);
