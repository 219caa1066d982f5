use super::*;

fn host(raw: &str) -> String {
    match canonical_host(raw.as_bytes()) {
        Ok(h) => h.into_owned(),
        Err(e) => panic!("{raw:?} refused: {e:?}"),
    }
}

fn bad(raw: &str) -> HostError {
    match canonical_host(raw.as_bytes()) {
        Ok(h) => panic!("{raw:?} accepted as {h:?}"),
        Err(e) => e,
    }
}

#[test]
fn case_trailing_dot_and_port_are_normalized() {
    assert_eq!(host("api.example.com"), "api.example.com");
    assert_eq!(host("API.Example.COM"), "api.example.com");
    assert_eq!(host("api.example.com."), "api.example.com");
    assert_eq!(host("api.example.com:8080"), "api.example.com");
    assert_eq!(host("api.example.com.:8080"), "api.example.com");
    assert_eq!(host("Api.Example.Com.:443"), "api.example.com");
    assert_eq!(host("api.example.com:"), "api.example.com");
    assert_eq!(host("localhost"), "localhost");
    assert_eq!(host("127.0.0.1:9000"), "127.0.0.1");
    assert_eq!(host("my_service.internal"), "my_service.internal");
    assert_eq!(host("xn--bcher-kva.example"), "xn--bcher-kva.example");
}

#[test]
fn canonical_hosts_are_borrowed() {
    for raw in ["api.example.com", "api.example.com:8080", "a.example.", "a.example.:1", "[::1]", "[::1]:80"] {
        let h = canonical_host(raw.as_bytes()).expect(raw);
        assert!(matches!(h, Cow::Borrowed(_)), "{raw} allocated");
        assert!(raw.starts_with(h.as_ref()));
    }
    assert!(matches!(canonical_host(b"API.example"), Ok(Cow::Owned(_))));
}

#[test]
fn ipv6_literals_keep_brackets_and_lose_the_port() {
    assert_eq!(host("[::1]"), "[::1]");
    assert_eq!(host("[::1]:80"), "[::1]");
    assert_eq!(host("[0:0::1]:80"), "[::1]");
    assert_eq!(host("[2001:DB8::A]"), "[2001:db8::a]");
    assert_eq!(host("[2001:db8:0:0:0:0:0:1]"), "[2001:db8::1]");
    assert_eq!(host("[::ffff:192.0.2.1]:8080"), "[::ffff:192.0.2.1]");
    for raw in ["[::1", "[]", "[::g]", "[v1.fe]", "[fe80::1%25eth0]", "[1.2.3.4]", "[::1]x", "[::1]::80", "[::1]]"] {
        assert!(
            matches!(bad(raw), HostError::InvalidIpLiteral | HostError::InvalidName | HostError::InvalidPort),
            "{raw}"
        );
    }
    assert_eq!(bad("[::1]:99999"), HostError::InvalidPort);
}

#[test]
fn invalid_names_and_ports_are_refused() {
    for raw in [
        "",
        ".",
        ":80",
        "a..example",
        ".example",
        "a.example..",
        "a b",
        "a/b",
        "a\\b",
        "user@a.example",
        "a.example,b.example",
        "a%2eexample",
        "*.example",
        "a\0",
        "a\tb",
        "caf\u{e9}.example",
        "::1",
    ] {
        assert!(canonical_host(raw.as_bytes()).is_err(), "{raw:?} accepted");
    }
    assert_eq!(bad("a.example:http"), HostError::InvalidPort);
    assert_eq!(bad("a.example:65536"), HostError::InvalidPort);
    assert_eq!(bad("a.example:123456"), HostError::InvalidPort);
    assert_eq!(bad("a.example:-1"), HostError::InvalidPort);
    assert_eq!(host("a.example:65535"), "a.example");
    assert_eq!(host("a.example:0"), "a.example");
    assert_eq!(bad("a.example:80:80"), HostError::InvalidName);
}

#[test]
fn the_absolute_form_authority_wins_over_host() {
    let v11 = Version::HTTP_11;
    let pick = |h: Option<&'static str>, a: Option<&'static str>, v| {
        routing_host(h.map(str::as_bytes), a.map(str::as_bytes), v).map(|o| o.map(Cow::into_owned))
    };
    assert_eq!(pick(Some("a.example"), None, v11), Ok(Some("a.example".into())));
    assert_eq!(pick(None, Some("B.example:80"), v11), Ok(Some("b.example".into())));
    // RFC 9112 3.2.2: the authority of an absolute-form target wins; Host is ignored.
    assert_eq!(pick(Some("a.example"), Some("b.example"), v11), Ok(Some("b.example".into())));
    assert_eq!(pick(Some("not valid"), Some("b.example"), v11), Ok(Some("b.example".into())));
    assert_eq!(pick(None, None, v11), Err(HostError::Missing));
    assert_eq!(pick(None, None, Version::HTTP_2), Err(HostError::Missing));
    assert_eq!(pick(None, None, Version::HTTP_10), Ok(None));
    assert_eq!(pick(Some(""), None, v11), Ok(None));
    assert_eq!(pick(Some("a b"), None, v11), Err(HostError::InvalidName));
}

#[test]
fn request_host_reads_what_pingora_parsed() {
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    assert_eq!(request_host(&req), Err(HostError::Missing));
    req.insert_header("Host", "Shop.Example.:8443").expect("host");
    assert_eq!(request_host(&req).expect("host").as_deref(), Some("shop.example"));
    req.append_header("Host", "other.example").expect("host");
    assert_eq!(request_host(&req), Err(HostError::Duplicate));

    let mut old = RequestHeader::build("GET", b"/", None).expect("request");
    old.set_version(Version::HTTP_10);
    assert_eq!(request_host(&old), Ok(None));

    let abs = RequestHeader::build("GET", b"http://Abs.Example:8080/a/../b", None).expect("request");
    assert_eq!(request_host(&abs).expect("host").as_deref(), Some("abs.example"));
}

#[tokio::test]
async fn on_real_pingora_sessions() {
    use crate::canonical::framing::tests::read;
    // HTTP/1.1 without Host: Pingora forwards it; here it is a 400.
    let s = read(b"GET /a HTTP/1.1\r\n\r\n").await.expect("pingora accepts");
    assert_eq!(request_host(s.req_header()), Err(HostError::Missing));
    // Absent Host with an absolute-form target: its authority.
    let s = read(b"GET http://Abs.Example/a HTTP/1.1\r\n\r\n").await.expect("pingora accepts");
    assert_eq!(request_host(s.req_header()).expect("host").as_deref(), Some("abs.example"));
    let s = read(b"GET /a HTTP/1.1\r\nHost: API.example.com.:8080\r\n\r\n").await.expect("pingora accepts");
    assert_eq!(request_host(s.req_header()).expect("host").as_deref(), Some("api.example.com"));
    let s = read(b"GET /a HTTP/1.0\r\n\r\n").await.expect("pingora accepts");
    assert_eq!(request_host(s.req_header()), Ok(None));
    // Pingora itself refuses two Hosts and a Host differing from the absolute-form authority.
    assert!(read(b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").await.is_err());
    assert!(read(b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n").await.is_err());
}

#[test]
fn errors_have_codes() {
    assert_eq!(HostError::Missing.as_str(), "missing_host");
    for e in [HostError::Duplicate, HostError::InvalidName, HostError::InvalidPort, HostError::InvalidIpLiteral] {
        assert_eq!(e.as_str(), "invalid_host");
        assert_eq!(e.to_string(), e.message());
    }
}

#[test]
fn the_port_is_read_as_the_host_is_checked() {
    assert_eq!(port_of(b"a.example:8080"), Some(8080));
    assert_eq!(port_of(b"A.example.:443"), Some(443));
    assert_eq!(port_of(b"[::1]:80"), Some(80));
    for none in [&b"a.example"[..], b"[::1]", b"a.example:", b"a.example:99999", b"a.example:8x", b"[::1"] {
        assert_eq!(port_of(none), None, "{}", String::from_utf8_lossy(none));
    }
}
