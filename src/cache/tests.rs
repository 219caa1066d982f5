use super::metrics::StoreMetrics;
use super::*;
use crate::config::{CachePolicy, KeyPart};
use http::{HeaderName, Method};
use pingora::cache::eviction::CacheEntryKey;
use pingora::cache::storage::PurgeTarget;
use pingora::cache::trace::Span;
use pingora::cache::{CacheKey, CacheMeta, PurgeType, RespCacheable, Storage};
use pingora::http::{RequestHeader, ResponseHeader};
use std::time::{Duration, SystemTime};

fn store() -> &'static Store {
    Box::leak(Box::new(Store::new(StoreMetrics::unregistered())))
}

fn meta(fresh_s: u64) -> CacheMeta {
    let mut h = ResponseHeader::build(200, None).expect("header");
    h.append_header("content-type", "text/plain").expect("header");
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(fresh_s), now, 5, 7, h)
}

async fn put(s: &'static Store, key: &CacheKey, body: &[u8]) -> usize {
    let span = Span::inactive().handle();
    let mut miss = s.get_miss_handler(key, &meta(60), &span).await.expect("miss handler");
    for chunk in body.chunks(3) {
        miss.write_body(bytes::Bytes::copy_from_slice(chunk), false).await.expect("write");
    }
    match miss.finish().await.expect("finish") {
        pingora::cache::storage::MissFinishType::Created(w) => w,
        _ => panic!("a write creates"),
    }
}

async fn read(s: &'static Store, key: &CacheKey, range: Option<(usize, usize)>) -> Option<Vec<u8>> {
    let span = Span::inactive().handle();
    let (_, mut hit) = s.lookup(key, &span).await.expect("lookup")?;
    if let Some((a, b)) = range {
        hit.seek(a, Some(b)).expect("seek");
    }
    let mut out = Vec::new();
    while let Some(b) = hit.read_body().await.expect("read") {
        out.extend_from_slice(&b);
    }
    Some(out)
}

#[tokio::test]
async fn a_finished_write_is_read_back_whole_and_in_ranges() {
    let s = store();
    let key = CacheKey::new("k", "");
    assert!(read(s, &key, None).await.is_none());
    let weight = put(s, &key, b"hello world").await;
    assert!(weight > 11, "the weight counts headers and overhead too");
    assert_eq!(read(s, &key, None).await.as_deref(), Some(&b"hello world"[..]));
    assert_eq!(read(s, &key, Some((6, 11))).await.as_deref(), Some(&b"world"[..]));
    assert_eq!(s.objects(), 1);
    assert_eq!(s.stored_bytes(), weight);
}

#[tokio::test]
async fn an_unfinished_write_leaves_nothing() {
    let s = store();
    let key = CacheKey::new("k", "");
    let span = Span::inactive().handle();
    let mut miss = s.get_miss_handler(&key, &meta(60), &span).await.expect("miss");
    miss.write_body(bytes::Bytes::from_static(b"part"), false).await.expect("write");
    drop(miss);
    assert!(read(s, &key, None).await.is_none());
    assert_eq!((s.objects(), s.stored_bytes()), (0, 0));
}

#[tokio::test]
async fn metadata_keeps_freshness_age_and_variance() {
    let s = store();
    let mut key = CacheKey::new("k", "");
    key.set_variance_key([7; 16]);
    let span = Span::inactive().handle();
    let mut m = meta(60);
    m.set_variance([7; 16]);
    let miss = s.get_miss_handler(&key, &m, &span).await.expect("miss");
    miss.finish().await.expect("finish");
    let (back, _) = s.lookup(&key, &span).await.expect("lookup").expect("hit");
    assert_eq!(back.fresh_until(), m.fresh_until());
    assert_eq!((back.stale_while_revalidate_sec(), back.stale_if_error_sec()), (5, 7));
    assert_eq!(back.variance(), Some([7; 16]));
    assert_eq!(back.response_header().headers.get("content-type").map(|v| v.as_bytes()), Some(&b"text/plain"[..]));
    // A revalidation moves freshness; the body stays.
    let newer = meta(120);
    assert!(s.update_meta(&key, &newer, &span).await.expect("update"));
    let (back, _) = s.lookup(&key, &span).await.expect("lookup").expect("hit");
    assert_eq!(back.fresh_until(), newer.fresh_until());
    assert!(!s.update_meta(&CacheKey::new("absent", ""), &newer, &span).await.expect("update"));
}

#[tokio::test]
async fn purges_select_by_url_prefix_and_route() {
    let s = store();
    let span = Span::inactive().handle();
    for (route, path) in [("a", "/x/1?q=1"), ("a", "/x/2"), ("b", "/y")] {
        let key =
            key::build(&CachePolicy { route: route.into(), ..policy() }, &request_to("Example.com:8080", path), None);
        let miss = s.get_miss_handler(&key, &meta(60), &span).await.expect("miss");
        miss.finish().await.expect("finish");
    }
    let url = PurgeRequest::parse(br#"{"host": "example.com", "path": "/x/1"}"#).expect("parse");
    assert_eq!(s.purge_matching(&url).len(), 1);
    let prefix = PurgeRequest::parse(br#"{"prefix": "/x/"}"#).expect("parse");
    assert_eq!(s.purge_matching(&prefix).len(), 1);
    let route = PurgeRequest::parse(br#"{"route": "b"}"#).expect("parse");
    assert_eq!(s.purge_matching(&route).len(), 1);
    assert_eq!((s.objects(), s.stored_bytes()), (0, 0));
    // Eviction goes through the same removal.
    let key = CacheKey::new("e", "");
    put(s, &key, b"abc").await;
    let target = CacheEntryKey::key_only(key.to_compact());
    s.purge(PurgeTarget::Exact(&target), PurgeType::Eviction, &span).await.expect("purge");
    assert_eq!((s.objects(), s.evictions()), (0, 1));
}

#[test]
fn purge_bodies_are_checked() {
    for bad in [
        &b"{}"[..],
        b"not json",
        br#"{"path": "x"}"#,
        br#"{"path": "/a", "prefix": "/b"}"#,
        br#"{"route": "r", "host": "h"}"#,
        br#"{"url": "/a"}"#,
    ] {
        assert!(PurgeRequest::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let with_query = PurgeRequest::parse(br#"{"path": "/a?b=1"}"#).expect("parse");
    assert!(with_query.matches(&tag("h", "/a?b=1")));
    assert!(!with_query.matches(&tag("h", "/a?b=2")));
    let any_query = PurgeRequest::parse(br#"{"path": "/a", "host": "H:80"}"#).expect("parse");
    assert!(any_query.matches(&tag("h", "/a?b=2")));
    assert!(!any_query.matches(&tag("other", "/a")));
}

#[tokio::test]
async fn the_eviction_manager_keeps_the_store_under_its_bound() {
    let spec = crate::config::CacheStoreSpec {
        max_size_bytes: 64 * 1024,
        max_object_bytes: 16 * 1024,
        lock_timeout: Duration::from_secs(1),
    };
    let cache = Cache::new(&spec, CacheMetrics::new(&crate::telemetry::Metrics::new().expect("metrics")));
    let span = Span::inactive().handle();
    let body = vec![b'x'; 8 * 1024];
    for i in 0..100 {
        let key = CacheKey::new(format!("k{i}"), "");
        let weight = put(cache.store, &key, &body).await;
        // What pingora-cache does after a write: admit, then purge what comes back.
        let evicted =
            cache.eviction.manager().admit(CacheEntryKey::key_only(key.to_compact()), weight, SystemTime::now());
        for item in evicted {
            cache.store.purge(PurgeTarget::Exact(&item), PurgeType::Eviction, &span).await.expect("purge");
        }
        assert!(cache.store.stored_bytes() <= spec.max_size_bytes, "after {i}: {}", cache.store.stored_bytes());
    }
    // A cache this small keeps one LRU: exactly the newest objects that fit stay.
    assert!(matches!(cache.eviction, Eviction::Single(_)));
    let mut stored = Vec::new();
    for i in 0..100 {
        if read(cache.store, &CacheKey::new(format!("k{i}"), ""), None).await.is_some() {
            stored.push(i);
        }
    }
    let first_kept = 100 - stored.len();
    assert!(stored.len() >= 4, "{stored:?}");
    assert_eq!(stored, (first_kept..100).collect::<Vec<_>>(), "the newest, and only they");
    assert!(matches!(Eviction::new(SHARDED_FROM_BYTES), Eviction::Sharded(_)));
}

fn request_to(host: &str, path_and_query: &str) -> RequestHeader {
    let mut r = RequestHeader::build("GET", path_and_query.as_bytes(), None).expect("request");
    r.insert_header("host", host).expect("header");
    r
}

/// The tag the store records for a request to `host` for `path_and_query` on route `r`.
fn tag(host: &str, path_and_query: &str) -> EntryTag {
    key::tag(&key::build(&policy(), &request_to(host, path_and_query), None))
}

fn policy() -> CachePolicy {
    CachePolicy {
        route: "r".into(),
        ttl: Duration::from_secs(60),
        vary: vec![HeaderName::from_static("x-lang")],
        key: vec![KeyPart::Host, KeyPart::Path, KeyPart::Query],
        methods: vec![Method::GET, Method::HEAD],
        stale_while_revalidate: Duration::from_secs(10),
        stale_if_error: Duration::from_secs(20),
    }
}

fn response(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
    let mut h = ResponseHeader::build(status, None).expect("header");
    for (k, v) in headers {
        h.append_header(k.to_string(), *v).expect("header");
    }
    h
}

fn request(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/a?b=1", None).expect("request");
    r.insert_header("host", "example.com").expect("header");
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).expect("header");
    }
    r
}

fn fresh_secs(r: RespCacheable) -> Option<u64> {
    match r {
        RespCacheable::Cacheable(m) => {
            Some(m.fresh_until().duration_since(SystemTime::now()).map_or(0, |d| d.as_secs() + 1))
        }
        RespCacheable::Uncacheable(_) => None,
    }
}

#[test]
fn the_policy_follows_the_origin_then_the_route() {
    let p = policy();
    let plain = request(&[]);
    let authorized = request(&[("authorization", "Bearer x")]);
    type Case<'a> = (&'a RequestHeader, u16, &'a [(&'a str, &'a str)], Option<u64>);
    let cases: [Case; 11] = [
        (&plain, 200, &[], Some(60)),
        (&plain, 200, &[("cache-control", "max-age=5")], Some(5)),
        (&plain, 200, &[("cache-control", "s-maxage=7, max-age=5")], Some(7)),
        (&plain, 200, &[("cache-control", "no-store")], None),
        (&plain, 200, &[("cache-control", "private")], None),
        (&plain, 200, &[("set-cookie", "a=b"), ("cache-control", "max-age=5")], None),
        (&plain, 200, &[("vary", "accept, *")], None),
        (&plain, 404, &[], None),
        (&plain, 404, &[("cache-control", "max-age=5")], Some(5)),
        (&authorized, 200, &[("cache-control", "max-age=5")], None),
        (&authorized, 200, &[("cache-control", "public, max-age=5")], Some(5)),
    ];
    for (req, status, headers, want) in cases {
        let got = fresh_secs(policy::response_cacheable(&p, req, &response(status, headers)));
        assert_eq!(got, want, "{status} {headers:?}");
    }
    // Set-Cookie listed in private=: stored without it.
    let listed = response(200, &[("set-cookie", "a=b"), ("cache-control", "max-age=5, private=\"set-cookie\"")]);
    let RespCacheable::Cacheable(m) = policy::response_cacheable(&p, &plain, &listed) else { panic!("stored") };
    assert!(!m.headers().contains_key("set-cookie"));
    // The route's stale windows unless the origin says otherwise.
    let RespCacheable::Cacheable(m) = policy::response_cacheable(&p, &plain, &response(200, &[])) else { panic!() };
    assert_eq!((m.stale_while_revalidate_sec(), m.stale_if_error_sec()), (10, 20));
    let mr = response(200, &[("cache-control", "max-age=5, must-revalidate")]);
    let RespCacheable::Cacheable(m) = policy::response_cacheable(&p, &plain, &mr) else { panic!() };
    assert_eq!((m.stale_while_revalidate_sec(), m.stale_if_error_sec()), (0, 0));
}

#[test]
fn variance_covers_the_route_vary_and_the_origin_vary() {
    let p = policy();
    let stored = meta_with(&[("vary", "Accept")]);
    let v = |headers: &[(&str, &str)]| policy::variance(&p, &stored, &request(headers));
    assert_eq!(v(&[("accept", "a"), ("x-lang", "en")]), v(&[("x-lang", "en"), ("accept", "a")]));
    assert_ne!(v(&[("accept", "a")]), v(&[("accept", "b")]));
    assert_ne!(v(&[("x-lang", "en")]), v(&[("x-lang", "de")]));
    let no_vary = CachePolicy { vary: vec![], ..policy() };
    assert_eq!(policy::variance(&no_vary, &meta_with(&[]), &request(&[])), None);
}

fn meta_with(headers: &[(&str, &str)]) -> CacheMeta {
    let now = SystemTime::now();
    CacheMeta::new(now, now, 0, 0, response(200, headers))
}

#[test]
fn keys_separate_routes_and_parts() {
    use pingora::cache::key::CacheHashKey;
    let p = policy();
    let k = |p: &CachePolicy, path: &str, consumer: Option<&str>| {
        let mut r = RequestHeader::build("GET", path.as_bytes(), None).expect("request");
        r.insert_header("host", "Example.com").expect("header");
        r.insert_header("cookie", "a=1; sid=xyz").expect("header");
        key::build(p, &r, consumer).primary_bin()
    };
    assert_eq!(k(&p, "/a?b=1", None), k(&p, "/a?b=1", Some("u")));
    assert_ne!(k(&p, "/a?b=1", None), k(&p, "/a?b=2", None));
    assert_ne!(k(&p, "/a?b", None), k(&p, "/a%3Fb", None));
    let other_route = CachePolicy { route: "s".into(), ..policy() };
    assert_ne!(k(&p, "/a", None), k(&other_route, "/a", None));
    let by_consumer = CachePolicy { key: vec![KeyPart::Path, KeyPart::Consumer], ..policy() };
    assert_ne!(k(&by_consumer, "/a", Some("u1")), k(&by_consumer, "/a", Some("u2")));
    let by_path_only = CachePolicy { key: vec![KeyPart::Path], ..policy() };
    assert_eq!(k(&by_path_only, "/a?b=1", None), k(&by_path_only, "/a?b=2", None));
    let by_cookie = CachePolicy { key: vec![KeyPart::Cookie("sid".into())], ..policy() };
    let by_missing_cookie = CachePolicy { key: vec![KeyPart::Cookie("none".into())], ..policy() };
    assert_ne!(k(&by_cookie, "/a", None), k(&by_missing_cookie, "/a", None));
}

#[test]
fn statuses_speak_nginx() {
    use pingora::cache::{CachePhase, NoCacheReason};
    let cases = [
        (CachePhase::Hit, "HIT"),
        (CachePhase::Miss, "MISS"),
        (CachePhase::Expired, "EXPIRED"),
        (CachePhase::Stale, "STALE"),
        (CachePhase::StaleUpdating, "UPDATING"),
        (CachePhase::Revalidated, "REVALIDATED"),
        (CachePhase::Disabled(NoCacheReason::NeverEnabled), "BYPASS"),
        (CachePhase::Disabled(NoCacheReason::OriginNotCache), "MISS"),
    ];
    for (phase, want) in cases {
        assert_eq!(CacheStatus::of(phase).as_str(), want);
        assert_eq!(CacheStatus::ALL[CacheStatus::of(phase) as usize], CacheStatus::of(phase));
    }
}

#[test]
fn a_key_records_where_the_request_went() {
    let t = key::tag(&key::build(&policy(), &request_to("API.example.com:8443", "/a/b?x=1&y=2"), None));
    let want =
        EntryTag { route: "r".into(), host: "api.example.com".into(), path: "/a/b".into(), query: "x=1&y=2".into() };
    assert_eq!(t, want);
    use pingora::cache::key::CacheHashKey;
    let hash = |host: &str| key::build(&policy(), &request_to(host, "/"), None).primary_bin();
    assert_eq!(hash("API.Example.com"), hash("api.example.com"), "host case does not matter");
    assert_eq!(hash("api.example.com."), hash("api.example.com"), "nor the DNS root's dot, as in routing");
    assert_ne!(hash("api.example.com:8443"), hash("api.example.com"), "the origin sees the port: it is keyed");
    assert_eq!(hash("api.example.com.:8443"), hash("API.example.com:8443"));
    assert_eq!(hash("[::1]:8080"), hash("[0:0::1]:8080"), "an IPv6 literal in any spelling");
    assert_ne!(hash("[::1]"), hash("[::1]:8080"));
    let dotted = key::tag(&key::build(&policy(), &request_to("API.example.com.", "/a/b?x=1&y=2"), None));
    assert_eq!(dotted, want, "a dotted host is the same purge target");
    let purge = PurgeRequest::parse(br#"{"host": "Api.Example.Com.", "prefix": "/a/"}"#).expect("parse");
    assert!(purge.matches(&dotted), "a purge names the host in any spelling routing accepts");
    assert_ne!(hash("api.example.com"), hash("www.example.com"));
    let v6 = key::tag(&key::build(&policy(), &request_to("[::1]:8080", "/"), None));
    assert_eq!((&*v6.host, &*v6.path, &*v6.query), ("[::1]", "/", ""));
}

#[tokio::test]
async fn a_write_under_way_when_a_purge_selects_it_is_not_stored() {
    let s = store();
    let span = Span::inactive().handle();
    let key_of = |path: &str| key::build(&policy(), &request_to("h", path), None);
    let (purged, other) = (key_of("/a/1"), key_of("/b/1"));
    let mut w1 = s.get_miss_handler(&purged, &meta(60), &span).await.expect("miss");
    let mut w2 = s.get_miss_handler(&other, &meta(60), &span).await.expect("miss");
    w1.write_body(bytes::Bytes::from_static(b"old"), true).await.expect("write");
    w2.write_body(bytes::Bytes::from_static(b"old"), true).await.expect("write");
    s.purge_matching(&PurgeRequest::parse(br#"{"prefix": "/a/"}"#).expect("parse"));
    w1.finish().await.expect("finish");
    w2.finish().await.expect("finish");
    assert!(read(s, &purged, None).await.is_none(), "fetched before the purge: not stored");
    assert!(read(s, &other, None).await.is_some(), "the purge did not select it");
    // A write that starts after the purge is stored.
    put(s, &purged, b"new").await;
    assert_eq!(read(s, &purged, None).await.as_deref(), Some(&b"new"[..]));
    // A write older than every purge kept is not stored, whatever those purges selected.
    let mut old = s.get_miss_handler(&other, &meta(60), &span).await.expect("miss");
    old.write_body(bytes::Bytes::from_static(b"x"), true).await.expect("write");
    for _ in 0..store::RECENT_PURGES + 1 {
        s.purge_matching(&PurgeRequest::parse(br#"{"route": "none"}"#).expect("parse"));
    }
    put(s, &key_of("/c"), b"c").await;
    old.finish().await.expect("finish");
    assert_eq!(read(s, &other, None).await.as_deref(), Some(&b"old"[..]), "the older write was not stored");
    assert!(read(s, &key_of("/c"), None).await.is_some());
}
