use super::jwks::{now_ms, Fetched, Remote};
use super::keys::KeySet;
use super::verify::Verified;
use super::*;
use crate::credentials::digest;
use crate::testkit::{self, FlowExt, TestRequest};
use crate::{BuildContext, BuildError};
use jsonwebtoken::{encode, AlgorithmFamily, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn consumers() -> Vec<Arc<Consumer>> {
    vec![Arc::new(Consumer { name: "alice".into(), groups: vec!["partners".into()], ..Default::default() })]
}

fn build(yaml: &str) -> Result<Jwt, BuildError> {
    let consumers = consumers();
    let dir = testdata();
    testkit::build(yaml, &BuildContext { base_dir: &dir, ..testkit::context_with(&consumers) })
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs256(secret: &str, claims: Value) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
}

fn signed(alg: Algorithm, kid: Option<&str>, key_file: &str, claims: Value) -> String {
    let pem = std::fs::read(testdata().join(key_file)).expect("test key");
    let key = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&pem),
        AlgorithmFamily::Hmac => unreachable!("not a key file"),
    }
    .expect("test key parses");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, &claims, &key).expect("sign")
}

async fn bearer(token: &str) -> TestRequest {
    TestRequest::get("/", &[("authorization", &format!("Bearer {token}"))]).await
}

/// Runs the request phase, which must let the request through: the context it leaves.
async fn pass(f: &Jwt, mut request: TestRequest) -> RequestCtx {
    request.request(f).await.expect_continue();
    request.ctx
}

/// The claims the request phase left for later filters.
fn claims_of(ctx: &RequestCtx) -> JwtClaims {
    ctx.state.get::<JwtClaims>().cloned().expect("claims for later filters")
}

async fn refusal(f: &Jwt, mut request: TestRequest) -> (String, String) {
    let r = request.request(f).await.expect_reject();
    assert_eq!((r.status, r.error), (401, "unauthorized"));
    let challenge = r.headers.iter().find(|(n, _)| n == WWW_AUTHENTICATE).expect("challenge").1.clone();
    (r.message.into_owned(), challenge.to_str().expect("ascii").to_string())
}

#[tokio::test]
async fn hmac_token_identifies_the_consumer_and_forwards_claims() {
    let f = build("{secret: s3cret, forward_claims: {sub: x-user-id, level: x-level}}").expect("valid");
    let token = hs256("s3cret", json!({"sub": "alice", "exp": now() + 60, "level": 3}));
    let mut request =
        TestRequest::get("/", &[("authorization", format!("Bearer {token}").as_str()), ("x-user-id", "spoofed")]).await;
    request.request(&f).await.expect_continue();
    let consumer = request.ctx.consumer.clone().expect("sub");
    assert_eq!(consumer.name, "alice");
    assert_eq!(consumer.groups, ["partners"], "the configured consumer");
    let claims = claims_of(&request.ctx);
    assert_eq!(claims.get("level"), Some(&json!(3)));

    let upstream = request.upstream_request(&f);
    assert_eq!(upstream.headers.get("x-user-id").map(|v| v.as_bytes()), Some(&b"alice"[..]));
    assert_eq!(upstream.headers.get("x-level").map(|v| v.as_bytes()), Some(&b"3"[..]));
    // Without claims, a client's header is still removed.
    let mut unverified = TestRequest::get("/", &[("x-user-id", "spoofed")]).await;
    let upstream = unverified.upstream_request(&f);
    assert!(upstream.headers.get("x-user-id").is_none());

    // The core strips these from client requests on edge listeners, on every route.
    assert_eq!(f.sets_request_headers(), ["x-level", "x-user-id"]);
    let chain = crate::FilterChain::new(vec![Arc::new(f) as Arc<dyn Filter>]);
    assert_eq!(chain.identity_headers(), ["x-level", "x-user-id"]);
    let f = build("{secret: s3cret, forward_claims: {sub: x-user-id}}").expect("valid");
    assert!(build("{secret: s3cret}").expect("valid").sets_request_headers().is_empty());

    // An unknown subject becomes a bare consumer of that name.
    let token = hs256("s3cret", json!({"sub": "bob", "exp": now() + 60}));
    let consumer = pass(&f, bearer(&token).await).await.consumer;
    assert_eq!(consumer.expect("sub").name, "bob");
}

#[tokio::test]
async fn each_refusal_says_why() {
    let f = build("{secret: s3cret, issuer: https://issuer.example, audience: [api, web], leeway_s: 30, required_claims: [exp, role]}")
        .expect("valid");
    let ok = json!({"iss": "https://issuer.example", "aud": "api", "role": "x"});
    let with = |extra: Value| {
        let mut c = ok.clone();
        c.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        c
    };
    let good = hs256("s3cret", with(json!({"exp": now() + 60})));
    pass(&f, bearer(&good).await).await;
    // Inside the leeway.
    let skewed = hs256("s3cret", with(json!({"exp": now() - 10, "nbf": now() + 10})));
    pass(&f, bearer(&skewed).await).await;

    let cases = [
        (hs256("s3cret", with(json!({"exp": now() - 100}))), "token expired"),
        (hs256("s3cret", with(json!({"exp": now() + 600, "nbf": now() + 300}))), "token not yet valid"),
        (hs256("other", with(json!({"exp": now() + 60}))), "invalid signature"),
        (hs256("s3cret", with(json!({"exp": now() + 60, "aud": "else"}))), "wrong audience"),
        (hs256("s3cret", with(json!({"exp": now() + 60, "iss": "https://evil"}))), "wrong issuer"),
        (
            hs256("s3cret", json!({"exp": now() + 60, "iss": "https://issuer.example", "aud": "api"})),
            "missing required claim role",
        ),
        (
            hs256("s3cret", json!({"iss": "https://issuer.example", "aud": "api", "role": "x"})),
            "missing required claim exp",
        ),
        (hs256("s3cret", json!({"exp": now() + 60, "aud": "api", "role": "x"})), "missing required claim iss"),
        ("not-a-token".to_string(), "malformed token"),
        ("a.b.c".to_string(), "malformed token"),
    ];
    for (token, expected) in cases {
        let (message, challenge) = refusal(&f, bearer(&token).await).await;
        assert_eq!(message, expected);
        assert_eq!(
            challenge,
            format!("Bearer realm=\"portico\", error=\"invalid_token\", error_description=\"{expected}\"")
        );
    }
    let hs384 =
        encode(&Header::new(Algorithm::HS384), &with(json!({"exp": now() + 60})), &EncodingKey::from_secret(b"s3cret"))
            .expect("sign");
    let f256 = build("{secret: s3cret, algorithms: [HS256]}").expect("valid");
    assert_eq!(refusal(&f256, bearer(&hs384).await).await.0, "algorithm not allowed");

    let (message, challenge) = refusal(&f, TestRequest::get("/", &[]).await).await;
    assert_eq!((message.as_str(), challenge.as_str()), ("missing token", "Bearer realm=\"portico\""));
    let basic = TestRequest::get("/", &[("authorization", "Basic YTpi")]).await;
    assert_eq!(refusal(&f, basic).await.0, "missing token");
}

#[tokio::test]
async fn token_sources_in_order() {
    let f = build("{secret: k, from: {header: authorization, cookie: token, query: access_token}}").expect("valid");
    let good = hs256("k", json!({"sub": "alice", "exp": now() + 60}));
    let bad = hs256("wrong", json!({"sub": "alice", "exp": now() + 60}));
    let req = |uri: String, headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        TestRequest::get(&uri, &headers).await
    };
    pass(&f, req("/".into(), vec![("cookie", format!("a=1; token={good}"))]).await).await;
    pass(&f, req(format!("/?x=1&access_token={good}"), vec![]).await).await;
    // The cookie comes before the query.
    let both = req(format!("/?access_token={good}"), vec![("cookie", format!("token={bad}"))]).await;
    assert_eq!(refusal(&f, both).await.0, "invalid signature");
    // The header comes first of all.
    let r = req(
        format!("/?access_token={bad}"),
        vec![("cookie", format!("token={bad}")), ("authorization", format!("bearer {good}"))],
    )
    .await;
    pass(&f, r).await;

    // A custom header may carry the bare token; other sources are off unless configured.
    let f = build("{secret: k, from: {header: x-token}}").expect("valid");
    let r = req(format!("/?token={good}"), vec![]).await;
    assert_eq!(refusal(&f, r).await.0, "missing token");
    pass(&f, req(format!("/?token={good}"), vec![("x-token", good.clone())]).await).await;
}

#[tokio::test]
async fn jwks_file_keys_by_kid() {
    let f = build("{jwks_file: jwks.json, forward_claims: {sub: x-user-id}}").expect("valid");
    assert_eq!(f.local.keys.len(), 2, "the encryption key is skipped");
    let claims = json!({"sub": "svc", "exp": now() + 60});
    let rs = signed(Algorithm::RS256, Some("test-rsa"), "rsa.key", claims.clone());
    pass(&f, bearer(&rs).await).await;
    let es = signed(Algorithm::ES256, Some("test-ec"), "ec.key", claims.clone());
    pass(&f, bearer(&es).await).await;
    let no_kid = signed(Algorithm::ES256, None, "ec.key", claims.clone());
    pass(&f, bearer(&no_kid).await).await;
    let unknown = signed(Algorithm::RS256, Some("rotated-away"), "rsa.key", claims.clone());
    assert_eq!(refusal(&f, bearer(&unknown).await).await.0, "unknown key id");
    // The JWK says RS256 only.
    let ps = signed(Algorithm::PS256, Some("test-rsa"), "rsa.key", claims.clone());
    assert_eq!(refusal(&f, bearer(&ps).await).await.0, "algorithm not allowed");
    // An HMAC token signed with the RSA public key must not pass (algorithm confusion).
    let public = std::fs::read(testdata().join("rsa.pub")).expect("pub");
    let forged = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&public)).expect("sign");
    assert_eq!(refusal(&f, bearer(&forged).await).await.0, "algorithm not allowed");
}

#[tokio::test]
async fn pem_public_keys_of_each_family() {
    let claims = json!({"sub": "svc", "exp": now() + 60});
    let f = build("{public_key_file: rsa.pub, algorithms: [RS256, PS384]}").expect("valid");
    pass(&f, bearer(&signed(Algorithm::PS384, None, "rsa.key", claims.clone())).await).await;
    // A PEM key has no id, so any kid is accepted for it.
    pass(&f, bearer(&signed(Algorithm::RS256, Some("k1"), "rsa.key", claims.clone())).await).await;
    let f = build("{public_key_file: ec.pub, algorithms: [ES256]}").expect("valid");
    pass(&f, bearer(&signed(Algorithm::ES256, None, "ec.key", claims.clone())).await).await;
    let f = build("{public_key_file: ed.pub, algorithms: [EdDSA]}").expect("valid");
    pass(&f, bearer(&signed(Algorithm::EdDSA, None, "ed.key", claims.clone())).await).await;
    // Signed by another key of the same family.
    let f = build("{public_key_file: ec.pub}").expect("valid");
    let other = EncodingKey::from_ed_pem(&std::fs::read(testdata().join("ed.key")).expect("key")).expect("key");
    let ed = encode(&Header::new(Algorithm::EdDSA), &claims, &other).expect("sign");
    assert_eq!(refusal(&f, bearer(&ed).await).await.0, "signing keys are not available");
}

#[tokio::test]
async fn verified_tokens_are_cached_until_they_expire() {
    let f = build("{secret: k}").expect("valid");
    let token = hs256("k", json!({"sub": "alice", "exp": now() + 60}));
    pass(&f, bearer(&token).await).await;
    assert_eq!(f.verified.len(), 1);
    pass(&f, bearer(&token).await).await;
    assert_eq!(f.verified.len(), 1);
    // An entry past its expiry is not used (this one would otherwise hide a malformed token).
    let stale =
        Arc::new(Verified { claims: Arc::new(json!({})), consumer: None, exp: Some(now() - 100), generation: 0 });
    f.verified.insert(digest(b"x.y.z"), stale);
    assert_eq!(refusal(&f, bearer("x.y.z").await).await.0, "malformed token");
    assert_eq!(f.verified.len(), 1);
}

#[tokio::test]
async fn expiry_times_near_the_end_of_the_integers_do_not_overflow() {
    // The largest leeway, and times at the top of u64 and i64: verified, then served from the
    // cache (whose liveness check adds the leeway to `exp`), never a panic or a wrap to "expired".
    let f = build(&format!("{{secret: k, leeway_s: {MAX_LEEWAY_S}}}")).expect("valid");
    for exp in [json!(u64::MAX), json!(i64::MAX), json!(u64::MAX - 1), json!(1.8e19)] {
        let token = hs256("k", json!({"sub": "alice", "exp": exp, "nbf": 0, "iat": exp}));
        for _ in 0..2 {
            let ctx = pass(&f, bearer(&token).await).await;
            assert_eq!(ctx.consumer.expect("sub").name, "alice", "exp {exp}");
        }
    }
    // An `nbf` at the top is simply not yet valid.
    let token = hs256("k", json!({"exp": u64::MAX, "nbf": u64::MAX}));
    assert_eq!(refusal(&f, bearer(&token).await).await.0, "token not yet valid");
    // A leeway past a day is a config error rather than a wrap inside the validation.
    let err = build(&format!("{{secret: k, leeway_s: {}}}", MAX_LEEWAY_S + 1)).expect_err("too much leeway");
    assert_eq!(err.path, "leeway_s");
    assert_eq!(build(&format!("{{secret: k, leeway_s: {}}}", u64::MAX)).expect_err("u64::MAX").path, "leeway_s");
}

#[tokio::test]
async fn remote_fetches_are_rate_limited() {
    let remote = Remote::new("http://127.0.0.1:9/jwks".into(), Duration::from_secs(300)).expect("valid url");
    remote.last_attempt_ms.store(now_ms(), Ordering::Release);
    // Within 5 s of the last attempt: no fetch at all (so no socket here).
    assert_eq!(remote.refetch().await, Fetched::Skipped);
    assert!(!remote.loaded.load(Ordering::Acquire));
    let doc = std::fs::read(testdata().join("jwks.json")).expect("jwks");
    remote.install(KeySet::from_jwks(&doc, "test").expect("parses"));
    assert_eq!(remote.generation.load(Ordering::Acquire), 1);
    remote.install(KeySet::from_jwks(&doc, "test").expect("parses"));
    assert_eq!(remote.generation.load(Ordering::Acquire), 1, "unchanged set keeps the generation");
}

#[tokio::test]
async fn remote_key_set_rotation() {
    let f = build("{jwks_url: 'http://127.0.0.1:9/jwks.json'}").expect("valid");
    let remote = f.remote.clone().expect("remote");
    // A fetch just "happened", so none is made here (and no socket is opened).
    remote.last_attempt_ms.store(now_ms(), Ordering::Release);
    let claims = json!({"sub": "svc", "exp": now() + 60});
    let token = signed(Algorithm::RS256, Some("test-rsa"), "rsa.key", claims.clone());
    assert_eq!(refusal(&f, bearer(&token).await).await.0, "signing keys are not available");

    let doc = std::fs::read(testdata().join("jwks.json")).expect("jwks");
    remote.install(KeySet::from_jwks(&doc, "test").expect("parses"));
    pass(&f, bearer(&token).await).await;
    let unknown = signed(Algorithm::RS256, Some("next"), "rsa.key", claims.clone());
    assert_eq!(refusal(&f, bearer(&unknown).await).await.0, "unknown key id");

    // The key is rotated away: the cached verification lapses with the old set.
    let only_ec = br#"{"keys": [{"kty": "EC", "kid": "e", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    remote.install(KeySet::from_jwks(only_ec, "test").expect("parses"));
    assert_eq!(refusal(&f, bearer(&token).await).await.0, "unknown key id");
}

#[tokio::test]
async fn a_rebuilt_filter_starts_from_the_last_good_key_set_of_its_url() {
    // Nothing listens on port 9: every fetch here fails at once.
    let config = "{jwks_url: 'http://127.0.0.1:9/carried.json', algorithms: [RS256]}";
    let token = signed(Algorithm::RS256, Some("test-rsa"), "rsa.key", json!({"sub": "svc", "exp": now() + 60}));
    let running = build(config).expect("valid");
    let doc = std::fs::read(testdata().join("jwks.json")).expect("jwks");
    running.remote.as_ref().expect("remote").install(KeySet::from_jwks(&doc, "test").expect("parses"));
    pass(&running, bearer(&token).await).await;

    // A reload while the provider is down: the new filter has the keys before any fetch ...
    let reloaded = build(config).expect("valid");
    let remote = reloaded.remote.clone().expect("remote");
    assert!(remote.loaded.load(Ordering::Acquire), "carried over");
    pass(&reloaded, bearer(&token).await).await;
    // ... and a failed fetch leaves them in place.
    assert_eq!(remote.refetch().await, Fetched::Failed);
    drop(running);
    pass(&reloaded, bearer(&token).await).await;
    assert!(super::jwks::last_good("http://127.0.0.1:9/carried.json").is_some());

    // Another URL starts empty; once no config holds a set, it is gone.
    let other = build("{jwks_url: 'http://127.0.0.1:9/other.json', algorithms: [RS256]}").expect("valid");
    assert!(!other.remote.as_ref().expect("remote").loaded.load(Ordering::Acquire));
    drop((reloaded, remote));
    // (The background refreshes hold their filter's keys while a fetch is under way.)
    for _ in 0..200 {
        if super::jwks::last_good("http://127.0.0.1:9/carried.json").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(super::jwks::last_good("http://127.0.0.1:9/carried.json").is_none());
    let fresh = build(config).expect("valid");
    assert!(!fresh.remote.as_ref().expect("remote").loaded.load(Ordering::Acquire));
}

#[test]
fn jwks_documents_skip_keys_they_cannot_use() {
    let doc = br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "alg": "XYZ", "n": "AQ", "e": "AQAB"},
                   {"kty": "EC", "kid": "e", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    let set = KeySet::from_jwks(doc, "test").expect("one usable key");
    assert_eq!(set.keys.len(), 1);
    assert!(KeySet::from_jwks(br#"{"keys": []}"#, "test").is_err());
    assert!(KeySet::from_jwks(b"[]", "test").is_err());
}

#[test]
fn config_errors_name_the_field() {
    let err = build("{}").expect_err("no key source");
    assert!(err.message.contains("key source"), "{}", err.message);
    let err = build("{secret: s, algorithms: [RS256]}").expect_err("secret with RS256");
    assert_eq!(err.path, "algorithms[0]");
    let err = build("{jwks_file: missing.json}").expect_err("missing file");
    assert_eq!(err.path, "jwks_file");
    assert!(err.message.contains("missing.json"), "{}", err.message);
    let err = build("{public_key_file: /nonexistent/k.pem}").expect_err("missing file");
    assert_eq!(err.path, "public_key_file");
    assert!(err.message.contains("/nonexistent/k.pem"));
    assert_eq!(
        build("{public_key_file: ec.pub, algorithms: [RS256]}").expect_err("wrong family").path,
        "public_key_file"
    );
    assert_eq!(build("{secret: s, algorithms: [HS999]}").expect_err("unknown").path, "algorithms[0]");
    assert_eq!(build("{jwks_file: jwks.json, algorithms: [HS256]}").expect_err("no secret").path, "algorithms[0]");
    assert_eq!(build("{jwks_url: 'ftp://x/jwks'}").expect_err("scheme").path, "jwks_url");
    assert_eq!(build("{secret: s, from: {}}").expect_err("no source").path, "from");
    assert_eq!(build("{secret: s, forward_claims: {sub: 'bad header'}}").expect_err("bad").path, "forward_claims.sub");
    assert!(serde_yaml::from_str::<JwtConfig>("{secret: s, audiance: x}").is_err());
    assert!(build("{jwks_url: 'http://127.0.0.1:9/jwks', jwks_file: jwks.json, issuer: i, audience: a}").is_ok());
}
