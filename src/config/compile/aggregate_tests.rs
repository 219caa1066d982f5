//! What an aggregate route compiles to, and every mistake it refuses with its YAML path.

use crate::config::defaults as d;
use crate::config::{load_str, Action};
use std::path::Path;
use std::time::Duration;

const HEAD: &str = r#"
listeners: [{name: web, listen: "127.0.0.1:0"}]
upstreams: {users: {targets: ["127.0.0.1:9"]}, orders: {targets: ["127.0.0.1:10"]}}
routes:
"#;

fn errors(routes: &str) -> Vec<(String, String)> {
    match load_str(&format!("{HEAD}{routes}"), Path::new("t.yaml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

#[test]
fn parts_compile_with_their_defaults() {
    let routes = r#"
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[0-9]+)$"}
    aggregate:
      - {name: user, upstream: users, path: "/users/{id}"}
      - {name: orders, upstream: orders, path: "/orders?user={id}&q={query.q}", method: POST,
         body: '{"user": "{id}"}', required: false, timeout_ms: 300}
"#;
    let c = load_str(&format!("{HEAD}{routes}"), Path::new("t.yaml")).expect("valid");
    let Action::Aggregate(a) = &c.routes[0].action else { panic!("an aggregate") };
    assert_eq!((a.merge, a.max_part_bytes), (d::AGGREGATE_MERGE, d::AGGREGATE_MAX_PART_BYTES));
    let (user, orders) = (&a.parts[0], &a.parts[1]);
    assert_eq!((&*user.name, &*user.upstream, user.method.as_str()), ("user", "users", d::AGGREGATE_METHOD));
    assert_eq!((user.required, user.timeout, user.body.is_some()), (d::AGGREGATE_REQUIRED, None, false));
    assert_eq!(user.path.as_str(), "/users/{id}");
    assert_eq!((orders.method.as_str(), orders.required), ("POST", false));
    assert_eq!(orders.timeout, Some(Duration::from_millis(300)));
    assert!(orders.body.is_some());
}

#[test]
fn mistakes_are_refused_where_they_are() {
    let errs = errors(
        r#"
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[0-9]+)$"}
    retry: {attempts: 1}
    aggregate:
      - {name: user, upstream: nope, path: "/users/{user}"}
      - {name: user, upstream: users, path: "users", method: "BAD METHOD"}
      - {name: "a b", upstream: users, path: /x, body: '{"q": "{query.q}", "x": "{x}"}', timeout_ms: 0}
  - {name: empty, aggregate: []}
  - {name: stray, upstream: users, aggregate_merge: true}
  - {name: both, upstream: users, aggregate: [{name: a, upstream: users, path: /a}]}
"#,
    );
    let at = |path: &str| errs.iter().find(|(p, _)| p == path).map(|(_, m)| m.as_str()).unwrap_or("");
    assert!(at("routes[0].retry").contains("does not apply"), "{errs:?}");
    assert!(at("routes[0].aggregate[0].upstream").contains("no upstream named \"nope\""), "{errs:?}");
    assert!(at("routes[0].aggregate[0].path").contains("{user}"), "{errs:?}");
    assert!(at("routes[0].aggregate[1].name").contains("duplicate"), "{errs:?}");
    assert!(at("routes[0].aggregate[1].path").contains("starting with /"), "{errs:?}");
    assert!(at("routes[0].aggregate[1].method").contains("method"), "{errs:?}");
    assert!(at("routes[0].aggregate[2].name").contains("letters"), "{errs:?}");
    assert!(at("routes[0].aggregate[2].body").contains("{x}"), "{errs:?}");
    assert!(at("routes[0].aggregate[2].timeout_ms").contains("at least 1"), "{errs:?}");
    assert!(at("routes[1].aggregate").contains("at least one part"), "{errs:?}");
    assert!(at("routes[2].aggregate_merge").contains("needs an `aggregate`"), "{errs:?}");
    assert!(at("routes[3]").contains("exclude each other"), "{errs:?}");
}
