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
//! A request gives up waiting when the turn has stayed with one request for [`MAX_STALL`] (a
//! connection slow to open: the others then go on their own, as before, rather than wait on
//! it), or when it has waited as long as the upstream's connect timeout in all (a queue
//! longer than that is served as without turns). A long queue that moves is waited on: 400
//! calls starting together on a loaded machine wait for 399 turns, which can take longer than
//! any one stall; giving up on the queue's length (500 ms, as first written) had the last of
//! them open connections of their own, the likeliest cause of a CI run that failed the test
//! counting them.
//!
//! An upgrade (always HTTP/1.1) does not wait, nor does a TLS target that answered in HTTP/1.1
//! when offered both by ALPN (each request then needs a connection of its own).

use super::Ctx;
use crate::telemetry::Metrics;
use crate::upstream::targets::StreamTurn;
use crate::upstream::window::now_ms;
use pingora::time::fast_timeout::fast_timeout;
use pingora::upstreams::peer::{HttpPeer, Peer};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// How long one request may keep the turn before the requests behind it stop waiting.
pub const MAX_STALL: Duration = Duration::from_millis(500);
/// How often a waiting request looks at how long the turn has been held.
const STALL_CHECK: Duration = Duration::from_millis(100);
/// The longest wait in all where the upstream sets no connect timeout.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Phase 4, once the peer is chosen: waits (bounded) for this attempt's turn at its target; a
/// wait is counted in `portico_upstream_stream_waits_total`.
pub async fn take_turn(ctx: &mut Ctx, peer: &HttpPeer, metrics: &Metrics) {
    ctx.upstream.h2_turn = None; // a retry gives back the turn of the attempt before
    let wants_h2 = peer.get_peer_options().is_some_and(|o| o.alpn.get_max_http_version() == 2);
    let Some(target) = ctx.upstream.attempt.as_ref().map(|a| a.target().clone()) else { return };
    if !wants_h2 || target.speaks_http1.load(Ordering::Relaxed) {
        return;
    }
    let turn = &target.h2_turn;
    let permit = match turn.permit.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => {
            let permit = wait_for(turn, peer.options.connection_timeout.unwrap_or(MAX_WAIT)).await;
            if let Some(pool) = &ctx.upstream.pool {
                metrics.stream_wait(&pool.spec.name, permit.is_some());
            }
            permit
        }
    };
    if permit.is_some() {
        turn.passed_at_ms.store(now_ms(), Ordering::Relaxed);
    }
    ctx.upstream.h2_turn = permit;
}

/// Waits for `turn` until one request has held it for [`MAX_STALL`] or `max_wait` has passed.
async fn wait_for(turn: &StreamTurn, max_wait: Duration) -> Option<OwnedSemaphorePermit> {
    let started = std::time::Instant::now();
    // One acquire, polled again after each check: dropping it would lose the place in the queue.
    let mut acquire = std::pin::pin!(turn.permit.clone().acquire_owned());
    loop {
        if let Ok(permit) = fast_timeout(STALL_CHECK, acquire.as_mut()).await {
            return permit.ok();
        }
        let held_ms = now_ms().saturating_sub(turn.passed_at_ms.load(Ordering::Relaxed));
        if held_ms >= MAX_STALL.as_millis() as u64 || started.elapsed() >= max_wait {
            return None;
        }
    }
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
