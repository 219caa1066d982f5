//! The cost of a `FilterChain` over the two phases that need no `Session`:
//! `upstream_request` (in order) and `response` (in reverse order), with 0 filters and with 3
//! `headers` filters that each set, add and remove a couple of headers.
//!
//! Each iteration gets a fresh clone of a realistic request or response header (made outside
//! the timed section), so the figures are the chain's work alone: header edits with names and
//! values parsed at config time, plus the dynamic dispatch per filter.
//!
//! Run: `cargo bench --bench filter_chain -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures (2026-11-23 by the machine's clock; 2-core AMD EPYC VM, load average ~3 from
//! other builds, so expect +-20%; bench profile = release with fat LTO), criterion's
//! `time: [lower bound, estimate, upper bound]`:
//!
//! ```text
//! filter_chain/upstream_request/0   [42.276 ns 45.370 ns 50.885 ns]
//! filter_chain/upstream_request/3   [1.8445 us 1.9901 us 2.1388 us]
//! filter_chain/response/0           [33.331 ns 41.488 ns 53.151 ns]
//! filter_chain/response/3           [956.29 ns 972.39 ns 989.98 ns]
//! ```
//!
//! The 0-filter figures are the harness floor (moving the header and context in and out of
//! criterion's batch). Three `headers` filters make 10 request edits and 8 response edits: about
//! 120-200 ns an edit. Pingora's header edits also update the case-preserving name map, a likely
//! part of that (not profiled).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use portico_filters::{registry, testkit, FilterChain, RequestCtx, RequestHeader, ResponseHeader};
use std::hint::black_box;

/// The `headers` filters of the 3-filter chain, as they would appear in YAML.
const FILTERS: [&str; 3] = [
    r#"{request: {set: {x-env: prod, x-gateway: portico}, add: {x-forwarded-proto: https}, remove: [x-debug]},
        response: {set: {x-frame-options: DENY}, remove: [server, x-powered-by]}}"#,
    r#"{request: {add: {x-tenant: acme}, remove: [cookie, x-internal]},
        response: {set: {cache-control: no-store, x-content-type-options: nosniff}, add: {vary: origin}}}"#,
    r#"{request: {set: {x-client-version: "2"}, add: {via: 1.1 portico}, remove: [te]},
        response: {add: {x-served-by: portico}, remove: [x-upstream-timing]}}"#,
];

fn chain(n: usize) -> FilterChain {
    let cx = testkit::context();
    let filters = FILTERS[..n]
        .iter()
        .map(|yaml| {
            let value = serde_yaml::from_str(yaml).expect("the bench's filter YAML is valid");
            registry::build("headers", value, &cx).expect("the bench's headers config is valid")
        })
        .collect();
    FilterChain::new(filters)
}

fn request() -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/svc7/users/42?page=2", None).expect("static request is valid");
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "application/json"),
        ("authorization", "Bearer abc.def.ghi"),
        ("cookie", "session=1234"),
        ("x-debug", "1"),
    ] {
        req.insert_header(name, value).expect("static header is valid");
    }
    req
}

fn response() -> ResponseHeader {
    let mut resp = ResponseHeader::build(200, None).expect("static response is valid");
    for (name, value) in [
        ("content-type", "application/json"),
        ("content-length", "42"),
        ("server", "nginx"),
        ("x-powered-by", "php"),
        ("date", "Fri, 20 Jun 2025 12:00:00 GMT"),
    ] {
        resp.insert_header(name, value).expect("static header is valid");
    }
    resp
}

fn ctx() -> RequestCtx {
    RequestCtx { request_id: "0123456789abcdef".into(), route: "svc7".into(), ..Default::default() }
}

fn upstream_request(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter_chain/upstream_request");
    let base = request();
    for n in [0, 3] {
        let chain = chain(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &chain, |b, chain| {
            b.iter_batched(
                || (base.clone(), ctx()),
                |(mut req, mut ctx)| {
                    black_box(chain.upstream_request(&mut req, &mut ctx)).expect("headers filter cannot fail");
                    (req, ctx)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn response_phase(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter_chain/response");
    let base = response();
    for n in [0, 3] {
        let chain = chain(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &chain, |b, chain| {
            b.iter_batched(
                || (base.clone(), ctx()),
                |(mut resp, mut ctx)| {
                    black_box(chain.response(&mut resp, &mut ctx)).expect("headers filter cannot fail");
                    (resp, ctx)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// The group `criterion_main!` runs (in a private module: the macro's `pub fn` has no docs).
mod group {
    use super::*;
    criterion_group!(benches, upstream_request, response_phase);
}
criterion_main!(group::benches);
