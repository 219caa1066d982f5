//! Aggregate routes: one client request answered by several upstream calls made concurrently,
//! composed into one JSON object.
//!
//! | file          | job                                                                    |
//! |---------------|------------------------------------------------------------------------|
//! | `mod.rs`      | the fan-out: templates filled, headers prepared, parts joined, answer  |
//! | [`template`]  | `{NAME}` / `{query.NAME}` slots, parsed at load, escaped when filled   |
//! | [`part`]      | one call through the pool (slot, breaker, target, peer, connector)     |
//! | [`merge`]     | the composed JSON and the completeness headers                         |
//!
//! The route's request filters have run once before [`answer`] is called (it is answered from
//! `request_filter`, as a static response is), and its response filters run over the composed
//! answer. Every part carries the request as the filters left it, prepared as a proxied request
//! is (hop-by-hop headers removed, `X-Forwarded-*`, request id, `traceparent`, the chains'
//! upstream edits such as forwarded JWT claims); the client's body is not sent. Each part is its
//! own client span under the request's server span, and its `traceparent` names that span.
//!
//! Bounds: the route's `timeout_ms` (else [`defaults::AGGREGATE_TIMEOUT_MS`]) bounds the whole
//! composition, a part's `timeout_ms` bounds that part within it, and a part's body is read up
//! to [`defaults::AGGREGATE_MAX_PART_BYTES`], so a composed answer holds at most that per part.

pub mod merge;
pub mod part;
pub mod template;

pub use template::Template;

use crate::config::{defaults, AggregateSpec, RouteSpec};
use crate::proxy::errors::Answer;
use crate::proxy::{forward, respond, Ctx};
use crate::telemetry::otlp::request::PartSpan;
use crate::telemetry::Metrics;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use portico_filters::Reject;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::Duration;
use template::{Escape, Vars};

/// `x-portico-complete`: `true` when every part answered 2xx.
const COMPLETE: HeaderName = HeaderName::from_static("x-portico-complete");
/// `x-portico-failed-parts`: `name=why, ...` for the parts that did not.
const FAILED_PARTS: HeaderName = HeaderName::from_static("x-portico-failed-parts");

/// `portico_aggregate_parts_total{route, part, outcome}`: every part call by how it went
/// (`ok`, or a [`part::Failure`] label). Registered with the process's metrics in `Shared::new`.
pub fn parts_counter() -> &'static prometheus::IntCounterVec {
    static PARTS: OnceLock<prometheus::IntCounterVec> = OnceLock::new();
    PARTS.get_or_init(|| {
        prometheus::IntCounterVec::new(
            prometheus::Opts::new("portico_aggregate_parts_total", "Aggregate route part calls, by outcome"),
            &["route", "part", "outcome"],
        )
        .expect("the counter's name, help and labels are valid")
    })
}

/// What [`answer`] reports to.
pub struct Sinks<'a> {
    /// The process's metrics (attempts are recorded as a proxied request's are).
    pub metrics: &'a Metrics,
    /// Whether an access-log line will be written (the parts' summary is built only then).
    pub access_log: bool,
}

/// Answers an aggregate request: calls every part of `spec` concurrently, composes the answer
/// and writes it (through the response filters).
pub async fn answer(
    session: &mut Session,
    ctx: &mut Ctx,
    sinks: Sinks<'_>,
    route: &RouteSpec,
    spec: &AggregateSpec,
) -> pingora::Result<()> {
    let metrics = sinks.metrics;
    let Some(runtime) = ctx.request.runtime.clone() else {
        return pingora::Error::e_explain(pingora::ErrorType::InternalError, "no runtime config");
    };
    // 1. The request as every part carries it: prepared as a proxied request, then the chains'
    //    upstream edits; without the client's body framing, content type, encodings or upgrade
    //    (parts answer in identity encoding, so their bodies can be embedded).
    let mut base = session.req_header().clone();
    forward::prepare_upstream_request(session, &mut base, ctx)?;
    for chain in ctx.chains().iter() {
        chain.upstream_request(&mut base, &mut ctx.filter)?;
    }
    if base.headers.get(header::HOST).is_none() {
        if let Some(host) = session.req_header().uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            base.insert_header(header::HOST, host)?;
        }
    }
    for h in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONTENT_TYPE,
        header::ACCEPT_ENCODING,
        header::EXPECT,
        header::CONNECTION,
        header::UPGRADE,
    ] {
        base.remove_header(&h);
    }

    // 2. Each part's request, its slots filled from the route's captures and the query.
    let req = session.req_header();
    let vars = Vars::of(&route.matcher.path, req.uri.path(), req.uri.query());
    let total = route.timeout.unwrap_or(Duration::from_millis(defaults::AGGREGATE_TIMEOUT_MS));
    let mut calls = Vec::with_capacity(spec.parts.len());
    let mut span_ids = Vec::with_capacity(spec.parts.len());
    for p in &spec.parts {
        let Some(pool) = runtime.pools.get(&p.upstream) else {
            return Err(ctx.outcome.refuse(Answer::UnknownUpstream { upstream: &p.upstream }));
        };
        let body = p.body.as_ref().map(|b| Bytes::from(b.render(&vars, Escape::Json)));
        let mut header = part_header(&base, p, &p.path.render(&vars, Escape::Path), body.as_ref())?;
        // Each part is its own client span under the request's server span.
        if let Some((id, traceparent)) = ctx.request.span.as_ref().map(|s| s.part_context()) {
            header.insert_header("traceparent", traceparent)?;
            span_ids.push(id);
        }
        let budget = p.timeout.map_or(total, |t| t.min(total));
        let client_ip = ctx.filter.client_ip;
        calls.push(part::call(
            part::Call {
                pool,
                header,
                body,
                budget,
                client_ip,
                max_bytes: spec.max_part_bytes,
                keepalive_pool_size: runtime.config.server.upstream_keepalive_pool_size,
            },
            metrics,
        ));
    }

    // 3. All at once; the slowest bounds the wait.
    let outcomes = join_all(calls).await;

    // 4. Counted, logged, composed and written.
    let counter = parts_counter();
    for (p, o) in spec.parts.iter().zip(&outcomes) {
        let outcome = o.result.as_ref().map_or_else(|f| f.label(), |_| "ok");
        counter.with_label_values(&[&route.name, &p.name, outcome]).inc();
    }
    if let Some(span) = ctx.request.span.as_mut() {
        for ((p, o), span_id) in spec.parts.iter().zip(&outcomes).zip(span_ids) {
            span.part(PartSpan {
                span_id,
                name: &p.name,
                method: p.method.as_str(),
                upstream: &p.upstream,
                target: o.target,
                started: o.started,
                elapsed: o.elapsed,
                status: o.status(),
                error: o.result.as_ref().err().map(|f| f.label()),
            });
        }
    }
    ctx.outcome.upstream_time = outcomes.iter().map(|o| o.elapsed).max();
    if sinks.access_log {
        ctx.outcome.parts = Some(access_parts(spec, &outcomes));
    }
    let composed = merge::compose(spec, &outcomes);
    let complete = HeaderValue::from_static(if composed.failed.is_empty() { "true" } else { "false" });
    let failed = (!composed.failed.is_empty()).then(|| HeaderValue::from_str(&composed.failed).ok()).flatten();
    let refusal = match &composed.required_failed {
        Some((i, why)) => Some(Reject::from(Answer::AggregatePartFailed { part: &spec.parts[*i].name, reason: why })),
        None if composed.all_failed => Some(Reject::from(Answer::AggregateFailed)),
        None => None,
    };
    if let Some(mut refusal) = refusal {
        refusal.headers.push((COMPLETE, complete));
        refusal.headers.extend(failed.map(|v| (FAILED_PARTS, v)));
        return respond::reject(session, ctx, &refusal).await;
    }
    let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (COMPLETE, complete)];
    headers.extend(failed.map(|v| (FAILED_PARTS, v)));
    respond::write(session, ctx, 200, &headers, Bytes::from(composed.body)).await
}

/// The part's request header: the prepared base with the part's method, path and body framing.
fn part_header(
    base: &RequestHeader,
    p: &crate::config::PartSpec,
    path: &str,
    body: Option<&Bytes>,
) -> pingora::Result<RequestHeader> {
    let mut h = base.clone();
    h.set_method(p.method.clone());
    let uri = path
        .parse::<http::Uri>()
        .map_err(|e| pingora::Error::because(pingora::ErrorType::InternalError, "a part's filled path is no URI", e))?;
    h.set_uri(uri);
    match body {
        Some(b) => {
            h.insert_header(header::CONTENT_TYPE, "application/json")?;
            h.insert_header(header::CONTENT_LENGTH, b.len())?;
        }
        None if !matches!(p.method, http::Method::GET | http::Method::HEAD) => {
            h.insert_header(header::CONTENT_LENGTH, 0)?;
        }
        None => {}
    }
    Ok(h)
}

/// The access log's `parts`: each part's upstream, target, status or failure, and duration.
fn access_parts(spec: &AggregateSpec, outcomes: &[part::Outcome]) -> serde_json::Value {
    let items = spec.parts.iter().zip(outcomes).map(|(p, o)| {
        serde_json::json!({
            "name": &*p.name,
            "upstream": &*p.upstream,
            "target": o.target.map(|t| crate::telemetry::socket_addr_text(&t)),
            "status": o.status(),
            "outcome": o.result.as_ref().map_or_else(|f| f.to_string(), |_| "ok".to_string()),
            "duration_ms": (o.elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        })
    });
    serde_json::Value::Array(items.collect())
}

/// Runs every future to its end, concurrently on this task, and gives their outputs in order
/// (no task per part: they borrow the request's config, and end with the request).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
