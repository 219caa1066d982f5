//! Request ids and W3C trace context (`traceparent`), both made without allocating more than
//! the one string or header value they produce.

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, mut v: u128, digits: usize) {
    let mut buf = [0u8; 32];
    for i in (0..digits).rev() {
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or(""));
}

/// A new random request id (UUID v4 text form).
pub fn new_request_id() -> String {
    let v = (fastrand::u128(..) & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut s = String::with_capacity(36);
    push_hex(&mut s, v >> 96, 8);
    s.push('-');
    push_hex(&mut s, (v >> 80) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, (v >> 64) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, (v >> 48) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, v & 0xffff_ffff_ffff, 12);
    s
}

/// Whether a client-sent request id is safe to keep and log.
pub fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 128 && v.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// The W3C trace context of one request as sent upstream: the `traceparent` header value,
/// built once (one allocation) and cloned cheaply into the upstream request.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    traceparent: Option<http::HeaderValue>,
}

impl TraceContext {
    /// Continues the trace in `incoming` (a `traceparent` value) when it is valid, or starts one.
    pub fn continue_or_start(incoming: Option<&[u8]>) -> Self {
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        match incoming.and_then(parse_traceparent) {
            Some((trace, flags)) => {
                buf[3..35].copy_from_slice(trace.as_bytes());
                buf[53..55].copy_from_slice(flags.as_bytes());
            }
            None => {
                write_hex(&mut buf[3..35], fastrand::u128(1..));
                buf[53..55].copy_from_slice(b"01");
            }
        }
        buf[35] = b'-';
        write_hex(&mut buf[36..52], u128::from(fastrand::u64(1..)));
        buf[52] = b'-';
        TraceContext { traceparent: http::HeaderValue::from_bytes(&buf).ok() }
    }

    /// The 32-hex-digit trace id, or "" before the request started.
    pub fn trace_id(&self) -> &str {
        self.traceparent.as_ref().and_then(|v| v.to_str().ok()).and_then(|s| s.get(3..35)).unwrap_or("")
    }

    /// The `traceparent` to send upstream.
    pub fn traceparent(&self) -> Option<&http::HeaderValue> {
        self.traceparent.as_ref()
    }
}

/// Fills `out` with the low hex digits of `v`.
fn write_hex(out: &mut [u8], mut v: u128) {
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// `(trace id, flags)` of a valid version-00 `traceparent`.
fn parse_traceparent(v: &[u8]) -> Option<(&str, &str)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let mut parts = s.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    ok.then_some((trace, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_continued_with_a_new_span() {
        let incoming = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::continue_or_start(Some(incoming));
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let tp = t.traceparent().and_then(|v| v.to_str().ok()).expect("traceparent");
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!tp.contains("00f067aa0ba902b7"));
        assert!(tp.ends_with("-01"));
    }

    #[test]
    fn invalid_traceparent_starts_a_new_trace() {
        for bad in [&b"garbage"[..], b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            let t = TraceContext::continue_or_start(Some(bad));
            assert_eq!(t.trace_id().len(), 32);
            assert_ne!(t.trace_id(), "00000000000000000000000000000000");
            assert_eq!(t.traceparent().map(|v| v.len()), Some(55));
        }
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(valid_request_id(id.as_bytes()));
        assert!(!valid_request_id(b"has space"));
    }
}
