//! Client connections: who may hold one, how long each part of a request may take, how idle
//! keep-alive connections wait, and how they end when the process drains.
//!
//! Pingora's HTTP/1 loop (`ServerApp::process_new` in pingora-core) asks the proxy to handle the
//! next request as soon as the previous one is done. That call allocates the whole request
//! future at once, sized for the deepest state of the proxy pipeline, plus a 4 KiB header
//! buffer, and both then sit there while the client thinks: about 31 KB per idle connection,
//! where nginx holds under 1 KB. [`KeepaliveApp`] runs the same loop but waits for the next
//! request's first byte before it hands the connection back to Pingora, so an idle connection
//! costs about 11-12 KiB, mostly its 4 KiB read buffer, the connection task and Tokio's I/O
//! registration (benches/RESULTS.md has the figures).
//!
//! Around that loop, per connection:
//!
//! 1. [`admission`]: `max_connections` and `max_connections_per_ip`; over a limit the connection
//!    is closed as it arrives.
//! 2. HTTP/2 by ALPN goes to Pingora's own loop untouched.
//! 3. The first request, or on an h2c listener the HTTP/2 preface, must start within
//!    `header_timeout_s`. The preface is decided on the bytes seen so far, so a request shorter
//!    than the preface (`GET / HTTP/1.0` and two line ends) is answered instead of waited on.
//! 4. Each request's header block must arrive within `header_timeout_s` of its first byte
//!    ([`io::ConnIo`]); `body_timeout_s` and `write_timeout_s` are Pingora's per-read and
//!    per-write downstream timeouts.
//! 5. Between requests the connection waits without a request's allocations, for the
//!    listener's `keepalive_timeout_s`.
//! 6. Draining (SIGTERM, or SIGQUIT after `--upgrade` handed the sockets over): no connection is
//!    closed under a client that may be sending. Each connection's next request is answered with
//!    `Connection: close` (Pingora does this once shutdown has started) and the connection
//!    closes after that response; one that stays idle closes after [`DRAIN_IDLE_TIMEOUT`].
//!    HTTP/2 connections get Pingora's GOAWAY. The process exits once every connection is
//!    closed (`server.rs`).
//!
//! What this costs a plain keep-alive request, measured on the `floor` build (one keep-alive
//! connection, a `respond` route, 30 interleaved rounds of 10,000 requests against the commit
//! before, on a shared 2-core machine at load 8): CPU 42.7 us before and 43.2 us after
//! (medians; quartiles 38.8-46.2 and 37.4-49.2, so no difference the noise can show); system
//! calls unchanged, one `recvfrom`, one `sendto` and about one `epoll_wait` per request
//! (`strace -c`, 2,000 requests); heap allocations 47.7 -> 45.7 per request (gdb breakpoints on
//! jemalloc's entry points, 1,000 requests): reading the first bytes into [`io::ConnIo`]
//! replaced Pingora's `try_peek`, whose boxed future and rewind buffer were two allocations per
//! request.

pub mod admission;
pub mod io;

use crate::config::ListenerLimits;
use admission::Admission;
use async_trait::async_trait;
use io::ConnIo;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::{HttpProxy, ProxyHttp};
use pingora::server::ShutdownWatch;
use pingora::time::fast_timeout::fast_timeout;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP/2 connection preface an h2c client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// While draining, how long an idle keep-alive connection may wait for one more request (to be
/// answered with `Connection: close`) before it is closed. Long enough for a client that is
/// between two requests to send the next, short enough not to hold the process: the exit waits
/// for it.
pub const DRAIN_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the unread rest of a request body may take to arrive after Portico has answered
/// the request (a refusal, an upstream that failed): it is read and dropped meanwhile, so that
/// the connection then ends cleanly or carries the next request. nginx waits 5 s for each
/// piece (`lingering_timeout`) and 30 s in all; a client that saw the early answer stops
/// sending, so the whole rest gets 5 s here. A client still sending after that is closed on.
pub const BODY_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A Pingora HTTP proxy app that guards and paces client connections (see the module doc).
pub struct KeepaliveApp<SV: ProxyHttp> {
    inner: Arc<HttpProxy<SV>>,
    /// How long a connection may wait for its next request; `None`: one request per connection.
    idle_timeout: Option<Duration>,
    limits: ListenerLimits,
    admission: Arc<Admission>,
    h2c: bool,
}

impl<SV: ProxyHttp> KeepaliveApp<SV> {
    /// Wraps a configured proxy (its `server_options`, such as h2c, are honoured); `admission`
    /// counts the listener's connections (the drain waits on it).
    pub fn new(
        proxy: HttpProxy<SV>,
        idle_timeout: Option<Duration>,
        limits: ListenerLimits,
        admission: Arc<Admission>,
    ) -> Self {
        let h2c = proxy.server_options.as_ref().is_some_and(|o| o.h2c);
        KeepaliveApp { inner: Arc::new(proxy), idle_timeout, limits, admission, h2c }
    }
}

/// How a new connection opens.
enum Opening {
    Http1,
    H2c,
}

#[async_trait]
impl<SV> ServerApp for KeepaliveApp<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        // 1. A place on the listener, held until the connection ends.
        let ip = stream.get_socket_digest().and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _admitted = self.admission.admit(ip).ok()?;

        // 2. HTTP/2 by ALPN: Pingora's loop as it is.
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }

        // 3. The first request, or the h2c preface, within the header timeout.
        let h2c = self.h2c && stream.get_ssl().is_none();
        let mut conn = Box::new(ConnIo::new(stream, self.limits.header_timeout));
        match fast_timeout(self.limits.header_timeout, opening(&mut conn, h2c)).await {
            Ok(Ok(Opening::Http1)) => {}
            Ok(Ok(Opening::H2c)) => {
                conn.pass_through();
                return ServerApp::process_new(&self.inner, conn, shutdown).await;
            }
            Ok(Err(_)) | Err(_) => return None,
        }

        // 4. Requests, each header bounded, until the connection is not reused.
        let mut session = ServerSession::new_http1(conn);
        let keepalive = self.idle_timeout.filter(|_| !*shutdown.borrow());
        session.set_keepalive(keepalive.map(|t| t.as_secs().max(1)));
        let limit = self.inner.server_options.as_ref().and_then(|o| o.keepalive_request_limit);
        session.set_keepalive_reuses_remaining(limit);
        // One wait for the drain per connection, polled while idle: it registers once, not
        // once per request.
        let mut watch = shutdown.clone();
        let mut drain = std::pin::pin!(drain_begins(&mut watch));
        let mut drain_started = false;
        loop {
            self.downstream_timeouts(&mut session);
            let (stream, settings) = self.inner.process_new_http(session, shutdown).await?.consume();
            let Ok(mut conn) = stream.into_any().downcast::<ConnIo>() else {
                log::debug!("a reused stream is not the connection it started as; closing it");
                return None;
            };
            // 5. Idle until the next request's first byte.
            if !self.next_request(&mut conn, drain.as_mut(), &mut drain_started, shutdown).await {
                return None;
            }
            conn.start_request();
            session = ServerSession::new_http1(conn);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
        }
    }

    async fn cleanup(&self) {
        // Pingora calls this as soon as the listener stops accepting. Its proxy would then drop
        // every request still reading its header (`http_cleanup`), which on this loop means a
        // client that is sending: instead each connection ends itself (module doc, step 6).
    }
}

impl<SV: ProxyHttp> KeepaliveApp<SV> {
    /// Pingora's own downstream timeouts for one HTTP/1 request: `body_timeout_s` per body read,
    /// `write_timeout_s` per response write.
    fn downstream_timeouts(&self, session: &mut ServerSession) {
        downstream_timeouts(session, &self.limits);
    }

    /// Waits for the first byte of the next request: `false` when the client closes or the
    /// connection stays idle for the keep-alive timeout, or, once draining has started, for
    /// [`DRAIN_IDLE_TIMEOUT`].
    ///
    /// The idle timer is Pingora's shared 10 ms timer wheel (what its own keep-alive reads use):
    /// a Tokio timer per request woke the runtime's driver with a syscall every time.
    ///
    /// `drain` is the connection's wait for shutdown ([`drain_begins`]), polled only until it
    /// has completed (`drain_started`).
    async fn next_request<F: Future<Output = ()>>(
        &self,
        conn: &mut ConnIo,
        drain: Pin<&mut F>,
        drain_started: &mut bool,
        shutdown: &ShutdownWatch,
    ) -> bool {
        // A connection is reused only with keep-alive on, so `idle_timeout` is set here.
        let idle = self.idle_timeout.unwrap_or(self.limits.header_timeout);
        if !*drain_started && !draining(shutdown) {
            tokio::select! {
                biased;
                read = fast_timeout(idle, conn.read_ahead()) => return matches!(read, Ok(Ok(n)) if n > 0),
                _ = drain => {}
            }
        }
        *drain_started = true;
        let read = fast_timeout(idle.min(DRAIN_IDLE_TIMEOUT), conn.read_ahead()).await;
        matches!(read, Ok(Ok(n)) if n > 0)
    }
}

/// Sets a downstream session's `body_timeout_s` (per body read) and `write_timeout_s` (per
/// response write) from its listener's limits.
///
/// [`KeepaliveApp`] does this for every HTTP/1 request. HTTP/2 streams are made by Pingora's own
/// loop, so the proxy calls this in `early_request_filter` for them (for HTTP/1 it sets the
/// same values again); Pingora has no body read timeout for HTTP/2 streams, so there only the
/// write timeout applies.
pub fn downstream_timeouts(session: &mut ServerSession, limits: &ListenerLimits) {
    session.set_read_timeout(Some(limits.body_timeout));
    session.set_write_timeout(Some(limits.write_timeout));
    session.set_total_drain_timeout(Some(BODY_DRAIN_TIMEOUT));
}

/// Reads the first bytes of a new connection: HTTP/2 when they are the h2c preface (on an h2c
/// listener), HTTP/1 as soon as they differ from it (or at once elsewhere); an error when the
/// client closes first.
async fn opening(conn: &mut ConnIo, h2c: bool) -> std::io::Result<Opening> {
    loop {
        if conn.read_ahead().await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let seen = conn.ahead();
        if !h2c || !H2_PREFACE.starts_with(seen) {
            return Ok(Opening::Http1);
        }
        if seen.len() == H2_PREFACE.len() {
            return Ok(Opening::H2c);
        }
    }
}

/// Whether shutdown has started: a version check without a lock, then the value.
fn draining(shutdown: &ShutdownWatch) -> bool {
    shutdown.has_changed().unwrap_or(true) && *shutdown.borrow()
}

/// Resolves when shutdown starts (or the server is gone).
async fn drain_begins(watch: &mut ShutdownWatch) {
    while watch.changed().await.is_ok() {
        if *watch.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
