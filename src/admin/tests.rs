use super::explain::params;
use super::guard::{check, host_allowed, Refusal};
use super::stats::{quantile, Latency};
use super::Endpoint;
use crate::config::AdminAccess;
use http::{HeaderMap, HeaderValue, Method};
use std::net::SocketAddr;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn admin_host_must_name_the_admin_address() {
    let lo = addr("127.0.0.1:9901");
    for ok in ["127.0.0.1:9901", "localhost:9901", "LOCALHOST:9901", "[::1]:9901", "127.0.0.2:9901"] {
        assert!(host_allowed(ok, lo, None, 80), "{ok}");
    }
    for bad in ["evil.example:9901", "127.0.0.1:9902", "127.0.0.1", "10.0.0.1:9901", "[::1]", "localhost:x", "[::1"] {
        assert!(!host_allowed(bad, lo, None, 80), "{bad}");
    }
    let on80 = addr("127.0.0.1:80");
    assert!(host_allowed("localhost", on80, None, 80));

    let all = addr("0.0.0.0:9901");
    assert!(host_allowed("10.1.2.3:9901", all, None, 80), "any address when listening on all");
    assert!(!host_allowed("rebound.example:9901", all, None, 80), "never a name it was not given");
    assert!(host_allowed("admin.internal:9901", all, Some("admin.internal"), 80));

    let one = addr("10.0.0.5:9901");
    assert!(host_allowed("10.0.0.5:9901", one, None, 80));
    assert!(!host_allowed("localhost:9901", one, None, 80), "localhost is not this address");
    assert!(!host_allowed("10.0.0.6:9901", one, None, 80));
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).expect("value"));
    }
    h
}

fn access(token: Option<&str>) -> AdminAccess {
    let yaml = match token {
        Some(t) => format!("admin: {{listen: \"127.0.0.1:9901\", token: \"{t}\"}}\n"),
        None => "admin: {listen: \"127.0.0.1:9901\"}\n".to_string(),
    };
    let yaml = format!("{yaml}listeners: [{{name: web, listen: \"127.0.0.1:0\"}}]\n");
    crate::config::load_str(&yaml, std::path::Path::new("t.yaml")).expect("valid").admin_access
}

#[test]
fn admin_token_guards_all_but_the_open_endpoints() {
    let a = Some(addr("127.0.0.1:9901"));
    let token = "0123456789abcdef-token";
    let with = access(Some(token));
    let host = ("host", "127.0.0.1:9901");
    let get = Method::GET;
    assert_eq!(check(&get, &headers(&[host]), a, &with, false), Err(Refusal::Token));
    assert_eq!(check(&get, &headers(&[host, ("authorization", "Bearer wrong")]), a, &with, false), Err(Refusal::Token));
    assert_eq!(
        check(&get, &headers(&[host, ("authorization", "Basic 0123456789abcdef-token")]), a, &with, false),
        Err(Refusal::Token)
    );
    assert_eq!(check(&get, &headers(&[host, ("authorization", &format!("bearer {token}"))]), a, &with, false), Ok(()));
    assert_eq!(check(&get, &headers(&[host]), a, &with, true), Ok(()), "open endpoints need no token");
    assert_eq!(check(&get, &headers(&[host]), a, &access(None), false), Ok(()), "no token configured: open");

    // Host comes before the token: a rebinding page learns nothing, not even that a token exists.
    let evil = headers(&[("host", "evil.example:9901"), ("authorization", &format!("Bearer {token}"))]);
    assert!(matches!(check(&get, &evil, a, &with, true), Err(Refusal::Host(_))));

    // A write from another origin is refused; from the dashboard's own origin it is not.
    let post = Method::POST;
    let cross = headers(&[host, ("origin", "http://evil.example")]);
    assert!(matches!(check(&post, &cross, a, &access(None), false), Err(Refusal::Origin(_))));
    let same = headers(&[host, ("origin", "http://127.0.0.1:9901")]);
    assert_eq!(check(&post, &same, a, &access(None), false), Ok(()));
}

#[test]
fn admin_endpoints_by_method_and_path() {
    assert_eq!(Endpoint::of(&Method::GET, "/"), Endpoint::Dashboard);
    assert_eq!(Endpoint::of(&Method::POST, "/reload"), Endpoint::Reload);
    assert_eq!(Endpoint::of(&Method::GET, "/reload"), Endpoint::WrongMethod);
    assert_eq!(Endpoint::of(&Method::GET, "/nope"), Endpoint::NotFound);
    assert!(Endpoint::Metrics.open(true) && !Endpoint::Metrics.open(false));
    assert!(!Endpoint::Stats.open(true) && Endpoint::Ready.open(false));
}

#[test]
fn admin_quantiles_interpolate_inside_buckets() {
    let h = Latency { buckets: vec![(0.001, 0), (0.01, 50), (0.1, 100)], count: 100, sum: 1.0 };
    let p50 = quantile(0.5, &h).expect("p50");
    assert!((p50 - 0.01).abs() < 1e-9, "{p50}");
    let p25 = quantile(0.25, &h).expect("p25");
    assert!((p25 - 0.0055).abs() < 1e-9, "{p25}");
    let p99 = quantile(0.99, &h).expect("p99");
    assert!((p99 - 0.0982).abs() < 1e-9, "{p99}");
    assert_eq!(quantile(0.5, &Latency::default()), None);
    // Samples above the last finite bucket: its bound is all the histogram knows.
    let over = Latency { buckets: vec![(0.1, 1)], count: 10, sum: 50.0 };
    assert_eq!(quantile(0.99, &over), Some(0.1));
}

#[test]
fn admin_query_parameters_are_decoded() {
    let p = params("method=POST&url=http%3A%2F%2Fa%2Fb%3Fc%3D1&header=X-A:%20one+two&header=bad%zz&flag");
    assert_eq!(p[0], ("method".into(), "POST".into()));
    assert_eq!(p[1].1, "http://a/b?c=1");
    assert_eq!(p[2].1, "X-A: one two");
    assert_eq!(p[3].1, "bad%zz");
    assert_eq!(p[4], ("flag".into(), String::new()));
}
