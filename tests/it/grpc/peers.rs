//! The real gRPC peers of these tests: grpcio servers (`server.py`) and client (`client.py`),
//! with stubs generated once per test process from `echo.proto` by `grpc_tools.protoc`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

const PYTHON: &str = "/usr/bin/python3";

/// This folder: the proto and the scripts.
pub fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/grpc")
}

/// Python stubs for `echo.proto`, generated at the first call.
pub fn stubs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(PYTHON)
            .args(["-m", "grpc_tools.protoc", "-I"])
            .arg(here())
            .arg(format!("--python_out={}", dir.path().display()))
            .arg(format!("--grpc_python_out={}", dir.path().display()))
            .arg(here().join("echo.proto"))
            .output()
            .expect("python3 runs (pip install grpcio-tools: .ci/install-test-deps)");
        assert!(out.status.success(), "protoc: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
    .path()
}

/// `echo.proto` as a descriptor set (`protoc --descriptor_set_out`), for the gRPC-Web clients,
/// which read their messages from it instead of generated code.
pub fn descriptor_set() -> PathBuf {
    let path = stubs().join("echo.pb");
    if !path.exists() {
        let out = Command::new(PYTHON)
            .args(["-m", "grpc_tools.protoc", "-I"])
            .arg(here())
            .arg("--include_imports")
            .arg(format!("--descriptor_set_out={}", path.display()))
            .arg(here().join("echo.proto"))
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "protoc: {}", String::from_utf8_lossy(&out.stderr));
    }
    path
}

/// grpcio servers in one process, by name; stopped on drop.
pub struct Servers {
    child: Child,
    pub ports: HashMap<String, u16>,
}

impl Servers {
    /// Starts `NAME:MODE[:tls]` servers (`server.py`); TLS ones use `certs/upstream.{crt,key}`.
    pub fn start(certs: &Path, specs: &[&str]) -> Servers {
        let mut child = Command::new(PYTHON)
            .arg(here().join("server.py"))
            .arg(stubs())
            .arg(certs)
            .args(specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server.py starts");
        let mut ports = HashMap::new();
        let stdout = child.stdout.take().expect("piped");
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("a line");
            if line == "READY" {
                break;
            }
            let (name, port) = line.split_once(' ').expect("NAME PORT");
            ports.insert(name.to_string(), port.parse().expect("a port"));
        }
        assert_eq!(ports.len(), specs.len(), "every server listens");
        Servers { child, ports }
    }

    /// `127.0.0.1:PORT` of server `name`.
    pub fn addr(&self, name: &str) -> String {
        format!("127.0.0.1:{}", self.ports[name])
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `client.py TARGET SUITE ARGS...` and returns the JSON it printed.
pub async fn client(target: &str, suite: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(PYTHON)
        .arg(here().join("client.py"))
        .arg(stubs())
        .arg(target)
        .arg(suite)
        .args(args)
        .output()
        .await
        .expect("client.py runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client.py {suite} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("client.py printed {stdout:?}: {e}"))
}
