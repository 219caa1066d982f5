//! WebSocket (any HTTP/1.1 upgrade the upstream accepts) as a first-class route: the tunnel
//! after the upstream's `101` is counted, timed, closed when idle or when shutdown's grace
//! period ends, and logged once at close.
//!
//! How Pingora 0.9.1 carries an upgrade (`pingora-proxy/src/proxy_h1.rs`,
//! `pingora-core/src/protocols/http/v1/server.rs`), and so where each part sits:
//!
//! ```text
//!  the upgrade request      every request phase, as any request: the route's request
//!                           filters (auth, ACL, rate limit) run before the upstream sees it,
//!                           and a refusal is an ordinary answer; no upgrade happens
//!  upstream_peer            peer(): HTTP/1.1 always (Pingora drops `Upgrade` towards an h2
//!                           upstream); the route's idle timeout as the upstream read timeout
//!  response_filter          upgraded(): a 101 opens the tunnel ([`Tunnel`]); any other
//!                           answer goes to the client unchanged and nothing is opened
//!  request_body_filter      client_bytes(): the client's bytes, as `UpgradedBody`
//!  response_body_filter     upstream_bytes(): the upstream's bytes
//!  logging                  close(): why it ended, for the access line; then dropped
//! ```
//!
//! Tunnel bytes are not an HTTP body: the filter chains' body phases (size limits, JSON
//! transforms, compression) and the route's `timeout_ms` do not apply to them.
//!
//! The idle timeout is two read timeouts. Both relay loops (client to upstream, upstream to
//! client) are `tokio::select!` loops that start a new read, with a fresh timeout, every time
//! a chunk passes either way; so reads bounded by `idle_timeout_s` on both sides close a tunnel
//! exactly when no byte has passed either way for that long.

mod frames;
mod tunnel;
mod tunnels;

pub use tunnel::Tunnel;
pub use tunnels::Tunnels;

use super::Ctx;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use std::sync::Arc;

/// Phase 4: an upgrade request's peer speaks HTTP/1.1 and, on a `websocket:` route, waits up
/// to the idle timeout for each read (the 101 included; `timeout_ms` does not bound tunnels).
pub fn peer(session: &Session, ctx: &Ctx, peer: &mut HttpPeer) {
    if !session.as_downstream().is_upgrade_req() {
        return;
    }
    peer.options.set_http_version(1, 1);
    if let Some(ws) = ctx.routing.route.as_ref().and_then(|r| r.websocket) {
        peer.options.read_timeout = Some(ws.idle_timeout);
        peer.options.write_timeout = Some(ws.idle_timeout);
    }
}

/// Phase 8: the upstream accepted the upgrade; the tunnel opens (an upstream that refuses
/// answers the client as it is).
pub fn upgraded(session: &mut Session, resp: &ResponseHeader, ctx: &mut Ctx, tunnels: &Arc<Tunnels>) {
    if resp.status != http::StatusCode::SWITCHING_PROTOCOLS
        || !session.as_downstream().is_upgrade_req()
        || ctx.outcome.tunnel.is_some()
    {
        return;
    }
    let Some(route) = ctx.routing.route.clone() else { return };
    if let Some(ws) = route.websocket {
        session.as_downstream_mut().set_read_timeout(Some(ws.idle_timeout));
    }
    let fd = session.as_downstream().stream().map(|s| s.id());
    let websocket =
        resp.headers.get(http::header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    ctx.outcome.tunnel = Some(Tunnel::open(tunnels, route.name.clone(), fd, websocket));
}

/// Phase 3: counts the client's bytes when the request is a tunnel (`true`: the caller leaves
/// them alone).
pub fn client_bytes(ctx: &mut Ctx, body: &Option<Bytes>, end: bool) -> bool {
    let Some(t) = ctx.outcome.tunnel.as_mut() else { return false };
    t.client_bytes(body.as_deref().unwrap_or_default(), end);
    true
}

/// Phase 10: counts the upstream's bytes when the request is a tunnel (`true`: the caller
/// leaves them alone).
pub fn upstream_bytes(ctx: &mut Ctx, body: &Option<Bytes>, end: bool) -> bool {
    let Some(t) = ctx.outcome.tunnel.as_mut() else { return false };
    t.upstream_bytes(body.as_deref().unwrap_or_default(), end);
    true
}

/// Whether the request is an open tunnel.
pub fn is_tunnel(ctx: &Ctx) -> bool {
    ctx.outcome.tunnel.is_some()
}

/// Phase 13: why the tunnel ended (given the error the request ended with), before the access
/// line is written.
pub fn close(ctx: &mut Ctx, e: Option<&pingora::Error>) {
    if let Some(t) = ctx.outcome.tunnel.as_mut() {
        t.finish(e);
    }
}
