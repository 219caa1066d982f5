//! The request to explain, as an operator types it: a method, a URL and `Name: value` headers.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// A request to explain, parsed from what an operator typed.
#[derive(Debug)]
pub struct Probe {
    /// Method.
    pub method: Method,
    /// `http://host:port/path?query`, or just `/path?query`.
    pub uri: Uri,
    /// Headers given with the request (`Host` among them overrides the URL's host).
    pub headers: HeaderMap,
    /// The listener to explain for; by default the one on the URL's port.
    pub listener: Option<String>,
}

impl Probe {
    /// Parses a method, a URL and `Name: value` header lines.
    pub fn parse(method: &str, url: &str, headers: &[String], listener: Option<&str>) -> Result<Probe, String> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("\"{method}\" is not an HTTP method"))?;
        let uri: Uri = url.parse().map_err(|e| format!("\"{url}\" is not a URL: {e}"))?;
        if uri.scheme().is_none() && !url.starts_with('/') {
            return Err(format!("\"{url}\" is not a URL: write http://host/path, or /path"));
        }
        let mut map = HeaderMap::new();
        for h in headers {
            let (name, value) = h.split_once(':').ok_or_else(|| format!("\"{h}\" is not a `Name: value` header"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("\"{}\" is not a header name", name.trim()))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("the value of {name} is not a header value"))?;
            map.append(name, value);
        }
        Ok(Probe { method, uri, headers: map, listener: listener.map(str::to_string) })
    }

    /// The host routing sees: the `Host` header, else the URL's, without a port.
    pub fn host(&self) -> String {
        let host = self.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| self.uri.host());
        strip_port(host.unwrap_or("")).to_string()
    }

    /// A cookie's value, from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
            v.split(';').find_map(|pair| {
                let (k, val) = pair.trim().split_once('=')?;
                (k == name).then(|| val.to_string())
            })
        })
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}
