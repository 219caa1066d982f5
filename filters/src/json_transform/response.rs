//! The response side: decide from the header whether the body will be edited (status, type,
//! encoding, length), hold it back until it is whole, send the edited body; anything else, or a
//! body that turns out not to be JSON or too large, goes on untouched.

use super::{JsonTransform, Side};
use crate::body::{self, Held, Hold};
use crate::metrics::{self, Direction};
use crate::{RequestCtx, RequestHeader, ResponseHeader};
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, TRANSFER_ENCODING};
use http::HeaderValue;

/// What the request phase saw of the client, for the response header.
#[derive(Clone, Copy)]
struct Client {
    /// A HEAD request: its response has no body.
    head: bool,
    /// HTTP/1.1, which takes a chunked body (HTTP/2 frames it itself; HTTP/1.0 reads to close).
    chunked: bool,
}

/// Where one response body is.
#[derive(Clone)]
enum Stage {
    /// Held back until it is whole.
    Holding(Held),
    /// Sent (or going on untouched).
    Streaming,
}

/// This filter's state for one response body.
#[derive(Clone)]
struct ResponseBody(Stage);

/// The request phase: note what the response header will need to know about the client.
pub(super) fn begin(f: &JsonTransform, req: &RequestHeader, ctx: &mut RequestCtx) {
    let client = Client { head: req.method == http::Method::HEAD, chunked: req.version == http::Version::HTTP_11 };
    body::put(ctx, f, client);
}

/// The response header: when the body is to be edited, its old length goes (chunked to an
/// HTTP/1.1 client) and a strong `ETag` becomes weak.
pub(super) fn header(
    f: &JsonTransform,
    side: &Side,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    // No request phase of this filter: the request never reached it (an earlier filter refused
    // it, no route matched), and the response is Portico's own.
    let Some(client) = body::slot::<Client>(ctx, f).copied() else {
        return Ok(());
    };
    let status = resp.status.as_u16();
    if client.head || status < 200 || status == 204 || status == 304 {
        return Ok(());
    }
    if !f.only_status.is_empty() && !f.only_status.contains(&status) {
        return Ok(());
    }
    let skip = |outcome, why| {
        metrics::json_passthrough(NAME, &ctx.route, Direction::Response, outcome, why);
        Ok(())
    };
    let headers = &resp.headers;
    if headers.get(CONTENT_ENCODING).is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity")) {
        return skip("encoded", "is compressed (Content-Encoding)");
    }
    if headers.get(CONTENT_TYPE).is_some_and(|t| !is_json(t)) {
        return skip("not_json", "is not JSON (Content-Type)");
    }
    if body::content_length(headers).is_some_and(|n| n > side.max_body_bytes as u64) {
        return skip("too_large", "declares more than max_body_bytes");
    }
    resp.remove_header(&CONTENT_LENGTH);
    if client.chunked {
        resp.insert_header(TRANSFER_ENCODING, HeaderValue::from_static("chunked"))?;
    }
    if let Some(weak) = resp.headers.get(ETAG).and_then(weaken) {
        resp.insert_header(ETAG, weak)?;
    }
    body::put(ctx, f, ResponseBody(Stage::Holding(Held::new(side.max_body_bytes))));
    Ok(())
}

/// One chunk: held; at the end, the whole body edited (or sent as it came when not JSON).
pub(super) fn body(f: &JsonTransform, side: &Side, chunk: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) {
    let route = ctx.route.clone();
    let Some(ResponseBody(stage)) = body::slot::<ResponseBody>(ctx, f) else {
        return;
    };
    let Stage::Holding(held) = stage else {
        return;
    };
    match held.push(chunk.as_ref(), end) {
        Hold::More => *chunk = None,
        Hold::Whole(whole) if whole.is_empty() => {
            *stage = Stage::Streaming;
            *chunk = Some(whole);
        }
        Hold::Whole(whole) => {
            *stage = Stage::Streaming;
            *chunk = Some(match side.edit(&whole) {
                Ok(edited) => {
                    metrics::json_body(NAME, &route, Direction::Response, "transformed");
                    edited
                }
                Err(_) => {
                    metrics::json_passthrough(NAME, &route, Direction::Response, "invalid_json", "is not JSON");
                    whole
                }
            });
        }
        Hold::Overflow(held) => {
            *stage = Stage::Streaming;
            metrics::json_passthrough(NAME, &route, Direction::Response, "too_large", "is larger than max_body_bytes");
            *chunk = Some(held);
        }
    }
}

/// `application/json`, `text/json` and any `+json` type (in any case, without a copy).
pub(super) fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(t) = content_type.to_str() else { return false };
    let essence = t.split(';').next().unwrap_or("").trim().as_bytes();
    let suffix = |s: &[u8]| essence.len() >= s.len() && essence[essence.len() - s.len()..].eq_ignore_ascii_case(s);
    essence.eq_ignore_ascii_case(b"application/json") || essence.eq_ignore_ascii_case(b"text/json") || suffix(b"+json")
}

/// The weak form of a strong `ETag` (the edited body is the same resource, not the same bytes).
fn weaken(etag: &HeaderValue) -> Option<HeaderValue> {
    let bytes = etag.as_bytes();
    if !bytes.starts_with(b"\"") {
        return None;
    }
    HeaderValue::from_bytes(&[b"W/", bytes].concat()).ok()
}

const NAME: &str = "json_transform";
