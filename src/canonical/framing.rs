//! Request framing checks that Pingora 0.9.1 leaves to the application.
//!
//! What Pingora already does when it reads an HTTP/1 request (`pingora-core`
//! `protocols/http/v1/server.rs`, `read_request` and `validate_request`): it refuses two `Host`
//! fields, a `Host` that differs from an absolute-form authority, differing or unparseable
//! `Content-Length` values (when there is no `Transfer-Encoding`), `Transfer-Encoding` on HTTP/1.0,
//! and a `Transfer-Encoding` whose last coding is not `chunked`; it caps the header block at 1 MiB
//! and 256 fields (more is a parse error: 400, not 431).
//!
//! What it lets through, and [`check_framing`] refuses:
//! - **`Content-Length` with `Transfer-Encoding`** -> 400. Pingora removes the `Content-Length`
//!   (RFC 9112 6.3 lets TE override it) and only turns keep-alive off, so the parsed header no
//!   longer shows it: the raw header block (`SessionV1::get_headers_raw_bytes`) does, and is
//!   looked at only when `Transfer-Encoding` is present. A request carrying both is a smuggling
//!   attempt in practice (RFC 9112 6.1: "ought to be handled as an error").
//! - **A `Transfer-Encoding` other than exactly `chunked`.** Pingora only looks at the text after
//!   the last comma, so `chunked, chunked`, `gzip\t, chunked`, `,chunked` and `xchunked, chunked`
//!   pass it, and upstreams that parse the list differently frame the body differently.
//!   (Whitespace around the whole field value is trimmed by the parser, so `chunked\t` arrives,
//!   and is forwarded, as `chunked`.) The rule here:
//!   the codings across all `Transfer-Encoding` fields are tokens separated by commas with optional
//!   spaces (no tabs, no empty elements, no parameters), `chunked` (any case) appears exactly once
//!   and last. A list that breaks that is malformed: 400 (RFC 9112 6.3: chunked not final "MUST
//!   respond with 400"; chunked twice is forbidden by 7). A well-formed list with other codings
//!   before `chunked` (`gzip, chunked`) is 501: RFC 9112 6.1 says a server that receives a
//!   transfer coding it does not understand SHOULD answer 501, and Portico does not decode
//!   transfer codings (forwarding them leaves each upstream to its own reading).
//! - **A bare LF in the header block** -> 400. RFC 9112 2.2 lets a recipient accept a lone LF as
//!   a line end, and httparse (so Pingora) does; an upstream or a device in between that does not
//!   reads the same bytes as other lines (a header hidden inside another's value, or a second
//!   request). nginx's strict parsing, Apache's `HttpProtocolOptions Strict` and HAProxy refuse it;
//!   so does Portico: every line of the request line and header fields ends in CRLF. Checked on
//!   the raw block (looked at for every HTTP/1 request: one `memchr` pass over a few hundred
//!   bytes), after the rules above so a request that breaks several gets the most specific one.
//! - **Too many or too large headers** -> 431 (RFC 6585 5): more than `max_headers` fields, or more
//!   than `max_header_bytes` counted as `name: value\r\n` per field plus the request line.
//!
//! `HTTP/1.1` without `Host` is refused by `host.rs` ([`super::host::request_host`]), with the
//! routing host, so that the rule lives where the host is read.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::Version;
use pingora::http::RequestHeader;

/// The header limits of a listener (`limits.max_headers`, `limits.max_header_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Most header fields a request may carry (Pingora's own cap is 256).
    pub max_headers: usize,
    /// Most bytes of request line and header fields (Pingora's own cap is 1 MiB).
    pub max_header_bytes: usize,
}

impl Default for HeaderLimits {
    /// 100 fields, 32 KiB: above what browsers and API clients send (a few KiB of cookies and
    /// tokens), well below what a slowloris-style header flood needs.
    fn default() -> Self {
        HeaderLimits { max_headers: 100, max_header_bytes: 32 * 1024 }
    }
}

/// Why a request's framing was refused, with the status each gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// `Content-Length` and `Transfer-Encoding` both present: 400.
    ContentLengthWithTransferEncoding,
    /// `Content-Length` values that differ or are not numbers: 400.
    InvalidContentLength,
    /// `Transfer-Encoding` on a protocol without it (HTTP/1.0, HTTP/2): 400.
    TransferEncodingNotAllowed,
    /// A `Transfer-Encoding` list that is malformed or does not end in one `chunked`: 400.
    MalformedTransferEncoding,
    /// A well-formed `Transfer-Encoding` with codings besides `chunked`: 501.
    UnsupportedTransferEncoding,
    /// A line of the request line or header fields ends in LF without CR: 400.
    BareLineFeed,
    /// More header fields than `max_headers`: 431.
    TooManyHeaders,
    /// More header bytes than `max_header_bytes`: 431.
    HeadersTooLarge,
}

impl FramingError {
    /// The status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            FramingError::UnsupportedTransferEncoding => 501,
            FramingError::TooManyHeaders | FramingError::HeadersTooLarge => 431,
            _ => 400,
        }
    }

    /// The `error` code of the refusal's body.
    pub fn as_str(&self) -> &'static str {
        match self {
            FramingError::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            FramingError::TooManyHeaders | FramingError::HeadersTooLarge => "headers_too_large",
            _ => "invalid_framing",
        }
    }

    /// The `message` of the refusal's body.
    pub fn message(&self) -> &'static str {
        match self {
            FramingError::ContentLengthWithTransferEncoding => "Content-Length and Transfer-Encoding together",
            FramingError::InvalidContentLength => "invalid or conflicting Content-Length",
            FramingError::TransferEncodingNotAllowed => "Transfer-Encoding is not allowed in this HTTP version",
            FramingError::MalformedTransferEncoding => "Transfer-Encoding must be exactly 'chunked'",
            FramingError::UnsupportedTransferEncoding => "only the chunked transfer coding is supported",
            FramingError::BareLineFeed => "header lines must end in CRLF, not a bare LF",
            FramingError::TooManyHeaders => "too many request header fields",
            FramingError::HeadersTooLarge => "request header fields too large",
        }
    }
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for FramingError {}

/// Checks a parsed request's framing and header size. `raw_header` is the request's raw header
/// block when there is one (HTTP/1: `session.as_downstream().as_http1()` then
/// `get_headers_raw_bytes()`); without it neither a `Content-Length` that Pingora removed in
/// favour of `Transfer-Encoding` nor a bare LF can be seen.
///
/// The common request (no `Transfer-Encoding`, one or no `Content-Length`) costs one pass over the
/// header map to count bytes, two lookups and one `memchr` pass over the raw block.
pub fn check_framing(
    req: &RequestHeader,
    raw_header: Option<&[u8]>,
    limits: &HeaderLimits,
) -> Result<(), FramingError> {
    check_limits(req, limits)?;
    let has_te = req.headers.contains_key(TRANSFER_ENCODING);
    if has_te {
        if req.headers.contains_key(CONTENT_LENGTH) || raw_header.is_some_and(raw_has_content_length) {
            return Err(FramingError::ContentLengthWithTransferEncoding);
        }
        if req.version != Version::HTTP_11 {
            return Err(FramingError::TransferEncodingNotAllowed);
        }
        check_transfer_encoding(req)?;
    } else {
        check_content_length(req)?;
    }
    if raw_header.is_some_and(has_bare_lf) {
        return Err(FramingError::BareLineFeed);
    }
    Ok(())
}

/// Whether a line of `raw` (the request line and header fields, as received) ends in an LF
/// that no CR precedes.
pub fn has_bare_lf(raw: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', raw).any(|i| i == 0 || raw[i - 1] != b'\r')
}

/// The 431 checks: the field count, then the bytes as HTTP/1.1 would put them on the wire.
pub fn check_limits(req: &RequestHeader, limits: &HeaderLimits) -> Result<(), FramingError> {
    if req.headers.len() > limits.max_headers {
        return Err(FramingError::TooManyHeaders);
    }
    // `METHOD SP target SP HTTP/1.1 CRLF`
    let mut bytes = req.method.as_str().len() + 1 + req.raw_path().len() + 1 + 8 + 2;
    for (name, value) in req.headers.iter() {
        bytes += name.as_str().len() + value.len() + 4;
    }
    if bytes > limits.max_header_bytes {
        return Err(FramingError::HeadersTooLarge);
    }
    Ok(())
}

/// Whether the raw header block has a `Content-Length` field. httparse allows no space before
/// the colon, so the name is everything up to it; lines end in LF or CRLF.
fn raw_has_content_length(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        line.iter().position(|&b| b == b':').is_some_and(|colon| line[..colon].eq_ignore_ascii_case(b"content-length"))
    })
}

/// Several `Content-Length` values must all be the same number (RFC 9110 8.6). Pingora refuses
/// the rest already; this keeps the rule true for headers built elsewhere.
fn check_content_length(req: &RequestHeader) -> Result<(), FramingError> {
    let mut seen: Option<&[u8]> = None;
    for value in req.headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return Err(FramingError::InvalidContentLength);
            }
            // Leading zeros compare as the same number.
            let digits = match item.iter().position(|&b| b != b'0') {
                Some(first) => &item[first..],
                None => &item[item.len() - 1..],
            };
            match seen {
                Some(s) if s != digits => return Err(FramingError::InvalidContentLength),
                _ => seen = Some(digits),
            }
        }
    }
    Ok(())
}

/// Whether `b` is a `tchar` (RFC 9110 5.6.2), what a coding name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `Transfer-Encoding` rule of the module documentation.
fn check_transfer_encoding(req: &RequestHeader) -> Result<(), FramingError> {
    let all = req.headers.get_all(TRANSFER_ENCODING);
    let mut values = all.iter();
    // Fast path: one field, exactly `chunked`.
    if let (Some(v), None) = (values.next(), values.next()) {
        if v.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Ok(());
        }
    }
    let (mut codings, mut chunked, mut last_is_chunked) = (0usize, 0usize, false);
    for value in all.iter() {
        for item in value.as_bytes().split(|&b| b == b',') {
            let coding = item.trim_ascii();
            // Only spaces around the commas: a tab, or whatever `trim_ascii` would eat besides.
            let spaces_only = item.iter().all(|&b| b == b' ' || is_tchar(b));
            if coding.is_empty() || !spaces_only || !coding.iter().all(|&b| is_tchar(b)) {
                return Err(FramingError::MalformedTransferEncoding);
            }
            codings += 1;
            last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            chunked += usize::from(last_is_chunked);
        }
    }
    if chunked != 1 || !last_is_chunked {
        return Err(FramingError::MalformedTransferEncoding);
    }
    if codings > 1 {
        return Err(FramingError::UnsupportedTransferEncoding);
    }
    Ok(())
}

#[cfg(test)]
#[path = "framing_tests.rs"]
pub(crate) mod tests;
