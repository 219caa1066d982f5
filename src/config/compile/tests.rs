//! A file that leaves everything out compiles to the values in `config/defaults.rs`.

use crate::config::defaults as d;
use crate::config::runtime_dir;
use crate::config::{load_str, AccessLogTarget, Action, HealthKind, Role, ServerSettings, Timeouts};
use std::path::Path;
use std::time::Duration;

#[test]
fn what_the_file_leaves_out_is_the_documented_default() {
    let yaml = r#"
listeners: [{name: web, listen: "127.0.0.1:0"}]
upstreams: {u: {targets: ["127.0.0.1:9", {address: "127.0.0.1:10"}], health_check: {http: {}}, tls: {}}}
routes:
  - {name: r, upstream: u, retry: {}, mirror: {upstream: u}}
  - {name: s, respond: {}}
"#;
    let c = load_str(yaml, Path::new("t.yaml")).expect("valid");
    assert_eq!(
        c.server,
        ServerSettings {
            threads: d::THREADS,
            grace_period_s: d::GRACE_PERIOD_S,
            graceful_shutdown_timeout_s: d::GRACEFUL_SHUTDOWN_TIMEOUT_S,
            pid_file: runtime_dir::default_dir().join(d::PID_FILE_NAME).display().to_string(),
            upgrade_sock: runtime_dir::default_dir().join(d::UPGRADE_SOCK_NAME).display().to_string(),
            runtime_dir: Some(runtime_dir::default_dir()),
            work_stealing: d::WORK_STEALING,
            upstream_keepalive_pool_size: d::UPSTREAM_KEEPALIVE_POOL_SIZE,
        }
    );
    assert_eq!(c.access_log, AccessLogTarget::Stdout);
    assert_eq!(c.admin, None);

    let l = &c.listeners[0];
    assert_eq!((l.role, l.http2, l.read_buffer_bytes), (Role::Edge, d::LISTENER_HTTP2, None));
    assert_eq!(l.keepalive_timeout, Some(Duration::from_secs(d::KEEPALIVE_TIMEOUT_S)));
    let limits = &l.limits;
    assert_eq!(
        (limits.header_timeout, limits.body_timeout, limits.write_timeout),
        (
            Duration::from_secs(d::HEADER_TIMEOUT_S),
            Duration::from_secs(d::BODY_TIMEOUT_S),
            Duration::from_secs(d::WRITE_TIMEOUT_S)
        )
    );
    assert_eq!((limits.max_header_bytes, limits.max_headers), (d::MAX_HEADER_BYTES, d::MAX_HEADERS));
    assert_eq!(
        (limits.max_connections, limits.max_connections_per_ip),
        (d::MAX_CONNECTIONS, d::MAX_CONNECTIONS_PER_IP)
    );

    let u = &c.upstreams[0];
    assert!(u.targets.iter().all(|t| t.weight == d::TARGET_WEIGHT));
    assert_eq!((u.balance, &u.hash_key, u.http2), (d::BALANCE, &d::HASH_KEY, d::UPSTREAM_HTTP2));
    let h = u.health.as_ref().expect("health check");
    let expected =
        HealthKind::Http { path: d::HEALTH_HTTP_PATH.into(), expect_status: d::HEALTH_EXPECT_STATUS, host: "u".into() };
    assert_eq!(h.kind, expected);
    assert_eq!(h.interval, Duration::from_millis(d::HEALTH_INTERVAL_MS));
    assert_eq!(h.timeout, Duration::from_millis(d::HEALTH_TIMEOUT_MS));
    assert_eq!((h.healthy_after, h.unhealthy_after), (d::HEALTHY_AFTER, d::UNHEALTHY_AFTER));
    assert_eq!(u.tls.as_ref().map(|t| t.verify), Some(d::UPSTREAM_TLS_VERIFY));
    let ms = |v| Some(Duration::from_millis(v));
    assert_eq!(
        u.timeouts,
        Timeouts {
            connect: ms(d::UPSTREAM_CONNECT_MS),
            read: ms(d::UPSTREAM_READ_MS),
            write: ms(d::UPSTREAM_WRITE_MS),
            idle: None,
        }
    );
    assert_eq!((d::UPSTREAM_CONNECT_MS, d::UPSTREAM_READ_MS, d::UPSTREAM_WRITE_MS), (5_000, 60_000, 60_000));

    let r = &c.routes[0];
    assert_eq!(r.priority, d::PRIORITY);
    let retry = r.retry.as_ref().expect("retry");
    assert_eq!(retry.attempts, d::RETRY_ATTEMPTS);
    assert_eq!(retry.budget_percent, d::RETRY_BUDGET_PERCENT);
    assert_eq!(retry.non_idempotent, d::RETRY_NON_IDEMPOTENT);
    assert!(retry.on_connect_error && !retry.on_timeout && retry.on_status.is_empty());
    let mirror = r.mirror.as_ref().expect("mirror");
    assert_eq!((mirror.percent, mirror.max_body_bytes), (d::MIRROR_PERCENT, d::MIRROR_MAX_BODY_BYTES));
    let Action::Respond(respond) = &c.routes[1].action else { panic!("a static response") };
    assert_eq!(respond.status, d::RESPOND_STATUS);
}

#[test]
fn a_bad_header_name_is_named_wherever_it_appears() {
    let yaml = r#"
listeners: [{name: web, listen: "127.0.0.1:0", forward_client_cert: "bad name"}]
upstreams: {u: {targets: ["127.0.0.1:9"], balance: consistent_hash, hash_key: "header:bad name"}}
routes:
  - {name: r, upstream: u, match: {headers: {"bad name": "1"}}, canary: {upstream: u, header: "bad name"}}
"#;
    let errors = load_str(yaml, Path::new("t.yaml")).expect_err("invalid").to_string();
    for at in [
        "listeners[0].forward_client_cert",
        "upstreams.u.hash_key",
        "routes[0].match.headers.bad name",
        "routes[0].canary.header",
    ] {
        assert!(errors.contains(&format!("{at}: \"bad name\" is not a header name")), "{at}: {errors}");
    }
}

#[test]
fn listener_limits_are_read_as_written_and_out_of_range_values_are_named() {
    let yaml = r#"
listeners:
  - name: web
    listen: "127.0.0.1:0"
    limits: {header_timeout_s: 2, body_timeout_s: 30, write_timeout_s: 20, max_header_bytes: 16384,
             max_headers: 50, max_connections: 10, max_connections_per_ip: 3}
routes: [{name: r, respond: {}}]
"#;
    let c = load_str(yaml, Path::new("t.yaml")).expect("valid");
    let limits = crate::config::ListenerLimits {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(20),
        max_header_bytes: 16384,
        max_headers: 50,
        max_connections: 10,
        max_connections_per_ip: 3,
        ipv6_prefix: 64,
    };
    assert_eq!(c.listeners[0].limits, limits);

    let yaml = r#"
listeners:
  - name: web
    listen: "127.0.0.1:0"
    limits: {header_timeout_s: 0, max_header_bytes: 2000000, max_headers: 0, max_connections_per_ip: 0}
routes: [{name: r, respond: {}}]
"#;
    let errors = load_str(yaml, Path::new("t.yaml")).expect_err("invalid").to_string();
    for expected in [
        "listeners[0].limits.header_timeout_s: must be at least 1 second",
        "listeners[0].limits.max_header_bytes: must be between 1024 and 1048575",
        "listeners[0].limits.max_headers: must be between 1 and 256",
        "listeners[0].limits.max_connections_per_ip: must be at least 1",
    ] {
        assert!(errors.contains(expected), "{expected}: {errors}");
    }
    let typo = "listeners: [{name: web, listen: \"127.0.0.1:0\", limits: {header_timeout: 5}}]\n";
    let errors = load_str(typo, Path::new("t.yaml")).expect_err("unknown key").to_string();
    assert!(errors.contains("header_timeout"), "{errors}");
}
