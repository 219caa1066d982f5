use super::gcra::Gcra;
use super::key::KEY_MAX;
use super::local::SHARDS;
use super::*;
use crate::testkit::{self, FlowExt, TestRequest};
use crate::{BuildContext, BuildError, Consumer, RequestHeader};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;

fn gcra(per_second: u64, burst: u64) -> Gcra {
    Gcra::new(per_second, Duration::from_secs(1), burst).expect("valid gcra")
}

fn build(yaml: &str, redis_url: Option<&str>) -> Result<RateLimit, BuildError> {
    testkit::build(yaml, &BuildContext { redis_url, ..testkit::context() })
}

/// A request from `caller`: a client address, or else a consumer's name.
async fn request_by(caller: &str) -> TestRequest {
    let mut request = TestRequest::get("/", &[]).await;
    match caller.parse() {
        Ok(ip) => request.ctx.client_ip = Some(ip),
        Err(_) => request.ctx.consumer = Some(Arc::new(Consumer { name: caller.into(), ..Default::default() })),
    }
    request
}

/// Whether `f` lets one more request by `caller` through.
async fn admits(f: &RateLimit, caller: &str) -> bool {
    match request_by(caller).await.request(f).await {
        Flow::Continue => true,
        Flow::Reject(r) if r.status == 429 => false,
        other => panic!("expected a pass or a 429, got {other:?}"),
    }
}

/// The decision the response headers will report.
fn reported(ctx: &RequestCtx) -> Decision {
    ctx.state.get::<RateLimitState>().expect("a decision for the headers").decision
}

#[test]
fn admits_the_burst_then_refuses() {
    let limiter = LocalLimiter::new(gcra(10, 5));
    let now = 42 * SEC;
    for remaining in (0..5).rev() {
        let d = limiter.check("k", now);
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
    }
    let refused = limiter.check("k", now);
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // The next cell is one interval (100 ms) away; the whole burst five intervals.
    assert_eq!(refused.retry_after_ns, 100 * MS);
    assert_eq!(refused.reset_ns, 500 * MS);
}

#[test]
fn refills_at_the_rate() {
    let limiter = LocalLimiter::new(gcra(10, 5));
    let t0 = SEC;
    while limiter.check("k", t0).allowed {}
    assert!(!limiter.check("k", t0 + 99 * MS).allowed, "not yet one interval");
    assert!(limiter.check("k", t0 + 100 * MS).allowed, "one cell back after 100 ms");
    assert!(!limiter.check("k", t0 + 100 * MS).allowed, "and only one");
    // At rest again after the whole window: a full burst.
    let later = t0 + 10 * SEC;
    assert_eq!((0..10).filter(|_| limiter.check("k", later).allowed).count(), 5);
}

#[test]
fn sustained_rate_over_a_minute() {
    let limiter = LocalLimiter::new(Gcra::new(60, Duration::from_secs(60), 1).expect("valid"));
    // One request every 100 ms for a minute: 600 tries, 60 admitted (one per second).
    let admitted = (0..600).filter(|i| limiter.check("k", SEC + i * 100 * MS).allowed).count();
    assert_eq!(admitted, 60);
}

#[test]
fn keys_are_independent() {
    let limiter = LocalLimiter::new(gcra(1, 2));
    assert!(limiter.check("a", SEC).allowed);
    assert!(limiter.check("a", SEC).allowed);
    assert!(!limiter.check("a", SEC).allowed);
    assert!(limiter.check("b", SEC).allowed, "b has its own budget");
    assert_eq!(limiter.len(), 2);
}

#[test]
fn memory_is_bounded_and_rested_keys_go_first() {
    let limiter = LocalLimiter::with_max_keys(gcra(1, 1), SHARDS * 4);
    for i in 0..10_000 {
        limiter.check(&format!("k{i}"), SEC);
    }
    assert!(limiter.len() <= SHARDS * 4, "{} keys kept", limiter.len());
    // Much later every key is at rest: inserting more drops them rather than growing.
    for i in 0..10_000 {
        limiter.check(&format!("later{i}"), 100 * SEC);
    }
    assert!(limiter.len() <= SHARDS * 4);
}

#[test]
fn concurrent_requests_never_overshoot() {
    let limiter = Arc::new(LocalLimiter::new(gcra(1, 1000)));
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                s.spawn(move || (0..1000).filter(|_| limiter.check("shared", SEC).allowed).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(admitted, 1000);
}

#[tokio::test]
async fn header_values() {
    let g = gcra(100, 50);
    let d = g.decision(true, SEC + 10 * MS, SEC);
    assert_eq!((d.limit, d.remaining, d.reset_secs()), (50, 49, 1));
    let at_rest = g.decision(true, 0, SEC);
    assert_eq!((at_rest.remaining, at_rest.reset_secs()), (50, 0));
    let refused = g.decision(false, SEC + 500 * MS, SEC);
    assert_eq!(refused.remaining, 0);
    assert_eq!(refused.retry_after_secs(), 1, "10 ms rounds up to 1 s");

    let f = build("{requests_per_minute: 2, burst: 1}", None).expect("valid");
    TestRequest::get("/", &[]).await.request(&f).await.expect_continue();
    let mut refused = TestRequest::get("/", &[]).await;
    let reject = refused.request(&f).await.expect_reject();
    assert_eq!((reject.status, reject.error), (429, "rate_limited"));
    assert_eq!(reject.headers[0].0, http::header::RETRY_AFTER);
    assert_eq!(reject.headers[0].1, "30");

    let response = refused.response(&f, 429);
    let header = |name: &str| response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("ratelimit-limit").as_deref(), Some("1"));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header("ratelimit-reset").as_deref(), Some("30"));
    assert_eq!(header("ratelimit-policy").as_deref(), Some("2;w=60;burst=1"));
}

#[tokio::test]
async fn two_limits_report_the_tighter() {
    let loose = build("{requests_per_second: 100}", None).expect("valid");
    let tight = build("{requests_per_second: 1, burst: 3}", None).expect("valid");
    let mut request = TestRequest::get("/", &[]).await;
    request.request(&tight).await.expect_continue();
    request.request(&loose).await.expect_continue();
    let decision = reported(&request.ctx);
    assert_eq!((decision.limit, decision.remaining), (3, 2));
}

#[test]
fn keys_from_the_request() {
    let request = RequestHeader::build("GET", b"/", None).expect("request");
    let mut with_header = request.clone();
    with_header.insert_header("x-api-key", "abc").expect("header");
    let mut ctx = RequestCtx {
        client_ip: Some("::ffff:10.1.2.3".parse().expect("ip")),
        route: "users".into(),
        ..Default::default()
    };
    let key = |kind: &str, request: &RequestHeader, ctx: &RequestCtx| {
        let mut buf = KeyBuf::new();
        kind.parse::<KeyKind>().expect("key kind").write_key(&mut buf, request, ctx, 64);
        buf.as_str().to_owned()
    };
    assert_eq!(key("client_ip", &request, &ctx), "ip:10.1.2.3");
    assert_eq!(key("route", &request, &ctx), "r:users");
    assert_eq!(key("consumer", &request, &ctx), "ip:10.1.2.3", "anonymous: by address");
    assert_eq!(key("header:X-Api-Key", &request, &ctx), "ip:10.1.2.3", "no header: by address");
    assert_eq!(key("header:X-Api-Key", &with_header, &ctx), "h:abc");
    ctx.consumer = Some(Arc::new(crate::Consumer { name: "mobile".into(), ..Default::default() }));
    assert_eq!(key("consumer", &request, &ctx), "c:mobile");

    let mut long = KeyBuf::new();
    let _ = write!(long, "h:{}", "é".repeat(KEY_MAX));
    assert!(long.as_str().len() <= KEY_MAX && long.as_str().len() >= KEY_MAX - 1);
}

#[test]
fn ipv6_clients_are_keyed_by_their_network() {
    let key = |ip: &str, prefix: u8| {
        let mut buf = KeyBuf::new();
        let ctx = RequestCtx { client_ip: Some(ip.parse().expect("ip")), ..Default::default() };
        let request = RequestHeader::build("GET", b"/", None).expect("request");
        KeyKind::ClientIp.write_key(&mut buf, &request, &ctx, prefix);
        buf.as_str().to_owned()
    };
    assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "ip:2001:db8:1:2::/64");
    assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64), "ip:2001:db8:1:2::/64", "the same /64");
    assert_eq!(key("2001:db8:1:3::1", 64), "ip:2001:db8:1:3::/64", "the next /64");
    assert_eq!(key("2001:db8:1:2:aaaa::1", 48), "ip:2001:db8:1::/48");
    assert_eq!(key("2001:db8:1:2:aaaa::1", 128), "ip:2001:db8:1:2:aaaa::1");
    assert_eq!(key("2001:db8:1:2:aaaa::1", 1), "ip:::/1");
    assert_eq!(key("10.1.2.3", 64), "ip:10.1.2.3", "IPv4 per address");
    assert_eq!(key("::ffff:10.1.2.3", 64), "ip:10.1.2.3", "IPv4-mapped per address");
}

#[tokio::test]
async fn one_ipv6_client_gets_one_budget_for_its_whole_64() {
    let from = |ip: &str| {
        let ip = ip.parse().expect("ip");
        async move {
            let mut request = TestRequest::get("/", &[]).await;
            request.ctx.client_ip = Some(ip);
            request
        }
    };
    let f = build("{requests_per_minute: 2}", None).expect("valid");
    for ip in ["2001:db8::1", "2001:db8::2"] {
        from(ip).await.request(&f).await.expect_continue();
    }
    // A third address of the same /64 shares the budget; another /64 has its own.
    assert_eq!(from("2001:db8::3").await.request(&f).await.expect_reject().status, 429);
    from("2001:db8:0:1::1").await.request(&f).await.expect_continue();
    // With `ipv6_prefix: 128` every address is its own client.
    let f = build("{requests_per_minute: 1, ipv6_prefix: 128}", None).expect("valid");
    for ip in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
        from(ip).await.request(&f).await.expect_continue();
    }
    assert_eq!(build("{requests_per_minute: 1, ipv6_prefix: 0}", None).expect_err("0").path, "ipv6_prefix");
    assert_eq!(build("{requests_per_minute: 1, ipv6_prefix: 129}", None).expect_err("129").path, "ipv6_prefix");
}

#[test]
fn config_errors() {
    let err = |yaml: &str, url: Option<&str>| build(yaml, url).expect_err(yaml);
    assert!(err("{key: nonsense, requests_per_second: 1}", None).message.contains("expected client_ip"));
    assert!(err("{key: \"header:bad name\", requests_per_second: 1}", None).message.contains("header name"));
    assert!(err("{}", None).message.contains("requests_per_second or requests_per_minute"));
    assert!(err("{requests_per_second: 1, requests_per_minute: 1}", None).message.contains("not both"));
    assert_eq!(err("{requests_per_second: 0}", None).path, "requests_per_second");
    assert_eq!(err("{requests_per_second: 1, burst: 0}", None).path, "burst");
    let no_url = err("{requests_per_second: 1, store: redis}", None);
    assert_eq!((no_url.path.as_str(), no_url.message.as_str()), ("store", "redis needs rate_limit_store.redis"));
    assert_eq!(err("{requests_per_second: 1, sync_ms: 10}", None).path, "sync_ms");
    assert_eq!(
        err("{requests_per_second: 1, store: redis, redis_timeout_ms: 0}", Some("redis://127.0.0.1")).path,
        "redis_timeout_ms"
    );
    assert!(err("{requests_per_second: 1, store: memcached}", None).message.contains("unknown variant"));
    assert!(err("{requests_per_second: 1, colour: red}", None).message.contains("unknown field"));
    build(
        "{key: consumer, requests_per_minute: 60, store: redis, failure_policy: closed}",
        Some("redis://127.0.0.1:6379"),
    )
    .expect("valid redis config");
}

#[test]
fn a_tat_from_redis_is_held_to_one_window() {
    let window = 10 * SEC;
    // What GCRA produces passes as it is.
    assert_eq!(redis::adopted_tat(5 * SEC, 0, window), 5 * SEC);
    assert_eq!(redis::adopted_tat(5 * SEC, 3 * SEC, window), 8 * SEC);
    assert_eq!(redis::adopted_tat(5 * SEC, window, window), 15 * SEC);
    // Garbage (a value another program stored, i64::MAX, u64::MAX) locks for one window at most.
    for garbage in [window + 1, i64::MAX as u64, u64::MAX] {
        assert_eq!(redis::adopted_tat(5 * SEC, garbage, window), 15 * SEC, "{garbage}");
    }
    assert_eq!(redis::adopted_tat(u64::MAX - 1, u64::MAX, window), u64::MAX, "saturates");

    // Adopted into the local view, the key is free again one window later.
    let limiter = local::LocalLimiter::new(gcra(1, 10));
    let tat = redis::adopted_tat(SEC, u64::MAX, limiter.gcra.window_ns);
    limiter.adopt("k", SEC, tat);
    assert!(!limiter.check("k", SEC).allowed);
    assert!(limiter.check("k", SEC + limiter.gcra.window_ns).allowed, "one window later");
}

// === Redis, against a real redis-server ===

/// A `redis-server` on a free port, killed on drop.
struct RedisServer {
    child: Option<tokio::process::Child>,
    url: String,
}

impl RedisServer {
    /// Starts one, or `None` (with a note) where redis-server is not installed.
    async fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(child) = child else {
            eprintln!("redis-server is not installed: skipping the Redis test");
            return None;
        };
        // Ready once it answers PING.
        let url = format!("redis://127.0.0.1:{port}");
        let client = ::redis::Client::open(url.as_str()).expect("url");
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if ::redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok() {
                    return Some(RedisServer { child: Some(child), url });
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not come up on port {port}");
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }
}

fn instance(yaml: &str, url: &str) -> RateLimit {
    build(yaml, Some(url)).expect("valid redis config")
}

async fn admitted(instances: &[&RateLimit], caller: &str, tries: usize) -> usize {
    let mut count = 0;
    for i in 0..tries {
        if admits(instances[i % instances.len()], caller).await {
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn redis_is_shared_by_instances_and_failure_policy_holds() {
    let Some(mut server) = RedisServer::start().await else {
        return;
    };
    // Two "Portico instances": separate filters, local counts and connections.
    let config = "{key: consumer, requests_per_minute: 10, store: redis, redis_timeout_ms: 200}";
    let a = instance(config, &server.url);
    let b = instance(config, &server.url);
    // One cell per 6 s: within this test nothing refills, so exactly the burst passes.
    assert_eq!(admitted(&[&a, &b], "shared", 30).await, 10);
    // Both instances now know the key is over, and refuse it without asking Redis.
    let mut limited = request_by("shared").await;
    let reject = limited.request(&b).await.expect_reject();
    assert_eq!(reject.status, 429, "limited");
    assert!(!reported(&limited.ctx).allowed);
    assert!(reported(&limited.ctx).retry_after_secs() >= 1);
    // Redis's verdicts feed the headers: after one request of ten, nine remain.
    let mut other = request_by("other").await;
    other.request(&a).await.expect_continue();
    let d = reported(&other.ctx);
    assert_eq!((d.limit, d.remaining), (10, 9));

    // Redis gone: open admits on local counts, closed answers 503, both without waiting long.
    let open = instance("{requests_per_second: 100, store: redis, redis_timeout_ms: 200}", &server.url);
    let closed = instance(
        "{requests_per_second: 100, store: redis, failure_policy: closed, redis_timeout_ms: 200}",
        &server.url,
    );
    assert!(admits(&closed, "10.0.0.1").await, "connects while up");
    server.stop().await;
    let started = Instant::now();
    for _ in 0..20 {
        assert!(admits(&open, "10.0.0.2").await);
        let r = request_by("10.0.0.2").await.request(&closed).await.expect_reject();
        assert_eq!((r.status, r.error), (503, "rate_limiter_unavailable"));
    }
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_garbage_value_in_redis_locks_a_key_for_one_window_at_most() {
    let Some(server) = RedisServer::start().await else {
        return;
    };
    // 10 a second with a burst of 2: a window of 200 ms.
    let f = instance(
        "{key: consumer, requests_per_second: 10, burst: 2, store: redis, scope: g, redis_timeout_ms: 500}",
        &server.url,
    );
    let client = ::redis::Client::open(server.url.as_str()).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connects");
    for garbage in ["1e300", "99999999999999999999", "nan", "not a number"] {
        let key = format!("portico:rl:g:c:{garbage}");
        ::redis::cmd("SET").arg(&key).arg(garbage).query_async::<()>(&mut conn).await.expect("set");
        let caller = garbage.to_string();
        // A number beyond any window: refused now (Redis holds it to one window) ...
        let numeric = garbage.starts_with(|c: char| c.is_ascii_digit());
        if numeric {
            let mut request = request_by(&caller).await;
            let reject = request.request(&f).await.expect_reject();
            assert_eq!(reject.status, 429, "{garbage}");
            assert!(reported(&request.ctx).retry_after_secs() <= 1, "{garbage}: a window, not ages");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // ... and admitted once that window is over, by Redis and by the local view alike.
        assert!(admits(&f, &caller).await, "{garbage}: the key healed");
        let stored: String = ::redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("get");
        let stored: f64 = stored.parse().expect("the script stored a number");
        assert!(stored < 1e18, "{garbage}: stored {stored}");
    }
}

#[tokio::test]
async fn sync_ms_stays_within_its_tolerance() {
    let Some(_server) = RedisServer::start().await else {
        return;
    };
    let url = _server.url.clone();
    let config = "{requests_per_minute: 20, burst: 20, store: redis, sync_ms: 1000, redis_timeout_ms: 200}";
    let a = instance(config, &url);
    let b = instance(config, &url);
    // Back to back, the background reports cannot even start (one-thread runtime): the worst
    // case, where each instance passes up to one burst on its own view.
    let got = admitted(&[&a, &b], "10.0.0.9", 100).await;
    assert!((20..=2 * 20).contains(&got), "admitted {got}");
    // The reports arrive: Redis ends up knowing the key is exhausted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = instance(config, &url);
    assert!(!admits(&c, "10.0.0.9").await);

    // Paced a little, views stay within a few requests of Redis.
    let mut got = 0;
    for i in 0..100 {
        let instance = if i % 2 == 0 { &a } else { &b };
        got += usize::from(admits(instance, "10.0.0.10").await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!((20..=20 + 4).contains(&got), "admitted {got}");
}
