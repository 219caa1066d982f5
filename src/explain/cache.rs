//! The cache part of an explanation: whether a route's responses come from the shared cache,
//! under which key, for how long.

use super::types::CachePlan;
use crate::config::{CachePolicy, KeyPart};
use http::Method;

/// The plan of a route with `policy` (or none) for a request with `method`.
pub(super) fn plan(policy: Option<&CachePolicy>, method: &Method) -> CachePlan {
    let Some(p) = policy else { return CachePlan { enabled: false, ..Default::default() } };
    let key = p
        .key
        .iter()
        .map(|k| match k {
            KeyPart::Host => "host".to_string(),
            KeyPart::Path => "path".to_string(),
            KeyPart::Query => "query".to_string(),
            KeyPart::Header(h) => format!("header:{h}"),
            KeyPart::Cookie(c) => format!("cookie:{c}"),
            KeyPart::Consumer => "consumer".to_string(),
        })
        .collect();
    CachePlan {
        enabled: true,
        this_request: Some(p.methods.contains(method)),
        methods: p.methods.iter().map(|m| m.to_string()).collect(),
        key,
        vary: p.vary.iter().map(|h| h.to_string()).collect(),
        ttl_s: Some(p.ttl.as_secs()),
        stale_while_revalidate_s: Some(p.stale_while_revalidate.as_secs()),
        stale_if_error_s: Some(p.stale_if_error.as_secs()),
    }
}

/// The plan in words, for `portico explain`.
pub(super) fn describe(plan: Option<&CachePlan>) -> String {
    let Some(c) = plan.filter(|c| c.enabled) else { return "off".into() };
    let mut s = format!("on for {}; key {}", c.methods.join(", "), c.key.join(" + "));
    if !c.vary.is_empty() {
        s.push_str(&format!(", varies on {}", c.vary.join(", ")));
    }
    s.push_str(&format!("; fresh {} s unless the origin says", c.ttl_s.unwrap_or(0)));
    match (c.stale_while_revalidate_s.unwrap_or(0), c.stale_if_error_s.unwrap_or(0)) {
        (0, 0) => s.push_str("; stale copies only where the origin allows them"),
        (swr, sie) => s.push_str(&format!("; stale served {swr} s while refreshing, {sie} s on origin errors")),
    }
    if c.this_request == Some(false) {
        s.push_str("; not for this method (BYPASS)");
    }
    s
}
