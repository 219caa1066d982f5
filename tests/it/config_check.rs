//! A user checks a config before deploying it: `portico -t -c FILE`.

use std::process::Command;

fn check(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portico.yaml");
    std::fs::write(&path, yaml).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["-t", "-c"])
        .arg(&path)
        .env_remove("PORTICO_TEST_MISSING")
        .env("PORTICO_TEST_KEY", "k-123")
        .output()
        .expect("run portico -t");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.replace(&path.display().to_string(), "FILE"))
}

#[test]
fn the_shipped_configs_are_valid() {
    for file in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/conf")).expect("conf dir") {
        let path = file.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = Command::new(env!("CARGO_BIN_EXE_portico"))
                .args(["-t", "-c"])
                .arg(&path)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .expect("run");
            assert!(out.status.success(), "{} is invalid:\n{}", path.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn a_good_file_passes() {
    let (ok, text) = check(
        "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nupstreams: {users: {targets: [\"127.0.0.1:9\"]}}\nroutes: [{name: u, upstream: users, filters: [{headers: {request: {set: {x-key: \"${PORTICO_TEST_KEY}\"}}}}]}]\n",
    );
    assert!(ok, "{text}");
    assert!(text.contains("is valid"), "{text}");
}

#[test]
fn an_unknown_upstream_is_named_with_its_position() {
    let (ok, text) = check(
        "listeners:\n  - {name: web, listen: \"127.0.0.1:0\"}\nupstreams:\n  users: {targets: [\"127.0.0.1:9\"]}\n  orders: {targets: [\"127.0.0.1:9\"]}\nroutes:\n  - {name: a, upstream: users}\n  - {name: b, upstream: orders}\n  - name: c\n    upstream: userz\n",
    );
    assert!(!ok);
    assert!(
        text.contains("FILE:10:5: routes[2].upstream: no upstream named \"userz\" (known: orders, users)"),
        "{text}"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let (ok, text) = check(
        "listeners: [{name: web, listen: \"nonsense\"}]\nupstreams: {u: {targets: [\"127.0.0.1:9\"]}}\nroutes:\n  - {name: a, upstream: nope}\n  - {name: b, upstream: u, match: {path_regex: \"([\"}}\n",
    );
    assert!(!ok);
    assert!(text.contains("listeners[0].listen: \"nonsense\" is not a host:port address"), "{text}");
    assert!(text.contains("routes[0].upstream: no upstream named \"nope\""), "{text}");
    assert!(text.contains("routes[1].match.path_regex: invalid regex"), "{text}");
}

#[test]
fn unknown_keys_and_bad_types_are_errors() {
    let (ok, text) = check("listeners: [{name: web, listen: \"127.0.0.1:0\", rol: edge}]\n");
    assert!(!ok);
    assert!(
        text.contains("FILE:1:") && text.contains("listeners[0]") && text.contains("unknown field `rol`"),
        "{text}"
    );

    let (ok, text) = check("server: {threads: many}\nlisteners: [{name: web, listen: \"127.0.0.1:0\"}]\n");
    assert!(!ok);
    assert!(text.contains("FILE:1:") && text.contains("server.threads"), "{text}");

    let (ok, text) = check("listeners: [{name: web, listen: \"127.0.0.1:0\", filters: [{no_such_filter: {}}]}]\n");
    assert!(!ok);
    assert!(text.contains("listeners[0].filters[0].no_such_filter: unknown filter"), "{text}");

    let (ok, text) = check(
        "listeners: [{name: web, listen: \"127.0.0.1:0\", filters: [{ip_restrict: {allow: [\"10.0.0.0/33\"]}}]}]\n",
    );
    assert!(!ok);
    assert!(text.contains("listeners[0].filters[0].ip_restrict.allow[0]"), "{text}");
}

#[test]
fn a_missing_environment_variable_is_an_error() {
    let (ok, text) = check(
        "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nconsumers:\n  - {name: m, api_keys: [\"${PORTICO_TEST_MISSING}\"]}\n",
    );
    assert!(!ok);
    assert!(
        text.contains("FILE:3:")
            && text.contains("consumers[0].api_keys[0]: environment variable PORTICO_TEST_MISSING is not set"),
        "{text}"
    );
}

#[test]
fn invalid_yaml_names_the_line() {
    let (ok, text) = check("listeners: [\n  {name: web\n");
    assert!(!ok);
    assert!(text.contains("invalid YAML") && text.contains("FILE:"), "{text}");
}
