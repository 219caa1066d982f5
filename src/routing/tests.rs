//! Routing tests: matching, precedence and the misses explain reports.
use super::*;
use crate::config::{Action, RespondSpec};

fn route(
    name: &str,
    index: usize,
    path: PathPattern,
    hosts: Vec<HostPattern>,
    methods: Option<Vec<Method>>,
) -> Arc<RouteSpec> {
    Arc::new(RouteSpec::new(
        name,
        index,
        MatchSpec { hosts, path, methods, headers: vec![], query: vec![] },
        Action::Respond(RespondSpec { status: 200, body: Default::default(), headers: vec![] }),
    ))
}

fn find<'a>(r: &'a ListenerRouter, method: &Method, host: &str, path: &str) -> Option<&'a str> {
    let headers = HeaderMap::new();
    match r.find(&RequestView { method, host, path, query: None, headers: &headers }) {
        RouteMatch::Found(r) => Some(&r.name),
        _ => None,
    }
}

#[test]
fn longest_prefix_and_exact_win() {
    let r = ListenerRouter::new(vec![
        route("root", 0, PathPattern::Any, vec![], None),
        route("users", 1, PathPattern::Prefix("/users".into()), vec![], None),
        route("me", 2, PathPattern::Exact("/users/me".into()), vec![], None),
        route("v1", 3, PathPattern::Prefix("/users/v1".into()), vec![], None),
    ]);
    let get = Method::GET;
    assert_eq!(find(&r, &get, "x", "/users/me"), Some("me"));
    assert_eq!(find(&r, &get, "x", "/users/v1/a"), Some("v1"));
    assert_eq!(find(&r, &get, "x", "/users/2"), Some("users"));
    assert_eq!(find(&r, &get, "x", "/usersfoo"), Some("root"));
    assert_eq!(find(&r, &get, "x", "/"), Some("root"));
}

#[test]
fn routes_sharing_a_first_segment_are_told_apart() {
    let mut routes: Vec<_> = (0..1000)
        .map(|i| route(&format!("svc{i}"), i, PathPattern::Prefix(format!("/api/svc{i}")), vec![], None))
        .collect();
    routes.push(route("api", 1000, PathPattern::Prefix("/api".into()), vec![], None));
    let r = ListenerRouter::new(routes);
    let get = Method::GET;
    assert_eq!(find(&r, &get, "x", "/api/svc999/items"), Some("svc999"));
    assert_eq!(find(&r, &get, "x", "/api/svc5"), Some("svc5"));
    assert_eq!(find(&r, &get, "x", "/api/other"), Some("api"));
    assert_eq!(find(&r, &get, "x", "/api"), Some("api"));
    assert_eq!(find(&r, &get, "x", "/apix"), None);
}

#[test]
fn hosts_exact_and_wildcard() {
    let r = ListenerRouter::new(vec![
        route("api", 0, PathPattern::Any, vec![HostPattern::Exact("api.example.com".into())], None),
        route("wild", 1, PathPattern::Any, vec![HostPattern::Suffix(".example.com".into())], None),
    ]);
    let get = Method::GET;
    assert_eq!(find(&r, &get, "API.example.com", "/"), Some("api"));
    assert_eq!(find(&r, &get, "www.example.com", "/"), Some("wild"));
    assert_eq!(find(&r, &get, "example.com", "/"), None);
}

#[test]
fn method_mismatch_gives_allow() {
    let r = ListenerRouter::new(vec![route(
        "u",
        0,
        PathPattern::Prefix("/u".into()),
        vec![],
        Some(vec![Method::GET, Method::POST]),
    )]);
    let headers = HeaderMap::new();
    match r.find(&RequestView { method: &Method::DELETE, host: "h", path: "/u/1", query: None, headers: &headers }) {
        RouteMatch::MethodNotAllowed(allow) => assert_eq!(allow, "GET, POST"),
        other => panic!("expected 405, got {other:?}"),
    }
}
