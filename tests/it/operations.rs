//! An operator runs Portico as a service: the version names its commit, the systemd unit is
//! valid, and Portico's own log can be JSON lines for a log shipper.

use crate::support::*;
use std::process::Command;

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_portico")).arg("--version").output().expect("run --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with(&format!("portico {} (commit ", env!("CARGO_PKG_VERSION"))), "{text}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert!(text.contains(&head), "--version says {text:?}, HEAD is {head}");
    }
}

#[test]
fn the_systemd_unit_is_valid() {
    // .ci/install-test-deps installs it.
    let out = Command::new("systemd-analyze").arg("--version").output().expect("systemd-analyze is installed");
    assert!(out.status.success());
    // The unit runs /usr/local/bin/portico; check it against the binary just built.
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/portico.service")).expect("unit");
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "reload is SIGHUP");
    assert!(unit.contains("KillSignal=SIGTERM"), "stop drains on SIGTERM");
    assert!(unit.contains("LimitNOFILE="), "a descriptor limit fit for a proxy");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portico.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/portico", env!("CARGO_BIN_EXE_portico"))).expect("write");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze verify");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !text.contains("portico.service:"), "systemd-analyze verify:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_can_be_json_lines() {
    let p = Portico::start(Yaml::web(
        r#"
log: {format: json}
routes: [{name: ping, respond: {body: pong}}]
"#,
    ))
    .await;
    assert_eq!(client().get(p.url("web", "/")).send().await.expect("request").status(), 200);
    client().post(p.admin_url("/reload")).send().await.expect("reload");
    let log = p.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.iter().any(|l| l.contains("config reloaded")), "{log}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{log}"));
        assert!(v["time"].is_string() && v["level"].is_string() && v["message"].is_string(), "{line}");
    }
}

fn portico_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run portico");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn explain_says_which_route_and_filters_a_request_gets() {
    let (ok, text) =
        portico_cli(&["explain", "-c", "conf/edge.yaml", "-H", "x-api-key: k", "http://localhost:8080/api/orders"]);
    assert!(ok, "{text}");
    assert!(text.contains("route     api"), "{text}");
    assert!(text.contains("1  jwt  route api"), "{text}");
    assert!(text.contains("upstream demo"), "{text}");

    // No route: the 404 and the nearest candidates, with why each missed.
    let (ok, text) = portico_cli(&["explain", "-c", "conf/edge.yaml", "-X", "DELETE", "http://localhost:8080/nowhere"]);
    assert!(ok, "{text}");
    assert!(text.contains("404 not_found"), "{text}");
    assert!(text.contains("wants /partners or below, got /nowhere"), "{text}");

    // The routing table, in precedence order.
    let (ok, text) = portico_cli(&["routes", "-c", "conf/edge.yaml"]);
    assert!(ok, "{text}");
    let partners = text.find("partners").expect("partners listed");
    let api = text.find(" api ").expect("api listed");
    assert!(partners < api, "precedence order:\n{text}");

    // A bad config is refused as `-t` refuses it.
    let (ok, text) = portico_cli(&["routes", "-c", "conf/nope.yaml"]);
    assert!(!ok && text.contains("nope.yaml"), "{text}");
}
