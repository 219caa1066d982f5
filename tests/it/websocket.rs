//! A chat service behind Portico: WebSocket clients pass the route's filters before the
//! upgrade, their tunnels echo whatever they send, quiet tunnels are closed, reloads leave them
//! open, and shutdown closes them when its grace period ends. Both ends are the real Python
//! `websockets` library (tests/it/ws_peer.py).

use crate::support::*;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/ws_peer.py");

/// The echo server: any path echoes, `/refuse` answers 403, `/silent` never sends.
struct WsServer {
    _peer: PythonPeer,
    addr: String,
}

impl WsServer {
    async fn start() -> WsServer {
        let peer = PythonPeer::start(PEER, ["server"]).await;
        let addr = format!("127.0.0.1:{}", peer.port);
        WsServer { _peer: peer, addr }
    }
}

/// A client with one connection, driven a command at a time (see ws_peer.py).
struct WsClient {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// `{"open": true}`, or `{"refused": STATUS, "body", "headers"}`.
    hello: Value,
}

impl WsClient {
    async fn connect(url: &str, headers: &[&str]) -> WsClient {
        let mut child = Command::new("/usr/bin/python3")
            .args([PEER, "client", url])
            .args(headers)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the websocket client");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let hello = Self::read(&mut lines).await;
        WsClient { _child: child, stdin, lines, hello }
    }

    async fn read(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
            .await
            .expect("the client answers")
            .expect("read")
            .expect("a line from the client");
        serde_json::from_str(&line).expect("json from the client")
    }

    async fn cmd(&mut self, cmd: &str) -> Value {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).await.expect("send the command");
        Self::read(&mut self.lines).await
    }

    async fn echo(&mut self, kind: &str, len: usize) {
        let r = self.cmd(&format!("echo {kind} {len}")).await;
        assert_eq!(r, serde_json::json!({"ok": true, "len": len}), "{kind} message of {len} bytes echoed");
    }
}

/// The access-log lines of tunnels (those with a `websocket` object) on `route`.
fn tunnel_lines(p: &Portico, route: &str) -> Vec<Value> {
    p.access_log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["route"] == route && v.get("websocket").is_some())
        .collect()
}

async fn tunnel_line(p: &Portico, route: &str) -> Value {
    eventually(Duration::from_secs(10), "the tunnel's access line", || async { !tunnel_lines(p, route).is_empty() })
        .await;
    tunnel_lines(p, route).remove(0)
}

/// conf/websocket.yaml as written, on free ports and with the test's echo server.
fn example_config(origin: &WsServer) -> Yaml {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/websocket.yaml")).expect("conf");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("server:") && !l.starts_with("access_log:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = text
        .replace("127.0.0.1:9901", "127.0.0.1:$admin")
        .replace("127.0.0.1:8080", "127.0.0.1:$web")
        .replace("127.0.0.1:9001", "$echo");
    Yaml::new(&text).set("echo", &origin.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_tunnels_websockets_behind_its_filters_and_counts_them() {
    let origin = WsServer::start().await;
    let p = Portico::start(example_config(&origin)).await;
    let url = format!("ws://127.0.0.1:{}/chat", p.port("web"));

    // No API key: Portico refuses before the upgrade, the upstream never sees it.
    let refused = WsClient::connect(&url, &[]).await;
    assert_eq!(refused.hello["refused"], 401, "{}", refused.hello);
    assert!(refused.hello["body"].as_str().unwrap_or("").contains("\"error\""), "{}", refused.hello);
    assert!(refused.hello["headers"]["www-authenticate"].is_string(), "{}", refused.hello);

    // With it: text, binary and 1 MiB messages come back as sent, while the tunnel counts.
    let mut c = WsClient::connect(&url, &["x-api-key:chat-demo-key"]).await;
    assert_eq!(c.hello, serde_json::json!({"open": true}));
    c.echo("text", 11).await;
    c.echo("binary", 1000).await;
    c.echo("text", 1 << 20).await;
    c.echo("binary", 1 << 20).await;
    let m = p.metrics().await;
    assert_eq!(metric(&m, "portico_websocket_open", "route=\"chat\""), 1.0, "{m}");
    assert_eq!(metric(&m, "portico_websocket_upgrades_total", "route=\"chat\""), 1.0);
    let up = metric(&m, "portico_websocket_bytes_total", "route=\"chat\",direction=\"client_to_upstream\"");
    let down = metric(&m, "portico_websocket_bytes_total", "route=\"chat\",direction=\"upstream_to_client\"");
    assert!(up >= 2.0 * 1048576.0 && down >= 2.0 * 1048576.0, "bytes each way: {up} {down}");

    // An upstream that refuses the upgrade: its answer reaches the client unchanged.
    let no = WsClient::connect(&format!("{url}/refuse"), &["x-api-key:chat-demo-key"]).await;
    assert_eq!(no.hello["refused"], 403, "{}", no.hello);
    assert_eq!(no.hello["body"], "upstream says no\n");
    assert_eq!(no.hello["headers"]["x-refused-by"], "origin");

    // One line when the tunnel closes: bytes each way, how long, why.
    assert!(tunnel_lines(&p, "chat").is_empty(), "no line while the tunnel is open");
    assert_eq!(c.cmd("close").await["closed"], true);
    let line = tunnel_line(&p, "chat").await;
    let ws = &line["websocket"];
    assert_eq!(ws["close"], "client_closed", "{line}");
    assert!(ws["bytes_in"].as_f64().unwrap_or(0.0) >= up && ws["bytes_out"].as_f64().unwrap_or(0.0) >= down);
    assert!(ws["open_ms"].as_f64().unwrap_or(0.0) > 0.0, "{line}");
    assert_eq!((line["status"].as_u64(), line["consumer"].as_str()), (Some(101), Some("chat-app")), "{line}");
    let m = p.metrics().await;
    assert_eq!(metric(&m, "portico_websocket_open", "route=\"chat\""), 0.0);
    assert_eq!(metric(&m, "portico_websocket_closed_total", "route=\"chat\",reason=\"client_closed\""), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_tunnels_close_and_a_reload_leaves_open_ones_alone() {
    let origin = WsServer::start().await;
    let routes = |extra: &str| {
        Yaml::web(
            r#"
upstreams:
  echo: {targets: ["$echo"]}
  echo-h2: {targets: ["$echo"], http2: true}
routes:
  - {name: chat, match: {path: /chat}, upstream: echo, websocket: {}}
  - {name: quiet, match: {path: /quiet}, upstream: echo, websocket: {idle_timeout_s: 1}}
  - {name: via-h2, match: {path: /via-h2}, upstream: echo-h2}
  - name: limited
    match: {path: /limited}
    upstream: echo
    filters: [{rate_limit: {key: client_ip, requests_per_minute: 1, burst: 1}}]
$extra
"#,
        )
        .set("echo", &origin.addr)
        .set("extra", extra)
    };
    let mut p = Portico::start(routes("")).await;
    let ws = |path: &str| format!("ws://127.0.0.1:{}{path}", p.port("web"));
    let mut chat = WsClient::connect(&ws("/chat"), &[]).await;

    // An upgrade goes over HTTP/1.1 even to an `http2: true` upstream (h2 has no Upgrade).
    let mut via_h2 = WsClient::connect(&ws("/via-h2"), &[]).await;
    assert_eq!(via_h2.hello, serde_json::json!({"open": true}));
    via_h2.echo("text", 1000).await;

    // The route's rate limit counts upgrades: the second in a minute is refused, the first's
    // tunnel stays.
    let mut first = WsClient::connect(&ws("/limited"), &[]).await;
    let second = WsClient::connect(&ws("/limited"), &[]).await;
    assert_eq!(second.hello["refused"], 429, "{}", second.hello);
    assert!(second.hello["headers"]["retry-after"].is_string(), "{}", second.hello);
    first.echo("text", 10).await;

    // Bytes either way keep a tunnel open past its idle timeout; a second of nothing closes it.
    let mut quiet = WsClient::connect(&ws("/quiet"), &[]).await;
    for _ in 0..5 {
        quiet.echo("text", 10).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let closed = quiet.cmd("wait_close").await;
    let after = closed["after_s"].as_f64().unwrap_or(99.0);
    assert!(closed["closed"] == true && (0.2..4.0).contains(&after), "closed after 1 s idle: {closed}");
    assert_eq!(tunnel_line(&p, "quiet").await["websocket"]["close"], "idle_timeout");

    // Bytes one way are enough: a client talking to an upstream that never answers.
    let mut talker = WsClient::connect(&ws("/quiet/silent"), &[]).await;
    for _ in 0..5 {
        assert_eq!(talker.cmd("send text 10").await["sent"], 10);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let closed = talker.cmd("wait_close").await;
    let after = closed["after_s"].as_f64().unwrap_or(99.0);
    assert!(closed["closed"] == true && (0.2..4.0).contains(&after), "open while the client talks: {closed}");

    // A reload changes the routes; the open tunnel keeps working on the config it started on.
    p.rewrite_config(routes("  - {name: new, match: {path: /new}, respond: {body: new}}"));
    let r = client().post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200);
    assert_eq!(get_json(&p.url("web", "/new")).await.0, 200, "the new config is live");
    chat.echo("text", 100).await;
    chat.echo("binary", 100_000).await;
    assert_eq!(metric(&p.metrics().await, "portico_websocket_open", "route=\"chat\""), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_tunnels_when_its_grace_period_ends() {
    let origin = WsServer::start().await;
    let config = Yaml::web(
        r#"
server: {threads: 1, grace_period_s: 2, graceful_shutdown_timeout_s: 2, pid_file: $dir/p.pid, upgrade_sock: $dir/u.sock}
upstreams: {echo: {targets: ["$echo"]}}
routes: [{name: chat, upstream: echo, websocket: {}}]
"#,
    )
    .set("echo", &origin.addr);
    let mut p = Portico::start(config).await;
    let mut c = WsClient::connect(&format!("ws://127.0.0.1:{}/", p.port("web")), &[]).await;
    c.echo("text", 10).await;

    // During the grace period the tunnel still works; at its end it is closed and logged.
    let sigterm = Instant::now();
    p.signal("TERM");
    c.echo("text", 10).await;
    let closed = c.cmd("wait_close").await;
    let after = sigterm.elapsed();
    assert_eq!(closed["closed"], true, "{closed}");
    assert!(after > Duration::from_millis(1200) && after < Duration::from_secs(4), "closed {after:?} after SIGTERM");
    assert!(p.wait_exit(Duration::from_secs(5)).await, "a clean exit:\n{}", p.stderr());
    assert_eq!(tunnel_line(&p, "chat").await["websocket"]["close"], "shutdown");
}
