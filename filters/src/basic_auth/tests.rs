use super::*;
use crate::context::BasicCredentials;
use crate::testkit::{self, FlowExt, TestRequest};
use argon2::PasswordHasher;
use std::net::IpAddr;

fn consumer(name: &str, user: &str, hash: String) -> Arc<Consumer> {
    Arc::new(Consumer {
        name: name.into(),
        basic: Some(BasicCredentials { username: user.into(), password_hash: hash }),
        ..Default::default()
    })
}

fn argon2_hash(password: &[u8]) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon.hash_password(password).expect("hash").to_string()
}

fn consumers() -> Vec<Arc<Consumer>> {
    vec![
        consumer("alice", "alice", bcrypt::hash("wonderland", 4).expect("hash")),
        consumer("bob", "bob", argon2_hash(b"builder")),
        Arc::new(Consumer { name: "keys-only".into(), ..Default::default() }),
    ]
}

fn build(consumers: &[Arc<Consumer>]) -> Result<BasicAuth, BuildError> {
    testkit::build("{realm: shop}", &testkit::context_with(consumers))
}

/// Runs the request phase with this `Authorization` value: the consumer it found, or its
/// refusal.
async fn authenticate(f: &BasicAuth, authorization: Option<&[u8]>) -> Result<Arc<Consumer>, Reject> {
    let value = authorization.map(|v| std::str::from_utf8(v).expect("test header values are text"));
    let headers: Vec<(&str, &str)> = value.map(|v| ("authorization", v)).into_iter().collect();
    let mut request = TestRequest::get("/", &headers).await;
    match request.request(f).await {
        Flow::Continue => Ok(request.ctx.consumer.clone().expect("a consumer once the login verified")),
        Flow::Reject(reject) => Err(reject),
        other => panic!("expected a consumer or a refusal, got {other:?}"),
    }
}

fn header(user_pass: &str) -> Vec<u8> {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)).into_bytes()
}

#[tokio::test]
async fn bcrypt_and_argon2_logins_verify_and_are_cached() {
    let f = build(&consumers()).expect("valid");
    let alice = header("alice:wonderland");
    assert_eq!(authenticate(&f, Some(&alice)).await.expect("alice").name, "alice");
    assert_eq!(f.verified.len(), 1);
    // Second time from the cache.
    assert_eq!(authenticate(&f, Some(&alice)).await.expect("alice").name, "alice");
    let bob = header("bob:builder");
    assert_eq!(authenticate(&f, Some(&bob)).await.expect("bob").name, "bob");
    assert_eq!(f.verified.len(), 2);
    // Lowercase scheme and a colon in the password.
    let c = vec![consumer("carol", "carol", bcrypt::hash("a:b", 4).expect("hash"))];
    let f = build(&c).expect("valid");
    let v = format!("basic {}", base64::engine::general_purpose::STANDARD.encode("carol:a:b"));
    assert_eq!(authenticate(&f, Some(v.as_bytes())).await.expect("carol").name, "carol");
}

#[tokio::test]
async fn refusals_are_401_with_the_realm() {
    let f = build(&consumers()).expect("valid");
    let missing = authenticate(&f, None).await.expect_err("missing");
    assert_eq!((missing.status, &*missing.message), (401, "missing credentials"));
    assert_eq!(missing.headers[0].0, WWW_AUTHENTICATE);
    assert!(missing.headers[0].1.to_str().expect("ascii").starts_with("Basic realm=\"shop\""));
    for bad in [&b"Bearer abc"[..], b"Basic !!!", b"Basic Zm9v"] {
        let r = authenticate(&f, Some(bad)).await.expect_err("malformed");
        assert_eq!(r.message, "malformed basic credentials");
    }
    let wrong = header("alice:nope");
    let r = authenticate(&f, Some(&wrong)).await.expect_err("wrong password");
    assert_eq!((r.status, &*r.message), (401, "invalid username or password"));
    let unknown = header("mallory:wonderland");
    assert_eq!(authenticate(&f, Some(&unknown)).await.expect_err("unknown").status, 401);
    assert_eq!(f.verified.len(), 0);
}

#[test]
fn bad_hashes_and_duplicate_users_are_config_errors() {
    let err = build(&[consumer("eve", "eve", "plaintext".into())]).expect_err("bad hash");
    assert!(err.message.contains("\"eve\""), "{}", err.message);
    let err = build(&[consumer("eve", "eve", "$2b$10$short".into())]).expect_err("bad bcrypt");
    assert!(err.message.contains("\"eve\""));
    let h = bcrypt::hash("x", 4).expect("hash");
    let err = build(&[consumer("a", "same", h.clone()), consumer("b", "same", h)]).expect_err("dup");
    assert!(err.message.contains("\"same\""));
    assert!(build(&[]).is_err());
    assert!(serde_yaml::from_str::<BasicAuthConfig>("{realm: x, reaml: y}").is_err());
}

/// Runs the request phase for a client at `ip` with `user:pass`.
async fn login(f: &BasicAuth, ip: &str, user_pass: &str) -> Flow {
    let value = String::from_utf8(header(user_pass)).expect("ascii");
    let mut request = TestRequest::get("/", &[("authorization", value.as_str())]).await;
    request.ctx.client_ip = Some(ip.parse::<IpAddr>().expect("ip"));
    request.request(f).await
}

fn status(flow: Flow) -> u16 {
    match flow {
        Flow::Continue => 200,
        other => other.expect_reject().status,
    }
}

#[tokio::test]
async fn a_full_hashing_pool_answers_503_at_once() {
    // One hash at a time and none waiting (numbers no other test uses: the pool is per process).
    let f: BasicAuth = testkit::build(
        "{max_concurrent_hashes: 1, max_queued_hashes: 0, failures_per_minute: 0}",
        &testkit::context_with(&consumers()),
    )
    .expect("valid");
    let before = overloaded_total();
    let held = f.hashing.try_admit().expect("a place");
    let reject = login(&f, "192.0.2.10", "alice:wonderland").await.expect_reject();
    assert_eq!((reject.status, reject.error), (503, "overloaded"));
    assert!(reject.headers.iter().any(|(n, v)| n == RETRY_AFTER && v == "1"), "{:?}", reject.headers);
    assert!(overloaded_total() > before, "counted");
    // Another filter with the same numbers shares the pool.
    let g: BasicAuth = testkit::build(
        "{realm: other, max_concurrent_hashes: 1, max_queued_hashes: 0}",
        &testkit::context_with(&consumers()),
    )
    .expect("valid");
    assert_eq!(status(login(&g, "192.0.2.11", "bob:builder").await), 503, "process-wide");
    drop(held);
    login(&f, "192.0.2.10", "alice:wonderland").await.expect_continue();
    assert_eq!(f.hashing.admitted(), 0);
}

#[tokio::test]
async fn logins_wait_in_a_bounded_queue_and_a_gone_client_keeps_its_place_until_its_hash_ends() {
    let slow = vec![consumer("slow", "slow", bcrypt::hash("pw", 8).expect("hash"))];
    let f: Arc<BasicAuth> = Arc::new(
        testkit::build(
            "{max_concurrent_hashes: 1, max_queued_hashes: 2, failures_per_minute: 0}",
            &testkit::context_with(&slow),
        )
        .expect("valid"),
    );
    // Four logins at once: one hashes, two wait, the fourth is refused.
    let mut tasks = Vec::new();
    for i in 0..3 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move { status(login(&f, &format!("192.0.2.{}", 20 + i), "slow:nope").await) }));
    }
    while f.hashing.admitted() < 3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(status(login(&f, "192.0.2.30", "slow:pw").await), 503);
    for task in tasks {
        assert_eq!(task.await.expect("task"), 401, "the queued logins were checked");
    }
    assert_eq!(f.hashing.admitted(), 0);

    // A client that goes away mid-hash: its place is held until the hash is done (the CPU is
    // still in use), then given back.
    let task = {
        let f = f.clone();
        tokio::spawn(async move { login(&f, "192.0.2.40", "slow:nope").await })
    };
    while f.hashing.admitted() < 1 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    task.abort();
    assert!(task.await.is_err(), "aborted");
    assert_eq!(f.hashing.admitted(), 1, "the hash still runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.hashing.admitted() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(f.hashing.admitted(), 0, "given back once the hash ended");
}

#[tokio::test]
async fn a_client_that_keeps_failing_gets_429_without_a_hash() {
    let f: BasicAuth = testkit::build("{failures_per_minute: 3}", &testkit::context_with(&consumers())).expect("valid");
    // A valid client logs in first, from the address that will be throttled.
    login(&f, "198.51.100.7", "alice:wonderland").await.expect_continue();
    for _ in 0..3 {
        assert_eq!(status(login(&f, "198.51.100.7", "alice:guess").await), 401);
    }
    let before = throttled_total();
    let reject = login(&f, "198.51.100.7", "alice:another-guess").await.expect_reject();
    assert_eq!((reject.status, reject.error, &*reject.message), (429, "rate_limited", "too many failed logins"));
    let retry: u64 = reject
        .headers
        .iter()
        .find(|(n, _)| n == RETRY_AFTER)
        .expect("Retry-After")
        .1
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=20).contains(&retry), "{retry}");
    assert!(throttled_total() > before, "counted");
    // Not even a right password gets a hash now; a remembered login still passes.
    assert_eq!(status(login(&f, "198.51.100.7", "bob:builder").await), 429);
    login(&f, "198.51.100.7", "alice:wonderland").await.expect_continue();
    // Other clients are not affected; an IPv6 client is counted by its /64.
    login(&f, "198.51.100.8", "bob:builder").await.expect_continue();
    for _ in 0..3 {
        assert_eq!(status(login(&f, "2001:db8:7::1", "mallory:x").await), 401, "unknown users fail too");
    }
    // (bob's login is remembered by now, so a wrong password shows the throttle.)
    assert_eq!(status(login(&f, "2001:db8:7::2", "bob:guess").await), 429, "same /64");
    assert_eq!(status(login(&f, "2001:db8:8::1", "bob:guess").await), 401, "another /64 is hashed");
    // Off with 0.
    let off: BasicAuth =
        testkit::build("{failures_per_minute: 0}", &testkit::context_with(&consumers())).expect("valid");
    for _ in 0..5 {
        assert_eq!(status(login(&off, "198.51.100.9", "alice:guess").await), 401);
    }
}

#[test]
fn failure_budgets_refill_at_their_rate() {
    let failures = throttle::FailedLogins::new(3);
    let ip = Some("203.0.113.5".parse().expect("ip"));
    let t = 1_000_000_000_000;
    for _ in 0..3 {
        assert_eq!(failures.retry_after(ip, t), None);
        failures.failed(ip, t);
    }
    assert_eq!(failures.retry_after(ip, t), Some(20), "one failure back every 20 s");
    assert_eq!(failures.retry_after(ip, t + 19_000_000_000), Some(1));
    assert_eq!(failures.retry_after(ip, t + 20_000_000_000), None);
    assert_eq!(failures.retry_after(None, t), None, "no address, no throttle");
}

#[tokio::test]
async fn remembered_logins_lapse_and_follow_the_consumers_hash_across_reloads() {
    let place = "route shop filters[0]";
    let cx = testkit::context_with;
    let old = consumers();
    let f: BasicAuth = testkit::build("{}", &BuildContext { place, ..cx(&old) }).expect("valid");
    let alice = header("alice:wonderland");
    assert_eq!(authenticate(&f, Some(&alice)).await.expect("alice").name, "alice");
    // A reload with the same consumers: the rebuilt filter remembers alice.
    let g: BasicAuth = testkit::build("{}", &BuildContext { place, ..cx(&old) }).expect("valid");
    assert_eq!(g.verified.len(), 1, "carried over");
    assert_eq!(authenticate(&g, Some(&alice)).await.expect("alice").name, "alice");
    // A reload that changes alice's password: the remembered login no longer counts.
    let new = vec![consumer("alice", "alice", bcrypt::hash("looking glass", 4).expect("hash"))];
    let h: BasicAuth = testkit::build("{}", &BuildContext { place, ..cx(&new) }).expect("valid");
    assert_eq!(authenticate(&h, Some(&alice)).await.expect_err("old password").status, 401);
    assert_eq!(authenticate(&h, Some(&header("alice:looking glass"))).await.expect("new").name, "alice");
    // An expired entry is not used.
    let key = digest(&header("alice:looking glass"));
    let mut stale = h.verified.get(&key).expect("remembered");
    stale.expires_ns = now_ns();
    h.verified.insert(key, stale);
    assert!(h.remembered(&key, now_ns()).is_none(), "lapsed");
    assert!(h.verified.get(&key).is_none(), "and forgotten");
}

#[test]
fn pool_and_throttle_settings_are_checked() {
    let cx = testkit::context_with;
    let c = consumers();
    let err = testkit::build::<BasicAuth>("{max_concurrent_hashes: 0}", &cx(&c)).expect_err("zero");
    assert_eq!(err.path, "max_concurrent_hashes");
    assert!(testkit::build::<BasicAuth>("{max_queued_hashes: 0, failures_per_minute: 0}", &cx(&c)).is_ok());
    assert!(testkit::build::<BasicAuth>("{max_concurrent_hashes: -1}", &cx(&c)).is_err());
    assert!(testkit::build::<BasicAuth>("{failures_per_minute: 5, failure_per_minute: 5}", &cx(&c)).is_err());
}
