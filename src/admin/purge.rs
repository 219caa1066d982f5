//! `POST /cache/purge`: removes entries from the shared cache by URL (every variant), path
//! prefix or route, and answers `{"purged": N}`. The body is JSON ([`crate::cache::purge`]);
//! a body that is not one of the accepted shapes gets 400, a process without a `cache_store`
//! 404.

use crate::cache::{self, PurgeRequest};
use http::{Response, StatusCode};
use serde_json::json;

/// The largest purge body read; the accepted shapes are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Runs the purge `body` asks for.
pub fn purge(body: &[u8]) -> Response<Vec<u8>> {
    let request = match PurgeRequest::parse(body) {
        Ok(r) => r,
        Err(message) => return super::error(StatusCode::BAD_REQUEST, "bad_request", message),
    };
    let Some(cache) = cache::get() else {
        return super::error(StatusCode::NOT_FOUND, "no_cache", "this config has no cache_store");
    };
    super::json(StatusCode::OK, json!({"purged": cache.purge(&request)}))
}
