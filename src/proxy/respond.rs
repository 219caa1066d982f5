//! Responses Portico makes itself: JSON errors (gRPC statuses to gRPC clients: `grpc.rs`) and
//! static `respond` routes. Both run the response filters, so CORS and header edits apply to
//! them too.

use super::errors::ErrorKind;
use super::Ctx;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use portico_filters::Reject;

/// The JSON error body every client sees.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    request_id: &'a str,
    #[serde(flatten)]
    details: Details<'a>,
}

/// A refusal's extra fields ([`Reject::details`]), written after the three every body has.
struct Details<'a>(&'a [(&'static str, serde_json::Value)]);

impl serde::Serialize for Details<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Writes a refusal as `{"error", "message", "request_id"}` (then its [`Reject::details`], if
/// any) with its status and headers.
pub async fn reject(session: &mut Session, ctx: &mut Ctx, r: &Reject) -> pingora::Result<()> {
    if ctx.request.grpc {
        return super::grpc::reject(session, ctx, r).await;
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: r.error,
        message: &r.message,
        request_id: &ctx.filter.request_id,
        details: Details(&r.details),
    })
    .unwrap_or_default();
    ctx.outcome.error = Some(ErrorKind::Answered(r.error));
    if let Some(span) = ctx.span() {
        span.refused(r.status, r.error);
    }
    let mut headers = Vec::with_capacity(r.headers.len() + 1);
    headers.push((http::header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    headers.extend(r.headers.iter().cloned());
    write(session, ctx, r.status, &headers, Bytes::from(body)).await
}

/// Writes a whole response, after running the response filters over its header.
pub async fn write(
    session: &mut Session,
    ctx: &mut Ctx,
    status: u16,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
    for (k, v) in headers {
        resp.append_header(k.clone(), v.clone())?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    super::cache::decorate(session, &mut resp, ctx)?;
    decorate(&mut resp, ctx)?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(resp), head_only || body.is_empty()).await?;
    if !head_only && !body.is_empty() {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Adds what every response carries (the request id), then runs the response filters: the
/// route's chain, then the listener's, each in reverse order.
pub fn decorate(resp: &mut ResponseHeader, ctx: &mut Ctx) -> pingora::Result<()> {
    if let Some(v) = &ctx.request.id_header {
        resp.insert_header("x-request-id", v.clone())?;
    }
    for chain in ctx.chains().rev() {
        chain.response(resp, &mut ctx.filter)?;
    }
    Ok(())
}
