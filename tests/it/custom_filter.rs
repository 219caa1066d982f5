//! A user extends Portico from their own crate: `filters/examples/custom-filter` writes a
//! `tenant` filter in its own file and builds `portico-custom` with
//! `portico::Daemon::new().filter::<Tenant>().run()`. The build runs the filter from YAML like
//! a built-in, `-t` names a typo in its config like a built-in's, and `/config` masks the
//! fields it declares secret.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

/// The example crate's `portico-custom` binary, built once per test run.
///
/// Cargo hands an integration test only its own package's binaries (`CARGO_BIN_EXE_*`), and
/// `cargo test` builds no binary of another workspace member, so the first test to need it runs
/// `cargo build -p custom-filter` (up to date after `cargo build --workspace`: a second), in
/// the profile `portico` was built in, and takes the executable's path from cargo's own report
/// rather than guessing the target directory.
fn portico_custom() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--message-format=json", "-p", "custom-filter", "--bin", "portico-custom"]);
        build.arg("--manifest-path").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        // `target/debug/portico`, `target/release/portico`, `target/NAME/portico`: the same profile.
        let profile = Path::new(env!("CARGO_BIN_EXE_portico")).parent().and_then(|d| d.file_name());
        match profile.and_then(|p| p.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
        }
        let out = build.output().expect("cargo runs");
        assert!(out.status.success(), "cargo build -p custom-filter failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "portico-custom")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the portico-custom executable")
    })
}

/// `-t` with `binary` on `yaml`; the file's path shows as `FILE`.
fn check(binary: &Path, yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portico.yaml");
    std::fs::write(&path, yaml).expect("write");
    let out = Command::new(binary).args(["-t", "-c"]).arg(&path).output().expect("run -t");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.replace(&path.display().to_string(), "FILE"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_build_runs_its_own_filter_beside_the_built_ins() {
    let a = Origin::start("a").await;
    let p = Portico::start_with(
        portico_custom(),
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
routes:
  - name: api
    upstream: a
    filters:
      - tenant: {allow: [acme, globex], upstream_token: tok-4711}
      - headers: {response: {set: {x-build: custom}}}
"#,
        )
        .origin(&a),
    )
    .await;
    let c = client();

    // No tenant named: 400, Portico's JSON error, and the origin never sees the request.
    let r = c.get(p.url("web", "/orders")).send().await.expect("request");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-build"], "custom", "the response phase runs on refusals too");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "tenant_required", "{body}");
    assert_eq!(body["message"], "name your tenant in the x-tenant header", "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");

    // A tenant not on the list: 403.
    let r = c.get(p.url("web", "/orders")).header("x-tenant", "initech").send().await.expect("request");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unknown_tenant", "{body}");
    assert_eq!(a.hits.load(Ordering::SeqCst), 0, "refused requests reached the origin");

    // An allowed tenant goes through; the upstream gets the checked tenant (not the one the
    // client tried to set) and the token.
    let r = c
        .get(p.url("web", "/orders"))
        .header("x-tenant", "acme")
        .header("x-tenant-id", "globex")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-build"], "custom");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["headers"]["x-tenant-id"], "acme", "{body}");
    assert_eq!(body["headers"]["x-tenant-token"], "tok-4711", "{body}");
    assert_eq!(a.hits.load(Ordering::SeqCst), 1);

    // The field the filter declares secret is masked in /config; the rest is shown.
    let (status, config) = get_json(&p.admin_url("/config")).await;
    assert_eq!(status, 200);
    let tenant = &config["routes"][0]["filters"][0]["tenant"];
    assert_eq!(tenant["upstream_token"], "***", "{config}");
    assert_eq!(tenant["allow"], serde_json::json!(["acme", "globex"]), "{config}");
    assert!(!config.to_string().contains("tok-4711"), "{config}");
}

#[test]
fn check_names_a_typo_in_a_custom_filter_like_in_a_built_in() {
    let yaml = "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nupstreams: {u: {targets: [\"127.0.0.1:9\"]}}\nroutes:\n  - name: a\n    upstream: u\n    filters:\n      - tenant:\n          allow: [acme]\n          forward_az: x-tenant-id\n      - headers:\n          requets: {}\n";
    let (ok, text) = check(portico_custom(), yaml);
    assert!(!ok, "{text}");
    assert!(text.contains("FILE:9:11: routes[0].filters[0].tenant.forward_az: unknown field `forward_az`"), "{text}");
    assert!(text.contains("FILE:11:11: routes[0].filters[1].headers.requets: unknown field `requets`"), "{text}");
    assert!(text.contains("2 error(s) in FILE"), "{text}");

    // A check the filter makes itself, in `build`, is placed the same way.
    let (ok, text) = check(portico_custom(), &yaml.replace("forward_az: x-tenant-id", "header: \"x tenant\""));
    assert!(!ok);
    assert!(text.contains("FILE:9:11: routes[0].filters[0].tenant.header: not a header name"), "{text}");

    // The stock binary does not know the filter: registering it is what makes it work.
    let valid = yaml.replace("          forward_az: x-tenant-id\n", "").replace("          requets: {}\n", "");
    let (ok, text) = check(portico_custom(), &valid);
    assert!(ok, "{text}");
    let (ok, text) = check(Path::new(env!("CARGO_BIN_EXE_portico")), &valid);
    assert!(!ok);
    assert!(text.contains("routes[0].filters[0].tenant: unknown filter \"tenant\""), "{text}");
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/filters/examples/custom-filter/tenant.yaml");
    let out = Command::new(portico_custom()).args(["-t", "-c", path]).output().expect("run -t");
    assert!(out.status.success(), "{path} is invalid:\n{}", String::from_utf8_lossy(&out.stderr));
}
