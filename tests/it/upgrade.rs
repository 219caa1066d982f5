//! An operator replaces the binary of a running Portico with `portico --upgrade`: the listening
//! sockets pass through an upgrade socket that, by default, sits in a directory only Portico's
//! user can enter.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// No `pid_file` or `upgrade_sock`: the defaults apply.
const CONFIG: &str = r#"
server: {threads: 1, grace_period_s: 0, graceful_shutdown_timeout_s: 2}
listeners: [{name: web, listen: "127.0.0.1:$web"}]
routes: [{name: ping, respond: {body: pong}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_socket_defaults_to_a_private_directory_and_hands_the_sockets_over() {
    let runtime = tempfile::tempdir().expect("temp dir");
    let xdg = runtime.path().as_os_str();
    let mut old = Portico::spawn_with_env(CONFIG, &[("XDG_RUNTIME_DIR", xdg)]);
    old.wait_ready().await;
    let dir = runtime.path().join("portico");
    let mode = std::fs::metadata(&dir).expect("the runtime directory").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "only Portico's user may enter it");

    // The new process waits at the socket; the old one hands its listeners over on SIGQUIT.
    let sock = dir.join("portico_upgrade.sock");
    let stderr = std::fs::File::create(old.dir.path().join("new-stderr.log")).expect("stderr file");
    let mut new = Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("-c")
        .arg(&old.config)
        .arg("--upgrade")
        .env("XDG_RUNTIME_DIR", xdg)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the new portico starts");
    eventually(Duration::from_secs(5), "the new process listening at the upgrade socket", || {
        let there = sock.exists();
        async move { there }
    })
    .await;
    old.signal("QUIT");
    assert!(old.wait_exit(Duration::from_secs(10)).await, "the old process exits cleanly");

    // The same ports now answer from the new process.
    eventually(Duration::from_secs(10), "the new process serving", || {
        let url = old.url("web", "/");
        async move { matches!(client().get(url).send().await, Ok(r) if r.status() == 200) }
    })
    .await;
    assert_eq!(get_json(&old.admin_url("/ready")).await.0, 200);
    let _ = new.kill();
    let _ = new.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_directory_others_can_write_to_is_refused() {
    let runtime = tempfile::tempdir().expect("temp dir");
    let dir = runtime.path().join("portico");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let mut p = Portico::spawn_with_env(CONFIG, &[("XDG_RUNTIME_DIR", runtime.path().as_os_str())]);
    assert!(!p.wait_exit(Duration::from_secs(10)).await, "it must not start");
    let stderr = p.stderr();
    assert!(stderr.contains(&format!("{} is writable by others", dir.display())), "{stderr}");
}
