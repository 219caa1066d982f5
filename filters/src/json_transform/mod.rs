//! `json_transform`: removes, renames and sets fields of JSON request and response bodies.
//!
//! ```yaml
//! - json_transform:
//!     request:  {remove: [debug], rename: {userName: user_name}, set: {"meta.source": gateway}}
//!     response: {remove: [password, "internal.cost", "items[].secret"], rename: {id: user_id},
//!                set: {api_version: "2"}, only_status: [200], max_body_bytes: 1048576}
//! ```
//!
//! Paths are dotted keys into nested objects; `items[].field` reaches the field in every element
//! of the array `items` (`[].field` when the body itself is an array). Edits run in order: every
//! `remove`, then every `rename` (in key order; the new name is a key in the same object), then
//! every `set` (any YAML value; missing objects on the way are created). A body is held back
//! until it is whole, up to `max_body_bytes` (1 MiB by default; each direction has its own); one that is
//! larger, or a response that is not JSON, goes on untouched, counted in
//! `portico_filter_json_bodies_total` and logged once per route. A request body that is not
//! JSON is refused with 400 `invalid_body`. The edited body goes out without its old
//! `Content-Length` (chunked, or close-delimited to an HTTP/1.0 client), a strong `ETag` is made
//! weak, and with response edits the upstream is asked for `Accept-Encoding: identity`.

mod apply;
mod list;
mod program;
mod request;
mod response;
mod scan;
mod skip;
mod token;

use crate::{
    BuildContext, BuildError, Filter, FilterFactory, Flow, RequestCtx, RequestHeader, ResponseHeader, Session,
};
use async_trait::async_trait;
use bytes::Bytes;
use program::{Leaf, Path, Program};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The request edits, as the config has them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestEditsConfig {
    /// Paths to drop.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Path to new key name (in the same object).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Path to the value put there.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// The largest body edited (bytes); a larger one goes on untouched. 1 MiB by default.
    pub max_body_bytes: Option<usize>,
}

/// The response edits, and which responses get them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseEditsConfig {
    /// Paths to drop.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Path to new key name (in the same object).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Path to the value put there.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Only responses with these statuses are edited; every status when empty.
    #[serde(default)]
    pub only_status: Vec<u16>,
    /// The largest body edited (bytes); a larger one goes on untouched. 1 MiB by default.
    pub max_body_bytes: Option<usize>,
}

/// The `json_transform` filter's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonTransformConfig {
    /// Edits to the request body sent upstream.
    #[serde(default)]
    pub request: Option<RequestEditsConfig>,
    /// Edits to the response body sent to the client.
    #[serde(default)]
    pub response: Option<ResponseEditsConfig>,
}

/// Bodies up to this size are edited by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// The `json_transform` filter: the edits compiled once, at config load.
#[derive(Debug)]
pub struct JsonTransform {
    request: Option<Side>,
    response: Option<Side>,
    only_status: Vec<u16>,
}

/// One direction's edits and size limit.
#[derive(Debug)]
struct Side {
    program: Program,
    max_body_bytes: usize,
}

impl FilterFactory for JsonTransform {
    const NAME: &'static str = "json_transform";
    type Config = JsonTransformConfig;

    fn build(config: JsonTransformConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let (request, request_max) = match config.request {
            Some(r) => (compile(r.remove, r.rename, r.set, "request")?, r.max_body_bytes),
            None => (Program::default(), None),
        };
        let (response, only_status, response_max) = match config.response {
            Some(r) => {
                if let Some(s) = r.only_status.iter().find(|s| !(100..=599).contains(*s)) {
                    return Err(BuildError::at("response.only_status", format!("{s} is not an HTTP status")));
                }
                (compile(r.remove, r.rename, r.set, "response")?, r.only_status, r.max_body_bytes)
            }
            None => (Program::default(), Vec::new(), None),
        };
        if request.is_empty() && response.is_empty() {
            return Err(BuildError::whole("no edits: give request or response a remove, rename or set"));
        }
        Ok(JsonTransform {
            request: Some(Side { program: request, max_body_bytes: max_bytes(request_max, "request")? })
                .filter(|s| !s.program.is_empty()),
            response: Some(Side { program: response, max_body_bytes: max_bytes(response_max, "response")? })
                .filter(|s| !s.program.is_empty()),
            only_status,
        })
    }
}

/// A direction's size limit, checked.
fn max_bytes(max: Option<usize>, side: &str) -> Result<usize, BuildError> {
    match max {
        Some(0) => Err(BuildError::at(format!("{side}.max_body_bytes"), "must be more than 0")),
        Some(n) => Ok(n),
        None => Ok(DEFAULT_MAX_BODY_BYTES),
    }
}

/// Compiles one direction's edits, in their order: removes, renames, sets.
fn compile(
    remove: Vec<String>,
    rename: BTreeMap<String, String>,
    set: BTreeMap<String, serde_json::Value>,
    side: &str,
) -> Result<Program, BuildError> {
    let mut program = Program::default();
    let parse = |at: String, p: &str| Path::parse(p).map_err(|e| BuildError::at(format!("{side}.{at}"), e));
    for (i, p) in remove.iter().enumerate() {
        program.add(&parse(format!("remove[{i}]"), p)?, Leaf::Remove);
    }
    for (p, to) in rename {
        let path = parse(format!("rename.{p}"), &p)?;
        if to.is_empty() || to.contains(['.', '[', ']']) {
            let message = "the new name is one key of the same object (no dots or brackets)";
            return Err(BuildError::at(format!("{side}.rename.{p}"), message));
        }
        program.add(&path, Leaf::Rename(to.into()));
    }
    for (p, value) in set {
        program.add(&parse(format!("set.{p}"), &p)?, Leaf::Set(value));
    }
    Ok(program)
}

impl Side {
    /// Runs the edits on a whole body: the new body, or why it is not JSON.
    fn edit(&self, body: &[u8]) -> Result<Bytes, String> {
        let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8 ({e})"))?;
        apply::run(&self.program, text)
    }
}

#[async_trait]
impl Filter for JsonTransform {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let req = session.req_header();
        if let Some(side) = &self.request {
            request::begin(self, side, req, ctx);
        }
        if self.response.is_some() {
            response::begin(self, req, ctx);
        }
        Ok(Flow::Continue)
    }

    fn wants_request_body(&self) -> bool {
        self.request.is_some()
    }

    fn request_body(&self, body: Option<&Bytes>, end: bool, ctx: &mut RequestCtx) -> Flow {
        match &self.request {
            Some(side) => request::body(self, side, body, end, ctx),
            None => Flow::Continue,
        }
    }

    fn edit_request_body(&self, body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) -> pingora::Result<()> {
        request::emit(self, body, end, ctx);
        Ok(())
    }

    fn upstream_request(&self, request: &mut RequestHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        if let Some(side) = &self.request {
            request::upstream_header(self, side, request, ctx);
        }
        if self.response.is_some() {
            // The body must be readable to be edited.
            request.insert_header(http::header::ACCEPT_ENCODING, "identity")?;
        }
        Ok(())
    }

    fn wants_response_body(&self) -> bool {
        self.response.is_some()
    }

    fn response(&self, response: &mut ResponseHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        if let Some(side) = &self.response {
            response::header(self, side, response, ctx)?;
        }
        Ok(())
    }

    fn response_body(&self, body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) -> pingora::Result<()> {
        if let Some(side) = &self.response {
            response::body(self, side, body, end, ctx);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
