//! An operator protects the admin API: with `admin.token` set, only a request carrying it gets
//! data; probes stay open; a page on another name (DNS rebinding) or another origin gets
//! nothing; and an admin API reachable from other machines without a token does not start.

use crate::support::*;
use std::process::Command;

const TOKEN: &str = "s3cret-admin-token-0123456789";

fn config(metrics_public: bool) -> Yaml {
    Yaml::web(
        r#"
admin: {listen: "127.0.0.1:$admin", token: "$token", metrics_public: $public}
routes: [{name: ping, match: {path_exact: /ping}, respond: {body: pong}}]
"#,
    )
    .set("token", TOKEN)
    .set("public", metrics_public)
}

async fn get(p: &Portico, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client().get(p.admin_url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("admin request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_guards_data_but_not_probes() {
    let mut p = Portico::start(config(false)).await;

    // No token, or a wrong one: 401 with a Bearer challenge and no data.
    for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
        for path in ["/config", "/routes", "/stats", "/explain?url=/ping", "/metrics"] {
            let r = get(&p, path, token).await;
            assert_eq!(r.status(), 401, "{path} with {token:?}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"portico admin\"");
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!(body["error"], "unauthorized", "{body}");
            assert!(!body.to_string().contains("ping"), "a refusal carries no data: {body}");
        }
    }
    let r = client().post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 401, "reloading needs the token too");

    // The right token: the data, with the token itself masked in /config.
    let r = get(&p, "/config", Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(text.contains("\"ping\"") && text.contains("\"token\":\"***\""), "{text}");
    assert!(!text.contains(TOKEN), "/config must never show the token: {text}");
    assert_eq!(get(&p, "/metrics", Some(TOKEN)).await.status(), 200);

    // Probes and the dashboard page (which holds no data) need no token.
    for path in ["/healthz", "/ready", "/"] {
        assert_eq!(get(&p, path, None).await.status(), 200, "{path}");
    }

    // `metrics_public: true` opens /metrics (and only /metrics); a reload applies it.
    p.rewrite_config(config(true));
    let r = client().post(p.admin_url("/reload")).bearer_auth(TOKEN).send().await.expect("reload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = get(&p, "/metrics", None).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("text").contains("portico_requests_in_flight"));
    assert_eq!(get(&p, "/stats", None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_refuses_other_hosts_and_cross_origin_writes() {
    let p = Portico::start(config(false)).await;
    let port = p.admin;
    let with_host = |host: String| client().get(p.admin_url("/stats")).bearer_auth(TOKEN).header("host", host);

    // A name that DNS rebinding points at 127.0.0.1 is not the admin address: 403, even with the
    // token and even for the open endpoints.
    for host in [format!("evil.example:{port}"), format!("127.0.0.1:{}", port + 1)] {
        let r = with_host(host.clone()).send().await.expect("request");
        assert_eq!(r.status(), 403, "{host}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "forbidden_host", "{body}");
        assert!(body.get("routes").is_none());
    }
    let r = client().get(p.admin_url("/healthz")).header("host", format!("evil.example:{port}")).send().await;
    assert_eq!(r.expect("request").status(), 403);

    // The loopback names of a loopback admin address are its address too.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        assert_eq!(with_host(host.clone()).send().await.expect("request").status(), 200, "{host}");
    }

    // A page on another origin cannot make a browser reload the config.
    let r = client()
        .post(p.admin_url("/reload"))
        .bearer_auth(TOKEN)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 403);
    let r = client()
        .post(p.admin_url("/reload"))
        .bearer_auth(TOKEN)
        .header("origin", format!("http://127.0.0.1:{port}"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 200, "the dashboard's own origin may");
}

fn check(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portico.yaml");
    std::fs::write(&path, yaml).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_portico")).args(["-t", "-c"]).arg(&path).output().expect("run");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.replace(&path.display().to_string(), "FILE"))
}

#[test]
fn admin_reachable_from_other_machines_needs_a_token() {
    let listeners = "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\n";
    let (ok, text) = check(&format!("{listeners}admin:\n  listen: \"0.0.0.0:9901\"\n"));
    assert!(!ok, "{text}");
    assert!(
        text.contains("FILE:3:3: admin.listen: the admin API on 0.0.0.0:9901 can be reached from other machines: set `admin.token`"),
        "{text}"
    );
    let (ok, text) = check(&format!("{listeners}admin: {{listen: \"0.0.0.0:9901\", token: short}}\n"));
    assert!(
        !ok && text.contains("FILE:2:") && text.contains("admin.token: a token needs at least 16 characters"),
        "{text}"
    );
    let (ok, text) = check(&format!("{listeners}admin: {{listen: \"0.0.0.0:9901\", token: \"{TOKEN}\"}}\n"));
    assert!(ok, "{text}");
    let (ok, text) = check(&format!("{listeners}admin: {{listen: \"127.0.0.1:9901\"}}\n"));
    assert!(ok, "loopback may go without a token: {text}");
}
