//! Traffic mirroring: a copy of a request (with its body, up to a size bound) goes to a shadow
//! upstream after the client's response is done, fire and forget: it never delays or changes
//! what the client gets. Like Envoy, the copy's `Host` gets a `-shadow` suffix so the shadow
//! service can tell copies apart.

use crate::config::MirrorSpec;
use crate::state::Runtime;
use crate::upstream::build_peer;
use crate::upstream::window::now_ms;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One connector (with its connection pool) for every mirrored request of the process.
fn connector() -> &'static Connector {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    CONNECTOR.get_or_init(|| Connector::new(None))
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

/// Sends a copy of `req` with `body` to the mirror's upstream, for `percent` of requests.
pub fn send(runtime: &Arc<Runtime>, spec: &MirrorSpec, req: &RequestHeader, body: Vec<u8>) {
    if spec.percent < 100.0 && fastrand::f64() * 100.0 >= spec.percent {
        return;
    }
    let Some(pool) = runtime.pools.get(&spec.upstream).cloned() else { return };
    let Some(backend) = pool.select(b"", &[], now_ms()) else { return };
    let peer = build_peer(&pool, &backend);
    let mut copy = req.clone();
    let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
    let _ = copy.insert_header(http::header::HOST, format!("{host}-shadow"));
    copy.remove_header(&http::header::TRANSFER_ENCODING);
    let _ = copy.insert_header(http::header::CONTENT_LENGTH, body.len());
    tokio::spawn(async move {
        let exchange = async {
            let (mut session, _) = connector().get_http_session(&*peer).await?;
            session.write_request_header(Box::new(copy)).await?;
            if !body.is_empty() {
                session.write_request_body(Bytes::from(body), true).await?;
            }
            session.finish_request_body().await?;
            session.read_response_header().await?;
            while session.read_response_body().await?.is_some() {}
            connector().release_http_session(session, &*peer, Some(Duration::from_secs(60))).await;
            Ok::<_, Box<pingora::Error>>(())
        };
        match tokio::time::timeout(Duration::from_secs(30), exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("mirror to {} failed: {e}", pool.spec.name),
            Err(_) => log::debug!("mirror to {} timed out", pool.spec.name),
        }
    });
}
