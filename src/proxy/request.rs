//! Phase 2, `request_filter`: one canonical reading of the request, the HTTPS redirect, the
//! route, the listener's and the route's filters, then what answers without an upstream (a
//! static response, the route's concurrency limit, an aggregate route's composition).

use super::errors::Answer;
use super::{canon, respond, select, Ctx};
use crate::config::Action;
use crate::state::Shared;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::ErrorType;
use portico_filters::Flow;

/// Whether the request was answered here (`true`) or goes on to an upstream.
pub async fn filter(shared: &Shared, listener_name: &str, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    let Some(runtime) = ctx.request.runtime.clone() else {
        return Error::e_explain(ErrorType::InternalError, "no runtime config");
    };
    // 0. One reading of the request: framing, host, canonical path, no forged identity.
    let listener = ctx.request.listener.clone();
    let host = match canon::canonicalize(session, listener.as_deref(), &runtime.identity_headers) {
        Ok(host) => host,
        Err(answer) => {
            respond::reject(session, ctx, &answer.into()).await?;
            return Ok(true);
        }
    };
    // 0. A plain listener that only redirects to HTTPS.
    if let Some(port) = ctx.request.listener.as_ref().and_then(|l| l.redirect_https) {
        let reject = select::https_redirect(session.req_header(), port);
        respond::reject(session, ctx, &reject).await?;
        return Ok(true);
    }

    // 1. Route.
    let route = match select::route(&runtime.router, listener_name, session.req_header(), host.as_deref()) {
        Ok(route) => route,
        Err(reject) => {
            respond::reject(session, ctx, &reject).await?;
            return Ok(true);
        }
    };
    ctx.filter.route = route.name.clone();
    ctx.routing.route = Some(route.clone());
    if let Some(span) = ctx.span() {
        span.set_route(&route.name);
    }

    // 2. The listener's filters, then the route's.
    for chain in ctx.chains().iter() {
        match chain.request(session, &mut ctx.filter).await? {
            Flow::Continue => {}
            Flow::Reject(reject) => {
                respond::reject(session, ctx, &reject).await?;
                return Ok(true);
            }
            Flow::Respond(r) => {
                respond::write(session, ctx, r.status, &r.headers, r.body).await?;
                return Ok(true);
            }
        }
    }
    if let (Some(span), Some(caller)) = (ctx.request.span.as_mut(), ctx.filter.caller()) {
        if span.is_recording() {
            span.set_attribute("portico.consumer", caller.to_string());
        }
    }

    // 3. Static responses answer here.
    if let Action::Respond(r) = &route.action {
        respond::write(session, ctx, r.status, &r.headers, r.body.clone()).await?;
        return Ok(true);
    }

    // 4. The route's concurrency limit: excess requests get 503 at once.
    match ctx.route_runtime().and_then(|r| r.limit.as_ref()).map(|l| l.try_take()) {
        None => {}
        Some(Some(slot)) => ctx.routing.slot = Some(slot),
        Some(None) => {
            respond::reject(session, ctx, &Answer::RouteConcurrencyLimited.into()).await?;
            return Ok(true);
        }
    }
    // 5. Aggregate routes answer with their parts, composed (src/compose/).
    if let Action::Aggregate(spec) = &route.action {
        let sinks = crate::compose::Sinks { metrics: &shared.metrics, access_log: shared.access_log.enabled() };
        crate::compose::answer(session, ctx, sinks, &route, spec).await?;
        return Ok(true);
    }
    if route.mirror.is_some() {
        ctx.routing.mirror_body = Some(Vec::new());
    }
    Ok(false)
}
