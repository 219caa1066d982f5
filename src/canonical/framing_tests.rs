use super::*;
use pingora::protocols::http::v1::server::HttpSession;
use tokio::io::AsyncWriteExt;

/// A real Pingora HTTP/1 server session that has read `bytes` as a client sent them.
pub(crate) async fn read(bytes: &[u8]) -> pingora::Result<HttpSession> {
    let (mut client, server) = tokio::io::duplex(4 << 20);
    client.write_all(bytes).await.map_err(|e| pingora::Error::because(pingora::ErrorType::WriteError, "duplex", e))?;
    let mut session = HttpSession::new(Box::new(server));
    match session.read_request().await? {
        Some(_) => Ok(session),
        None => pingora::Error::e_explain(pingora::ErrorType::ReadError, "no request"),
    }
}

/// Pingora's reading of `bytes`, then ours: `Ok` when both accept.
async fn check(bytes: &[u8]) -> Result<(), FramingError> {
    let s = read(bytes).await.unwrap_or_else(|e| panic!("pingora refused {:?}: {e}", bytes.escape_ascii().to_string()));
    check_framing(s.req_header(), Some(&s.get_headers_raw_bytes()), &HeaderLimits::default())
}

fn te(value: &str) -> Vec<u8> {
    format!("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {value}\r\n\r\n0\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn ordinary_requests_pass() {
    assert_eq!(check(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await, Ok(()));
    assert_eq!(check(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc").await, Ok(()));
    assert_eq!(check(&te("chunked")).await, Ok(()));
    assert_eq!(check(&te("Chunked")).await, Ok(()));
    assert_eq!(check(&te("CHUNKED")).await, Ok(()));
    assert_eq!(check(b"GET / HTTP/1.0\r\n\r\n").await, Ok(()));
    // Identical duplicates are one length (RFC 9110 8.6), as Pingora also accepts.
    assert_eq!(
        check(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc").await,
        Ok(())
    );
    assert_eq!(check(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc").await, Ok(()));
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400() {
    let both = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let s = read(both).await.expect("pingora accepts CL+TE");
    // What Pingora leaves: the CL is gone from the parsed header, keep-alive is off.
    assert!(s.req_header().headers.get(CONTENT_LENGTH).is_none());
    assert!(!s.will_keepalive());
    // Without the raw block the parsed header alone cannot tell.
    assert_eq!(check_framing(s.req_header(), None, &HeaderLimits::default()), Ok(()));
    assert_eq!(check(both).await, Err(FramingError::ContentLengthWithTransferEncoding));
    // In either order, any case, bare LF lines.
    let te_first = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\ncontent-LENGTH: 5\r\n\r\n0\r\n\r\n";
    assert_eq!(check(te_first).await, Err(FramingError::ContentLengthWithTransferEncoding));
    let lf = b"POST /a HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nContent-Length: 5\n\n0\r\n\r\n";
    assert_eq!(check(lf).await, Err(FramingError::ContentLengthWithTransferEncoding));
    // A header built by hand keeps both: also refused.
    let mut req = RequestHeader::build("POST", b"/", None).expect("request");
    req.insert_header("content-length", "5").expect("cl");
    req.insert_header("transfer-encoding", "chunked").expect("te");
    assert_eq!(
        check_framing(&req, None, &HeaderLimits::default()),
        Err(FramingError::ContentLengthWithTransferEncoding)
    );
    // A header whose value merely mentions content-length is no CL field.
    let mention =
        b"POST /a HTTP/1.1\r\nHost: h\r\nX-Note: content-length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(check(mention).await, Ok(()));
}

#[tokio::test]
async fn differing_content_lengths_are_400() {
    // Pingora 0.9.1 refuses these itself.
    assert!(read(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc").await.is_err());
    assert!(read(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabc").await.is_err());
    // Headers built elsewhere get the same rule here.
    let limits = HeaderLimits::default();
    for values in [&["3", "4"][..], &["3, 4"], &["-1"], &["abc"], &["3,"], &[""], &["0x3"], &["+3"]] {
        let mut req = RequestHeader::build("POST", b"/", None).expect("request");
        for v in values {
            req.append_header("content-length", *v).expect("cl");
        }
        assert_eq!(check_framing(&req, None, &limits), Err(FramingError::InvalidContentLength), "{values:?}");
    }
    for values in [&["3", "3"][..], &["3, 3"], &["03", "3"], &["0", "00"], &["10"]] {
        let mut req = RequestHeader::build("POST", b"/", None).expect("request");
        for v in values {
            req.append_header("content-length", *v).expect("cl");
        }
        assert_eq!(check_framing(&req, None, &limits), Ok(()), "{values:?}");
    }
}

#[tokio::test]
async fn obfuscated_transfer_encodings_pingora_lets_through_are_400() {
    for value in [
        "chunked, chunked",
        ", chunked",
        "chunked ,, chunked",
        "gzip\t, chunked",
        "gzip,\tchunked",
        "chu nked, chunked",
        "x;y, chunked",
        "chunked;a=b, chunked",
        "\"chunked\", chunked",
    ] {
        let bytes = te(value);
        match read(&bytes).await {
            Ok(s) => assert_eq!(
                check_framing(s.req_header(), Some(&s.get_headers_raw_bytes()), &HeaderLimits::default()),
                Err(FramingError::MalformedTransferEncoding),
                "{value:?}"
            ),
            Err(e) => panic!("expected pingora to accept {value:?}: {e}"),
        }
    }
    // Whitespace around the whole value is trimmed by the parser: what goes upstream is `chunked`.
    for value in ["chunked\t", "\tchunked", " chunked "] {
        let s = read(&te(value)).await.expect("pingora accepts");
        assert_eq!(s.req_header().headers.get(TRANSFER_ENCODING).map(|v| v.as_bytes()), Some(&b"chunked"[..]));
        assert_eq!(check(&te(value)).await, Ok(()), "{value:?}");
    }
    // Two fields of `chunked`: chunked applied twice.
    let two =
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(check(two).await, Err(FramingError::MalformedTransferEncoding));
}

#[tokio::test]
async fn chunked_not_last_is_refused_by_pingora_and_here() {
    for value in ["chunked, gzip", "gzip", "identity", "chunked;x=1", "chunkedx"] {
        assert!(read(&te(value)).await.is_err(), "pingora accepted {value:?}");
        let mut req = RequestHeader::build("POST", b"/", None).expect("request");
        req.insert_header("transfer-encoding", value).expect("te");
        assert_eq!(
            check_framing(&req, None, &HeaderLimits::default()),
            Err(FramingError::MalformedTransferEncoding),
            "{value:?}"
        );
    }
}

#[tokio::test]
async fn other_codings_before_chunked_are_501() {
    for value in [
        "gzip, chunked",
        "gzip,chunked",
        "deflate , chunked",
        "identity, chunked",
        "x-custom, GZIP, chunked",
        "xchunked, chunked",
    ] {
        assert_eq!(check(&te(value)).await, Err(FramingError::UnsupportedTransferEncoding), "{value:?}");
    }
    let split =
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(check(split).await, Err(FramingError::UnsupportedTransferEncoding));
    assert_eq!(FramingError::UnsupportedTransferEncoding.status(), 501);
}

#[tokio::test]
async fn transfer_encoding_outside_http11_is_400() {
    assert!(read(b"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").await.is_err());
    let mut req = RequestHeader::build("POST", b"/", None).expect("request");
    req.set_version(Version::HTTP_2);
    req.insert_header("transfer-encoding", "chunked").expect("te");
    assert_eq!(check_framing(&req, None, &HeaderLimits::default()), Err(FramingError::TransferEncodingNotAllowed));
}

fn with_headers(n: usize, value_len: usize) -> Vec<u8> {
    let mut b = b"GET /a HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..n {
        b.extend_from_slice(format!("x-h{i}: {}\r\n", "v".repeat(value_len)).as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    b
}

#[tokio::test]
async fn header_limits_are_431() {
    // Host + 99 = 100 fields: at the limit.
    assert_eq!(check(&with_headers(99, 1)).await, Ok(()));
    assert_eq!(check(&with_headers(100, 1)).await, Err(FramingError::TooManyHeaders));
    assert_eq!(check(&with_headers(200, 1)).await, Err(FramingError::TooManyHeaders));
    assert_eq!(FramingError::TooManyHeaders.status(), 431);
    // Pingora's own cap: more than 256 fields does not parse at all (a 400 from Pingora).
    assert!(read(&with_headers(300, 1)).await.is_err());
    // 20 fields of 2 KiB: 40 KiB > 32 KiB.
    assert_eq!(check(&with_headers(20, 2048)).await, Err(FramingError::HeadersTooLarge));
    assert_eq!(FramingError::HeadersTooLarge.status(), 431);
    // One field of 31 KiB fits; a long target counts too.
    assert_eq!(check(&with_headers(1, 31 * 1024)).await, Ok(()));
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(33 * 1024));
    assert_eq!(check(long_target.as_bytes()).await, Err(FramingError::HeadersTooLarge));
}

#[tokio::test]
async fn the_byte_count_matches_the_wire() {
    // `name: value\r\n` per field plus the request line is what the client sent, bar the last CRLF.
    let bytes = with_headers(10, 17);
    let s = read(&bytes).await.expect("request");
    let exact = bytes.len() - 2;
    let fits = HeaderLimits { max_headers: 100, max_header_bytes: exact };
    assert_eq!(check_limits(s.req_header(), &fits), Ok(()));
    let short = HeaderLimits { max_headers: 100, max_header_bytes: exact - 1 };
    assert_eq!(check_limits(s.req_header(), &short), Err(FramingError::HeadersTooLarge));
}

#[test]
fn errors_have_statuses_and_codes() {
    use FramingError::*;
    for (e, status, code) in [
        (ContentLengthWithTransferEncoding, 400, "invalid_framing"),
        (InvalidContentLength, 400, "invalid_framing"),
        (TransferEncodingNotAllowed, 400, "invalid_framing"),
        (MalformedTransferEncoding, 400, "invalid_framing"),
        (UnsupportedTransferEncoding, 501, "unsupported_transfer_encoding"),
        (TooManyHeaders, 431, "headers_too_large"),
        (HeadersTooLarge, 431, "headers_too_large"),
    ] {
        assert_eq!((e.status(), e.as_str()), (status, code));
        assert_eq!(e.to_string(), e.message());
    }
    assert_eq!(HeaderLimits::default(), HeaderLimits { max_headers: 100, max_header_bytes: 32768 });
}

#[tokio::test]
async fn bare_lf_line_ends_are_refused() {
    // Pingora (httparse) reads each of these; every one has a line ending in LF alone.
    for bytes in [
        &b"GET / HTTP/1.1\nHost: h\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\nX-B: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"POST /a HTTP/1.1\r\nHost: h\nContent-Length: 3\r\n\r\nabc",
    ] {
        let shown = bytes.escape_ascii().to_string();
        assert_eq!(check(bytes).await, Err(FramingError::BareLineFeed), "{shown}");
        assert_eq!(FramingError::BareLineFeed.status(), 400);
    }
    // CRLF throughout passes; an LF in the body is the body's business.
    assert_eq!(check(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n\n\n\n").await, Ok(()));
    // The raw-block rule itself.
    assert!(has_bare_lf(b"\n"));
    assert!(has_bare_lf(b"a\r\nb\n"));
    assert!(!has_bare_lf(b"a\r\nb\r\n\r\n"));
    assert!(!has_bare_lf(b""));
    // Without the raw block (HTTP/2) there are no line ends to look at.
    let s = read(b"GET / HTTP/1.1\nHost: h\n\n").await.expect("pingora accepts bare LF");
    assert_eq!(check_framing(s.req_header(), None, &HeaderLimits::default()), Ok(()));
}
