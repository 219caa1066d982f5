//! gRPC as the proxy sees it: which requests are gRPC, their `grpc-timeout`, the status a
//! response carries, and Portico's own answers written as gRPC Trailers-Only responses (HTTP
//! 200 with `grpc-status` and `grpc-message` in the only HEADERS frame, as Envoy answers).

use super::errors::ErrorKind;
use super::Ctx;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;
use portico_filters::grpc_web::{self, status, Code};
use portico_filters::Reject;
use std::time::Duration;

/// How long a refused HTTP/1.1 call's body is read before the answer goes anyway.
const DRAIN_FOR: Duration = Duration::from_millis(500);

/// Whether the request is a gRPC call (`content-type: application/grpc*`, gRPC-Web included).
pub fn is_grpc(req: &RequestHeader) -> bool {
    req.headers.get(header::CONTENT_TYPE).is_some_and(|v| status::is_grpc_content_type(v.as_bytes()))
}

/// The call's `grpc-timeout` (`1-8 digits` then `H`, `M`, `S`, `m`, `u` or `n`), if valid.
pub fn timeout(req: &RequestHeader) -> Option<Duration> {
    let v = req.headers.get("grpc-timeout")?.as_bytes();
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n * 3600),
        b"M" => Duration::from_secs(n * 60),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `grpc-timeout` for what is left of the call, in milliseconds (at least 1).
pub fn timeout_value(left: Duration) -> HeaderValue {
    let ms = left.as_millis().clamp(1, 99_999_999);
    HeaderValue::from_str(&format!("{ms}m")).unwrap_or_else(|_| HeaderValue::from_static("1m"))
}

/// The `grpc-status` a response header or trailer block carries.
pub fn status_of(headers: &HeaderMap) -> Option<Code> {
    headers.get("grpc-status").and_then(Code::from_header)
}

/// The gRPC status for one of Portico's refusals: by its `error` code where that says more
/// than the HTTP status, else gRPC's mapping of the status.
pub fn code_for(r: &Reject) -> Code {
    match r.error {
        "not_found" | "method_not_allowed" => Code::Unimplemented,
        "rate_limited" => Code::ResourceExhausted,
        "payload_too_large" => Code::ResourceExhausted,
        "upstream_timeout" | "route_timeout" => Code::DeadlineExceeded,
        _ => Code::from_http(r.status),
    }
}

/// An HTTP status that [`code_for`] maps back to `code` (502 where none does).
pub fn http_status_for(code: Code) -> u16 {
    match code {
        Code::Unavailable => 503,
        Code::ResourceExhausted => 429,
        Code::DeadlineExceeded => 504,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::Unimplemented => 404,
        Code::Internal => 500,
        _ => 502,
    }
}

/// Writes a refusal to a gRPC client as a Trailers-Only response: HTTP 200, `grpc-status`,
/// `grpc-message`, the refusal's own headers (`www-authenticate`, `retry-after`) and
/// `x-portico-error` with its stable code; no body.
pub async fn reject(session: &mut Session, ctx: &mut Ctx, r: &Reject) -> pingora::Result<()> {
    let code = code_for(r);
    ctx.outcome.error = Some(ErrorKind::Answered(r.error));
    ctx.outcome.grpc_status = Some(code);
    if let Some(span) = ctx.span() {
        span.refused(r.status, r.error);
    }
    let req_ct = session.req_header().headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec());
    let content_type = req_ct
        .as_deref()
        .and_then(grpc_web::response_content_type)
        .unwrap_or_else(|| HeaderValue::from_static("application/grpc"));
    let mut resp = ResponseHeader::build(200, Some(r.headers.len() + 6))?;
    resp.insert_header(header::CONTENT_TYPE, content_type)?;
    resp.insert_header("grpc-status", code.header_value())?;
    let message = format!("{} (request id {})", r.message, ctx.filter.request_id);
    resp.insert_header("grpc-message", status::encode_message(&message))?;
    resp.insert_header(HeaderName::from_static("x-portico-error"), HeaderValue::from_static(r.error))?;
    for (k, v) in &r.headers {
        resp.append_header(k.clone(), v.clone())?;
    }
    if !session.is_http2() {
        resp.insert_header(header::CONTENT_LENGTH, 0)?;
        // An HTTP/1.1 client (gRPC-Web) may still be sending its message: read it first (for a
        // moment at most), or closing the connection after the answer resets it and the client
        // sees a write error instead of the status.
        let downstream = session.as_downstream_mut();
        if !downstream.is_body_done() {
            let _ = tokio::time::timeout(DRAIN_FOR, downstream.drain_request_body()).await;
        }
    }
    super::respond::decorate(&mut resp, ctx)?;
    let mut resp = Box::new(resp);
    // Over HTTP/2 the status must be in a HEADERS frame that ends the stream, or clients take
    // it for the response's first headers; Pingora's `Session` sends the end as an empty DATA
    // frame, so the HTTP/2 session is written to directly (after the downstream modules).
    session.downstream_modules_ctx.response_header_filter(&mut resp, true).await?;
    match session.as_downstream_mut() {
        ServerSession::H2(h2) => h2.write_response_header(resp, true),
        other => other.write_response_header(resp).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let t = |v: &str| {
            let mut req = RequestHeader::build("POST", b"/a.B/C", None).expect("request");
            req.insert_header("grpc-timeout", v).expect("header");
            timeout(&req)
        };
        assert_eq!(t("300m"), Some(Duration::from_millis(300)));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("5u"), Some(Duration::from_micros(5)));
        assert_eq!(t("123456789m"), None, "at most 8 digits");
        assert_eq!(t("m"), None);
        assert_eq!(t("10x"), None);
        assert_eq!(timeout_value(Duration::from_millis(250)), "250m");
        assert_eq!(timeout_value(Duration::from_micros(10)), "1m");
    }

    #[test]
    fn refusals_get_the_codes_a_grpc_client_expects() {
        let code = |status: u16, error: &'static str| code_for(&Reject::new(status, error, "x"));
        assert_eq!(code(404, "not_found"), Code::Unimplemented);
        assert_eq!(code(401, "unauthorized"), Code::Unauthenticated);
        assert_eq!(code(403, "forbidden"), Code::PermissionDenied);
        assert_eq!(code(429, "rate_limited"), Code::ResourceExhausted);
        assert_eq!(code(503, "circuit_open"), Code::Unavailable);
        assert_eq!(code(502, "bad_gateway"), Code::Unavailable);
        assert_eq!(code(504, "upstream_timeout"), Code::DeadlineExceeded);
        assert_eq!(code(413, "payload_too_large"), Code::ResourceExhausted);
        assert_eq!(code(500, "internal_error"), Code::Internal);
        for c in [Code::Unavailable, Code::ResourceExhausted, Code::DeadlineExceeded, Code::Unauthenticated] {
            assert_eq!(Code::from_http(http_status_for(c)), c, "{c:?} survives a retry that did not happen");
        }
    }
}
