//! A user puts the shared cache in front of an origin: repeated requests stop reaching it,
//! the origin's Cache-Control decides what is kept and for how long, stale copies cover for a
//! slow or failing origin, and the admin API purges what changed. The origin counts what it
//! serves, so every "came from the cache" is checked where it matters: at the origin.

mod origin;

use crate::support::{client, eventually, metric, rss_kib, Portico, Yaml};
use origin::CountingOrigin;
use reqwest::header::HeaderMap;
use std::time::{Duration, Instant};

/// One edge listener and one cached route in front of `o`; `cache` is the route's cache config
/// and `store` the `cache_store`.
fn config(o: &CountingOrigin, store: &str, cache: &str) -> Yaml {
    Yaml::web(&format!(
        "cache_store: {store}\nupstreams: {{o: {{targets: [\"$o\"]}}}}\nroutes:\n  - {{name: cached, upstream: o, cache: {cache}}}\n"
    ))
    .set("o", o.addr)
}

async fn start(o: &CountingOrigin, cache: &str) -> Portico {
    Portico::start(config(o, "{max_size_mb: 16}", cache)).await
}

struct Got {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Got {
    fn cache(&self) -> &str {
        self.headers.get("x-cache-status").and_then(|v| v.to_str().ok()).unwrap_or("-")
    }
    fn n(&self) -> i64 {
        serde_json::from_str::<serde_json::Value>(&self.body).ok().and_then(|v| v["n"].as_i64()).unwrap_or(-1)
    }
}

async fn get(p: &Portico, path: &str, headers: &[(&str, &str)]) -> Got {
    send(p, reqwest::Method::GET, path, headers).await
}

async fn send(p: &Portico, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client().request(method, p.url("web", path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Got { status, headers, body }
}

#[tokio::test]
async fn a_second_request_is_a_hit_and_never_reaches_the_origin() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    let first = get(&p, "/a", &[]).await;
    let second = get(&p, "/a", &[]).await;
    assert_eq!((first.status, first.cache(), first.n()), (200, "MISS", 1));
    assert_eq!((second.status, second.cache(), second.n()), (200, "HIT", 1));
    assert!(second.headers.contains_key("age"), "a hit carries Age");
    assert_eq!(o.served(), 1, "two client requests, one origin request");
    // The log line and the metrics say so too.
    eventually(Duration::from_secs(5), "access log has cache_status", || async {
        p.access_log().contains("\"cache_status\":\"HIT\"")
    })
    .await;
    let m = p.metrics().await;
    assert_eq!(metric(&m, "portico_cache_lookups_total", r#"route="cached",status="HIT""#), 1.0);
    assert_eq!(metric(&m, "portico_cache_lookups_total", r#"route="cached",status="MISS""#), 1.0);
    assert!(metric(&m, "portico_cache_objects", "") >= 1.0);
}

#[tokio::test]
async fn origin_directives_decide_what_is_stored() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    // (query, stored?)
    let cases = [
        ("cc=max-age%3D60", true),
        ("cc=s-maxage%3D60", true),
        ("cc=public", true),
        ("expires=60", true),
        ("cc=no-store", false),
        ("cc=private", false),
        ("cc=max-age%3D60&cookie=1", false),
        ("vary=*", false),
        ("expires=-60", false),
        ("status=500", false),
    ];
    for (q, stored) in cases {
        let path = format!("/d?{q}");
        let before = o.served();
        let first = get(&p, &path, &[]).await;
        let second = get(&p, &path, &[]).await;
        assert_eq!(first.cache(), "MISS", "{q}");
        let want = if stored { 1 } else { 2 };
        assert_eq!(o.served() - before, want, "{q}: origin requests for two client requests");
        assert_eq!(second.cache() == "HIT", stored, "{q}: second is {}", second.cache());
    }
    // max-age=1: fresh, then expired and fetched again.
    get(&p, "/short?cc=max-age%3D1", &[]).await;
    assert_eq!(get(&p, "/short?cc=max-age%3D1", &[]).await.cache(), "HIT");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let again = get(&p, "/short?cc=max-age%3D1", &[]).await;
    assert_eq!((again.cache(), again.n()), ("EXPIRED", 2));
}

#[tokio::test]
async fn no_cache_and_must_revalidate_go_back_to_the_origin() {
    let mut o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60, stale_if_error_s: 300}").await;
    // no-cache: stored, but every use is revalidated (304 keeps the stored body).
    let first = get(&p, "/nc?cc=no-cache&etag=v1", &[]).await;
    let second = get(&p, "/nc?cc=no-cache&etag=v1", &[]).await;
    assert_eq!((first.cache(), second.cache()), ("MISS", "REVALIDATED"));
    assert_eq!((second.n(), o.conditional()), (1, 1), "the origin answered 304 to If-None-Match");
    // must-revalidate: once stale it is never served stale, even with stale_if_error.
    get(&p, "/mr?cc=max-age%3D1%2Cmust-revalidate", &[]).await;
    get(&p, "/sie?cc=max-age%3D1", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    o.stop().await;
    assert_eq!(get(&p, "/mr?cc=max-age%3D1%2Cmust-revalidate", &[]).await.status, 502);
    let stale = get(&p, "/sie?cc=max-age%3D1", &[]).await;
    assert_eq!((stale.status, stale.cache(), stale.n()), (200, "STALE", 1));
}

#[tokio::test]
async fn vary_keeps_one_copy_per_accept_value() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    let json = [("accept", "application/json")];
    let text = [("accept", "text/plain")];
    let a1 = get(&p, "/v?vary=accept", &json).await;
    let b1 = get(&p, "/v?vary=accept", &text).await;
    let a2 = get(&p, "/v?vary=accept", &json).await;
    let b2 = get(&p, "/v?vary=accept", &text).await;
    assert_eq!((a1.cache(), b1.cache(), a2.cache(), b2.cache()), ("MISS", "MISS", "HIT", "HIT"));
    assert!(a2.body.contains("application/json") && b2.body.contains("text/plain"), "each variant its own body");
    assert_eq!(o.served(), 2);
    // The route's own `vary` does the same without the origin saying so.
    let p2 = start(&o, "{ttl_s: 60, vary: [accept]}").await;
    get(&p2, "/w", &json).await;
    let other = get(&p2, "/w", &text).await;
    assert_eq!((other.cache(), get(&p2, "/w", &text).await.cache()), ("MISS", "HIT"));
}

#[tokio::test]
async fn authorized_requests_are_shared_only_when_the_origin_says_public() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    let auth = [("authorization", "Bearer one")];
    get(&p, "/private-by-default", &auth).await;
    assert_eq!(get(&p, "/private-by-default", &auth).await.cache(), "MISS");
    get(&p, "/shared?cc=public%2Cmax-age%3D60", &auth).await;
    assert_eq!(get(&p, "/shared?cc=public%2Cmax-age%3D60", &[("authorization", "Bearer two")]).await.cache(), "HIT");
    assert_eq!(o.served(), 3);
}

#[tokio::test]
async fn conditional_requests_get_304_from_the_cache_and_stale_entries_revalidate() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    // A fresh hit answers the client's own conditional request.
    get(&p, "/c?etag=v1&cc=max-age%3D60", &[]).await;
    let nm = get(&p, "/c?etag=v1&cc=max-age%3D60", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((nm.status, nm.cache()), (304, "HIT"));
    get(&p, "/lm?lm=1&cc=max-age%3D60", &[]).await;
    let ims = get(&p, "/lm?lm=1&cc=max-age%3D60", &[("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT")]).await;
    assert_eq!(ims.status, 304);
    assert_eq!((o.served(), o.conditional()), (2, 0), "the origin saw neither conditional request");
    // A stale entry is revalidated with its validators; the origin's 304 refreshes it.
    get(&p, "/r?etag=v2&cc=max-age%3D1", &[]).await;
    get(&p, "/r2?lm=1&cc=max-age%3D1", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get(&p, "/r?etag=v2&cc=max-age%3D1", &[]).await;
    let r2 = get(&p, "/r2?lm=1&cc=max-age%3D1", &[]).await;
    assert_eq!((r.status, r.cache(), r.n()), (200, "REVALIDATED", 1));
    assert_eq!((r2.status, r2.cache(), r2.n()), (200, "REVALIDATED", 1));
    assert_eq!(o.conditional(), 2);
    assert_eq!(get(&p, "/r?etag=v2&cc=max-age%3D1", &[]).await.cache(), "HIT", "fresh again after the 304");
}

#[tokio::test]
async fn head_and_ranges_are_answered_from_the_cached_get() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    // A cold HEAD fetches (and stores) the GET.
    let head = send(&p, reqwest::Method::HEAD, "/h?size=100", &[]).await;
    assert_eq!((head.status, head.cache(), head.body.len()), (200, "MISS", 0));
    let got = get(&p, "/h?size=100", &[]).await;
    assert_eq!((got.cache(), got.body.len()), ("HIT", 100));
    let head = send(&p, reqwest::Method::HEAD, "/h?size=100", &[]).await;
    assert_eq!((head.cache(), head.body.len()), ("HIT", 0));
    assert_eq!(head.headers.get("content-length").map(|v| v.to_str().unwrap_or("")), Some("100"));
    // A range of the cached body.
    let range = get(&p, "/h?size=100", &[("range", "bytes=12-15")]).await;
    assert_eq!((range.status, range.cache(), range.body.as_str()), (206, "HIT", "2345"));
    assert_eq!(range.headers.get("content-range").map(|v| v.to_str().unwrap_or("")), Some("bytes 12-15/100"));
    assert_eq!(o.served(), 1);
    // A cold range fetches (and stores) the whole object, and answers the range.
    let cold = get(&p, "/h2?size=100", &[("range", "bytes=0-3")]).await;
    assert_eq!((cold.status, cold.cache(), cold.body.as_str()), (206, "MISS", "0123"));
    let whole = get(&p, "/h2?size=100", &[]).await;
    assert_eq!((whole.status, whole.cache(), whole.body.len()), (200, "HIT", 100));
    assert_eq!(o.served(), 2);
}

#[tokio::test]
async fn a_hundred_concurrent_cold_requests_make_one_origin_request() {
    let o = CountingOrigin::start().await;
    o.set_delay_ms(300);
    let p = start(&o, "{ttl_s: 60}").await;
    let url = p.url("web", "/cold");
    let c = client();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (c, url) = (c.clone(), url.clone());
        set.spawn(async move {
            let r = c.get(url).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
    }
    while let Some(r) = set.join_next().await {
        let (status, body) = r.expect("task");
        assert_eq!((status, body.contains("\"n\":1")), (200, true), "{body}");
    }
    assert_eq!(o.served(), 1, "one origin request for 100 concurrent misses");
    assert!(metric(&p.metrics().await, "portico_cache_lock_waits_total", "") >= 1.0);
}

#[tokio::test]
async fn waiters_go_to_the_origin_themselves_when_the_first_fetch_takes_too_long() {
    let o = CountingOrigin::start().await;
    o.set_delay_ms(800);
    let p = Portico::start(config(&o, "{max_size_mb: 16, lock_timeout_ms: 200}", "{ttl_s: 60}")).await;
    let url = p.url("web", "/slow");
    let c = client();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (c, url) = (c.clone(), url.clone());
        set.spawn(async move { c.get(url).send().await.expect("request").status().as_u16() });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.expect("task"), 200);
    }
    assert_eq!(o.served(), 5, "after the lock timeout each waiter fetched on its own");
}

#[tokio::test]
async fn waiters_go_to_the_origin_themselves_when_the_first_fetch_fails() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 60}").await;
    let url = p.url("web", "/fails?status=500&delay=400");
    let c = client();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (c, url) = (c.clone(), url.clone());
        set.spawn(async move { c.get(url).send().await.expect("request").status().as_u16() });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.expect("task"), 500, "each waiter got the origin's own answer");
    }
    assert_eq!(o.served(), 5);
    // Released together when the first answer proved unstorable, not one after another.
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_while_one_refresh_runs() {
    let o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 1, stale_while_revalidate_s: 30}").await;
    get(&p, "/swr", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    o.set_delay_ms(1500);
    let started = Instant::now();
    let stale = get(&p, "/swr", &[]).await;
    assert_eq!((stale.cache(), stale.n()), ("UPDATING", 1));
    assert!(started.elapsed() < Duration::from_millis(1000), "served without waiting for the slow origin");
    eventually(Duration::from_secs(5), "the background refresh reached the origin", || async { o.served() == 2 }).await;
    o.set_delay_ms(0);
    eventually(Duration::from_secs(5), "the refreshed copy is served", || async {
        let g = get(&p, "/swr", &[]).await;
        g.cache() == "HIT" && g.n() == 2
    })
    .await;
    assert_eq!(o.served(), 2);
    // The refresh ran in the background: the counters count what clients got, not the refresh.
    let m = p.metrics().await;
    assert!(metric(&m, "portico_cache_lookups_total", r#"route="cached",status="UPDATING""#) >= 1.0);
    assert_eq!(metric(&m, "portico_cache_lookups_total", r#"route="cached",status="EXPIRED""#), 0.0);
}

#[tokio::test]
async fn stale_if_error_covers_a_failing_and_a_stopped_origin() {
    let mut o = CountingOrigin::start().await;
    let p = start(&o, "{ttl_s: 1, stale_if_error_s: 300}").await;
    get(&p, "/e1", &[]).await;
    get(&p, "/e2", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    o.set_failing(true);
    let failing = get(&p, "/e1", &[]).await;
    assert_eq!((failing.status, failing.cache(), failing.n()), (200, "STALE", 1));
    o.stop().await;
    let stopped = get(&p, "/e2", &[]).await;
    assert_eq!((stopped.status, stopped.cache(), stopped.n()), (200, "STALE", 1));
    // Nothing stored: the error is the client's answer.
    assert_eq!(get(&p, "/never-stored", &[]).await.status, 502);
}

#[tokio::test]
async fn stale_if_error_covers_a_timeout_and_every_target_down() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(
        Yaml::web(
            r#"
cache_store: {max_size_mb: 16}
upstreams:
  o:
    targets: ["$o"]
    timeouts: {read_ms: 300}
    health_check: {http: {path: /healthz, expect_status: 200}, interval_ms: 100}
routes:
  - {name: cached, upstream: o, cache: {ttl_s: 1, stale_if_error_s: 300}}
"#,
        )
        .set("o", o.addr),
    )
    .await;
    get(&p, "/t1", &[]).await;
    get(&p, "/t2", &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The origin answers too late: the read times out, the stale copy answers.
    o.set_delay_ms(1000);
    let slow = get(&p, "/t1", &[]).await;
    assert_eq!((slow.status, slow.cache(), slow.n()), (200, "STALE", 1));
    // Its health check fails too: no target is up, the stale copy still answers.
    o.set_delay_ms(0);
    o.set_failing(true);
    eventually(Duration::from_secs(5), "the only target is marked down", || async {
        metric(&p.metrics().await, "portico_upstream_target_healthy", &format!(r#"target="{}",upstream="o""#, o.addr))
            == 0.0
    })
    .await;
    let down = get(&p, "/t2", &[]).await;
    assert_eq!((down.status, down.cache(), down.n()), (200, "STALE", 1));
}

#[tokio::test]
async fn purge_by_url_prefix_and_route_makes_the_next_request_a_miss() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(
        config(&o, "{max_size_mb: 16}", "{ttl_s: 60}")
            .add("admin: {listen: \"127.0.0.1:$admin\", token: secret-token-0123456789}\n"),
    )
    .await;
    get(&p, "/p/1?vary=accept", &[("accept", "a")]).await;
    get(&p, "/p/1?vary=accept", &[("accept", "b")]).await;
    get(&p, "/p/2", &[]).await;
    get(&p, "/q/1", &[]).await;
    let purge = |body: &'static str, token: &'static str| {
        let url = p.admin_url("/cache/purge");
        async move {
            let r = client().post(url).bearer_auth(token).body(body).send().await.expect("purge");
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    assert_eq!(purge(r#"{"path": "/p/1"}"#, "wrong").await.0, 401, "the admin token applies");
    let (status, bad) = purge(r#"{"paths": "/p/1"}"#, "secret-token-0123456789").await;
    assert_eq!((status, bad["error"].as_str()), (400, Some("bad_request")));
    assert_eq!(purge(r#"{"prefix": "p/"}"#, "secret-token-0123456789").await.0, 400);

    let (status, url) = purge(r#"{"host": "127.0.0.1", "path": "/p/1"}"#, "secret-token-0123456789").await;
    assert_eq!((status, url["purged"].as_u64()), (200, Some(2)), "one URL, both variants");
    assert_eq!(get(&p, "/p/1?vary=accept", &[("accept", "a")]).await.cache(), "MISS");
    assert_eq!(get(&p, "/p/2", &[]).await.cache(), "HIT");
    let (_, prefix) = purge(r#"{"prefix": "/p/"}"#, "secret-token-0123456789").await;
    assert_eq!(prefix["purged"].as_u64(), Some(2), "/p/1 (stored again) and /p/2");
    assert_eq!(get(&p, "/p/2", &[]).await.cache(), "MISS");
    let (_, route) = purge(r#"{"route": "cached"}"#, "secret-token-0123456789").await;
    assert_eq!(route["purged"].as_u64(), Some(2), "/p/2 (stored again) and /q/1");
    assert_eq!(get(&p, "/q/1", &[]).await.cache(), "MISS");
    assert_eq!(o.served(), 7);
}

/// The key and purges read the host as routing does: case and the DNS root's dot make no
/// second entry, a port does (the origin sees it), and a purge by host reaches every spelling.
#[tokio::test]
async fn host_spellings_share_an_entry_the_port_is_keyed_and_a_host_purge_reaches_all() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(
        config(&o, "{max_size_mb: 16}", "{ttl_s: 60}")
            .add("admin: {listen: \"127.0.0.1:$admin\", token: secret-token-0123456789}\n"),
    )
    .await;
    let host = |h: &'static str| [("host", h)];
    assert_eq!(get(&p, "/h/1", &host("Shop.Example.com.")).await.cache(), "MISS");
    assert_eq!(get(&p, "/h/1", &host("shop.example.com")).await.cache(), "HIT", "one host, one entry");
    assert_eq!(get(&p, "/h/1", &host("shop.example.com:8080")).await.cache(), "MISS", "the port is keyed");
    assert_eq!(get(&p, "/h/1", &host("SHOP.example.com.:8080")).await.cache(), "HIT");
    let r = client()
        .post(p.admin_url("/cache/purge"))
        .bearer_auth("secret-token-0123456789")
        .body(r#"{"host": "shop.EXAMPLE.com.", "path": "/h/1"}"#)
        .send()
        .await
        .expect("purge");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap_or_default()["purged"], 2, "both ports' entries");
    assert_eq!(get(&p, "/h/1", &host("shop.example.com")).await.cache(), "MISS");
    assert_eq!(o.served(), 3);
}

#[tokio::test]
async fn the_cache_stays_under_max_size_with_ten_times_that_working_set() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(config(&o, "{max_size_mb: 2, max_object_mb: 1}", "{ttl_s: 600}")).await;
    let max = 2 * 1024 * 1024;
    let rss = || rss_kib(p.pid());
    // Warm up the process (connections, buffers) before the baseline.
    for i in 0..20 {
        get(&p, &format!("/warm/{i}?size=100000"), &[]).await;
    }
    let before = rss();
    // 20 MiB of distinct objects, twice.
    for round in 0..2 {
        for i in 0..200 {
            let g = get(&p, &format!("/big/{i}?size=104857"), &[]).await;
            assert_eq!((g.status, g.body.len()), (200, 104857), "round {round} object {i}");
        }
        // pingora-cache purges what eviction picks in a task of its own, just after each write:
        // at any moment the store is over the bound by at most the object being evicted.
        let m = p.metrics().await;
        let stored = metric(&m, "portico_cache_stored_bytes", "");
        assert!(stored <= (max + (1 << 20)) as f64, "stored {stored} bytes > {max} + one object");
        assert!(metric(&m, "portico_cache_evictions_total", "") > 0.0);
        eventually(Duration::from_secs(5), "the store is back under max_size_mb", || async {
            metric(&p.metrics().await, "portico_cache_stored_bytes", "") <= max as f64
        })
        .await;
    }
    let grown_kib = rss().saturating_sub(before);
    eprintln!("RSS {before} KiB before the working set, grew {grown_kib} KiB");
    assert!(grown_kib < 16 * 1024, "RSS grew {grown_kib} KiB for a 2 MiB cache over a 20 MiB working set");
    // The newest objects are all still there: a cache this small keeps one exact LRU (a
    // sharded one, which evicts from the longer of two random shards, kept 2 to 10 of these).
    let mut hits = 0;
    for i in 190..200 {
        hits += usize::from(get(&p, &format!("/big/{i}?size=104857"), &[]).await.cache() == "HIT");
    }
    assert_eq!(hits, 10, "of the last 10 objects, {hits} were still stored");
}

#[tokio::test]
async fn a_response_larger_than_max_object_streams_through_unstored() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(config(&o, "{max_size_mb: 4, max_object_mb: 1}", "{ttl_s: 600}")).await;
    for q in ["size=2000000", "size=2000000&chunked=1"] {
        let path = format!("/large?{q}");
        let before = o.served();
        for _ in 0..2 {
            let g = get(&p, &path, &[]).await;
            assert_eq!((g.status, g.body.len()), (200, 2_000_000), "{q}");
            assert_eq!(g.cache(), "MISS", "{q}");
        }
        assert_eq!(o.served() - before, 2, "{q}: not stored");
    }
    // Under the limit, chunked or not, it is stored.
    get(&p, "/small?size=500000&chunked=1", &[]).await;
    assert_eq!(get(&p, "/small?size=500000&chunked=1", &[]).await.cache(), "HIT");
}

#[tokio::test]
async fn a_large_miss_reaches_the_client_while_it_is_being_stored() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(config(&o, "{max_size_mb: 16, max_object_mb: 4}", "{ttl_s: 600}")).await;
    // 1 MiB in 16 KiB chunks; the origin pauses 1.5 s after the first one.
    let path = "/stream?size=1048576&chunked=1&pause=1500";
    let started = Instant::now();
    let mut r = client().get(p.url("web", path)).send().await.expect("request");
    let first = r.chunk().await.expect("body").expect("a first chunk");
    assert!(!first.is_empty());
    assert!(started.elapsed() < Duration::from_millis(1200), "the first bytes came before the origin finished");
    let mut len = first.len();
    while let Some(c) = r.chunk().await.expect("body") {
        len += c.len();
    }
    assert_eq!(len, 1048576);
    let again = get(&p, path, &[]).await;
    assert_eq!((again.cache(), again.body.len()), ("HIT", 1048576), "and it was stored whole");
    assert_eq!(o.served(), 1);
}

#[tokio::test]
async fn filters_run_on_hits_and_other_methods_bypass() {
    let o = CountingOrigin::start().await;
    let p = Portico::start(
        Yaml::web(
            r#"
cache_store: {max_size_mb: 16}
consumers: [{name: app, api_keys: [key-1]}]
upstreams: {o: {targets: ["$o"]}}
routes:
  - name: cached
    upstream: o
    cache: {ttl_s: 60}
    filters: [{api_key: {header: x-api-key}}]
"#,
        )
        .set("o", o.addr),
    )
    .await;
    let key = [("x-api-key", "key-1")];
    get(&p, "/f", &key).await;
    assert_eq!(get(&p, "/f", &key).await.cache(), "HIT");
    assert_eq!(get(&p, "/f", &[]).await.status, 401, "no key, no hit");
    let post = send(&p, reqwest::Method::POST, "/f", &key).await;
    assert_eq!((post.status, post.cache()), (200, "BYPASS"));
    assert_eq!(o.served(), 2);
}

#[tokio::test]
async fn a_reload_keeps_what_is_cached() {
    let o = CountingOrigin::start().await;
    let mut p = start(&o, "{ttl_s: 60}").await;
    get(&p, "/kept", &[]).await;
    p.rewrite_config(config(&o, "{max_size_mb: 32}", "{ttl_s: 60}"));
    let r = client().post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200);
    assert_eq!(get(&p, "/kept", &[]).await.cache(), "HIT");
    assert_eq!(o.served(), 1);
}

#[tokio::test]
async fn check_refuses_a_cache_route_without_a_cache_store() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("portico.yaml");
    std::fs::write(
        &file,
        "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\nupstreams: {o: {targets: [\"127.0.0.1:2\"]}}\nroutes:\n  - name: c\n    upstream: o\n    cache: {ttl_s: 60}\n",
    )
    .expect("write");
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_portico")).args(["-t", "-c"]).arg(&file).output().expect("run");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("portico.yaml:6") && text.contains("cache_store"), "{text}");
}

#[tokio::test]
async fn the_example_config_checks() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["-t", "-c", concat!(env!("CARGO_MANIFEST_DIR"), "/conf/cache.yaml")])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
