//! The cache hooks' bodies: when the shared cache is used, its key, what may be stored, what
//! an entry varies on, when a stale entry may be served, and `x-cache-status`.
//!
//! pingora-proxy calls them after `request_filter` (so authentication, rate limits and ACLs
//! run on hits too) and before `upstream_peer`, which a hit never reaches; `response_filter`
//! runs on hits as on misses. The state machine, the cache lock, conditional requests,
//! ranges, `HEAD` from a cached `GET`, `Age` and revalidation are pingora-cache's own
//! (`HttpCache`); what Portico decides is here and in `src/cache/`.

use super::Ctx;
use crate::cache::{self, CacheStatus};
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheKey, CacheMeta, CacheOptionOverrides, NoCacheReason, RespCacheable};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType, Result};

/// The response header that says what the cache did.
pub const STATUS_HEADER: &str = "x-cache-status";

/// Turns the cache on for a request whose route caches its method (phase 2b).
pub fn enable(session: &mut Session, ctx: &mut Ctx) {
    let Some(policy) = ctx.routing.route.as_ref().and_then(|r| r.cache.clone()) else { return };
    // The route caches: its responses say what the cache did, BYPASS included.
    ctx.routing.cache = Some(policy.clone());
    let spec = ctx.request.runtime.as_ref().and_then(|r| r.config.cache_store.clone());
    let (Some(spec), Some(cache)) = (spec, cache::get()) else { return };
    if !policy.methods.contains(&session.req_header().method) {
        return;
    }
    let mut overrides = CacheOptionOverrides::default();
    overrides.wait_timeout = Some(spec.lock_timeout);
    session.cache.enable(cache.store, Some(cache.eviction.manager()), None, Some(cache.lock), Some(overrides));
    session.cache.set_max_file_size_bytes(spec.max_object_bytes);
}

/// The request's key under its route's policy.
pub fn key(session: &Session, ctx: &Ctx) -> Result<CacheKey> {
    let Some(policy) = &ctx.routing.cache else {
        return Error::e_explain(ErrorType::InternalError, "cache enabled on a route without a cache policy");
    };
    Ok(cache::key::build(policy, session.req_header(), ctx.filter.caller()))
}

/// Whether the upstream's response may be stored, and its metadata.
pub fn cacheable(session: &Session, resp: &ResponseHeader, ctx: &Ctx) -> RespCacheable {
    match &ctx.routing.cache {
        Some(policy) => cache::policy::response_cacheable(policy, session.req_header(), resp),
        None => RespCacheable::Uncacheable(NoCacheReason::NeverEnabled),
    }
}

/// What the stored response `meta` varies on for `req`.
pub fn vary(meta: &CacheMeta, ctx: &Ctx, req: &RequestHeader) -> Option<HashBinary> {
    cache::policy::variance(ctx.routing.cache.as_ref()?, meta, req)
}

/// Whether a stale entry may be served: while it is refreshed (`error` is `None`; pingora
/// already checked the entry's stale-while-revalidate window), or when the origin failed
/// (pingora checked the stale-if-error window). Not when the client is the one that failed.
pub fn serve_stale(error: Option<&Error>) -> bool {
    error.is_none_or(|e| *e.esource() != ErrorSource::Downstream)
}

/// Adds `x-cache-status` to a cached route's response, and keeps it for the log (phase 8).
pub fn decorate(session: &Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    if ctx.routing.cache.is_none() {
        return Ok(());
    }
    let status = CacheStatus::of(session.cache.phase());
    ctx.outcome.cache_status = Some(status);
    resp.insert_header(STATUS_HEADER, status.header_value())
}

/// Counts the lookup by route and status, and a wait behind another request's fetch (phase 13).
/// A stale-while-revalidate refresh (a background subrequest) is not a client's lookup: its
/// access-log line says what it did, the counters count clients.
pub fn record(session: &Session, ctx: &Ctx) {
    let (Some(status), Some(cache)) = (ctx.outcome.cache_status, cache::get()) else { return };
    if session.subrequest_ctx.is_some() {
        return;
    }
    if let Some(m) = ctx.route_runtime().and_then(|r| r.cache.as_ref()) {
        m.count(status);
    }
    if session.cache.lock_duration().is_some() {
        cache.metrics.lock_waits.inc();
    }
}
