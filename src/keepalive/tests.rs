//! The header clock, the h2c opening and connection admission, on real sockets where it matters.

use super::admission::{Admission, AdmissionMetrics, Refused};
use super::io::{ConnIo, EndScan};
use super::{opening, Opening, H2_PREFACE};
use crate::config::ListenerLimits;
use crate::telemetry::Metrics;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where the header block ends when `bytes` arrive one at a time: the index of the byte that
/// ends it.
fn end_byte_by_byte(bytes: &[u8]) -> Option<usize> {
    let mut scan = EndScan::default();
    bytes.iter().position(|b| scan.finds_end(std::slice::from_ref(b)))
}

#[test]
fn the_header_block_ends_at_its_first_empty_line_however_the_reads_split_it() {
    let cases: [(&[u8], Option<usize>); 6] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", Some(26)),
        (b"GET / HTTP/1.1\nHost: a\n\nbody", Some(23)),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", Some(25)),
        // Empty lines before the request line are skipped by the parser, so they end nothing.
        (b"\r\n\nGET / HTTP/1.1\r\n\r\n", Some(20)),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", None),
        (b"GET / HTTP/1.1\r\nX: \r\r\n", None),
    ];
    for (bytes, end) in cases {
        let shown = String::from_utf8_lossy(bytes);
        assert_eq!(end_byte_by_byte(bytes), end, "{shown:?} byte by byte");
        // Any two reads: the end is found in the read that holds it.
        for split in 0..=bytes.len() {
            let mut scan = EndScan::default();
            let first = scan.finds_end(&bytes[..split]);
            let second = !first && scan.finds_end(&bytes[split..]);
            match end {
                Some(i) => assert_eq!((first, second), (i < split, i >= split), "{shown:?} split at {split}"),
                None => assert!(!first && !second, "{shown:?} split at {split}"),
            }
        }
    }
}

/// A server-side connection wrapped as Portico wraps it, and the client's end.
async fn connection(header_timeout: Duration) -> (ConnIo, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    let stream: pingora::protocols::Stream = Box::new(pingora::protocols::l4::stream::Stream::from(server));
    (ConnIo::new(stream, header_timeout), client)
}

/// Reads until the connection fails or `within` passes; the error kind, if any.
async fn read_until_error(conn: &mut ConnIo, within: Duration) -> Option<std::io::ErrorKind> {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline.into(), conn.read(&mut buf)).await {
            Ok(Ok(0)) => return Some(std::io::ErrorKind::UnexpectedEof),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Some(e.kind()),
            Err(_) => return None,
        }
    }
    None
}

#[tokio::test]
async fn a_header_trickling_in_fails_once_the_block_is_late_and_a_whole_one_never_does() {
    let timeout = Duration::from_millis(300);
    let (mut conn, mut client) = connection(timeout).await;
    let trickle = tokio::spawn(async move {
        client.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        for _ in 0..40 {
            if client.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client
    });
    let started = Instant::now();
    assert_eq!(read_until_error(&mut conn, Duration::from_secs(3)).await, Some(std::io::ErrorKind::TimedOut));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(1500), "cut after {took:?}");
    let _ = trickle.await;

    // A whole header, then a body that takes its time: the clock stopped with the header.
    let (mut conn, mut client) = connection(timeout).await;
    client.write_all(b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 256];
    assert!(conn.read(&mut buf).await.expect("header") > 0);
    assert!(!conn.in_header());
    assert_eq!(read_until_error(&mut conn, Duration::from_millis(600)).await, None, "no deadline on the body");

    // The next request on the connection gets a clock of its own.
    conn.start_request();
    client.write_all(b"GET").await.expect("write");
    assert_eq!(read_until_error(&mut conn, Duration::from_secs(3)).await, Some(std::io::ErrorKind::TimedOut));
}

#[tokio::test]
async fn an_h2c_listener_decides_on_the_bytes_seen_so_far() {
    // A request shorter than the preface is HTTP/1 at once, and Pingora then reads all of it.
    let (mut conn, mut client) = connection(Duration::from_secs(5)).await;
    let request = b"GET / HTTP/1.0\r\n\r\n";
    client.write_all(request).await.expect("write");
    let opened = tokio::time::timeout(Duration::from_secs(2), opening(&mut conn, true)).await.expect("decided");
    assert!(matches!(opened, Ok(Opening::Http1)));
    let mut got = vec![0u8; request.len()];
    conn.read_exact(&mut got).await.expect("replayed");
    assert_eq!(got, request);

    // The preface in two pieces is HTTP/2, and stays there for Pingora's own look.
    let (mut conn, mut client) = connection(Duration::from_secs(5)).await;
    let sender = tokio::spawn(async move {
        client.write_all(&H2_PREFACE[..10]).await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(&H2_PREFACE[10..]).await.expect("write");
        client
    });
    let opened = tokio::time::timeout(Duration::from_secs(2), opening(&mut conn, true)).await.expect("decided");
    assert!(matches!(opened, Ok(Opening::H2c)));
    let mut peeked = [0u8; 24];
    assert!(pingora::protocols::Peek::try_peek(&mut conn, &mut peeked).await.expect("peek"));
    assert_eq!(&peeked[..], H2_PREFACE);
    let _client = sender.await;
}

#[test]
fn connections_over_a_listener_or_address_limit_are_refused_and_places_come_back() {
    let metrics = Metrics::new().expect("metrics");
    let limits = ListenerLimits { max_connections: 3, max_connections_per_ip: 2, ..ListenerLimits::default() };
    let admission = Admission::new(&limits, AdmissionMetrics::of(&metrics, "web"));
    let a: IpAddr = "10.0.0.1".parse().expect("ip");
    let a_mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
    let b: IpAddr = "10.0.0.2".parse().expect("ip");

    let first = admission.admit(Some(a)).expect("first from a");
    let second = admission.admit(Some(a_mapped)).expect("second from a");
    assert_eq!(admission.admit(Some(a)).err(), Some(Refused::MaxConnectionsPerIp), "a holds two");
    let third = admission.admit(Some(b)).expect("b");
    assert_eq!(admission.admit(None).err(), Some(Refused::MaxConnections), "the listener holds three");
    assert_eq!((admission.open(), admission.open_from(a)), (3, 2));

    drop(second);
    let again = admission.admit(Some(a)).expect("a has a place again");
    drop((first, third, again));
    assert_eq!((admission.open(), admission.open_from(a), admission.open_from(b)), (0, 0, 0));

    let text = String::from_utf8(metrics.render()).expect("utf-8");
    assert!(text.contains("portico_connections_open{listener=\"web\"} 0"), "{text}");
    assert!(
        text.contains("portico_connections_refused_total{listener=\"web\",reason=\"max_connections\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portico_connections_refused_total{listener=\"web\",reason=\"max_connections_per_ip\"} 1"),
        "{text}"
    );
}

#[test]
fn ipv6_clients_count_by_their_network() {
    let metrics = Metrics::new().expect("metrics");
    let limits = ListenerLimits { max_connections_per_ip: 2, ..ListenerLimits::default() };
    let admission = Admission::new(&limits, AdmissionMetrics::of(&metrics, "web"));
    let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
    // Two addresses of one /64 are one client: the third connection from it is refused, from
    // whichever of its addresses.
    let first = admission.admit(Some(ip("2001:db8:1:2::1"))).expect("first");
    let second = admission.admit(Some(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"))).expect("second");
    assert_eq!(admission.admit(Some(ip("2001:db8:1:2::3"))).err(), Some(Refused::MaxConnectionsPerIp));
    assert_eq!(admission.open_from(ip("2001:db8:1:2::99")), 2);
    // The next /64 is another client.
    let other = admission.admit(Some(ip("2001:db8:1:3::1"))).expect("another /64");
    drop((first, second, other));
    assert_eq!(admission.open(), 0);
    assert_eq!(admission.open_from(ip("2001:db8:1:2::1")), 0);

    // `ipv6_prefix: 128`: every address is a client of its own.
    let limits = ListenerLimits { max_connections_per_ip: 1, ipv6_prefix: 128, ..ListenerLimits::default() };
    let admission = Admission::new(&limits, AdmissionMetrics::of(&metrics, "exact"));
    let a = admission.admit(Some(ip("2001:db8::1"))).expect("a");
    let b = admission.admit(Some(ip("2001:db8::2"))).expect("b, the same /64");
    assert_eq!(admission.admit(Some(ip("2001:db8::1"))).err(), Some(Refused::MaxConnectionsPerIp));
    drop((a, b));
    // A wider prefix (/48) groups more.
    let limits = ListenerLimits { max_connections_per_ip: 1, ipv6_prefix: 48, ..ListenerLimits::default() };
    let admission = Admission::new(&limits, AdmissionMetrics::of(&metrics, "wide"));
    let _a = admission.admit(Some(ip("2001:db8:1:2::1"))).expect("a");
    assert_eq!(admission.admit(Some(ip("2001:db8:1:9::1"))).err(), Some(Refused::MaxConnectionsPerIp));
    assert!(admission.admit(Some(ip("10.0.0.1"))).is_ok(), "IPv4 is per address");
}

#[test]
fn the_ipv6_prefix_of_connection_limits_is_configured_per_listener() {
    let yaml = |prefix: &str| {
        format!("listeners: [{{name: web, listen: \"127.0.0.1:0\", limits: {{ipv6_prefix: {prefix}}}}}]\nroutes: [{{name: r, respond: {{}}}}]\n")
    };
    let path = std::path::Path::new("t.yaml");
    let c = crate::config::load_str(&yaml("48"), path).expect("valid");
    assert_eq!(c.listeners[0].limits.ipv6_prefix, 48);
    let c = crate::config::load_str(
        "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nroutes: [{name: r, respond: {}}]\n",
        path,
    )
    .expect("valid");
    assert_eq!(c.listeners[0].limits.ipv6_prefix, 64, "the rate limiter's default");
    for bad in ["0", "129"] {
        let errors = crate::config::load_str(&yaml(bad), path).expect_err(bad).to_string();
        assert!(errors.contains("listeners[0].limits.ipv6_prefix: must be between 1 and 128"), "{errors}");
    }
}
