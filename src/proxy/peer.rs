//! Phase 4, `upstream_peer`: where an attempt goes. The pool (a filter's choice, the canary,
//! else the route's, weighted when split), its concurrency slot and breaker, a healthy target by
//! the pool's algorithm (retries avoid tried ones), and the peer bounded by what is left of the
//! route's timeout.

use super::errors::Answer;
use super::guards::Attempt;
use super::{retry, select, websocket, Ctx};
use crate::upstream::breaker::Admission;
use crate::upstream::build_peer;
use crate::upstream::window::now_ms;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::ErrorType;
use std::time::Instant;

/// The peer for this attempt, or the refusal (counted in `ctx.outcome`) when there is none.
pub fn choose(session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
    let (Some(runtime), Some(route)) = (ctx.request.runtime.clone(), ctx.routing.route.clone()) else {
        return Error::e_explain(ErrorType::InternalError, "no route at upstream selection");
    };
    let now = now_ms();
    if ctx.upstream.tried.is_empty() {
        retry::begin(ctx, session.req_header(), &route, now);
    }
    // The route's timeout bounds every attempt together.
    let remaining = ctx.upstream.deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if remaining.is_some_and(|r| r.is_zero()) {
        return Err(ctx.outcome.refuse(Answer::RouteTimeout));
    }

    // 1. Which pool: a filter's choice, the canary, else the route's (weighted when split).
    let name = select::pool_name(session, ctx, &route)?;
    let Some(pool) = runtime.pools.get(&name).cloned() else {
        return Err(ctx.outcome.refuse(Answer::UnknownUpstream { upstream: &name }));
    };
    ctx.upstream.pool = Some(pool.clone());

    // 2. The pool's own limits: concurrency (one slot for all attempts), then the breaker.
    if ctx.upstream.pool_slot.is_none() {
        if let Some(limit) = &pool.limit {
            let Some(slot) = limit.try_take() else {
                return Err(ctx.outcome.refuse(Answer::UpstreamOverloaded { upstream: &name }));
            };
            ctx.upstream.pool_slot = Some(slot);
        }
    }
    let admission = pool.breaker.as_ref().map_or(Admission::Allowed, |b| b.admit(now));
    if admission == Admission::Rejected {
        return Err(ctx.outcome.refuse(Answer::CircuitOpen { upstream: &name }));
    }

    // 3. Which target: a healthy one, by the pool's algorithm; retries avoid tried ones.
    let mut ip_buf = [0u8; 16];
    let key = select::hash_key(&pool, session.req_header(), ctx.filter.client_ip, &mut ip_buf);
    let Some(backend) = pool.select_admitted(key, &ctx.upstream.tried, now, admission) else {
        return Err(ctx.outcome.refuse(Answer::NoHealthyUpstream { upstream: &name }));
    };

    // 4. The peer: target plus the upstream's timeouts and TLS, bounded by what is left of
    //    the route's timeout; the attempt counts in the target's load from here.
    let mut peer = build_peer(&pool, &backend);
    select::bound_timeouts(&mut peer, remaining);
    websocket::peer(session, ctx, &mut peer);
    if let Some(addr) = backend.as_inet() {
        ctx.upstream.tried.push(*addr);
        let reason = ctx.upstream.last_failure.take();
        if let Some(span) = ctx.request.span.as_mut() {
            span.attempt(&pool.spec.name, *addr, reason);
        }
        ctx.upstream.attempt = Some(Attempt::start(pool, *addr, admission));
    }
    ctx.upstream.started = Some(Instant::now());
    Ok(peer)
}
