//! An operator changes routes on a live proxy: no request is dropped, and a broken file changes
//! nothing.

use crate::support::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn routes(a: &Origin, b: &Origin, extra: &str) -> Yaml {
    Yaml::web(
        r#"
upstreams:
  a: {targets: ["$a"]}
  b: {targets: ["$b"]}
routes:
  - {name: main, match: {path: /main}, upstream: a}
$extra
"#,
    )
    .origin(a)
    .origin(b)
    .set("extra", extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_routes_without_dropping_requests() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let mut p = Portico::start(routes(&a, &b, "")).await;
    assert_eq!(get_json(&p.url("web", "/new")).await.0, 404);

    // A client keeps sending requests the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), p.url("web", "/main/x"));
        tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::SeqCst) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Reload through the admin API with a new route.
    p.rewrite_config(routes(&a, &b, "  - {name: new, match: {path: /new}, upstream: b}"));
    let r = client().post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let (status, body) = get_json(&p.url("web", "/new/thing")).await;
    assert_eq!((status, body["instance"].as_str()), (200, Some("b")));

    // A broken file is refused with its errors; the running config keeps serving.
    p.rewrite_config(routes(&a, &b, "  - {name: broken, match: {path: /broken}, upstream: nowhere}"));
    let r = client().post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["errors"][0].as_str().is_some_and(|e| e.contains("no upstream named \"nowhere\"")), "{body}");
    assert_eq!(get_json(&p.url("web", "/new/thing")).await.0, 200);
    assert_eq!(get_json(&p.url("web", "/broken")).await.0, 404);

    // SIGHUP reloads too.
    p.rewrite_config(routes(&a, &b, "  - {name: hup, match: {path: /hup}, upstream: b}"));
    p.signal("HUP");
    eventually(Duration::from_secs(5), "SIGHUP reload", || {
        let url = p.url("web", "/hup");
        async move { get_json(&url).await.0 == 200 }
    })
    .await;

    // Let the load go on until it has sent a fair number (a busy machine sends fewer per second).
    let sent = ok.clone();
    eventually(Duration::from_secs(20), "50 requests through the reloads", || {
        let sent = sent.clone();
        async move { sent.load(Ordering::SeqCst) > 50 }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load task");
    assert!(ok.load(Ordering::SeqCst) > 50, "too few requests: {}", ok.load(Ordering::SeqCst));
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests failed during reloads");

    let text = p.metrics().await;
    assert_eq!(metric(&text, "portico_config_reloads_total", "result=\"success\""), 2.0);
    assert_eq!(metric(&text, "portico_config_reloads_total", "result=\"failure\""), 1.0);
}
