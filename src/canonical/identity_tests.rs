use super::*;

#[test]
fn the_table_is_sorted_lower_case_and_valid() {
    for pair in FORGEABLE.windows(2) {
        assert!(pair[0].name < pair[1].name, "{} before {}", pair[0].name, pair[1].name);
    }
    for f in &FORGEABLE {
        assert_eq!(f.name, f.name.to_ascii_lowercase());
        assert!(HeaderName::from_bytes(f.name.as_bytes()).is_ok(), "{}", f.name);
        assert!(!f.reason.is_empty());
        assert!(is_forgeable(f.name));
    }
}

#[test]
fn the_issue_names_are_forgeable() {
    for name in [
        "x-forwarded-client-cert",
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    ] {
        assert!(is_forgeable(name), "{name}");
    }
    for name in ["host", "authorization", "cookie", "x-api-key", "content-type", "x-request-id", "traceparent", "x"] {
        assert!(!is_forgeable(name), "{name}");
    }
}

#[test]
fn strip_removes_forgeable_and_declared_headers_only() {
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    for (k, v) in [
        ("Host", "a.example"),
        ("X-Real-IP", "10.0.0.1"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("Forwarded", "for=10.0.0.1"),
        ("X-Original-URL", "/admin"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Forwarded-Client-Cert", "URI=spiffe://evil"),
        ("X-User-Id", "alice"),
        ("Authorization", "Bearer t"),
        ("Accept", "*/*"),
    ] {
        req.append_header(k, v).expect("header");
    }
    req.append_header("X-Real-IP", "10.0.0.2").expect("second value");
    let declared = [HeaderName::from_static("x-user-id")];
    strip_forgeable(&mut req, &declared);
    let mut left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "authorization", "host"]);
    // The case map Pingora writes upstream agrees.
    let mut wire = Vec::new();
    req.header_to_h1_wire(&mut wire);
    let wire = String::from_utf8(wire).expect("ascii");
    assert!(wire.contains("Host: a.example") && !wire.contains("X-Real-IP") && !wire.contains("X-User-Id"), "{wire}");
}

#[test]
fn a_clean_request_is_left_alone() {
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    req.append_header("Host", "a.example").expect("header");
    req.append_header("Accept", "*/*").expect("header");
    let before = req.headers.clone();
    strip_forgeable(&mut req, &[]);
    assert_eq!(req.headers, before);
}

#[test]
fn the_prefilter_passes_every_table_name() {
    // A name the prefilter rejected would never be stripped: the bitmap must cover the table.
    for f in &FORGEABLE {
        let b = f.name.as_bytes();
        assert!(PREFILTER[b[0] as usize] & (1 << (b.len() % 64)) != 0, "{}", f.name);
    }
    // And it rejects the fields a typical request carries.
    for name in ["host", "accept", "accept-encoding", "user-agent", "authorization", "content-length"] {
        assert!(PREFILTER[name.as_bytes()[0] as usize] & (1 << (name.len() % 64)) == 0, "{name}");
    }
    assert!(!is_forgeable(""));
}
