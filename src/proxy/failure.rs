//! Why an upstream exchange failed, said where an operator looks: one `warn` line per failed
//! attempt (at most [`LINES_PER_SECOND`] a second, the rest counted into the next line), and
//! Pingora's error kind after the access line's `error` code (`bad_gateway:ConnectRefused`).
//!
//! Pingora logs a failed request at `error` unless the proxy says it is expected, and Portico
//! does say so for an upstream that is down (it is the upstream's fault, not the proxy's); so
//! without this line the log had nothing on why clients got 502.

use super::Ctx;
use crate::upstream::window::now_ms;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource};
use portico_filters::Reject;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

/// Warn lines about failed upstream exchanges, per second, for the whole process.
pub const LINES_PER_SECOND: u64 = 10;

/// A per-second line budget without a lock: the second and the lines used in it, packed in one
/// word, and the lines suppressed since the last one written.
pub struct LineLimit {
    second_and_used: AtomicU64,
    suppressed: AtomicU64,
}

impl LineLimit {
    /// A budget of [`LINES_PER_SECOND`].
    pub const fn new() -> Self {
        LineLimit { second_and_used: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    /// Whether a line may be written at `now_ms`: `Some(lines suppressed since the last
    /// one)`, or `None` (counted as suppressed).
    pub fn admit(&self, now_ms: u64) -> Option<u64> {
        let second = now_ms / 1000;
        let mut cur = self.second_and_used.load(Ordering::Acquire);
        loop {
            let (s, used) = (cur >> 8, cur & 0xff);
            let next = if s == second { (used < LINES_PER_SECOND).then(|| cur + 1) } else { Some((second << 8) | 1) };
            let Some(next) = next else {
                self.suppressed.fetch_add(1, Ordering::AcqRel);
                return None;
            };
            match self.second_and_used.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::AcqRel)),
                Err(actual) => cur = actual,
            }
        }
    }
}

impl Default for LineLimit {
    fn default() -> Self {
        Self::new()
    }
}

static WARN_LIMIT: LineLimit = LineLimit::new();

/// Logs a failed attempt at the upstream (connect or exchange) at `warn`, rate-limited.
pub fn log_attempt(ctx: &Ctx, e: &Error) {
    let Some(suppressed) = WARN_LIMIT.admit(now_ms()) else { return };
    let upstream = ctx.upstream.pool.as_ref().map_or("-", |p| &*p.spec.name);
    let target = ctx.target().map_or_else(|| "-".to_string(), |t| t.to_string());
    let more = if suppressed > 0 { format!(" ({suppressed} similar lines suppressed)") } else { String::new() };
    log::warn!(
        "upstream {upstream} target {target} failed ({}) for route {} request {}: {e}{more}",
        e.etype().as_str(),
        ctx.filter.route,
        ctx.filter.request_id,
    );
}

/// The access line's `error`: the code, then Pingora's error kind when the request ended with
/// an error from the upstream side.
pub fn access_error<'a>(code: Option<&'a str>, e: Option<&Error>) -> Option<Cow<'a, str>> {
    let code = code?;
    match e {
        Some(e) if e.esource() == &ErrorSource::Upstream => Some(format!("{code}:{}", e.etype().as_str()).into()),
        _ => Some(code.into()),
    }
}

/// Whether the rest of a failed request's body is read before its HTTP/1 connection closes:
/// yes unless the client broke the exchange itself (bad framing, a stalled or vanished body),
/// where reading on is pointless.
///
/// Closing while the body is still arriving resets the connection under the client (the kernel
/// answers unread data with a reset): its next write fails with `EPIPE`, and the answer
/// already sent can be lost with it. nginx reads on for the same reason (`lingering_close`).
pub fn drains_body(e: &Error) -> bool {
    e.esource() != &ErrorSource::Downstream
}

/// Sends Portico's answer to a failed request. Pingora closes an HTTP/1 connection after a
/// failed exchange, so the answer says so (`Connection: close`), or the client sends its next
/// request on it; and the rest of the request body is read and dropped first
/// ([`drains_body`]), for at most [`crate::keepalive::BODY_DRAIN_TIMEOUT`] (the session's
/// total drain timeout): a client still sending after that is closed on.
pub async fn answer_then_close(session: &mut Session, ctx: &mut Ctx, reject: &Reject, e: &Error) {
    let http1 = !session.is_http2();
    if http1 {
        session.set_keepalive(None);
    }
    if let Err(write_err) = super::respond::reject(session, ctx, reject).await {
        log::debug!("could not send error response: {write_err}");
        return;
    }
    if http1 && drains_body(e) {
        if let Err(e) = session.drain_request_body().await {
            log::debug!("request body not drained before closing: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::ErrorType;

    #[test]
    fn the_budget_is_per_second_and_reports_what_it_dropped() {
        let l = LineLimit::new();
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(l.admit(5_000), Some(0));
        }
        assert_eq!(l.admit(5_100), None);
        assert_eq!(l.admit(5_999), None);
        assert_eq!(l.admit(6_000), Some(2), "the next second's first line says two were dropped");
        assert_eq!(l.admit(6_001), Some(0));
    }

    #[test]
    fn upstream_errors_add_their_kind_to_the_code() {
        let mut e = Error::new(ErrorType::ConnectRefused);
        e.esource = ErrorSource::Upstream;
        assert_eq!(access_error(Some("bad_gateway"), Some(&e)).as_deref(), Some("bad_gateway:ConnectRefused"));
        let own = Error::new(ErrorType::HTTPStatus(503));
        assert_eq!(access_error(Some("circuit_open"), Some(&own)).as_deref(), Some("circuit_open"));
        assert_eq!(access_error(None, Some(&e)), None);
    }

    #[test]
    fn the_body_is_read_on_unless_the_client_broke_it() {
        let mut refused = Error::new(ErrorType::ConnectRefused);
        refused.esource = ErrorSource::Upstream;
        assert!(drains_body(&refused));
        assert!(drains_body(&Error::new(ErrorType::HTTPStatus(413))), "Portico's own refusal");
        let mut stalled = Error::new(ErrorType::ReadTimedout);
        stalled.esource = ErrorSource::Downstream;
        assert!(!drains_body(&stalled));
        let mut framing = Error::new(ErrorType::InvalidHTTPHeader);
        framing.esource = ErrorSource::Downstream;
        assert!(!drains_body(&framing));
    }
}
