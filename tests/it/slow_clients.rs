//! An operator's listener stands up to slow and greedy clients: a header dribbled a byte at a
//! time, a client that stops reading a large response, a silent connection on an h2c listener,
//! and one address opening too many connections.

use crate::support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// One request on a raw connection and its response: (status, whether it said
/// `Connection: close`); `None` when the connection failed before a whole response arrived.
pub async fn exchange(conn: &mut TcpStream, request: &[u8]) -> Option<(u16, bool)> {
    conn.write_all(request).await.ok()?;
    read_response(conn).await.map(|r| (r.status, r.closes()))
}

/// How long until the server closes `conn` (reads return 0 or fail), reading and dropping
/// whatever arrives; `None` if it is still open after `within`.
async fn closed_after(conn: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: portico.test\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_dribbled_a_byte_at_a_time_is_cut_at_the_header_timeout_while_others_are_served() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web", limits: {header_timeout_s: 2}}]
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a}]
"#,
        )
        .origin(&a),
    )
    .await;

    // One byte every 500 ms: each read is quick, the header as a whole is not.
    let slow = TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connect");
    let (mut reader, mut writer) = slow.into_split();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for byte in b"GET /x HTTP/1.1\r\nHost: portico.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa" {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    // Meanwhile a normal client on its own connection is served at once.
    let quick = Instant::now();
    let (status, _) = get_json(&p.url("web", "/x")).await;
    assert_eq!(status, 200);
    assert!(quick.elapsed() < Duration::from_millis(1500), "a normal request waited {:?}", quick.elapsed());

    let mut buf = [0u8; 1024];
    let end = tokio::time::timeout(Duration::from_secs(8), reader.read(&mut buf)).await.expect("cut before 8 s");
    let took = started.elapsed();
    assert!(matches!(end, Ok(0) | Err(_)), "the dribbling client got an answer: {end:?}");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(4), "cut after {took:?}");
    dribble.abort();
}

/// An origin that answers every request with `size` bytes, as fast as it is allowed to.
async fn big_origin(size: usize) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = crate::support::free_listener();
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {size}\r\ncontent-type: application/octet-stream\r\n\r\n"
                );
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if conn.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_large_response_is_cut_at_the_write_timeout() {
    const SIZE: usize = 64 * 1024 * 1024;
    let (origin, origin_task) = big_origin(SIZE).await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web", limits: {write_timeout_s: 2}}]
upstreams: {big: {targets: ["$big"]}}
routes: [{name: all, upstream: big}]
"#,
        )
        .set("big", origin),
    )
    .await;

    // A small receive window, and nothing read: Portico's writes soon have nowhere to go.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let mut conn = socket.connect(([127, 0, 0, 1], p.port("web")).into()).await.expect("connect");
    conn.write_all(GET).await.expect("request");
    let started = Instant::now();
    let open = |text: &str| metric(text, "portico_connections_open", "listener=\"web\"");
    eventually(Duration::from_secs(5), "the connection is counted open", || async { open(&p.metrics().await) == 1.0 })
        .await;
    eventually(Duration::from_secs(10), "portico closes the connection of the client that stopped reading", || async {
        open(&p.metrics().await) == 0.0
    })
    .await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(6), "cut after {took:?}");

    // The client, reading now, gets what was in flight and then the end, far short of the body.
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.expect("the stream ends") {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(received < SIZE / 2, "received {received} of {SIZE} bytes");
    origin_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_listener_drops_a_silent_connection_and_answers_a_short_http_1_0_request() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web", http2: true, limits: {header_timeout_s: 2}}]
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a}]
"#,
        )
        .origin(&a),
    )
    .await;

    // Connected, and nothing sent: closed at the header timeout, not held.
    let mut silent = TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connect");
    let took = closed_after(&mut silent, Duration::from_secs(8)).await.expect("the silent connection is closed");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(4), "closed after {took:?}");

    // A request shorter than the HTTP/2 preface is recognised as HTTP/1 and answered.
    let mut conn = TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connect");
    let request = b"GET / HTTP/1.0\r\n\r\n";
    assert!(request.len() < 24);
    conn.write_all(request).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut response))
        .await
        .expect("answered, then closed")
        .expect("read");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.") && text.lines().next().is_some_and(|l| l.contains(" 200")), "{text}");

    // HTTP/2 with prior knowledge still works there.
    let r = crate::pki::curl(&["--http2-prior-knowledge"], &p.url("web", "/x"));
    assert_eq!((r.status, r.http_version.as_str()), (200, "2"), "{}", r.body);
}

/// A connection to `port` from the loopback address `from` (127.0.0.0/8 is all loopback).
async fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind((from, 0).into()).expect("bind the source address");
    socket.connect(([127, 0, 0, 1], port).into()).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_and_listener_limits_are_closed_and_counted() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web", limits: {max_connections_per_ip: 2, max_connections: 3}}]
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a}]
"#,
        )
        .origin(&a),
    )
    .await;
    let port = p.port("web");

    // Two keep-alive connections from 127.0.0.1 are served and stay open.
    let mut first = connect_from([127, 0, 0, 1], port).await;
    let mut second = connect_from([127, 0, 0, 1], port).await;
    for conn in [&mut first, &mut second] {
        assert_eq!(exchange(conn, GET).await, Some((200, false)));
    }
    // The third from the same address is closed without an answer.
    let mut third = connect_from([127, 0, 0, 1], port).await;
    assert_eq!(exchange(&mut third, GET).await, None, "the third connection from one address was served");

    // Another address still gets the listener's last place; after that the listener is full.
    let mut other = connect_from([127, 0, 0, 2], port).await;
    assert_eq!(exchange(&mut other, GET).await, Some((200, false)));
    let mut over = connect_from([127, 0, 0, 3], port).await;
    assert_eq!(exchange(&mut over, GET).await, None, "a connection over max_connections was served");

    let text = p.metrics().await;
    let refused = |reason: &str| {
        metric(&text, "portico_connections_refused_total", &format!("listener=\"web\",reason=\"{reason}\""))
    };
    assert_eq!((refused("max_connections_per_ip"), refused("max_connections")), (1.0, 1.0), "{text}");
    assert_eq!(metric(&text, "portico_connections_open", "listener=\"web\""), 3.0);

    // A closed connection gives its place back.
    drop(first);
    eventually(Duration::from_secs(5), "the closed connection's place is free", || async {
        metric(&p.metrics().await, "portico_connections_open", "listener=\"web\"") == 2.0
    })
    .await;
    let mut again = connect_from([127, 0, 0, 1], port).await;
    assert_eq!(exchange(&mut again, GET).await, Some((200, false)));
}
