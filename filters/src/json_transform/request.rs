//! The request side: hold the body back until it is whole, edit it, send the edited body on;
//! refuse one that is not JSON; let one larger than the limit go on untouched.

use super::{JsonTransform, Side};
use crate::body::{self, Held, Hold};
use crate::metrics::{self, Direction};
use crate::{Flow, Reject, RequestCtx, RequestHeader};
use bytes::Bytes;

/// Where one request body is.
#[derive(Clone)]
enum Stage {
    /// Held back until it is whole.
    Holding(Held),
    /// Edited, to go out with the end of the body.
    Ready(Bytes),
    /// Over the limit: what was held goes out with this chunk, the rest as it comes.
    Flush(Bytes),
    /// Sent (or going on untouched).
    Streaming,
}

/// This filter's state for one request body.
#[derive(Clone)]
struct RequestBody(Stage);

/// The request phase: whether the body will be edited. A request without a body, or one that
/// declares more than the limit, is left alone.
pub(super) fn begin(f: &JsonTransform, side: &Side, req: &RequestHeader, ctx: &mut RequestCtx) {
    let declared = body::content_length(&req.headers);
    let chunked = req.headers.contains_key(http::header::TRANSFER_ENCODING);
    if !chunked && declared.unwrap_or(0) == 0 {
        return;
    }
    if declared.is_some_and(|n| n > side.max_body_bytes as u64) {
        let why = "declares more than max_body_bytes";
        metrics::json_passthrough(NAME, &ctx.route, Direction::Request, "too_large", why);
        return;
    }
    body::put(ctx, f, RequestBody(Stage::Holding(Held::new(side.max_body_bytes))));
}

/// The upstream request header: the edited body's length is not known yet, so the old
/// `Content-Length` goes (Pingora then sends the body chunked). Each attempt starts over, since a
/// retry sends the body again from its start.
pub(super) fn upstream_header(f: &JsonTransform, side: &Side, req: &mut RequestHeader, ctx: &mut RequestCtx) {
    if let Some(RequestBody(stage)) = body::slot::<RequestBody>(ctx, f) {
        *stage = Stage::Holding(Held::new(side.max_body_bytes));
        req.remove_header(&http::header::CONTENT_LENGTH);
    }
}

/// One chunk: held; at the end, the whole body edited, or refused when it is not JSON.
pub(super) fn body(f: &JsonTransform, side: &Side, chunk: Option<&Bytes>, end: bool, ctx: &mut RequestCtx) -> Flow {
    let route = ctx.route.clone();
    let Some(RequestBody(stage)) = body::slot::<RequestBody>(ctx, f) else {
        return Flow::Continue;
    };
    let Stage::Holding(held) = stage else {
        return Flow::Continue;
    };
    match held.push(chunk, end) {
        Hold::More => {}
        Hold::Whole(whole) if whole.is_empty() => *stage = Stage::Ready(whole),
        Hold::Whole(whole) => match side.edit(&whole) {
            Ok(edited) => {
                metrics::json_body(NAME, &route, Direction::Request, "transformed");
                *stage = Stage::Ready(edited);
            }
            Err(why) => {
                metrics::json_body(NAME, &route, Direction::Request, "invalid_json");
                *stage = Stage::Streaming;
                let message = format!("the request body is not JSON: {why}");
                return Flow::Reject(Reject::new(400, "invalid_body", message));
            }
        },
        Hold::Overflow(held) => {
            let why = "is larger than max_body_bytes";
            metrics::json_passthrough(NAME, &route, Direction::Request, "too_large", why);
            *stage = Stage::Flush(held);
        }
    }
    Flow::Continue
}

/// The chunk that goes upstream: nothing while the body is held (an empty chunk: `None` would
/// end the body), the edited body at the end.
pub(super) fn emit(f: &JsonTransform, chunk: &mut Option<Bytes>, _end: bool, ctx: &mut RequestCtx) {
    let Some(RequestBody(stage)) = body::slot::<RequestBody>(ctx, f) else {
        return;
    };
    match std::mem::replace(stage, Stage::Streaming) {
        held @ Stage::Holding(_) => {
            *stage = held;
            *chunk = Some(Bytes::new());
        }
        Stage::Ready(edited) | Stage::Flush(edited) => *chunk = Some(edited),
        Stage::Streaming => {}
    }
}

const NAME: &str = "json_transform";
