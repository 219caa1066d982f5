//! `routes[].aggregate` and `aggregate_merge`: the parts of a composed answer. Templates are
//! parsed here, against the named captures of the route's own `path_regex`, so a slot no
//! request could fill is an error with its file and line.

use super::routes::Known;
use crate::compose::template::{Escape, Template, Vars};
use crate::config::defaults;
use crate::config::file::{AggregatePartFile, RouteFile};
use crate::config::model::{AggregateSpec, MatchSpec, PartSpec, PathPattern};
use crate::config::Errors;
use http::Method;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The aggregate action of route `r` (at `at`), whose `aggregate` list is `parts`.
pub(super) fn aggregate(
    parts: Vec<AggregatePartFile>,
    r: &RouteFile,
    matcher: &MatchSpec,
    at: &str,
    known: &Known<'_>,
    errors: &mut Errors<'_>,
) -> Option<AggregateSpec> {
    excluded_keys(r, at, errors);
    if parts.is_empty() {
        errors.at(format!("{at}.aggregate"), "an aggregate needs at least one part");
        return None;
    }
    let captures: Vec<&str> = match &matcher.path {
        PathPattern::Regex(re) => re.capture_names().flatten().collect(),
        _ => Vec::new(),
    };
    let mut names = HashSet::new();
    let mut specs = Vec::with_capacity(parts.len());
    let mut ok = true;
    for (j, p) in parts.into_iter().enumerate() {
        let part_at = format!("{at}.aggregate[{j}]");
        if !names.insert(p.name.clone()) {
            errors.at(format!("{part_at}.name"), format!("duplicate part name \"{}\"", p.name));
        }
        match part(p, &captures, &part_at, known, errors) {
            Some(spec) => specs.push(spec),
            None => ok = false,
        }
    }
    ok.then(|| AggregateSpec {
        parts: specs,
        merge: r.aggregate_merge.unwrap_or(defaults::AGGREGATE_MERGE),
        max_part_bytes: defaults::AGGREGATE_MAX_PART_BYTES,
    })
}

/// `aggregate_merge` on a route without `aggregate`.
pub(super) fn stray_merge(r: &RouteFile, at: &str, errors: &mut Errors<'_>) {
    if r.aggregate.is_none() && r.aggregate_merge.is_some() {
        errors.at(format!("{at}.aggregate_merge"), "`aggregate_merge` needs an `aggregate` list");
    }
}

/// Keys that shape one proxied exchange and mean nothing for a composed answer.
fn excluded_keys(r: &RouteFile, at: &str, errors: &mut Errors<'_>) {
    let keys = [
        ("rewrite", r.rewrite.is_some()),
        ("retry", r.retry.is_some()),
        ("mirror", r.mirror.is_some()),
        ("canary", r.canary.is_some()),
    ];
    for (key, _) in keys.iter().filter(|(_, set)| *set) {
        errors.at(
            format!("{at}.{key}"),
            format!("`{key}` does not apply to an aggregate route (its parts are not proxied)"),
        );
    }
}

fn part(
    p: AggregatePartFile,
    captures: &[&str],
    at: &str,
    known: &Known<'_>,
    errors: &mut Errors<'_>,
) -> Option<PartSpec> {
    let mut ok = true;
    if p.name.is_empty() || p.name.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-')) {
        errors.at(format!("{at}.name"), "a part name is letters, digits, `_` and `-`");
        ok = false;
    }
    ok &= known.check_upstream(&p.upstream, format!("{at}.upstream"), errors);
    let method = match p.method.as_deref().unwrap_or(defaults::AGGREGATE_METHOD).parse::<Method>() {
        Ok(m) => Some(m),
        Err(_) => {
            errors.at(format!("{at}.method"), "not an HTTP method");
            None
        }
    };
    let path = match Template::parse(&p.path, captures) {
        Ok(t) => {
            let sample = t.render(&Vars::default(), Escape::Path);
            if !sample.starts_with('/') || sample.parse::<http::uri::PathAndQuery>().is_err() {
                errors.at(format!("{at}.path"), "a part's path is a path (starting with /) and an optional query");
                None
            } else {
                Some(t)
            }
        }
        Err(e) => {
            errors.at(format!("{at}.path"), e);
            None
        }
    };
    let body = match p.body.as_deref().map(|b| Template::parse(b, captures)) {
        None => Some(None),
        Some(Ok(t)) => Some(Some(t)),
        Some(Err(e)) => {
            errors.at(format!("{at}.body"), e);
            None
        }
    };
    if p.timeout_ms == Some(0) {
        errors.at(format!("{at}.timeout_ms"), "must be at least 1");
        ok = false;
    }
    let (Some(method), Some(path), Some(body), true) = (method, path, body, ok) else { return None };
    Some(PartSpec {
        name: Arc::from(p.name.as_str()),
        upstream: Arc::from(p.upstream.as_str()),
        method,
        path,
        body,
        required: p.required.unwrap_or(defaults::AGGREGATE_REQUIRED),
        timeout: p.timeout_ms.map(Duration::from_millis),
    })
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
