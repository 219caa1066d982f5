//! Traffic mirroring: a copy of a request (with its body, up to a size bound) goes to a shadow
//! upstream after the client's response is done, fire and forget: it never delays or changes
//! what the client gets. Like Envoy, the copy's `Host` gets a `-shadow` suffix so the shadow
//! service can tell copies apart.
//!
//! The copy is the request as Portico sent it upstream (canonical path, rewrites, forged
//! identity headers stripped, credentials hidden where the filters hide them), never the raw
//! client request. One count of copies in flight covers the whole process; a route's copy is
//! dropped and counted in `portico_mirror_dropped_total` when its `mirror.max_in_flight`
//! (default 64) are already under way, so a slow shadow service cannot pile up tasks and memory.

use crate::config::MirrorSpec;
use crate::state::Runtime;
use crate::upstream::build_peer;
use crate::upstream::window::now_ms;
use bytes::Bytes;
use pingora::http::RequestHeader;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Copies in flight now.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// `portico_mirror_dropped_total`: copies not sent because their route's `max_in_flight` were
/// in flight.
/// Registered with the process's metrics in `Shared::new`.
pub fn dropped_counter() -> &'static prometheus::IntCounter {
    static DROPPED: OnceLock<prometheus::IntCounter> = OnceLock::new();
    DROPPED.get_or_init(|| {
        prometheus::IntCounter::new(
            "portico_mirror_dropped_total",
            "Mirrored copies dropped because too many were in flight",
        )
        .expect("the counter's name and help are valid")
    })
}

/// A copy's place among those in flight, given back on drop.
struct InFlight;

impl InFlight {
    /// A place, unless `max` copies are in flight already.
    fn take(max: usize) -> Option<InFlight> {
        IN_FLIGHT
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| InFlight)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Adds a request body chunk to the copy kept for the mirror (`buf`, when the route mirrors),
/// or gives the copy up once the body outgrows `max_body_bytes`.
pub fn keep_body(buf: &mut Option<Vec<u8>>, chunk: Option<&Bytes>, spec: Option<&MirrorSpec>) {
    if let (Some(kept), Some(chunk), Some(spec)) = (buf.as_mut(), chunk, spec) {
        if kept.len() + chunk.len() <= spec.max_body_bytes {
            kept.extend_from_slice(chunk);
        } else {
            *buf = None;
        }
    }
}

/// Sends a copy of `req` (the request header as it went upstream) with `body` to the mirror's
/// upstream, for `percent` of requests, unless the route's `max_in_flight` copies are under way.
pub fn send(runtime: &Arc<Runtime>, spec: &MirrorSpec, req: &RequestHeader, body: Vec<u8>) {
    if spec.percent < 100.0 && fastrand::f64() * 100.0 >= spec.percent {
        return;
    }
    let Some(slot) = InFlight::take(spec.max_in_flight) else {
        dropped_counter().inc();
        return;
    };
    let Some(pool) = runtime.pools.get(&spec.upstream).cloned() else { return };
    let Some(backend) = pool.select(b"", &[], now_ms()) else { return };
    let peer = build_peer(&pool, &backend);
    let connector = crate::upstream::side_connector(runtime.config.server.upstream_keepalive_pool_size);
    let mut copy = req.clone();
    let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
    let _ = copy.insert_header(http::header::HOST, format!("{host}-shadow"));
    copy.remove_header(&http::header::TRANSFER_ENCODING);
    let _ = copy.insert_header(http::header::CONTENT_LENGTH, body.len());
    tokio::spawn(async move {
        let _slot = slot;
        let exchange = async {
            let (mut session, _) = connector.get_http_session(&*peer).await?;
            session.write_request_header(Box::new(copy)).await?;
            if !body.is_empty() {
                session.write_request_body(Bytes::from(body), true).await?;
            }
            session.finish_request_body().await?;
            session.read_response_header().await?;
            while session.read_response_body().await?.is_some() {}
            connector.release_http_session(session, &*peer, Some(Duration::from_secs(60))).await;
            Ok::<_, Box<pingora::Error>>(())
        };
        match tokio::time::timeout(Duration::from_secs(30), exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("mirror to {} failed: {e}", pool.spec.name),
            Err(_) => log::debug!("mirror to {} timed out", pool.spec.name),
        }
    });
}
