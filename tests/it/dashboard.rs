//! An operator opens the dashboard (`GET /` on the admin listener) in a browser: after its
//! scripts ran, the page shows every route with its traffic, each target's health (a target
//! killed in the test shows as down) and the last reload's result with its errors; without the
//! token it asks for one. Checked in headless Chromium; a screenshot under load is saved to
//! `target/dashboard.png`.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "dashboard-token-0123456789";

fn config(a: &Origin, b: &Origin, extra: &str) -> Yaml {
    Yaml::web(
        r#"
admin: {listen: "127.0.0.1:$admin", token: "$token"}
upstreams:
  api:
    targets: ["$a", "$b"]
    health_check: {http: {path: /healthz, expect_status: 200}, interval_ms: 100, unhealthy_after: 1}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 20, open_s: 10}
  solo: {targets: ["$a"]}
routes:
  - {name: api, match: {path: /api}, upstream: api}
  - name: flaky
    match: {path: /flaky}
    upstream: solo
    filters: [{fault: {abort: {percent: 10, status: 503}}}]
  - {name: ping, match: {path_exact: /ping}, respond: {body: pong}}
$extra
"#,
    )
    .origin(a)
    .origin(b)
    .set("token", TOKEN)
    .set("extra", extra)
}

/// Runs headless Chromium on `url` with a fresh profile and the flags that keep it off the
/// network; returns its standard output.
async fn chromium(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium runs (bash .ci/install-test-deps installs it)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page's DOM after its scripts have run for five seconds of (virtual) time.
async fn dom(url: &str) -> String {
    chromium(url, &["--virtual-time-budget=5000", "--dump-dom"]).await
}

/// The opening tag of the element carrying `attr`.
fn tag_with<'a>(dom: &'a str, attr: &str) -> &'a str {
    let at = dom.find(attr).unwrap_or_else(|| panic!("no element with {attr} in the page:\n{dom}"));
    let start = dom[..at].rfind('<').expect("tag start");
    let end = at + dom[at..].find('>').expect("tag end");
    &dom[start..=end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_routes_health_and_the_last_reload() {
    let (a, mut b) = (Origin::start("a").await, Origin::start("b").await);
    let mut p = Portico::start(config(&a, &b, "")).await;
    let c = client();
    for _ in 0..10 {
        c.get(p.url("web", "/api/x")).send().await.expect("api");
        c.get(p.url("web", "/nothing")).send().await.expect("404");
    }

    // One target dies; the health check notices.
    b.stop().await;
    let b_addr = b.addr.to_string();
    eventually(Duration::from_secs(5), "b reported down in /stats", || {
        let req = client().get(p.admin_url("/stats")).bearer_auth(TOKEN);
        let b_addr = b_addr.clone();
        async move {
            let Ok(r) = req.send().await else { return false };
            let stats: serde_json::Value = r.json().await.unwrap_or_default();
            stats["upstreams"][0]["targets"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["address"] == b_addr.as_str() && t["healthy"] == false))
        }
    })
    .await;

    // A broken file is refused by reload; the dashboard must say so, with the error.
    p.rewrite_config(config(&a, &b, "  - {name: broken, match: {path: /broken}, upstream: nowhere}"));
    let r = client().post(p.admin_url("/reload")).bearer_auth(TOKEN).send().await.expect("reload");
    assert_eq!(r.status(), 400);

    // The token comes in the fragment: kept in the tab, never sent in a URL. The fragment also
    // asks the page to explain a request.
    let explain = format!("http://localhost:{}/api/users", p.port("web"));
    let page = dom(&format!("http://127.0.0.1:{}/#token={TOKEN}&explain={explain}", p.admin)).await;
    for route in ["api", "flaky", "ping"] {
        assert!(page.contains(&format!("data-route=\"{route}\"")), "route {route} missing:\n{page}");
    }
    assert!(page.contains("no route (404/405)"), "the unrouted 404s have a row");
    let a_row = tag_with(&page, &format!("data-target=\"{}\"", a.addr));
    assert!(a_row.contains("data-state=\"up\""), "{a_row}");
    let b_row = tag_with(&page, &format!("data-target=\"{}\"", b.addr));
    assert!(b_row.contains("data-state=\"down\""), "the killed target shows as down: {b_row}");
    assert!(page.contains("breaker closed"), "{page}");
    assert!(page.contains("rejected") && page.contains("no upstream named \"nowhere\""), "reload result:\n{page}");
    assert!(page.contains("id=\"generation\">1<"), "still generation 1:\n{page}");
    assert!(!page.contains(TOKEN), "the token never lands in the page");
    let explained = &page[page.find("id=\"explain-out\"").expect("explain output")..];
    assert!(explained.contains("<b>api</b>") && explained.contains("proxied to upstream api"), "{explained}");
    assert!(explained.contains(&format!("{} down", b.addr)), "the explanation knows b is down: {explained}");

    // Without the token the page asks for it and shows no data.
    let page = dom(&p.admin_url("/")).await;
    assert!(page.contains("id=\"login\" class=\"shown\""), "{page}");
    assert!(!page.contains("data-route="), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_screenshot_under_load() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let p = Portico::start(config(&a, &b, "")).await;

    // Steady traffic while the page samples: the charts draw what the counters say.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for path in ["/api/users", "/api/orders", "/flaky/x", "/ping", "/missing"] {
        let (stop, url) = (stop.clone(), p.url("web", path));
        load.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                let _ = c.get(&url).send().await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let png = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let png = png.join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    let explain = format!("http://localhost:{}/flaky/item", p.port("web"));
    chromium(
        &format!("http://127.0.0.1:{}/#token={TOKEN}&explain={explain}", p.admin),
        &["--window-size=1280,900", "--virtual-time-budget=60000", &format!("--screenshot={}", png.display())],
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "a real screenshot at {}", png.display());
}
