//! Phases 4 and 5 for HTTP/2 upstreams: one request at a time gets its stream to a target, so
//! that requests starting together share connections instead of each opening one.
//!
//! Pingora takes a connection out of its pool while it opens a stream on it, and opens a new
//! connection whenever a request finds none with room; so requests that arrive together miss
//! the connection another one is using or opening, and open their own: 400 concurrent gRPC
//! calls made 8 to 41 connections where 4 carry them at 100 streams each. Envoy queues
//! requests on a connection being opened; here a request to an HTTP/2 target waits for its
//! turn ([`take_turn`]) before Pingora looks for a connection, and hands the turn on as soon as
//! it has a stream, new or reused, or could not connect ([`pass_turn`]). Getting a stream on a
//! connection with room takes microseconds, so the turns cost little; the wait is what a new
//! connection takes to open, which the requests behind would otherwise each have spent on their
//! own.
//!
//! The wait is bounded ([`MAX_WAIT`], or the connect timeout if shorter): after it a request
//! goes on its own, as before, so a connection slow to open holds the others back no longer
//! than that. An upgrade (always HTTP/1.1) does not wait, nor does a TLS target that answered
//! in HTTP/1.1 when offered both by ALPN (each request then needs a connection of its own).

use super::Ctx;
use crate::telemetry::Metrics;
use pingora::time::fast_timeout::fast_timeout;
use pingora::upstreams::peer::{HttpPeer, Peer};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The longest a request waits for its turn to get an HTTP/2 stream.
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// Phase 4, once the peer is chosen: waits (bounded) for this attempt's turn at its target; a
/// wait is counted in `portico_upstream_stream_waits_total`.
pub async fn take_turn(ctx: &mut Ctx, peer: &HttpPeer, metrics: &Metrics) {
    ctx.upstream.h2_turn = None; // a retry gives back the turn of the attempt before
    let wants_h2 = peer.get_peer_options().is_some_and(|o| o.alpn.get_max_http_version() == 2);
    let Some(target) = ctx.upstream.attempt.as_ref().map(|a| a.target().clone()) else { return };
    if !wants_h2 || target.speaks_http1.load(Ordering::Relaxed) {
        return;
    }
    let turn = target.h2_turn.0.clone();
    if let Ok(permit) = turn.clone().try_acquire_owned() {
        ctx.upstream.h2_turn = Some(permit);
        return;
    }
    let wait = peer.options.connection_timeout.map_or(MAX_WAIT, |t| t.min(MAX_WAIT));
    let permit = fast_timeout(wait, turn.acquire_owned()).await.ok().and_then(Result::ok);
    if let Some(pool) = &ctx.upstream.pool {
        metrics.stream_wait(&pool.spec.name, permit.is_some());
    }
    ctx.upstream.h2_turn = permit;
}

/// Phases 5 and `connected_to_upstream`: the attempt has its stream, or will not get one.
pub fn pass_turn(ctx: &mut Ctx) {
    ctx.upstream.h2_turn = None;
}

/// Phase 7: a target offered HTTP/2 that answered in HTTP/1.1 is not waited on again.
pub fn saw_version(ctx: &Ctx, version: http::Version) {
    if version >= http::Version::HTTP_2 {
        return;
    }
    let Some(attempt) = ctx.upstream.attempt.as_ref() else { return };
    let http2_pool = ctx.upstream.pool.as_ref().is_some_and(|p| p.spec.http2);
    if http2_pool && !attempt.target().speaks_http1.load(Ordering::Relaxed) {
        attempt.target().speaks_http1.store(true, Ordering::Relaxed);
    }
}
