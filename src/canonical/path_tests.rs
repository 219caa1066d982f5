use super::*;
use proptest::prelude::*;

fn ok(raw: &str) -> String {
    match canonical_path(raw) {
        Ok(p) => p.into_owned(),
        Err(e) => panic!("{raw:?} refused: {e:?}"),
    }
}

fn err(raw: &str) -> PathError {
    match canonical_path(raw) {
        Ok(p) => panic!("{raw:?} accepted as {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_issue_bypasses_become_the_admin_path() {
    // With `/api` public and `/api/admin` behind jwt + acl, each of these must route as /api/admin.
    assert_eq!(ok("/api/x/../admin/users"), "/api/admin/users");
    assert_eq!(ok("//api/admin"), "/api/admin");
    assert_eq!(ok("/api/%61dmin"), "/api/admin");
    assert_eq!(ok("/api/x/../admin"), "/api/admin");
    assert_eq!(ok("/api/./admin"), "/api/admin");
    assert_eq!(ok("/api//admin//users"), "/api/admin/users");
    assert_eq!(ok("/api/%2e/admin"), "/api/admin");
    assert_eq!(ok("/api/x/%2e%2e/admin"), "/api/admin");
    assert_eq!(ok("/api/x/.%2E/admin"), "/api/admin");
    assert_eq!(ok("/%61%70%69/%41dmin"), "/api/Admin");
    // strip_prefix escapes: `/users/../admin` with strip_prefix /users would leave `/../admin`.
    assert_eq!(ok("/users/../admin"), "/admin");
}

#[test]
fn canonical_paths_are_borrowed() {
    for raw in [
        "/",
        "/api",
        "/api/",
        "/api/admin/users",
        "/api/v1/users/1234/orders",
        "/a-b_c~d.e",
        "/a/b.c/.d/..e/e..",
        "/a/...",
        "/%20",
        "/a%3Ab",
        "/~user/",
        "/@:!$&'()*+,=",
        "*",
    ] {
        let p = canonical_path(raw).expect(raw);
        assert!(matches!(p, Cow::Borrowed(_)), "{raw} allocated");
        assert_eq!(p, raw);
    }
}

#[test]
fn the_empty_path_is_root() {
    assert_eq!(canonical_path("").expect("empty"), "/");
    assert!(matches!(canonical_path(""), Ok(Cow::Borrowed("/"))));
    assert_eq!(canonical_path_bytes(b"").expect("empty"), "/");
}

#[test]
fn unreserved_escapes_are_decoded_and_others_upper_cased() {
    assert_eq!(ok("/%7euser"), "/~user");
    assert_eq!(ok("/%2D%2e%5F%7E"), "/-._~");
    assert_eq!(ok("/%30%39%41%5A%61%7a"), "/09AZaz");
    assert_eq!(ok("/a%3ab"), "/a%3Ab");
    assert_eq!(ok("/a%3Fb"), "/a%3Fb");
    assert_eq!(ok("/%e2%82%ac"), "/%E2%82%AC");
    assert_eq!(ok("/%25"), "/%25");
    // `%252e` is `%2e` once decoded: not a dot. Decoding happens once.
    assert_eq!(ok("/a/%252e%252e/b"), "/a/%252e%252e/b");
    assert_eq!(ok("/a/%252E%252E/b"), "/a/%252E%252E/b");
    assert_eq!(ok("/%20a"), "/%20a");
    assert_eq!(ok("/%0a"), "/%0A");
    assert_eq!(ok("/%7f"), "/%7F");
}

#[test]
fn bytes_not_allowed_raw_are_encoded() {
    assert_eq!(ok("/a b"), "/a%20b");
    assert_eq!(ok("/\"<>"), "/%22%3C%3E");
    assert_eq!(ok("/{|}^`"), "/%7B%7C%7D%5E%60");
    assert_eq!(ok("/[::1]"), "/%5B::1%5D");
    assert_eq!(ok("/a#frag"), "/a%23frag");
    assert_eq!(ok("/a?b"), "/a%3Fb");
    assert_eq!(ok("/caf\u{e9}"), "/caf%C3%A9");
    assert_eq!(canonical_path_bytes(b"/caf\xe9").expect("latin-1"), "/caf%E9");
    assert_eq!(canonical_path_bytes(b"/\xff\xfe").expect("not utf-8"), "/%FF%FE");
}

#[test]
fn encoded_separators_nul_and_backslash_are_refused() {
    assert_eq!(err("/a%2fb"), PathError::EncodedSeparator);
    assert_eq!(err("/a%2Fb"), PathError::EncodedSeparator);
    assert_eq!(err("/api%2Fadmin"), PathError::EncodedSeparator);
    assert_eq!(err("/a%5cb"), PathError::EncodedSeparator);
    assert_eq!(err("/a%5Cb"), PathError::EncodedSeparator);
    assert_eq!(err("/a%00"), PathError::EncodedNul);
    assert_eq!(err("/a%00.html"), PathError::EncodedNul);
    assert_eq!(err("/a\\b"), PathError::Backslash);
    assert_eq!(err("/api\\..\\admin"), PathError::Backslash);
    assert_eq!(err("\\api"), PathError::NotOriginForm);
}

#[test]
fn control_bytes_and_bad_escapes_are_refused() {
    for raw in ["/a\0b", "/a\tb", "/a\rb", "/a\nb", "/a\x7fb", "/\x1b"] {
        assert_eq!(err(raw), PathError::ControlByte, "{raw:?}");
    }
    for raw in ["/%", "/%4", "/a%g0", "/a%0g", "/%%41", "/a%", "/a%2", "/%-1", "/% 1"] {
        assert_eq!(err(raw), PathError::InvalidEscape, "{raw:?}");
    }
}

#[test]
fn climbing_above_root_is_refused() {
    for raw in [
        "/..",
        "/../",
        "/../a",
        "/%2e%2e/",
        "/%2E%2E",
        "/.%2e",
        "/a/../..",
        "/a/b/../../..",
        "/a/b/../../../c",
        "//../a",
        "/./../a",
        "/a/./../../b",
    ] {
        assert_eq!(err(raw), PathError::AboveRoot, "{raw:?}");
    }
}

#[test]
fn dot_segments_resolve_as_rfc3986_5_2_4() {
    // RFC 3986 5.4 examples, as absolute paths.
    assert_eq!(ok("/a/b/c/./../../g"), "/a/g");
    assert_eq!(ok("/mid/content=5/../6"), "/mid/6");
    assert_eq!(ok("/a/b/c/."), "/a/b/c/");
    assert_eq!(ok("/a/b/c/./"), "/a/b/c/");
    assert_eq!(ok("/a/b/c/.."), "/a/b/");
    assert_eq!(ok("/a/b/c/../"), "/a/b/");
    assert_eq!(ok("/a/b/c/../g"), "/a/b/g");
    assert_eq!(ok("/a/b/c/g."), "/a/b/c/g.");
    assert_eq!(ok("/a/b/c/.g"), "/a/b/c/.g");
    assert_eq!(ok("/a/b/c/g.."), "/a/b/c/g..");
    assert_eq!(ok("/a/b/c/..g"), "/a/b/c/..g");
    assert_eq!(ok("/a/b/c/./g/."), "/a/b/c/g/");
    assert_eq!(ok("/a/b/c/g/./h"), "/a/b/c/g/h");
    assert_eq!(ok("/a/b/c/g/../h"), "/a/b/c/h");
    assert_eq!(ok("/a/.."), "/");
    assert_eq!(ok("/a/../"), "/");
    assert_eq!(ok("/."), "/");
    assert_eq!(ok("/./"), "/");
    assert_eq!(ok("/a/%2E%2e/b"), "/b");
    assert_eq!(ok("/a/%2E./b"), "/b");
    assert_eq!(ok("/a/.%2E/b"), "/b");
}

#[test]
fn duplicate_slashes_merge_and_trailing_slash_stays() {
    assert_eq!(ok("//"), "/");
    assert_eq!(ok("///"), "/");
    assert_eq!(ok("/a//"), "/a/");
    assert_eq!(ok("/a///b"), "/a/b");
    assert_eq!(ok("//a//b//"), "/a/b/");
    assert_eq!(ok("/a/.//b"), "/a/b");
    assert_eq!(ok("/a/..//b"), "/b");
    assert_eq!(ok("/a/b/..//"), "/a/");
    assert_eq!(ok("/a/"), "/a/");
}

#[test]
fn java_path_parameters_on_dot_segments_are_refused() {
    for raw in ["/api/x/..;/admin", "/api/..;jsessionid=1/admin", "/a/.;/b", "/..;", "/a/%2e%2e;/b", "/a/.%2e;x"] {
        assert_eq!(err(raw), PathError::DotSegmentParams, "{raw:?}");
    }
    // `;` elsewhere is a path parameter: refused too (see the module documentation).
    for raw in ["/a/b;c=d/e", "/a/x..;/b", "/a/;/b", "/api/admin;/users", "/api;/admin", "/a/b;", "/a%3Bb", "/a%3bb"] {
        assert_eq!(err(raw), PathError::PathParameter, "{raw:?}");
    }
    assert_eq!(err("/a/..%3B/b"), PathError::DotSegmentParams);
    // The query keeps its `;`.
    assert_eq!(canonical_target("/a/b?x=1;y=2").expect("query"), "/a/b?x=1;y=2");
}

#[test]
fn non_origin_forms() {
    assert!(matches!(canonical_path("*"), Ok(Cow::Borrowed("*"))));
    assert_eq!(err("**"), PathError::NotOriginForm);
    assert_eq!(err("*/a"), PathError::NotOriginForm);
    assert_eq!(err("a/b"), PathError::NotOriginForm);
    assert_eq!(err("../a"), PathError::NotOriginForm);
    assert_eq!(err("http://h/a"), PathError::NotOriginForm);
}

#[test]
fn absolute_form_leaves_its_path() {
    assert_eq!(strip_absolute_form(b"http://h.example/a/b?q"), b"/a/b?q");
    assert_eq!(strip_absolute_form(b"HTTPS://h.example:8443/a"), b"/a");
    assert_eq!(strip_absolute_form(b"http://h.example"), b"");
    assert_eq!(strip_absolute_form(b"http://h.example?x=1"), b"?x=1");
    assert_eq!(strip_absolute_form(b"/http://h/a"), b"/http://h/a");
    // Any scheme with an authority, as Pingora splits it; an ambiguous one stays and is refused.
    assert_eq!(strip_absolute_form(b"ftp://h/a"), b"/a");
    assert_eq!(strip_absolute_form(b"http:/\\h/a"), b"http:/\\h/a");
    assert_eq!(canonical_path_bytes(strip_absolute_form(b"http:/\\h/a")), Err(PathError::NotOriginForm));
    assert_eq!(
        canonical_target_bytes(strip_absolute_form(b"http://h.example/api/x/../admin")).expect("abs"),
        &b"/api/admin"[..]
    );
    assert_eq!(canonical_target_bytes(strip_absolute_form(b"http://h.example")).expect("abs"), &b"/"[..]);
    assert_eq!(canonical_target_bytes(strip_absolute_form(b"http://h.example?x")).expect("abs"), &b"/?x"[..]);
}

#[test]
fn the_query_is_kept_byte_for_byte() {
    assert_eq!(split_query("/a?b=c?d"), ("/a", Some("b=c?d")));
    assert_eq!(split_query("/a"), ("/a", None));
    assert_eq!(split_query("/a?"), ("/a", Some("")));
    assert!(matches!(canonical_target("/a/b?x=%2F&y=/../"), Ok(Cow::Borrowed("/a/b?x=%2F&y=/../"))));
    assert_eq!(canonical_target("/a/../b?x=%2f%61//").expect("target"), "/b?x=%2f%61//");
    assert_eq!(canonical_target("//a?").expect("target"), "/a?");
    assert_eq!(canonical_target("?q").expect("target"), "/?q");
    assert_eq!(canonical_target("/a%2fb?x").expect_err("target"), PathError::EncodedSeparator);
    // A query that is not UTF-8 is still kept as it came.
    let raw: &[u8] = b"/a//b?n=\xff%2F";
    assert_eq!(canonical_target_bytes(raw).expect("bytes"), &b"/a/b?n=\xff%2F"[..]);
    let clean: &[u8] = b"/a/b?n=\xff";
    assert!(matches!(canonical_target_bytes(clean), Ok(Cow::Borrowed(b)) if b == clean));
}

#[test]
fn errors_have_a_code_and_a_message() {
    let all = [
        PathError::NotOriginForm,
        PathError::EncodedSeparator,
        PathError::EncodedNul,
        PathError::Backslash,
        PathError::ControlByte,
        PathError::InvalidEscape,
        PathError::AboveRoot,
        PathError::DotSegmentParams,
    ];
    for e in all {
        assert_eq!(e.as_str(), "invalid_path");
        assert!(!e.message().is_empty());
        assert_eq!(e.to_string(), e.message());
    }
}

/// What a canonical path never contains.
fn assert_canonical_shape(p: &str) {
    assert!(p == "*" || p.starts_with('/'), "{p:?} not rooted");
    assert!(p.is_ascii(), "{p:?} not ASCII");
    assert!(!p.contains("//"), "{p:?} has //");
    assert!(!p.contains("/./") && !p.ends_with("/."), "{p:?} has a . segment");
    assert!(!p.contains("/../") && !p.ends_with("/.."), "{p:?} has a .. segment");
    assert!(!p.contains('\\'), "{p:?} has a backslash");
    assert!(!p.contains(';'), "{p:?} has a path parameter");
    let b = p.as_bytes();
    for (i, _) in p.match_indices('%') {
        let hex = &b[i + 1..i + 3];
        assert!(hex.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)), "{p:?}: escape not upper hex");
        let v = u8::from_str_radix(std::str::from_utf8(hex).expect("ascii"), 16).expect("hex");
        assert!(!is_unreserved(v), "{p:?}: escaped unreserved {v:#x}");
        assert!(v != b'/' && v != b'\\' && v != 0 && v != b';', "{p:?}: escaped separator, NUL or ';'");
    }
}

/// Path-like strings: slashes, dots, escapes (good, bad, of dots and slashes) and ordinary bytes.
fn pathish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("//".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E".to_string()),
        Just("%2f".to_string()),
        Just("%61".to_string()),
        Just("%7e".to_string()),
        Just("%3a".to_string()),
        Just("%25".to_string()),
        Just(";".to_string()),
        Just("%".to_string()),
        "[a-zA-Z0-9._~:@!$&'()*+,;=-]{1,4}",
        "%[0-9a-fA-F]{2}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| format!("/{}", v.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn canonical_path_is_idempotent_and_well_shaped(raw in pathish()) {
        if let Ok(p) = canonical_path(&raw) {
            assert_canonical_shape(&p);
            let again = canonical_path(&p).expect("a canonical path is accepted");
            prop_assert_eq!(&again, &p);
            prop_assert!(matches!(again, Cow::Borrowed(_)), "canonical {:?} allocated", p);
            // Borrowed exactly when unchanged.
            prop_assert_eq!(matches!(p, Cow::Borrowed(_)), p == raw.as_str());
        }
    }

    #[test]
    fn canonical_path_never_panics_on_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = canonical_path_bytes(&raw) {
            assert_canonical_shape(&p);
            prop_assert_eq!(canonical_path(&p).expect("canonical accepted"), p.clone());
        }
        let _ = canonical_target_bytes(&raw);
        let _ = canonical_target_bytes(strip_absolute_form(&raw));
    }

    #[test]
    fn canonical_path_never_panics_on_rooted_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut rooted = vec![b'/'];
        rooted.extend_from_slice(&raw);
        if let Ok(p) = canonical_path_bytes(&rooted) {
            assert_canonical_shape(&p);
            prop_assert_eq!(canonical_path(&p).expect("canonical accepted"), p.clone());
        }
    }
}

/// The target as Pingora parsed it, canonicalized and written back as the integrator will.
async fn through_pingora(request_line: &[u8]) -> Result<(String, String), PathError> {
    let mut bytes = request_line.to_vec();
    bytes.extend_from_slice(b"\r\nHost: h\r\n\r\n");
    let s = crate::canonical::framing::tests::read(&bytes).await.expect("pingora accepts");
    let mut req = s.req_header().clone();
    let target = canonical_target_bytes(strip_absolute_form(req.raw_path()))?.into_owned();
    req.set_raw_path(&target).expect("a canonical target is a valid target");
    Ok((req.uri.path().to_string(), String::from_utf8_lossy(req.raw_path()).into_owned()))
}

#[tokio::test]
async fn on_real_pingora_sessions() {
    let path = |p: &str| Ok((p.to_string(), p.to_string()));
    // curl --path-as-is sends these as they are; the upstream then gets the canonical form.
    assert_eq!(through_pingora(b"GET /api/x/../admin/users HTTP/1.1").await, path("/api/admin/users"));
    assert_eq!(through_pingora(b"GET //api/admin HTTP/1.1").await, path("/api/admin"));
    assert_eq!(through_pingora(b"GET /api/%61dmin HTTP/1.1").await, path("/api/admin"));
    assert_eq!(
        through_pingora(b"GET /api/./x/%2e%2E/admin?q=%2F/../ HTTP/1.1").await,
        Ok(("/api/admin".into(), "/api/admin?q=%2F/../".into()))
    );
    // Absolute-form: the authority is the host's business, the path is canonicalized.
    assert_eq!(through_pingora(b"GET http://h//api/%61dmin HTTP/1.1").await, path("/api/admin"));
    assert_eq!(through_pingora(b"GET http://h HTTP/1.1").await, path("/"));
    // Pingora percent-encodes the bytes httparse refuses (controls, space, quotes) before we see
    // them: a raw NUL arrives as %00 and is refused as such; a space arrives as %20.
    assert_eq!(through_pingora(b"GET /a\x00b HTTP/1.1").await, Err(PathError::EncodedNul));
    assert_eq!(through_pingora(b"GET /a b/../c HTTP/1.1").await, path("/c"));
    assert_eq!(through_pingora(b"GET /a%2fb HTTP/1.1").await, Err(PathError::EncodedSeparator));
    assert_eq!(through_pingora(b"GET /.. HTTP/1.1").await, Err(PathError::AboveRoot));
    assert_eq!(through_pingora(b"GET /a\\b HTTP/1.1").await, Err(PathError::Backslash));
}
