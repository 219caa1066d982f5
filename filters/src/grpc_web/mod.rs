//! `grpc_web`: lets browsers call gRPC services. `application/grpc-web`, `+proto` and
//! `application/grpc-web-text` requests go upstream as gRPC over HTTP/2, and the answers come
//! back as gRPC-Web, with the trailers as the body's final `0x80` frame.
//!
//! ```yaml
//! upstreams: {greeter: {targets: ["127.0.0.1:50051"], http2: true}}
//! routes:
//!   - name: greeter
//!     match: {path: /helloworld.Greeter/}
//!     upstream: greeter
//!     filters:
//!       - cors: {allow_origins: ["https://app.example"], allow_methods: [POST],
//!                allow_headers: [content-type, x-grpc-web, x-user-agent, grpc-timeout],
//!                expose_headers: [grpc-status, grpc-message]}
//!       - grpc_web: {}
//! ```
//!
//! Built on Pingora's `GrpcWebCtx` (`pingora::protocols::http::bridge::grpc_web`), whose
//! trailer frame it sends, and adding what that bridge lacks: the text mode (base64 both ways,
//! in any chunking: `text.rs`), and an answer a gRPC-Web client can read when the upstream
//! answers with plain HTTP (a 503 page from a load balancer becomes `grpc-status: 14`). The
//! upstream must speak HTTP/2 (`http2: true`); the client may use HTTP/1.1 or HTTP/2. Requests
//! of other content types (a CORS preflight, a plain `GET`) pass untouched.
//!
//! A gRPC-Web request is one message (browsers make unary and server-streaming calls only), so
//! its body is held until it is whole, up to [`HELD_REQUEST_MAX`], and goes upstream as one
//! HTTP/2 DATA frame that ends the stream. Sent as it came, a chunked HTTP/1.1 body's end
//! would follow alone, and a server that has answered and reset the stream by then (gRPC
//! servers do, with `NO_ERROR`) makes Pingora count the exchange as failed and close the
//! client's keep-alive connection under its next request.

pub mod status;
mod text;

#[cfg(test)]
mod tests;

use crate::body::{Held, Hold};
use crate::{
    BuildContext, BuildError, Filter, FilterFactory, Flow, RequestCtx, RequestHeader, ResponseHeader, Session,
};
use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use pingora::protocols::http::bridge::grpc_web::GrpcWebCtx;
use pingora::{Error, ErrorType};
use serde::Deserialize;
pub use status::Code;

/// The `grpc_web` filter's config: nothing to set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcWebConfig {}

/// The `grpc_web` filter.
#[derive(Debug)]
pub struct GrpcWeb;

/// The largest request body held back until it is whole (gRPC's default message limit is
/// 4 MiB; a browser's request messages are far smaller). A larger one streams on as it comes.
pub const HELD_REQUEST_MAX: usize = 1 << 20;

const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";

/// How the client encodes: frames as they are, or base64 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Binary,
    Text,
}

/// What the response turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Not known yet.
    Pending,
    /// gRPC from the upstream (or Portico's own Trailers-Only answer): translated.
    Grpc,
    /// Plain HTTP from the upstream: replaced by a Trailers-Only status, its body dropped.
    Replaced,
}

/// One gRPC-Web call's state, kept in [`RequestCtx::state`].
#[derive(Debug, Clone)]
struct Call {
    mode: Mode,
    /// The message format after `grpc-web[-text]` (`+proto`, `+json`, or empty).
    suffix: String,
    decoder: text::Decoder,
    encoder: text::Encoder,
    /// The request body (decoded) until it is whole; `None` once it streams on.
    held: Option<Held>,
    answer: Answer,
}

impl Call {
    /// The call a request's `content-type` makes, if it is gRPC-Web.
    fn of(content_type: &str) -> Option<Call> {
        let ct = content_type.trim().to_ascii_lowercase();
        let (mode, rest) = if let Some(rest) = ct.strip_prefix(GRPC_WEB_TEXT) {
            (Mode::Text, rest)
        } else {
            (Mode::Binary, ct.strip_prefix(GRPC_WEB)?)
        };
        if !(rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')) {
            return None;
        }
        let suffix = rest.split(';').next().unwrap_or("").to_string();
        Some(Call {
            mode,
            suffix,
            decoder: Default::default(),
            encoder: Default::default(),
            held: Some(Held::new(HELD_REQUEST_MAX)),
            answer: Answer::Pending,
        })
    }

    /// Starts the request body over: each attempt sends it again from its start (Pingora's
    /// retry buffer).
    fn restart_body(&mut self) {
        self.decoder = Default::default();
        self.held = Some(Held::new(HELD_REQUEST_MAX));
    }

    /// What of the request body goes upstream now: nothing (an empty chunk: `None` would end
    /// the body) while it is held, all of it once whole or too large to hold.
    fn request_chunk(&mut self, chunk: Option<Bytes>, end: bool) -> Option<Bytes> {
        let Some(held) = self.held.as_mut() else { return chunk };
        match held.push(chunk.as_ref(), end) {
            Hold::More => Some(Bytes::new()),
            Hold::Whole(body) => Some(body),
            Hold::Overflow(body) => {
                self.held = None;
                Some(body)
            }
        }
    }

    /// The `content-type` of the response to the client.
    fn web_content_type(&self) -> String {
        let base = if self.mode == Mode::Text { GRPC_WEB_TEXT } else { GRPC_WEB };
        format!("{base}{}", if self.suffix.is_empty() { "+proto" } else { &self.suffix })
    }

    /// The last bytes of the body: what the encoder kept, then the trailers frame.
    fn finish(&mut self, trailers: &mut HeaderMap) -> pingora::Result<Bytes> {
        let mut bridge = GrpcWebCtx::Trailers;
        let frame = bridge.response_trailer_filter(trailers)?.unwrap_or_default();
        Ok(match self.mode {
            Mode::Binary => frame,
            Mode::Text => self.encoder.encode(&frame, true),
        })
    }
}

impl FilterFactory for GrpcWeb {
    const NAME: &'static str = "grpc_web";
    type Config = GrpcWebConfig;

    fn build(_c: GrpcWebConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        Ok(GrpcWeb)
    }
}

#[async_trait]
impl Filter for GrpcWeb {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let ct = session.req_header().headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if let Some(call) = ct.and_then(Call::of) {
            ctx.state.insert(call);
        }
        Ok(Flow::Continue)
    }

    fn wants_request_body(&self) -> bool {
        true
    }

    fn edit_request_body(&self, body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(call) = ctx.state.get_mut::<Call>() else { return Ok(()) };
        let chunk = match call.mode {
            Mode::Binary => body.take(),
            Mode::Text => match call.decoder.decode(&body.take().unwrap_or_default(), end) {
                Ok(decoded) => Some(decoded),
                Err(text::NotBase64) => {
                    return Error::e_explain(
                        ErrorType::HTTPStatus(400),
                        "a grpc-web-text request body that is not base64",
                    )
                }
            },
        };
        *body = call.request_chunk(chunk, end);
        Ok(())
    }

    fn upstream_request(&self, req: &mut RequestHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(call) = ctx.state.get_mut::<Call>() else { return Ok(()) };
        call.restart_body();
        req.insert_header(header::CONTENT_TYPE, format!("application/grpc{}", call.suffix))?;
        // gRPC over HTTP/2 requires `te: trailers`; the stream ends with its last DATA frame.
        req.insert_header(header::TE, "trailers")?;
        req.set_send_end_stream(false);
        if call.mode == Mode::Text {
            req.remove_header(&header::CONTENT_LENGTH);
        }
        Ok(())
    }

    fn response(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(call) = ctx.state.get_mut::<Call>() else { return Ok(()) };
        if resp.status.is_informational() {
            return Ok(());
        }
        let grpc = resp.headers.get(header::CONTENT_TYPE).is_some_and(|v| status::is_grpc_content_type(v.as_bytes()));
        resp.insert_header(header::CONTENT_TYPE, call.web_content_type())?;
        if grpc && resp.status == http::StatusCode::OK {
            call.answer = Answer::Grpc;
            // A Trailers-Only answer has no body; any other gets its trailers frame added.
            if !resp.headers.contains_key("grpc-status") {
                resp.remove_header(&header::CONTENT_LENGTH);
            }
            return Ok(());
        }
        // Plain HTTP from the upstream: a status the client can read instead.
        let code = Code::from_http(resp.status.as_u16());
        let message = format!("the upstream answered HTTP {}", resp.status.as_u16());
        resp.set_status(200)?;
        resp.insert_header("grpc-status", code.header_value())?;
        resp.insert_header("grpc-message", status::encode_message(&message))?;
        resp.insert_header(header::CONTENT_LENGTH, "0")?;
        resp.remove_header(&header::CONTENT_ENCODING);
        resp.remove_header(&header::TRANSFER_ENCODING);
        call.answer = Answer::Replaced;
        Ok(())
    }

    fn wants_response_body(&self) -> bool {
        true
    }

    fn response_body(&self, body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(call) = ctx.state.get_mut::<Call>() else { return Ok(()) };
        match (call.answer, call.mode) {
            (Answer::Replaced, _) => *body = None,
            (Answer::Grpc, Mode::Text) => {
                let encoded = call.encoder.encode(body.as_deref().unwrap_or_default(), end);
                *body = (!encoded.is_empty()).then_some(encoded);
            }
            _ => {}
        }
        Ok(())
    }

    fn response_trailers(&self, trailers: &mut HeaderMap, ctx: &mut RequestCtx) -> pingora::Result<Option<Bytes>> {
        match ctx.state.get_mut::<Call>() {
            Some(call) if call.answer == Answer::Grpc => call.finish(trailers).map(Some),
            _ => Ok(None),
        }
    }
}

/// The `content-type` a gRPC-Web request's own answers carry (Portico's refusals), if the
/// request is gRPC-Web: the request's encoding, `+proto` by default.
pub fn response_content_type(request_content_type: &[u8]) -> Option<HeaderValue> {
    let call = Call::of(std::str::from_utf8(request_content_type).ok()?)?;
    HeaderValue::from_str(&call.web_content_type()).ok()
}
