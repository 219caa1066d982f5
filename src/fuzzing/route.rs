//! The route target: routes and a request decoded from the bytes, the request read by Pingora
//! and canonicalized as `request_filter` does, then routed by the indexed router and, as the
//! oracle, by a scan of every route in rank order with [`misses`], the predicates `/explain`
//! uses.

use super::{block_on, session, Input};
use crate::proxy::{canon, select};
use crate::routing::{misses, Miss, RequestView, RouteMatch, Router};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// Segments route paths are made of.
const ROUTE_SEGMENTS: &[&str] = &["api", "admin", "a", "users", "v1", "", "A", "x;y"];
/// Segments request paths are made of (a raw slice of the input is the last choice).
const REQUEST_SEGMENTS: &[&str] =
    &["api", "admin", "a", "users", "v1", "", ".", "..", "%61dmin", "Admin", "x;y", "%2e", "~", "*", "?a=1"];
const HOSTS: &[&str] = &["api.example.com", "*.example.com", "Example.COM", "h", "[::1]"];
const REQUEST_HOSTS: &[&str] =
    &["api.example.com", "API.example.com.", "api.example.com:8080", "x.example.com", "example.com", "h", "[::1]:80"];
const METHODS: &[&str] = &["GET", "POST", "DELETE", "HEAD", "OPTIONS", "get", "PUT"];

/// Routes `data`'s request on `data`'s routes two ways and checks that they agree.
pub fn route(data: &[u8]) {
    let mut input = Input(data);
    let Some((router, listener)) = routes(&mut input) else {
        return;
    };
    let raw = request(&mut input);
    block_on(async {
        let Some(mut session) = session(&raw).await else {
            return;
        };
        let Ok(canonical) = canon::canonicalize(&mut session, Some(&listener), &[]) else {
            return;
        };
        let req = session.req_header();
        let host = select::host(req);
        assert_eq!(canonical.as_deref(), host.as_deref(), "canonicalize and select::host give one host");
        let view = RequestView {
            method: &req.method,
            host: host.as_deref().unwrap_or(""),
            path: req.uri.path(),
            query: req.uri.query(),
            headers: &req.headers,
        };
        let table = router.listener("web").expect("the fuzz config has the listener `web`");
        let found = table.find(&view);
        let (expected, allow) = scan(table.routes(), &view);
        match (&found, expected) {
            (RouteMatch::Found(a), Some(b)) => assert_eq!(a.name, b.name, "index and scan chose differently"),
            (RouteMatch::Found(a), None) => panic!("index chose {} where the scan finds nothing", a.name),
            (_, Some(b)) => panic!("the scan chooses {} where the index gives {found:?}", b.name),
            (RouteMatch::MethodNotAllowed(a), None) => assert_eq!(Some(a), allow.as_ref(), "Allow differs"),
            (RouteMatch::NotFound, None) => assert_eq!(allow, None, "scan says 405, index 404"),
        }
        // What `request_filter` calls agrees with both.
        let chosen = select::route(&router, "web", req, host.as_deref()).ok().map(|r| r.name.clone());
        assert_eq!(chosen, expected.map(|r| r.name.clone()), "select::route differs");
    })
}

/// The first route in rank order that `view` misses nothing of, else the `Allow` value of
/// those it misses only by method.
fn scan<'a>(
    routes: &'a [Arc<crate::config::RouteSpec>],
    view: &RequestView<'_>,
) -> (Option<&'a Arc<crate::config::RouteSpec>>, Option<String>) {
    let mut allow: Vec<&str> = Vec::new();
    for r in routes {
        let m = misses(r, view);
        if m.is_empty() {
            return (Some(r), None);
        }
        if m == [Miss::Method] {
            allow.extend(r.matcher.methods.iter().flatten().map(|m| m.as_str()));
        }
    }
    allow.sort_unstable();
    allow.dedup();
    (None, (!allow.is_empty()).then(|| allow.join(", ")))
}

/// A config of up to 8 routes decoded from the input, loaded by the real loader; `None` when it
/// refuses them.
fn routes(input: &mut Input<'_>) -> Option<(Router, Arc<crate::config::ListenerSpec>)> {
    let n = input.byte() % 8 + 1;
    let mut routes = Vec::new();
    for i in 0..n {
        let mut path = String::new();
        for _ in 0..input.byte() % 4 {
            path.push('/');
            path.push_str(input.pick(ROUTE_SEGMENTS));
        }
        let path = if path.is_empty() { "/".to_string() } else { path };
        let mut matcher = serde_json::Map::new();
        match input.byte() % 5 {
            0 | 1 => drop(matcher.insert("path".into(), json!(path))),
            2 => drop(matcher.insert("path_exact".into(), json!(path))),
            3 => drop(matcher.insert("path_regex".into(), json!(format!("^{path}")))),
            _ => {}
        }
        let flags = input.byte();
        if flags & 1 != 0 {
            matcher.insert("host".into(), json!([input.pick(HOSTS)]));
        }
        if flags & 2 != 0 {
            matcher.insert("methods".into(), json!([input.pick(&METHODS[..5]), input.pick(&METHODS[..5])]));
        }
        if flags & 4 != 0 {
            matcher.insert("headers".into(), json!({"x-v": input.pick(&["1", "*"])}));
        }
        if flags & 8 != 0 {
            matcher.insert("query".into(), json!({"a": input.pick(&["1", "*"])}));
        }
        let priority = i32::from(input.byte() % 3) - 1;
        routes.push(json!({"name": format!("r{i}"), "match": matcher, "priority": priority, "upstream": "u"}));
    }
    let normalization = if input.byte() % 4 == 0 { "off" } else { "strict" };
    let config = json!({
        "listeners": [{"name": "web", "listen": "127.0.0.1:1", "path_normalization": normalization}],
        "upstreams": {"u": {"targets": ["127.0.0.1:1"]}},
        "routes": routes,
    });
    let config = crate::config::load_str(&config.to_string(), Path::new("fuzz-route.json")).ok()?;
    let names: Vec<Arc<str>> = config.listeners.iter().map(|l| l.name.clone()).collect();
    let router = Router::new(&names, &config.routes);
    Some((router, config.listeners.first()?.clone()))
}

/// The raw bytes of a request decoded from the rest of the input.
fn request(input: &mut Input<'_>) -> Vec<u8> {
    let method = input.pick(METHODS);
    let host = input.pick(REQUEST_HOSTS);
    let flags = input.byte();
    let mut path = Vec::new();
    if flags & 1 != 0 {
        path.extend_from_slice(format!("http://{host}").as_bytes());
    }
    for _ in 0..input.byte() % 5 {
        path.extend_from_slice(b"/");
        match input.byte() as usize % (REQUEST_SEGMENTS.len() + 1) {
            i if i < REQUEST_SEGMENTS.len() => path.extend_from_slice(REQUEST_SEGMENTS[i].as_bytes()),
            _ => path.extend_from_slice(input.slice()),
        }
    }
    if path.is_empty() || flags & 1 != 0 && path.len() == 7 + host.len() {
        path.push(b'/');
    }
    if flags & 2 != 0 {
        path.extend_from_slice(input.pick(&[&b"?a=1"[..], b"?a=2&b", b"?a", b"?b=1&a=1"]));
    }
    let mut raw = Vec::new();
    raw.extend_from_slice(method.as_bytes());
    raw.push(b' ');
    raw.extend_from_slice(&path);
    raw.extend_from_slice(b" HTTP/1.1\r\n");
    if flags & 4 == 0 {
        raw.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
    }
    if flags & 8 != 0 {
        raw.extend_from_slice(format!("x-v: {}\r\n", input.pick(&["1", "2"])).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw
}
