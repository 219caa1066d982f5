//! `request_size_limit`: refuse request bodies over a size with 413, by `Content-Length` up
//! front and by counting a streamed (chunked) body as it arrives.
//!
//! ```yaml
//! - request_size_limit: {max_bytes: 1048576}
//! ```

use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

/// The `request_size_limit` filter's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSizeLimitConfig {
    /// Largest body accepted, in bytes.
    pub max_bytes: u64,
}

/// The `request_size_limit` filter.
#[derive(Debug)]
pub struct RequestSizeLimit {
    max_bytes: u64,
}

/// Bytes of body seen so far for this request.
#[derive(Clone, Copy, Default)]
struct BodySeen(u64);

impl RequestSizeLimit {
    fn too_large(&self) -> Flow {
        Flow::Reject(Reject::new(413, "payload_too_large", format!("request body exceeds {} bytes", self.max_bytes)))
    }
}

impl FilterFactory for RequestSizeLimit {
    const NAME: &'static str = "request_size_limit";
    type Config = RequestSizeLimitConfig;

    fn build(config: RequestSizeLimitConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        Ok(RequestSizeLimit { max_bytes: config.max_bytes })
    }
}

#[async_trait]
impl Filter for RequestSizeLimit {
    async fn request(&self, session: &mut Session, _ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(len) if len > self.max_bytes => Ok(self.too_large()),
            _ => Ok(Flow::Continue),
        }
    }

    fn wants_request_body(&self) -> bool {
        true
    }

    fn request_body(&self, body: Option<&Bytes>, _end: bool, ctx: &mut RequestCtx) -> Flow {
        let Some(chunk) = body else {
            return Flow::Continue;
        };
        let seen = ctx.state.get::<BodySeen>().copied().unwrap_or_default().0 + chunk.len() as u64;
        ctx.state.insert(BodySeen(seen));
        if seen > self.max_bytes {
            self.too_large()
        } else {
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, FlowExt, TestRequest};

    fn build(yaml: &str) -> RequestSizeLimit {
        testkit::build(yaml, &testkit::context()).expect("valid config")
    }

    #[tokio::test]
    async fn declared_lengths_over_the_limit_are_refused_up_front() {
        let f = build("{max_bytes: 10}");
        let post =
            |len: &'static str| async move { TestRequest::with_method("POST", "/", &[("content-length", len)]).await };
        post("10").await.request(&f).await.expect_continue();
        let refused = post("11").await.request(&f).await.expect_reject();
        assert_eq!((refused.status, refused.error), (413, "payload_too_large"));
    }

    #[test]
    fn counts_streamed_chunks_across_calls() {
        let f = build("{max_bytes: 10}");
        let mut ctx = RequestCtx::default();
        let chunk = Bytes::from_static(b"123456");
        assert!(matches!(f.request_body(Some(&chunk), false, &mut ctx), Flow::Continue));
        match f.request_body(Some(&chunk), false, &mut ctx) {
            Flow::Reject(r) => assert_eq!(r.status, 413),
            other => panic!("expected 413, got {other:?}"),
        }
    }

    #[test]
    fn empty_end_of_stream_passes() {
        let f = build("{max_bytes: 0}");
        assert!(matches!(f.request_body(None, true, &mut RequestCtx::default()), Flow::Continue));
    }
}
