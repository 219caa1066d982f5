//! Authentication costs on the hot path: JWT verification per algorithm (the raw signature check
//! with `jsonwebtoken`, and the `jwt` filter's cached path for a token seen before), and the
//! `api_key` lookup among 10,000 consumers.
//!
//! Run: `cargo bench --bench auth -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures (2026-11-23, the 2-core development VM with other builds running, bench
//! profile without LTO; criterion medians):
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
use portico_filters::api_key::{ApiKey, ApiKeyConfig};
use portico_filters::jwt::{Jwt, JwtConfig};
use portico_filters::{BuildContext, Consumer, FilterFactory, RequestHeader};
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
    let cx = BuildContext { consumers: &[], base_dir: Path::new("."), redis_url: None, place: "" };
    let mut group = c.benchmark_group("jwt");
    for (name, alg, enc, dec, filter_yaml) in cases {
        let token = encode(&Header::new(alg), &claims(), &enc).expect("token");
        let mut validation = Validation::new(alg);
        validation.set_audience(&["api"]);
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &dec, &validation).expect("valid"))
        });

        let config: JwtConfig = serde_yaml::from_str(&filter_yaml).expect("jwt config");
        let filter = Jwt::build(config, &cx).expect("jwt filter");
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.insert_header("authorization", format!("Bearer {token}")).expect("header");
        ready(filter.authenticate(&req)).expect("first verification");
        group.bench_function(format!("filter_cached/{name}"), |b| {
            b.iter(|| ready(filter.authenticate(black_box(&req))).expect("cached"))
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
    let cx = BuildContext { consumers: &consumers, base_dir: Path::new("."), redis_url: None, place: "" };
    let config: ApiKeyConfig = serde_yaml::from_str("{header: x-api-key}").expect("config");
    let filter = ApiKey::build(config, &cx).expect("api_key filter");
    let mut hit = RequestHeader::build("GET", b"/", None).expect("request");
    hit.insert_header("x-api-key", "key-07777-0123456789abcdef").expect("header");
    let mut miss = RequestHeader::build("GET", b"/", None).expect("request");
    miss.insert_header("x-api-key", "key-99999-0123456789abcdef").expect("header");
    let mut group = c.benchmark_group("api_key");
    group.bench_function("lookup_hit/10000_consumers", |b| {
        b.iter(|| filter.authenticate(black_box(&mut hit)).expect("known key"))
    });
    group.bench_function("lookup_miss/10000_consumers", |b| {
        b.iter(|| filter.authenticate(black_box(&mut miss)).expect_err("unknown key"))
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
