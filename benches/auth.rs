//! Authentication costs on the hot path: JWT verification per algorithm (the raw signature check
//! with `jsonwebtoken`, and the `jwt` filter's cached path for a token seen before), and the
//! `api_key` lookup among 10,000 consumers.
//!
//! The filters are measured through their request phase (`Filter::request`) on a real Pingora
//! session made once by `portico_filters::testkit`, as the core calls them: the figure includes
//! what a request pays beyond the lookup itself (the phase's boxed future, setting the consumer
//! and, for `jwt`, the claims in the request's context).
//!
//! Run: `cargo bench --bench auth -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures (2026-11-23, the 2-core development VM with other builds running, bench
//! profile without LTO; criterion medians). They predate the switch to the request phase (they
//! called the filters' former `authenticate` methods directly), so `filter_cached` and
//! `api_key` should now read some tens of nanoseconds higher; re-measure before quoting them:
//!
//! | benchmark | time |
//! |---|---|
//! | `jwt/verify/HS256` (raw signature check) | 3.5 us |
//! | `jwt/verify/RS256` | 276 us |
//! | `jwt/verify/ES256` | 568 us |
//! | `jwt/filter_cached/HS256` (a token seen before) | 0.42 us |
//! | `jwt/filter_cached/RS256` | 0.92 us |
//! | `jwt/filter_cached/ES256` | 0.51 us |
//! | `api_key/lookup_hit/10000_consumers` | 229 ns |
//! | `api_key/lookup_miss/10000_consumers` | 215 ns |
//!
//! The asymmetric checks are the pure-Rust `rsa` and `p256` crates (`jsonwebtoken`'s
//! `rust_crypto` backend); the filter's cache of verified tokens (bounded, until `exp`) is what
//! keeps a client that reuses its token off that cost.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portico_filters::api_key::ApiKey;
use portico_filters::jwt::Jwt;
use portico_filters::testkit::{self, FlowExt, TestRequest};
use portico_filters::{Consumer, Flow};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/filters/testdata");

/// Polls a future that completes without waiting (the cached path does).
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the benchmarked path waited"),
    }
}

/// A request read by a real Pingora session (made on a runtime, outside the timed part).
fn request(headers: &[(&str, &str)]) -> TestRequest {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    rt.block_on(TestRequest::get("/", headers))
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(Path::new(TESTDATA).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn claims() -> serde_json::Value {
    serde_json::json!({"sub": "bench-user", "aud": "api", "iss": "https://issuer.example",
                       "exp": jsonwebtoken::get_current_timestamp() + 3600})
}

fn jwt(c: &mut Criterion) {
    let cases: [(&str, Algorithm, EncodingKey, DecodingKey, String); 3] = [
        (
            "HS256",
            Algorithm::HS256,
            EncodingKey::from_secret(b"bench-secret"),
            DecodingKey::from_secret(b"bench-secret"),
            "{secret: bench-secret, algorithms: [HS256], audience: api}".to_string(),
        ),
        (
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&read("rsa.key")).expect("rsa key"),
            DecodingKey::from_rsa_pem(&read("rsa.pub")).expect("rsa pub"),
            format!("{{public_key_file: {TESTDATA}/rsa.pub, algorithms: [RS256], audience: api}}"),
        ),
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&read("ec.key")).expect("ec key"),
            DecodingKey::from_ec_pem(&read("ec.pub")).expect("ec pub"),
            format!("{{public_key_file: {TESTDATA}/ec.pub, algorithms: [ES256], audience: api}}"),
        ),
    ];
    let mut group = c.benchmark_group("jwt");
    for (name, alg, enc, dec, filter_yaml) in cases {
        let token = encode(&Header::new(alg), &claims(), &enc).expect("token");
        let mut validation = Validation::new(alg);
        validation.set_audience(&["api"]);
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &dec, &validation).expect("valid"))
        });

        let filter: Jwt = testkit::build(&filter_yaml, &testkit::context()).expect("jwt filter");
        let mut req = request(&[("authorization", &format!("Bearer {token}"))]);
        ready(req.request(&filter)).expect_continue();
        group.bench_function(format!("filter_cached/{name}"), |b| {
            b.iter(|| assert!(matches!(ready(req.request(black_box(&filter))), Flow::Continue), "cached"))
        });
    }
    group.finish();
}

fn api_key(c: &mut Criterion) {
    let consumers: Vec<Arc<Consumer>> = (0..10_000)
        .map(|i| {
            Arc::new(Consumer {
                name: format!("consumer-{i}"),
                api_keys: vec![format!("key-{i:05}-0123456789abcdef")],
                ..Default::default()
            })
        })
        .collect();
    let filter: ApiKey =
        testkit::build("{header: x-api-key}", &testkit::context_with(&consumers)).expect("api_key filter");
    let mut hit = request(&[("x-api-key", "key-07777-0123456789abcdef")]);
    let mut miss = request(&[("x-api-key", "key-99999-0123456789abcdef")]);
    let mut group = c.benchmark_group("api_key");
    group.bench_function("lookup_hit/10000_consumers", |b| {
        b.iter(|| assert!(matches!(ready(hit.request(black_box(&filter))), Flow::Continue), "known key"))
    });
    group.bench_function("lookup_miss/10000_consumers", |b| {
        b.iter(|| assert!(matches!(ready(miss.request(black_box(&filter))), Flow::Reject(_)), "unknown key"))
    });
    group.finish();
}

/// The benchmark group (a module, since `criterion_group!` defines an undocumented function).
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, jwt, api_key);
}
criterion_main!(group::benches);
