//! An aggregate route's parts, as validated: every upstream exists, every template slot has a
//! name the request can fill (`src/compose/template.rs`), every bound is set.

use crate::compose::Template;
use http::Method;
use std::sync::Arc;
use std::time::Duration;

/// What an aggregate route calls and how it composes the answer.
#[derive(Debug)]
pub struct AggregateSpec {
    /// The parts, in file order (the order of the answer's fields, and who wins a merge clash:
    /// the later part).
    pub parts: Vec<PartSpec>,
    /// `aggregate_merge`: the parts' top-level fields in one object, instead of one field per
    /// part name.
    pub merge: bool,
    /// A part's body larger than this fails the part (`too_large`).
    pub max_part_bytes: usize,
}

/// One upstream call of an aggregate route.
#[derive(Debug)]
pub struct PartSpec {
    /// The part's field in the answer, and its name in headers, logs and metrics.
    pub name: Arc<str>,
    /// The pool it goes through (balancing, health, breaker, timeouts, TLS as for any route).
    pub upstream: Arc<str>,
    /// Method sent (default `GET`).
    pub method: Method,
    /// Path and query sent; slots percent-encoded.
    pub path: Template,
    /// Body sent as `application/json`; slots JSON-escaped.
    pub body: Option<Template>,
    /// A failing required part fails the whole answer with 502.
    pub required: bool,
    /// The part's own bound, within the route's `timeout_ms`.
    pub timeout: Option<Duration>,
}
