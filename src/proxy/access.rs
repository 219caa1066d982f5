//! The access-log line of a finished request, with the values of secret query parameters
//! (those a filter reads credentials from) redacted.

use super::errors::{ErrorKind, UpstreamErrorKind};
use super::Ctx;
use crate::telemetry::{self, AccessLine, AccessLog};
use pingora::proxy::Session;
use pingora::Error;
use portico_filters::percent_decode;
use std::borrow::Cow;
use std::time::Duration;

/// Writes the line for a request that ended with `status` (0: none sent) after `elapsed`.
pub fn write(log: &AccessLog, session: &Session, e: Option<&Error>, ctx: &Ctx, status: u16, elapsed: Duration) {
    let req = session.req_header();
    let client = match session.client_addr().and_then(|a| a.as_inet()) {
        Some(inet) => telemetry::socket_addr_text(inet),
        None => session.client_addr().map(|a| a.to_string()).unwrap_or_default(),
    };
    let target = ctx.target().map(|a| telemetry::socket_addr_text(&a));
    let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host());
    let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let chains = ctx.chains();
    let path = redact_query(path, chains.iter().flat_map(|c| c.secret_query_params()));
    let error = ctx.outcome.error.or_else(|| e.map(|e| ErrorKind::Upstream(UpstreamErrorKind::of(e))));
    // A failed upstream exchange also names Pingora's kind: `bad_gateway: ConnectRefused`.
    let error = match (error, super::errors::upstream_cause(e)) {
        (Some(kind), Some(cause)) => Some(Cow::Owned(format!("{}: {cause}", kind.as_str()))),
        (kind, _) => kind.map(|k| Cow::Borrowed(k.as_str())),
    };
    let time = telemetry::now_rfc3339();
    log.write(&AccessLine {
        time: &time,
        request_id: &ctx.filter.request_id,
        trace_id: ctx.request.span.as_ref().map_or("", |s| s.trace_id_hex()),
        client: &client,
        listener: &ctx.filter.listener,
        method: req.method.as_str(),
        host: host.unwrap_or(""),
        path: &path,
        route: &ctx.filter.route,
        consumer: ctx.filter.caller(),
        upstream: ctx.upstream.pool.as_ref().map(|p| &*p.spec.name),
        upstream_target: target.as_deref(),
        status,
        bytes: session.as_downstream().body_bytes_sent(),
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        upstream_duration_ms: ctx.outcome.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
        error: error.as_deref(),
    });
}

/// The path with the values of secret query parameters replaced by `[redacted]`. Names are
/// compared percent-decoded, as the filters read them: `access%5Ftoken=` is the same parameter
/// as `access_token=` to a filter, so it is to the log too.
fn redact_query<'a, 's>(path: &'a str, secrets: impl Iterator<Item = &'s String>) -> Cow<'a, str> {
    let Some((base, query)) = path.split_once('?') else { return path.into() };
    let secrets: Vec<&String> = secrets.collect();
    let is_secret = |pair: &str| {
        let name = percent_decode(pair.split('=').next().unwrap_or(""));
        secrets.iter().any(|s| *name == ***s)
    };
    if secrets.is_empty() || !query.split('&').any(is_secret) {
        return path.into();
    }
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret(pair) => format!("{k}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", redacted.join("&")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_redacted() {
        let secrets = ["access_token".to_string()];
        assert_eq!(redact_query("/a?x=1&access_token=abc", secrets.iter()), "/a?x=1&access_token=[redacted]");
        assert_eq!(redact_query("/a?x=1", secrets.iter()), "/a?x=1");
        assert_eq!(redact_query("/a?access_token_x=1", secrets.iter()), "/a?access_token_x=1");
    }

    #[test]
    fn percent_encoded_secret_names_are_redacted_too() {
        let secrets = ["access_token".to_string()];
        assert_eq!(redact_query("/a?access%5Ftoken=abc&x=1", secrets.iter()), "/a?access%5Ftoken=[redacted]&x=1");
        assert_eq!(redact_query("/a?%61ccess_token=abc", secrets.iter()), "/a?%61ccess_token=[redacted]");
        assert_eq!(redact_query("/a?access%5ftoken", secrets.iter()), "/a?access%5ftoken");
        assert_eq!(redact_query("/a?access%5Gtoken=abc", secrets.iter()), "/a?access%5Gtoken=abc");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a+b%20c"), "a+b c");
    }
}
