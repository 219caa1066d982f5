//! The explanation of one request: the JSON `GET /explain` sends and the text renderer reads.

use super::pool::PoolPlan;
use super::table::RouteEntry;
use serde::Serialize;

/// Everything Portico would do with one request, as far as the config decides it.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The request as understood.
    pub request: RequestSummary,
    /// The listener it arrives on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<ListenerChoice>,
    /// What happens to it.
    pub result: Outcome,
    /// The route that takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteEntry>,
    /// Routes ranked above the chosen one, with why each did not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tried_first: Vec<Candidate>,
    /// Higher-ranked routes not listed in `tried_first`.
    #[serde(skip_serializing_if = "is_zero")]
    pub tried_first_more: usize,
    /// When no route takes it: the routes closest to matching, with why each did not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nearest: Vec<Candidate>,
    /// Every filter that would run, in request order (the response passes them in reverse).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterStep>,
    /// How the upstream and its target are chosen, and what is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamPlan>,
    /// The route's retry policy and whether it applies to this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPlan>,
    /// The route's bound on the whole upstream exchange, retries included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Requests in flight on the route at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Whether the response may come from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePlan>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The request, as routing reads it.
#[derive(Debug, Serialize)]
pub struct RequestSummary {
    /// Method.
    pub method: String,
    /// The URL as given.
    pub url: String,
    /// Host, without port.
    pub host: String,
    /// Path.
    pub path: String,
    /// Query string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Headers given, credentials masked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// The listener a request arrives on, and why that one.
#[derive(Debug, Serialize)]
pub struct ListenerChoice {
    /// Name.
    pub name: String,
    /// Address.
    pub listen: String,
    /// `edge` or `internal`.
    pub role: &'static str,
    /// Why this listener.
    pub chosen_because: String,
}

/// What becomes of the request.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `proxy`, `respond`, `not_found`, `method_not_allowed`, `redirect` or `no_listener`.
    pub kind: &'static str,
    /// The status Portico answers with itself (absent when the upstream answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// In words.
    pub message: String,
}

/// A route that did not take the request.
#[derive(Debug, Serialize)]
pub struct Candidate {
    /// Its name.
    pub route: String,
    /// Its precedence on the listener.
    pub rank: usize,
    /// Every rule it failed.
    pub failed: Vec<MissReport>,
}

/// One failed rule.
#[derive(Debug, Serialize)]
pub struct MissReport {
    /// `host`, `path`, `header`, `query` or `method`.
    pub rule: &'static str,
    /// What the route wants.
    pub wants: String,
    /// What the request has.
    pub got: String,
}

/// One filter on the request's way.
#[derive(Debug, Serialize)]
pub struct FilterStep {
    /// Filter name.
    pub name: String,
    /// `listener NAME` or `route NAME`.
    pub from: String,
    /// Its config as written, secrets masked.
    pub config: serde_json::Value,
}

/// How the upstream is chosen and what it receives.
#[derive(Debug, Serialize)]
pub struct UpstreamPlan {
    /// The rules, in the order they are applied.
    pub choice: Vec<String>,
    /// Where this request goes, when the config decides it (absent for a weighted split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goes_to: Option<String>,
    /// Every pool the request may go to.
    pub pools: Vec<PoolPlan>,
    /// The request line and Host as sent upstream.
    pub sent_as: SentAs,
    /// A shadow copy, when mirrored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

/// The upstream request.
#[derive(Debug, Serialize)]
pub struct SentAs {
    /// Method.
    pub method: String,
    /// Path and query after rewriting.
    pub path: String,
    /// The `Host` header, when a rewrite sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The rewrite applied, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
}

/// A retry policy.
#[derive(Debug, Serialize)]
pub struct RetryPlan {
    /// Extra attempts after the first.
    pub attempts: u32,
    /// What failures are retried.
    pub on: Vec<String>,
    /// Share of recent requests that may be retries.
    pub budget_percent: f64,
    /// Whether this request's method may be retried, in words.
    pub this_request: String,
}

/// The cache policy.
#[derive(Debug, Default, Serialize)]
pub struct CachePlan {
    /// Whether responses are cached.
    pub enabled: bool,
    /// Whether this request's method is answered from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub this_request: Option<bool>,
    /// Methods answered from the cache.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// The key's parts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Request headers an entry varies on, beside the origin's `Vary`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vary: Vec<String>,
    /// Freshness when the origin gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// Stale served at once while one request refreshes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_while_revalidate_s: Option<u64>,
    /// Stale served when the origin fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_if_error_s: Option<u64>,
}
