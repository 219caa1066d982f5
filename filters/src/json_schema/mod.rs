//! `json_schema`: refuses request bodies that do not match a JSON Schema (draft 2020-12) with
//! 400 and the list of what is wrong, before anything reaches the upstream.
//!
//! ```yaml
//! - json_schema: {schema_file: schemas/order.json}      # relative to the config file
//! - json_schema: {schema: {type: object, required: [id]}, max_body_bytes: 65536}
//! ```
//!
//! The schema is compiled once per config load; one that cannot be read, is not JSON (the error
//! gives its line and column) or is not a valid schema is a config error naming the file, so
//! `portico -t` catches it. `$ref`s resolve inside the schema only: nothing is fetched, from the
//! network or from other files. The body is held back until it is whole (up to
//! `max_body_bytes`, 1 MiB by default; a larger one gets 413), so an upstream never sees the
//! start of a body that is then refused. A refusal is
//! `{"error": "invalid_body", "message", "request_id", "violations": [{"path": "/items/0/qty",
//! "message": "...", "keyword": "minimum"}]}`, at most 20 violations, the client's values masked
//! in the messages. A body that is not JSON gets 400 `invalid_body` without violations. A request
//! without a body is checked only when its method has one (POST, PUT, PATCH): an empty body there
//! is not JSON.

use crate::body::{self, Held, Hold};
use crate::metrics::{self, Direction};
use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, Session};
use async_trait::async_trait;
use bytes::Bytes;
use jsonschema::Validator;
use serde::Deserialize;
use std::path::Path;

/// The `json_schema` filter's config: `schema_file` or `schema`, not both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaConfig {
    /// A JSON file holding the schema, relative to the config file's folder.
    pub schema_file: Option<String>,
    /// The schema itself, written in the YAML.
    pub schema: Option<serde_json::Value>,
    /// The largest body checked; a larger one is refused with 413. 1 MiB by default.
    pub max_body_bytes: Option<usize>,
}

/// At most this many violations are listed in a refusal.
pub const MAX_VIOLATIONS: usize = 20;

/// The `json_schema` filter: one compiled validator shared by every request.
pub struct JsonSchema {
    validator: Validator,
    max_body_bytes: usize,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchema").field("max_body_bytes", &self.max_body_bytes).finish_non_exhaustive()
    }
}

impl FilterFactory for JsonSchema {
    const NAME: &'static str = "json_schema";
    type Config = JsonSchemaConfig;

    fn build(config: JsonSchemaConfig, cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        let (schema, field, origin) = match (config.schema_file, config.schema) {
            (Some(file), None) => {
                let path = cx.resolve(&file);
                (read_schema(&path)?, "schema_file", path.display().to_string())
            }
            (None, Some(schema)) => (schema, "schema", "the inline schema".to_string()),
            _ => return Err(BuildError::whole("give the schema as schema_file or as schema (one of them)")),
        };
        let validator = jsonschema::draft202012::options().build(&schema).map_err(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { String::new() } else { format!(" at {at}") };
            BuildError::at(field, format!("{origin}: not a valid JSON Schema (draft 2020-12){at}: {e}"))
        })?;
        let max_body_bytes = match config.max_body_bytes {
            Some(0) => return Err(BuildError::at("max_body_bytes", "must be more than 0")),
            Some(n) => n,
            None => crate::json_transform::DEFAULT_MAX_BODY_BYTES,
        };
        Ok(JsonSchema { validator, max_body_bytes })
    }
}

/// The schema in `path`, or a config error naming the file (and, for bad JSON, where in it).
fn read_schema(path: &Path) -> Result<serde_json::Value, BuildError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BuildError::at("schema_file", format!("{}: cannot read the schema: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        let message = format!("{}:{}:{}: the schema is not JSON: {e}", path.display(), e.line(), e.column());
        BuildError::at("schema_file", message)
    })
}

/// Where one request body is.
#[derive(Clone)]
enum Stage {
    /// Held back until it is whole.
    Holding(Held),
    /// Checked: the body to send on at its end.
    Checked(Bytes),
    /// Sent.
    Done,
}

impl JsonSchema {
    /// The refusal for a body that does not match, or `None` when it does.
    fn check(&self, body: &[u8], route: &str) -> Option<Reject> {
        let instance: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                metrics::json_body(NAME, route, Direction::Request, "invalid_json");
                return Some(Reject::new(400, "invalid_body", format!("the request body is not JSON: {e}")));
            }
        };
        let mut errors = self.validator.iter_errors(&instance).peekable();
        errors.peek()?;
        let mut violations = Vec::new();
        let mut count = 0;
        for e in errors {
            count += 1;
            if violations.len() < MAX_VIOLATIONS {
                violations.push(serde_json::json!({
                    "path": e.instance_path().to_string(),
                    "message": e.masked().to_string(),
                    "keyword": e.kind().keyword(),
                }));
            }
        }
        metrics::json_body(NAME, route, Direction::Request, "invalid");
        let shown = if count > violations.len() { format!(" (the first {})", violations.len()) } else { String::new() };
        let message = format!("the request body does not match the schema: {count} violation(s){shown}");
        Some(Reject::new(400, "invalid_body", message).with_detail("violations", violations.into()))
    }
}

#[async_trait]
impl Filter for JsonSchema {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        let req = session.req_header();
        let declared = body::content_length(&req.headers);
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            metrics::json_body(NAME, &ctx.route, Direction::Request, "too_large");
            return Ok(Flow::Reject(self.too_large()));
        }
        let has_body = req.headers.contains_key(http::header::TRANSFER_ENCODING) || declared.unwrap_or(0) > 0;
        let body_expected = matches!(req.method, http::Method::POST | http::Method::PUT | http::Method::PATCH);
        if has_body || body_expected {
            body::put(ctx, self, Stage::Holding(Held::new(self.max_body_bytes)));
        }
        Ok(Flow::Continue)
    }

    fn wants_request_body(&self) -> bool {
        true
    }

    fn request_body(&self, chunk: Option<&Bytes>, end: bool, ctx: &mut RequestCtx) -> Flow {
        let route = ctx.route.clone();
        let Some(stage) = body::slot::<Stage>(ctx, self) else {
            return Flow::Continue;
        };
        let Stage::Holding(held) = stage else {
            return Flow::Continue;
        };
        match held.push(chunk, end) {
            Hold::More => Flow::Continue,
            Hold::Whole(whole) => match self.check(&whole, &route) {
                None => {
                    metrics::json_body(NAME, &route, Direction::Request, "valid");
                    *stage = Stage::Checked(whole);
                    Flow::Continue
                }
                Some(refusal) => {
                    *stage = Stage::Done;
                    Flow::Reject(refusal)
                }
            },
            Hold::Overflow(_) => {
                *stage = Stage::Done;
                metrics::json_body(NAME, &route, Direction::Request, "too_large");
                Flow::Reject(self.too_large())
            }
        }
    }

    fn edit_request_body(&self, chunk: &mut Option<Bytes>, _end: bool, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let Some(stage) = body::slot::<Stage>(ctx, self) else {
            return Ok(());
        };
        match std::mem::replace(stage, Stage::Done) {
            // Held back: an empty chunk (`None` would end the body upstream).
            held @ Stage::Holding(_) => {
                *stage = held;
                *chunk = Some(Bytes::new());
            }
            Stage::Checked(whole) => *chunk = Some(whole),
            Stage::Done => {}
        }
        Ok(())
    }

    fn upstream_request(&self, _request: &mut crate::RequestHeader, ctx: &mut RequestCtx) -> pingora::Result<()> {
        // A retry sends the body again from its start: check it again.
        if let Some(stage) = body::slot::<Stage>(ctx, self) {
            *stage = Stage::Holding(Held::new(self.max_body_bytes));
        }
        Ok(())
    }
}

impl JsonSchema {
    fn too_large(&self) -> Reject {
        Reject::new(413, "payload_too_large", format!("request body exceeds {} bytes", self.max_body_bytes))
    }
}

const NAME: &str = "json_schema";

#[cfg(test)]
mod tests;
