//! Every retry decision, in the order a request meets them. A route retries only with a `retry`
//! policy; Pingora runs `upstream_peer` again whenever the error a hook returns is marked
//! retryable, and the peer avoids the targets already tried.
//!
//! 1. [`begin`] (first `upstream_peer`): the request counts in the route's retry budget, and the
//!    route's `timeout_ms` (or a gRPC call's shorter `grpc-timeout`) starts for all attempts
//!    together.
//! 2. [`after_connect_failure`] (`fail_to_connect`): retried on `connect_error`; a connect
//!    timeout also on `timeout`.
//! 3. [`on_status`] (`upstream_response_filter`): a status the policy lists becomes an error,
//!    so the response is dropped and the request goes again.
//! 4. [`after_proxy_error`] (`error_while_proxy`): the status retry of step 3 goes again; a
//!    timeout on `timeout`; anything else as Pingora would (an idempotent request on a reused
//!    connection that failed).
//!
//! Steps 2 to 4 pass [`allowed`]: attempts left, an idempotent method (or `non_idempotent`),
//! time left before the route's deadline, and a retry taken from the budget.

use super::errors::UpstreamErrorKind;
use super::Ctx;
use crate::config::{RetrySpec, RouteSpec};
use crate::telemetry::Metrics;
use crate::upstream::window::now_ms;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, RetryType};
use portico_filters::grpc_web::Code;
use std::time::Instant;

/// 1. The first attempt: counts the request in the route's budget (retries may be a share of
///    requests) and starts the route's timeout.
pub fn begin(ctx: &mut Ctx, session_req: &pingora::http::RequestHeader, route: &RouteSpec, now_ms: u64) {
    if let Some(budget) = ctx.route_runtime().and_then(|r| r.budget.as_ref()) {
        budget.request(now_ms);
    }
    // A gRPC call's own `grpc-timeout` counts too, capped by the route's.
    let grpc = if ctx.request.grpc { super::grpc::timeout(session_req) } else { None };
    let limit = match (route.timeout, grpc) {
        (Some(r), Some(g)) => Some(r.min(g)),
        (r, g) => r.or(g),
    };
    ctx.upstream.deadline = limit.map(|t| ctx.request.started + t);
}

/// 2. Whether a connection that could not be made is tried again.
pub fn after_connect_failure(metrics: &Metrics, session: &Session, ctx: &mut Ctx, kind: UpstreamErrorKind) -> bool {
    // A gRPC call (always a POST) that never reached a target is safe to send again.
    let any_method = ctx.request.grpc;
    allowed(metrics, session, ctx, any_method, |r| match kind {
        UpstreamErrorKind::Timeout => r.on_timeout || r.on_connect_error,
        _ => r.on_connect_error,
    })
}

/// 3. Whether a response with `status` is dropped for another try; the error to return when so.
pub fn on_status(metrics: &Metrics, session: &Session, ctx: &mut Ctx, status: u16) -> Option<Box<Error>> {
    let listed =
        ctx.routing.route.as_ref().and_then(|r| r.retry.as_ref()).is_some_and(|r| r.on_status.contains(&status));
    if !(listed && allowed(metrics, session, ctx, false, |_| true)) {
        return None;
    }
    ctx.upstream.retry_status = Some(status);
    Some(Error::explain(ErrorType::HTTPStatus(status), "retrying on upstream status"))
}

/// 3. (gRPC) Whether a Trailers-Only answer with `code` is dropped for another try: the policy
///    lists the code's name (`unavailable`, `resource_exhausted`). The call is a POST, but the
///    route asked for this retry by name, as a gRPC retry policy would.
pub fn on_grpc_status(metrics: &Metrics, session: &Session, ctx: &mut Ctx, code: Code) -> Option<Box<Error>> {
    let listed = ctx.routing.route.as_ref().and_then(|r| r.retry.as_ref()).is_some_and(|r| r.on_grpc.contains(&code));
    if !(listed && allowed(metrics, session, ctx, true, |_| true)) {
        return None;
    }
    // Should the retry not happen after all (a request body too large to send again), the
    // answer is this status, which a gRPC client reads as the same code.
    let status = super::grpc::http_status_for(code);
    ctx.upstream.retry_status = Some(status);
    Some(Error::explain(ErrorType::HTTPStatus(status), "retrying on grpc-status"))
}

/// 4. Marks an error while proxying as retryable or not. `status_retry`: step 3 decided it
///    (and took the retry from the budget then).
pub fn after_proxy_error(
    metrics: &Metrics,
    session: &Session,
    ctx: &mut Ctx,
    e: &mut Error,
    kind: UpstreamErrorKind,
    status_retry: bool,
    client_reused: bool,
) {
    let truncated = session.as_ref().retry_buffer_truncated();
    // A status retry took its retry from the budget when the status was seen.
    if status_retry || (kind == UpstreamErrorKind::Timeout && allowed(metrics, session, ctx, false, |r| r.on_timeout)) {
        e.set_retry(!truncated);
    } else if !session.req_header().method.is_idempotent() || truncated {
        e.set_retry(false);
    } else {
        // Pingora's default: a request that failed on a reused connection may go again.
        // Pingora marks read errors so, but not a write that hit a connection the upstream
        // had just closed (a restarted or killed target): the request never reached it, so
        // it is as safe to send again as a read error is.
        if client_reused && matches!(e.etype(), ErrorType::WriteError | ErrorType::ConnectionClosed) {
            e.retry = RetryType::ReusedOnly;
        }
        e.retry.decide_reuse(client_reused);
    }
}

/// Whether the route's policy (`on` picks the clause that applies), the method (any, when
/// `any_method`), the deadline and the retry budget allow one more try; takes the retry from
/// the budget when they do.
fn allowed(
    metrics: &Metrics,
    session: &Session,
    ctx: &mut Ctx,
    any_method: bool,
    on: impl Fn(&RetrySpec) -> bool,
) -> bool {
    let Some(route) = ctx.routing.route.as_ref() else { return false };
    let Some(policy) = route.retry.as_ref() else { return false };
    if !on(policy) || ctx.upstream.retries >= policy.attempts {
        return false;
    }
    if !(any_method || policy.non_idempotent || session.req_header().method.is_idempotent()) {
        return false;
    }
    if ctx.upstream.deadline.is_some_and(|d| Instant::now() >= d) {
        return false;
    }
    let budget = ctx.route_runtime().and_then(|r| r.budget.as_ref());
    if !budget.is_none_or(|b| b.try_retry(now_ms())) {
        metrics.retry(&route.name, false);
        return false;
    }
    metrics.retry(&route.name, true);
    ctx.upstream.retries += 1;
    true
}
