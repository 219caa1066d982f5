//! An operator finds out why clients got a 502: Portico's log says which upstream and target
//! failed and how (at `warn`, a few lines a second however many requests fail), and the access
//! line's `error` carries Pingora's error kind after Portico's code.

use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_named_in_the_log_and_the_access_line() {
    let closed = free_port();
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {down: {targets: ["127.0.0.1:$closed"]}}
routes: [{name: down, upstream: down}]
"#,
        )
        .set("closed", closed),
    )
    .await;
    // A new client each time: Portico closes the connection after a 502.
    for _ in 0..40 {
        let r = client().get(p.url("web", "/x")).send().await.expect("answered");
        assert_eq!(r.status(), 502);
    }
    eventually(Duration::from_secs(5), "40 access lines", || async { p.access_log().lines().count() >= 40 }).await;
    let line: serde_json::Value = serde_json::from_str(p.access_log().lines().next().expect("a line")).expect("json");
    assert_eq!(line["error"], "bad_gateway:ConnectRefused", "{line}");

    let stderr = p.stderr();
    let warns: Vec<&str> = stderr.lines().filter(|l| l.contains("failed (ConnectRefused) for route down")).collect();
    assert!(!warns.is_empty(), "a warn line says why:\n{stderr}");
    assert!(warns[0].contains("WARN") && warns[0].contains(&format!("127.0.0.1:{closed}")), "{}", warns[0]);
    assert!(warns.len() <= 30, "rate-limited to 10 a second: {} lines for 40 failures", warns.len());
}
