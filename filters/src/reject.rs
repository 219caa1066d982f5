//! The error a filter answers with: Portico renders it as the JSON body every client sees.

use http::{HeaderName, HeaderValue};
use std::borrow::Cow;

/// A refusal: the status, a stable machine-readable code and a human message. The core adds
/// the request id and writes `{"error": code, "message": ..., "request_id": ...}`.
#[derive(Debug, Clone)]
pub struct Reject {
    /// HTTP status, such as 401 or 429.
    pub status: u16,
    /// Stable code for clients to branch on, such as `"unauthorized"` or `"rate_limited"`.
    pub error: &'static str,
    /// Human-readable explanation; never carries a secret.
    pub message: Cow<'static, str>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Extra fields of the JSON body, after `error`, `message` and `request_id` (a schema's
    /// `violations`); none for most refusals.
    pub details: Vec<(&'static str, serde_json::Value)>,
}

impl Reject {
    /// A refusal with no extra headers.
    pub fn new(status: u16, error: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Reject { status, error, message: message.into(), headers: Vec::new(), details: Vec::new() }
    }

    /// Adds a response header; a value that is not a valid header value is dropped, since a
    /// refusal must still go out.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// Adds a field to the JSON body, for a refusal that says more than a message can (the
    /// violations a body has); `error`, `message` and `request_id` keep their meaning.
    pub fn with_detail(mut self, field: &'static str, value: serde_json::Value) -> Self {
        self.details.push((field, value));
        self
    }
}
