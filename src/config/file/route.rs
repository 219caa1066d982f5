//! `routes[]`: the match, the action (upstream, split, canary, respond, redirect, aggregate),
//! rewrites, retries, mirroring, WebSocket tunnels and filters.

use super::FilterItem;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    #[serde(default)]
    pub listeners: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    pub matcher: MatchFile,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub split: Option<Vec<SplitFile>>,
    #[serde(default)]
    pub mirror: Option<MirrorFile>,
    #[serde(default)]
    pub rewrite: Option<RewriteFile>,
    #[serde(default)]
    pub retry: Option<RetryFile>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub cache: Option<crate::config::compile::cache::CacheFile>,
    #[serde(default)]
    pub respond: Option<RespondFile>,
    /// Parts called concurrently and composed into one JSON answer (`config/compile/aggregate.rs`).
    #[serde(default)]
    pub aggregate: Option<Vec<AggregatePartFile>>,
    #[serde(default)]
    pub aggregate_merge: Option<bool>,
    #[serde(default)]
    pub filters: Vec<FilterItem>,
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    #[serde(default)]
    pub canary: Option<CanaryFile>,
    #[serde(default)]
    pub websocket: Option<WebSocketFile>,
}

/// One part of an aggregate route: `{name, upstream, path, method, body, required, timeout_ms}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatePartFile {
    pub name: String,
    pub upstream: String,
    pub path: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Requests carrying a header or cookie (with a value, or any) go to the canary upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryFile {
    pub upstream: String,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    #[serde(default)]
    pub host: Option<OneOrMany>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub path_exact: Option<String>,
    #[serde(default)]
    pub path_regex: Option<String>,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

/// `host: a.example` or `host: [a.example, "*.example"]`: the filters crate's own type, so the
/// file format has one spelling of "one value or a list".
pub use portico_filters::registry::OneOrMany;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFile {
    pub upstream: String,
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFile {
    pub upstream: String,
    #[serde(default)]
    pub percent: Option<f64>,
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteFile {
    #[serde(default)]
    pub strip_prefix: Option<String>,
    #[serde(default)]
    pub add_prefix: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub on: Vec<RetryOnFile>,
    #[serde(default)]
    pub budget_percent: Option<f64>,
    #[serde(default)]
    pub non_idempotent: Option<bool>,
}

/// `connect_error`, `timeout`, or a status code.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RetryOnFile {
    Status(u16),
    Kind(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondFile {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `routes[].websocket`: upgraded connections on the route are tunnels with an idle timeout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketFile {
    #[serde(default)]
    pub idle_timeout_s: Option<u64>,
}
