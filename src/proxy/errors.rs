//! The catalogue of every response Portico makes itself (as Sozu's `DefaultAnswerStatus` is),
//! the one mapping from Pingora's errors to it, and the typed kinds an error is logged and
//! counted under.
//!
//! A filter refuses with its own [`Reject`]; what Portico answers on its own account is an
//! [`Answer`], turned into a `Reject` only to be written, so both reach the client the same way:
//! JSON `{"error", "message", "request_id"}` (see `respond.rs`).

use crate::canonical::{FramingError, HostError, PathError};
use http::header;
use pingora::{Error, ErrorSource, ErrorType};
use portico_filters::Reject;

/// A response Portico makes on its own account. Each variant fixes its status, its stable
/// `error` code and its message; borrowed fields fill the message in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// 308: a plain listener that only redirects to HTTPS; `location` is where to.
    HttpsRequired {
        /// The `https://` URL of the same request.
        location: &'a str,
    },
    /// 404: no route matches.
    NotFound,
    /// 405: a route matches the path but not the method; `allow` lists the methods that do.
    MethodNotAllowed {
        /// The `Allow` header's value.
        allow: &'a str,
    },
    /// 503: the route's `max_in_flight` is reached.
    RouteConcurrencyLimited,
    /// 504: the route's `timeout_ms` ran out before another attempt could start.
    RouteTimeout,
    /// 502: the chosen upstream does not exist in this config.
    UnknownUpstream {
        /// The upstream's name.
        upstream: &'a str,
    },
    /// 503: the upstream's `max_in_flight` is reached.
    UpstreamOverloaded {
        /// The upstream's name.
        upstream: &'a str,
    },
    /// 503: the upstream's circuit breaker is open.
    CircuitOpen {
        /// The upstream's name.
        upstream: &'a str,
    },
    /// 503: every target of the upstream is unhealthy.
    NoHealthyUpstream {
        /// The upstream's name.
        upstream: &'a str,
    },
    /// 413: the request body is larger than a limit.
    PayloadTooLarge,
    /// A 5xx the proxy path failed with (the status an error carried).
    UpstreamFailed(u16),
    /// A 4xx the proxy path refused with (the status an error carried).
    Refused(u16),
    /// 504: the upstream did not answer in time.
    UpstreamTimeout,
    /// 502: no connection could be made to the upstream.
    ConnectFailed,
    /// 502: the connection to the upstream failed midway.
    UpstreamConnectionFailed,
    /// 400: the request could not be read.
    UnreadableRequest,
    /// 400, 431 or 501: the request's framing is ambiguous (`Content-Length` with
    /// `Transfer-Encoding`, a `Transfer-Encoding` other than `chunked`) or its headers are over
    /// the listener's limits.
    BadFraming(FramingError),
    /// 400: no host to route on (HTTP/1.1 without `Host`), or a `Host` that is no host name.
    BadHost(HostError),
    /// 400: a path that cannot be made canonical safely (encoded `/`, `\` or NUL, above `/`).
    BadPath(PathError),
    /// 500: a failure of Portico's own.
    Internal,
}

impl Answer<'_> {
    /// The answer for an error that ended a request; `None` when the client went away, so there
    /// is no one to answer.
    pub fn from_error(e: &Error) -> Option<Answer<'static>> {
        use ErrorType::*;
        Some(match e.etype() {
            HTTPStatus(413) => Answer::PayloadTooLarge,
            HTTPStatus(code) if *code >= 500 => Answer::UpstreamFailed(*code),
            HTTPStatus(code) => Answer::Refused(*code),
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => Answer::UpstreamTimeout,
            ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | ConnectProxyFailure
            | InvalidCert | HandshakeError => Answer::ConnectFailed,
            _ => match e.esource() {
                ErrorSource::Upstream => Answer::UpstreamConnectionFailed,
                ErrorSource::Downstream => match e.etype() {
                    ReadError | WriteError | ConnectionClosed => return None,
                    _ => Answer::UnreadableRequest,
                },
                _ => Answer::Internal,
            },
        })
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Answer::HttpsRequired { .. } => 308,
            Answer::NotFound => 404,
            Answer::MethodNotAllowed { .. } => 405,
            Answer::PayloadTooLarge => 413,
            Answer::UnreadableRequest | Answer::BadHost(_) | Answer::BadPath(_) => 400,
            Answer::BadFraming(e) => e.status(),
            Answer::Internal => 500,
            Answer::UnknownUpstream { .. } | Answer::ConnectFailed | Answer::UpstreamConnectionFailed => 502,
            Answer::RouteConcurrencyLimited
            | Answer::UpstreamOverloaded { .. }
            | Answer::CircuitOpen { .. }
            | Answer::NoHealthyUpstream { .. } => 503,
            Answer::RouteTimeout | Answer::UpstreamTimeout => 504,
            Answer::UpstreamFailed(code) | Answer::Refused(code) => *code,
        }
    }

    /// The stable `error` code clients branch on (also the access log's `error`).
    pub fn code(&self) -> &'static str {
        match self {
            Answer::HttpsRequired { .. } => "https_required",
            Answer::NotFound => "not_found",
            Answer::MethodNotAllowed { .. } => "method_not_allowed",
            Answer::RouteConcurrencyLimited => "concurrency_limited",
            Answer::RouteTimeout | Answer::UpstreamTimeout => "upstream_timeout",
            Answer::UnknownUpstream { .. } | Answer::ConnectFailed | Answer::UpstreamConnectionFailed => "bad_gateway",
            Answer::UpstreamOverloaded { .. } => "upstream_overloaded",
            Answer::CircuitOpen { .. } => "circuit_open",
            Answer::NoHealthyUpstream { .. } => "no_healthy_upstream",
            Answer::PayloadTooLarge => "payload_too_large",
            Answer::UpstreamFailed(_) => "upstream_error",
            Answer::Refused(_) | Answer::UnreadableRequest => "bad_request",
            Answer::BadFraming(e) => e.as_str(),
            Answer::BadHost(e) => e.as_str(),
            Answer::BadPath(e) => e.as_str(),
            Answer::Internal => "internal_error",
        }
    }

    /// What Pingora's error carries when the answer ends a phase that can only fail (the error
    /// log's text; the client sees [`Answer::code`] and the message).
    pub fn explain(&self) -> &'static str {
        match self {
            Answer::RouteTimeout => "route timeout",
            Answer::UnknownUpstream { .. } => "unknown upstream",
            Answer::UpstreamOverloaded { .. } => "upstream concurrency limit",
            Answer::CircuitOpen { .. } => "circuit open",
            Answer::NoHealthyUpstream { .. } => "no healthy target",
            _ => self.code(),
        }
    }

    /// Whether the answer reports a failure worth an error-log line (every other answer is an
    /// expected outcome: a refusal, a limit, an upstream that is down).
    pub fn is_fault(&self) -> bool {
        matches!(self, Answer::UpstreamFailed(_) | Answer::Internal)
    }

    /// The Pingora error that ends the phase with this answer (see [`Answer::explain`]).
    pub fn error(&self) -> Box<Error> {
        Error::explain(ErrorType::HTTPStatus(self.status()), self.explain())
    }
}

impl From<Answer<'_>> for Reject {
    fn from(a: Answer<'_>) -> Reject {
        let status = a.status();
        let code = a.code();
        match a {
            Answer::HttpsRequired { location } => {
                Reject::new(status, code, format!("use {location}")).with_header(header::LOCATION, location)
            }
            Answer::NotFound => Reject::new(status, code, "no route matches this request"),
            Answer::MethodNotAllowed { allow } => {
                Reject::new(status, code, format!("method not allowed here; allowed: {allow}"))
                    .with_header(header::ALLOW, allow)
            }
            Answer::RouteConcurrencyLimited => Reject::new(status, code, "too many requests in flight on this route")
                .with_header(header::RETRY_AFTER, "1"),
            Answer::RouteTimeout => Reject::new(status, code, "the route's timeout ran out"),
            Answer::UnknownUpstream { upstream } => {
                Reject::new(status, code, format!("no upstream named \"{upstream}\""))
            }
            Answer::UpstreamOverloaded { upstream } => {
                Reject::new(status, code, format!("too many requests in flight to \"{upstream}\""))
                    .with_header(header::RETRY_AFTER, "1")
            }
            Answer::CircuitOpen { upstream } => {
                Reject::new(status, code, format!("upstream \"{upstream}\" is failing; try again shortly"))
                    .with_header(header::RETRY_AFTER, "1")
            }
            Answer::NoHealthyUpstream { upstream } => {
                Reject::new(status, code, format!("upstream \"{upstream}\" has no healthy target"))
            }
            Answer::PayloadTooLarge => Reject::new(status, code, "request body too large"),
            Answer::UpstreamFailed(_) => Reject::new(status, code, "the upstream failed"),
            Answer::Refused(_) => Reject::new(status, code, "the request was refused"),
            Answer::UpstreamTimeout => Reject::new(status, code, "the upstream did not answer in time"),
            Answer::ConnectFailed => Reject::new(status, code, "could not connect to the upstream"),
            Answer::UpstreamConnectionFailed => Reject::new(status, code, "the upstream connection failed"),
            Answer::UnreadableRequest => Reject::new(status, code, "the request could not be read"),
            Answer::BadFraming(e) => Reject::new(status, code, e.message()),
            Answer::BadHost(e) => Reject::new(status, code, e.message()),
            Answer::BadPath(e) => Reject::new(status, code, e.message()),
            Answer::Internal => Reject::new(status, code, "internal error"),
        }
    }
}

/// How an upstream exchange failed: the `kind` label of `portico_upstream_errors_total`, and
/// what retry policies (`on: [connect_error, timeout]`) decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// A connect, read, write or TLS handshake timeout.
    Timeout,
    /// The connection could not be made (refused, no route, TLS handshake failed).
    Connect,
    /// The upstream answered, with a status that counts as a failure (5xx, or one a route
    /// retries on).
    Status,
    /// Any other failure.
    Other,
}

impl UpstreamErrorKind {
    /// The kind of a Pingora error from an upstream exchange.
    pub fn of(e: &Error) -> Self {
        use ErrorType::*;
        match e.etype() {
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => UpstreamErrorKind::Timeout,
            ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure => UpstreamErrorKind::Connect,
            _ => UpstreamErrorKind::Other,
        }
    }

    /// The metric label and access-log value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Status => "status",
            UpstreamErrorKind::Other => "other",
        }
    }

    /// The attempt's `error.type` on its client span, which is also the next attempt's retry
    /// reason: the names retry policies use (`connect_error`, `timeout`), `status` for a status
    /// the route retries on, and OpenTelemetry's fallback `_OTHER` for the rest.
    pub fn error_type(self) -> &'static str {
        match self {
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Connect => "connect_error",
            UpstreamErrorKind::Status => "status",
            UpstreamErrorKind::Other => "_OTHER",
        }
    }
}

/// Pingora's error kind (`ConnectRefused`, `ReadTimedout`, `H2Error`) of an error from the
/// upstream side: what the access log adds to its `error`, and what the warning says.
pub fn upstream_cause(e: Option<&Error>) -> Option<&'static str> {
    e.filter(|e| *e.esource() == ErrorSource::Upstream).map(|e| e.etype().as_str())
}

/// Logs a failed upstream exchange at `warn`, at most once a second per process (the rest are
/// counted and the next line says how many were left out): the error log says why, while a
/// target that is down for minutes cannot flood it.
pub fn warn_upstream_failure(upstream: Option<&str>, target: Option<std::net::SocketAddr>, e: &Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    static SKIPPED: AtomicU64 = AtomicU64::new(0);
    let now = crate::upstream::window::now_ms();
    let last = LAST_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < 1000
        || LAST_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let skipped = SKIPPED.swap(0, Ordering::Relaxed);
    let target = target.map(|t| t.to_string()).unwrap_or_default();
    log::warn!(
        "upstream {} target {target}: exchange failed: {e}{}",
        upstream.unwrap_or("-"),
        if skipped > 0 { format!(" ({skipped} more failures since the last line, not logged)") } else { String::new() }
    );
}

/// Why a request did not end well, as the access log's `error` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Portico or a filter answered with this `error` code: an expected outcome.
    Answered(&'static str),
    /// Portico answered a failure worth an error-log line ([`Answer::is_fault`]) with this code.
    Failed(&'static str),
    /// The upstream exchange failed after the response had begun, or without an answer.
    Upstream(UpstreamErrorKind),
    /// The route's `timeout_ms` ran out while the response body was streaming.
    RouteTimeout,
    /// The client went away before it could be answered.
    ClientClosed,
}

impl ErrorKind {
    /// The access-log value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Answered(code) | ErrorKind::Failed(code) => code,
            ErrorKind::Upstream(kind) => kind.as_str(),
            ErrorKind::RouteTimeout => "route_timeout",
            ErrorKind::ClientClosed => "client_closed",
        }
    }

    /// The server span's `error.type` for a request that ended with `status`: none for an
    /// answer below 500 (a refusal is the client's doing, and the status and the refusal's
    /// event say it all), the access log's value otherwise.
    pub fn span_error(self, status: u16) -> Option<&'static str> {
        match self {
            ErrorKind::Answered(_) if status < 500 => None,
            kind => Some(kind.as_str()),
        }
    }

    /// Whether the request's end is an expected outcome, so Pingora need not log it as an error.
    pub fn is_expected(self) -> bool {
        !matches!(self, ErrorKind::Failed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_answers() {
        let answer = |etype: ErrorType, source: ErrorSource| {
            let mut e = Error::new(etype);
            e.esource = source;
            Answer::from_error(&e)
        };
        assert_eq!(answer(ErrorType::HTTPStatus(413), ErrorSource::Upstream), Some(Answer::PayloadTooLarge));
        assert_eq!(answer(ErrorType::HTTPStatus(503), ErrorSource::Upstream), Some(Answer::UpstreamFailed(503)));
        assert_eq!(answer(ErrorType::ReadTimedout, ErrorSource::Upstream), Some(Answer::UpstreamTimeout));
        assert_eq!(answer(ErrorType::ConnectRefused, ErrorSource::Upstream), Some(Answer::ConnectFailed));
        assert_eq!(answer(ErrorType::ReadError, ErrorSource::Upstream), Some(Answer::UpstreamConnectionFailed));
        assert_eq!(answer(ErrorType::ReadError, ErrorSource::Downstream), None);
        assert_eq!(answer(ErrorType::InvalidHTTPHeader, ErrorSource::Downstream), Some(Answer::UnreadableRequest));
        assert_eq!(answer(ErrorType::InternalError, ErrorSource::Unset), Some(Answer::Internal));
    }

    #[test]
    fn answers_keep_their_codes_and_headers() {
        let r = Reject::from(Answer::CircuitOpen { upstream: "users" });
        assert_eq!((r.status, r.error), (503, "circuit_open"));
        assert_eq!(r.message, "upstream \"users\" is failing; try again shortly");
        assert_eq!(r.headers.len(), 1, "Retry-After");
        let r = Reject::from(Answer::UpstreamFailed(502));
        assert_eq!((r.status, r.error), (502, "upstream_error"));
        assert!(Answer::UpstreamFailed(502).is_fault() && !Answer::NotFound.is_fault());
    }

    #[test]
    fn kinds_keep_their_labels() {
        assert_eq!(UpstreamErrorKind::of(&Error::new(ErrorType::ConnectTimedout)).as_str(), "timeout");
        assert_eq!(UpstreamErrorKind::of(&Error::new(ErrorType::ConnectRefused)).as_str(), "connect");
        assert_eq!(UpstreamErrorKind::of(&Error::new(ErrorType::InvalidCert)).as_str(), "other");
        assert_eq!(ErrorKind::RouteTimeout.as_str(), "route_timeout");
        assert!(!ErrorKind::Failed("internal_error").is_expected());
        assert!(ErrorKind::ClientClosed.is_expected());
        assert_eq!(UpstreamErrorKind::Connect.error_type(), "connect_error", "as retry policies name it");
        assert_eq!(ErrorKind::Answered("unauthorized").span_error(401), None, "a refusal is no server error");
        assert_eq!(ErrorKind::Answered("circuit_open").span_error(503), Some("circuit_open"));
    }
}
