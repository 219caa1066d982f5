//! `tracing:`: where spans go (OTLP/HTTP), which requests are recorded, and under what name.
//!
//! ```yaml
//! tracing: {otlp_endpoint: "http://127.0.0.1:4318", sample_ratio: 0.1, service_name: portico}
//! ```
//!
//! Every key has a default, so `tracing: {}` exports every request to a collector on this host:
//! - `otlp_endpoint`: `http://127.0.0.1:4318`, OpenTelemetry's default for OTLP/HTTP. The base
//!   URL: spans are POSTed to `{otlp_endpoint}/v1/traces`, as the OTLP exporter spec says for
//!   `OTEL_EXPORTER_OTLP_ENDPOINT`. Only `http://`: a collector beside Portico forwards over TLS.
//! - `sample_ratio`: `1.0`, OpenTelemetry's default (`parentbased_always_on`). The share of
//!   requests that start a trace here which are recorded; a request with a `traceparent`
//!   follows its caller's sampled flag whatever the ratio. Lower it on busy gateways (0.01).
//! - `service_name`: `portico`, the `service.name` resource attribute.
//!
//! Without a `tracing:` section no span is recorded; the W3C trace context is still continued
//! and passed upstream as before.

use super::Errors;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// The `tracing:` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFile {
    otlp_endpoint: Option<String>,
    sample_ratio: Option<f64>,
    service_name: Option<String>,
}

/// The checked tracing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// The collector.
    pub endpoint: OtlpEndpoint,
    /// The share (0..=1) of new traces recorded.
    pub sample_ratio: f64,
    /// `service.name` on every span.
    pub service_name: Arc<str>,
}

/// An `http://` OTLP/HTTP base URL, split for the exporter's own HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpEndpoint {
    /// Host name or IP address (IPv6 without brackets), resolved at each connect.
    pub host: String,
    /// TCP port (80 when the URL has none).
    pub port: u16,
    /// The `Host` header: the URL's authority as written.
    pub authority: String,
    /// The request path: the URL's path, without a trailing `/`, plus `/v1/traces`.
    pub traces_path: String,
}

impl OtlpEndpoint {
    /// Parses a base URL such as `http://127.0.0.1:4318`, `http://collector:4318/otlp` or
    /// `http://[::1]:4318`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(if url.starts_with("https://") {
                "only http:// is supported; let a collector beside Portico forward over TLS".into()
            } else {
                format!("\"{url}\" is not an http:// URL")
            });
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if path.contains(['?', '#']) {
            return Err(format!("\"{url}\": a query or fragment has no place in an OTLP endpoint"));
        }
        let bracketed = authority.starts_with('[');
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or_else(|| format!("\"{url}\": unclosed [ in the host"))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() || host.contains(['@', ' ']) || (!bracketed && host.contains(':')) {
            return Err(format!("\"{url}\" has no usable host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("\"{url}\": bad port"))?,
        };
        Ok(OtlpEndpoint {
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            traces_path: format!("{}/v1/traces", path.trim_end_matches('/')),
        })
    }
}

impl fmt::Display for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.traces_path)
    }
}

/// Checks the section; `None` when it is absent or has errors (recorded in `errors`).
pub(super) fn compile(file: Option<TracingFile>, errors: &mut Errors<'_>) -> Option<TracingSettings> {
    let file = file?;
    let endpoint = match OtlpEndpoint::parse(file.otlp_endpoint.as_deref().unwrap_or("http://127.0.0.1:4318")) {
        Ok(e) => Some(e),
        Err(message) => {
            errors.at("tracing.otlp_endpoint", message);
            None
        }
    };
    let sample_ratio = file.sample_ratio.unwrap_or(1.0);
    let ratio_ok = (0.0..=1.0).contains(&sample_ratio);
    if !ratio_ok {
        errors.at("tracing.sample_ratio", format!("{sample_ratio} is not between 0 and 1"));
    }
    let service_name = file.service_name.unwrap_or_else(|| "portico".into());
    let name_ok = !service_name.trim().is_empty();
    if !name_ok {
        errors.at("tracing.service_name", "must not be empty");
    }
    match endpoint {
        Some(endpoint) if ratio_ok && name_ok => {
            Some(TracingSettings { endpoint, sample_ratio, service_name: service_name.into() })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_into_host_port_and_traces_path() {
        let e = OtlpEndpoint::parse("http://127.0.0.1:4318").expect("valid");
        assert_eq!((e.host.as_str(), e.port, e.traces_path.as_str()), ("127.0.0.1", 4318, "/v1/traces"));
        let e = OtlpEndpoint::parse("http://collector/otlp/").expect("valid");
        assert_eq!((e.host.as_str(), e.port, e.traces_path.as_str()), ("collector", 80, "/otlp/v1/traces"));
        assert_eq!(e.authority, "collector");
        let e = OtlpEndpoint::parse("http://[::1]:4318").expect("valid");
        assert_eq!((e.host.as_str(), e.port, e.authority.as_str()), ("::1", 4318, "[::1]:4318"));
        assert_eq!(e.to_string(), "http://[::1]:4318/v1/traces");
    }

    #[test]
    fn unusable_endpoints_are_refused_with_a_reason() {
        for (url, why) in [
            ("https://c:4318", "only http://"),
            ("c:4318", "not an http:// URL"),
            ("http://:4318", "no usable host"),
            ("http://c:0", "bad port"),
            ("http://c:99999", "bad port"),
            ("http://c:4318/?x=1", "query"),
            ("http://[::1:4318", "unclosed"),
        ] {
            let err = OtlpEndpoint::parse(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    const BASE: &str = "listeners: [{name: web, listen: \"127.0.0.1:18080\"}]\n\
                        routes: [{name: r, respond: {status: 200, body: ok}}]\n";

    #[test]
    fn the_section_is_optional_and_every_key_has_a_default() {
        let path = std::path::Path::new("t.yaml");
        let none = crate::config::load_str(BASE, path).expect("valid");
        assert_eq!(none.tracing, None);
        let all = crate::config::load_str(&format!("{BASE}tracing: {{}}\n"), path).expect("valid");
        let t = all.tracing.expect("tracing: {} turns tracing on");
        assert_eq!(t.endpoint, OtlpEndpoint::parse("http://127.0.0.1:4318").expect("valid"));
        assert_eq!((t.sample_ratio, &*t.service_name), (1.0, "portico"));
        let set = format!("{BASE}tracing: {{otlp_endpoint: \"http://c:4318\", sample_ratio: 0.1, service_name: gw}}\n");
        let t = crate::config::load_str(&set, path).expect("valid").tracing.expect("on");
        assert_eq!((t.endpoint.host.as_str(), t.sample_ratio, &*t.service_name), ("c", 0.1, "gw"));
    }

    #[test]
    fn every_bad_key_is_reported_at_its_position() {
        let yaml =
            format!("{BASE}tracing:\n  otlp_endpoint: \"https://c\"\n  sample_ratio: 1.5\n  service_name: \"\"\n");
        let errors = crate::config::load_str(&yaml, std::path::Path::new("t.yaml")).expect_err("invalid");
        let found: Vec<_> = errors.0.iter().map(|e| (e.path.as_str(), e.position.map(|p| p.0))).collect();
        assert_eq!(
            found,
            [("tracing.otlp_endpoint", Some(4)), ("tracing.sample_ratio", Some(5)), ("tracing.service_name", Some(6))]
        );
        let typo = format!("{BASE}tracing: {{sample_rate: 0.1}}\n");
        let errors = crate::config::load_str(&typo, std::path::Path::new("t.yaml")).expect_err("unknown key");
        assert!(errors.to_string().contains("sample_rate"), "{errors}");
    }
}
