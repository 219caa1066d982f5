//! Test support: real origins on OS-picked ports, the real `portico` binary, a real client.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

mod yaml;
pub use yaml::Yaml;

/// One HTTP/1 response read off a raw connection.
pub struct RawResponse {
    pub status: u16,
    /// The status line and fields, lower-cased.
    pub head: String,
    /// The body, by `Content-Length` or chunked (none without either; a chunked body's
    /// trailer fields are not kept).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A field's value, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')).map(str::trim))
    }

    /// Whether it says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection") == Some("close")
    }
}

/// Reads one response from `conn` (a chunked body without trailer fields); `None` when the connection closes, fails or stays silent
/// for 10 s before a whole response has arrived.
pub async fn read_response(conn: &mut tokio::net::TcpStream) -> Option<RawResponse> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut more = async |buf: &mut Vec<u8>| -> Option<()> {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await.ok()?.ok()?;
        buf.extend_from_slice(&chunk[..n]);
        (n > 0).then_some(())
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        more(&mut buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut response = RawResponse { status: head.split(' ').nth(1)?.parse().ok()?, head, body: Vec::new() };
    if response.header("transfer-encoding") == Some("chunked") {
        // Chunks (sizes in hex, no extensions) until the last one and its closing line end.
        let mut at = head_end;
        loop {
            let line_end = loop {
                if let Some(i) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                more(&mut buf).await?;
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[at..line_end]).ok()?.trim(), 16).ok()?;
            while buf.len() < line_end + 2 + size + 2 {
                more(&mut buf).await?;
            }
            response.body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            at = line_end + 2 + size + 2;
            if size == 0 {
                return Some(response);
            }
        }
    }
    let length: usize = response.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        more(&mut buf).await?;
    }
    response.body = buf[head_end..head_end + length].to_vec();
    Some(response)
}

/// Resident memory of a process, in KiB (`VmRSS` in /proc; 0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A peer written in Python (`tests/it/*.py`): the script binds a free port on 127.0.0.1 and
/// prints `{"port": N}` as its first line. Killed when dropped.
pub struct PythonPeer {
    _child: tokio::process::Child,
    pub port: u16,
}

impl PythonPeer {
    pub async fn start<S: AsRef<std::ffi::OsStr>>(script: &str, args: impl IntoIterator<Item = S>) -> PythonPeer {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("python3 runs {script}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = lines.next_line().await.expect("read").unwrap_or_else(|| panic!("{script} printed its port"));
        let port = serde_json::from_str::<serde_json::Value>(&line).expect("json")["port"].as_u64().expect("a port");
        PythonPeer { _child: child, port: u16::try_from(port).expect("a port number") }
    }
}

/// A port that is free now and that no other test in this process has been given.
///
/// Ports come from below the kernel's ephemeral range (32768 and up), so an outgoing
/// connection can never take a port between this call and the bind that follows it, and a
/// stopped origin's port is never handed to the next test while a proxy still dials it.
/// Processes start at different offsets, so two test runs side by side rarely meet.
pub fn free_port() -> u16 {
    next_free(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok()).0
}

/// A listener on a port [`free_port`] would give, kept bound: for a server in this process,
/// which then has no moment between the check and its own bind for another to take the port
/// (a test under load once lost that race). Backlog 1024, as `TcpListener::bind` gives.
pub fn free_listener() -> TcpListener {
    next_free(|port| {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.set_reuseaddr(true).ok()?;
        socket.bind(([127, 0, 0, 1], port).into()).ok()?;
        socket.listen(1024).ok()
    })
    .1
}

/// The next port of this process's range that `listen` takes, with what it made of it.
fn next_free<T>(listen: impl Fn(u16) -> Option<T>) -> (u16, T) {
    use std::sync::atomic::AtomicU32;
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::AcqRel) % SPAN) as u16;
        if let Some(listening) = listen(port) {
            return (port, listening);
        }
    }
    panic!("no free port below the ephemeral range")
}

/// A small HTTP origin that says which instance answered and echoes what it got.
///
/// `GET /healthz` answers 200 (or 503 after `set_healthy(false)`); `/slow?ms=N` waits N ms;
/// `/status/N` answers status N; anything else echoes method, path, headers and body size as
/// JSON with `"instance": name`.
pub struct Origin {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    behaviour: Arc<Behaviour>,
    task: Option<JoinHandle<()>>,
    /// Every request body seen, with its Host header (for mirror checks).
    pub seen: Arc<std::sync::Mutex<Vec<(String, usize)>>>,
}

/// How an origin misbehaves on purpose.
#[derive(Default)]
pub struct Behaviour {
    /// Answer 503 to everything but `/healthz`.
    pub failing: AtomicBool,
    /// Wait this long before answering anything but `/healthz`.
    pub delay_ms: std::sync::atomic::AtomicU64,
    /// Fixed JSON bodies by path (a JWKS document, say), served instead of the echo.
    pub fixed: std::sync::Mutex<HashMap<String, String>>,
}

impl Origin {
    pub async fn start(name: &str) -> Origin {
        Self::serving(name, free_listener())
    }

    pub async fn start_on(name: &str, port: u16) -> Origin {
        Self::serving(name, TcpListener::bind(("127.0.0.1", port)).await.expect("origin binds"))
    }

    fn serving(name: &str, listener: TcpListener) -> Origin {
        let addr = listener.local_addr().expect("origin address");
        let mut origin = Origin {
            name: name.to_string(),
            addr,
            hits: Arc::new(AtomicUsize::new(0)),
            healthy: Arc::new(AtomicBool::new(true)),
            behaviour: Arc::new(Behaviour::default()),
            task: None,
            seen: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        origin.task = Some(origin.serve(listener));
        origin
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let (name, hits, healthy) = (self.name.clone(), self.hits.clone(), self.healthy.clone());
        let (behaviour, seen) = (self.behaviour.clone(), self.seen.clone());
        tokio::spawn(async move {
            // Connections live in this set: aborting the task closes them all.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (name, hits, healthy) = (name.clone(), hits.clone(), healthy.clone());
                let (behaviour, seen) = (behaviour.clone(), seen.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        handle(req, name.clone(), hits.clone(), healthy.clone(), behaviour.clone(), seen.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listener and every open connection, like a crashed process.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Starts again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("origin {} cannot rebind {}: {e}", self.name, self.addr),
            }
        };
        self.task = Some(self.serve(listener));
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Makes every request but health checks answer 503 (or stop doing so).
    pub fn set_failing(&self, failing: bool) {
        self.behaviour.failing.store(failing, Ordering::SeqCst);
    }

    /// Serves `body` (as JSON) at `path` from now on.
    pub fn set_fixed(&self, path: &str, body: &str) {
        if let Ok(mut f) = self.behaviour.fixed.lock() {
            f.insert(path.to_string(), body.to_string());
        }
    }

    /// Delays every answer but health checks.
    pub fn set_delay_ms(&self, ms: u64) {
        self.behaviour.delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    name: String,
    hits: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    behaviour: Arc<Behaviour>,
    seen: Arc<std::sync::Mutex<Vec<(String, usize)>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if path == "/healthz" {
        let status = if healthy.load(Ordering::SeqCst) { 200 } else { 503 };
        return Ok(Response::builder().status(status).body(Full::new(Bytes::from("health"))).expect("response"));
    }
    let fixed = behaviour.fixed.lock().ok().and_then(|f| f.get(&path).cloned());
    if let Some(body) = fixed {
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("response"));
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let delay = behaviour.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if behaviour.failing.load(Ordering::SeqCst) {
        let body = serde_json::json!({"instance": name, "failing": true}).to_string();
        return Ok(Response::builder().status(503).body(Full::new(Bytes::from(body))).expect("response"));
    }
    if path == "/slow" {
        let ms = query.strip_prefix("ms=").and_then(|v| v.parse().ok()).unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = path.strip_prefix("/status/").and_then(|s| s.parse().ok()).unwrap_or(200u16);
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Ok(mut seen) = seen.lock() {
        seen.push((headers.get("host").cloned().unwrap_or_default(), body.len()));
    }
    let json = serde_json::json!({
        "instance": name, "method": method, "uri": uri, "path": path, "headers": headers, "body_len": body.len(),
        "body": String::from_utf8_lossy(&body),
    });
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-origin", name.as_str())
        .body(Full::new(Bytes::from(json.to_string())))
        .expect("response"))
}

/// The sections every test Portico gets unless its config has its own: files in its temp dir,
/// the admin API on a free port.
const HEAD: [(&str, &str); 3] = [
    (
        "server:",
        "server: {threads: 2, grace_period_s: 5, graceful_shutdown_timeout_s: 2, pid_file: $dir/portico.pid, upgrade_sock: $dir/upgrade.sock}\n",
    ),
    ("admin:", "admin: {listen: \"127.0.0.1:$admin\"}\n"),
    ("access_log:", "access_log: {path: \"$dir/access.log\"}\n"),
];

/// A running `portico` process with its own temp dir, config file and access log.
pub struct Portico {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub admin: u16,
    pub ports: HashMap<String, u16>,
}

impl Portico {
    /// Writes the config (`$web`, `$admin`, ... become free ports, see [`Yaml`]; the `server`,
    /// `admin` and `access_log` sections are added unless present), starts the binary and waits
    /// until `/ready` answers.
    pub async fn start(config: impl Into<Yaml>) -> Portico {
        let p = Self::spawn(config);
        p.wait_ready().await;
        p
    }

    pub fn spawn(config: impl Into<Yaml>) -> Portico {
        Self::spawn_with(Path::new(env!("CARGO_BIN_EXE_portico")), config, &[])
    }

    /// [`Portico::spawn`] with more environment variables for the process.
    pub fn spawn_with_env(config: impl Into<Yaml>, env: &[(&str, &std::ffi::OsStr)]) -> Portico {
        Self::spawn_with(Path::new(env!("CARGO_BIN_EXE_portico")), config, env)
    }

    /// [`Portico::start`] with another build of Portico (one with filters of its own).
    pub async fn start_with(binary: &Path, config: impl Into<Yaml>) -> Portico {
        let p = Self::spawn_with(binary, config, &[]);
        p.wait_ready().await;
        p
    }

    pub fn spawn_with(binary: &Path, config: impl Into<Yaml>, env: &[(&str, &std::ffi::OsStr)]) -> Portico {
        let body = config.into();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ports = HashMap::new();
        let mut head = String::new();
        for (section, line) in HEAD {
            if !body.text().contains(section) {
                head.push_str(line);
            }
        }
        let yaml =
            format!("{}{}", Yaml::new(&head).render(&mut ports, dir.path()), body.render(&mut ports, dir.path()));
        let config = dir.path().join("portico.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let admin = *ports.get("admin").expect("an admin port");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file"))
            .stdin(Stdio::null())
            .spawn()
            .expect("portico starts");
        Portico { child: Some(child), dir, config, admin, ports }
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = client();
        loop {
            if let Ok(r) = client.get(format!("http://127.0.0.1:{}/ready", self.admin)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("portico did not become ready:\n{}", self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn port(&self, name: &str) -> u16 {
        *self.ports.get(name).unwrap_or_else(|| panic!("no port named {name}"))
    }

    /// `http://127.0.0.1:PORT` of a listener placeholder.
    pub fn url(&self, name: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port(name), path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.admin, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub async fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status.success();
            }
            if Instant::now() > deadline {
                panic!("portico did not exit in {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Replaces the config file (same placeholders, same ports).
    pub fn rewrite_config(&mut self, config: impl Into<Yaml>) {
        let old = std::fs::read_to_string(&self.config).expect("config");
        // Keep the generated head (server/admin/access_log) and swap the rest.
        let head: String = old
            .lines()
            .take_while(|l| HEAD.iter().any(|(section, _)| l.starts_with(section)))
            .map(|l| format!("{l}\n"))
            .collect();
        let body = config.into().render(&mut self.ports, self.dir.path());
        std::fs::write(&self.config, format!("{head}{body}")).expect("write config");
    }

    pub async fn metrics(&self) -> String {
        client().get(self.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text")
    }
}

impl Drop for Portico {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("client")
}

/// The value of a metric line with exactly these labels (in any order), or 0.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    let split = |l: &str| {
        let mut v: Vec<String> =
            l.split("\",").map(|p| p.trim_end_matches('"').to_string()).filter(|p| !p.is_empty()).collect();
        v.sort();
        v
    };
    let want = split(labels);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, have) = match series.split_once('{') {
                Some((n, rest)) => (n, split(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            (n == name && have == want).then(|| value.trim().parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Polls `check` until it is true or the time is up.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// GETs a URL and returns (status, JSON body).
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = client().get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// A real `redis-server` on a free port, stopped when dropped.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> Redis {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (bash .ci/install-test-deps installs it)");
        let redis = Redis { child: Some(child), port, _dir: dir };
        eventually(Duration::from_secs(10), "redis answers PING", || async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
            if s.write_all(b"PING\r\n").await.is_err() {
                return false;
            }
            let mut buf = [0u8; 7];
            s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
        })
        .await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server, like a crash.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
