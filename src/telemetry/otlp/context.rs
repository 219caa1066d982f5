//! W3C trace context (`traceparent`, `tracestate`) as integers, and the parent-based sampler.

use http::HeaderValue;
use std::sync::Arc;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The `sampled` bit of the W3C trace flags.
pub const SAMPLED: u8 = 0x01;

/// A valid incoming `traceparent`: the caller's trace, its span (our parent) and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// The trace id; never zero.
    pub trace_id: u128,
    /// The caller's span id; never zero.
    pub span_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl Parent {
    /// Parses a `traceparent` value as W3C Trace Context level 1 reads it: version 00 is
    /// exactly `00-<32 hex>-<16 hex>-<2 hex>`; a later version may append `-...` fields, which
    /// are ignored; version `ff`, upper-case hex and all-zero ids are invalid.
    pub fn parse(v: &[u8]) -> Option<Parent> {
        let v = v.trim_ascii();
        if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let version = hex_value(&v[0..2])? as u8;
        if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
            return None;
        }
        let trace_id = hex_value(&v[3..35])?;
        let span_id = hex_value(&v[36..52])? as u64;
        let flags = hex_value(&v[53..55])? as u8;
        (trace_id != 0 && span_id != 0).then_some(Parent { trace_id, span_id, flags })
    }
}

/// Lower-case hex digits to a number (at most 32 of them).
fn hex_value(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, &d| {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u128::from(n))
    })
}

/// Fills `out` with the low hex digits of `v`.
pub fn write_hex(out: &mut [u8], mut v: u128) {
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// The `traceparent` value `00-<trace>-<span>-<flags>`.
pub fn traceparent(trace_id: u128, span_id: u64, flags: u8) -> HeaderValue {
    let mut buf = [0u8; 55];
    buf[..3].copy_from_slice(b"00-");
    write_hex(&mut buf[3..35], trace_id);
    buf[35] = b'-';
    write_hex(&mut buf[36..52], u128::from(span_id));
    buf[52] = b'-';
    write_hex(&mut buf[53..55], u128::from(flags));
    HeaderValue::from_bytes(&buf).expect("hex digits and dashes are a valid header value")
}

/// An incoming `tracestate` worth keeping on the span: at most 512 bytes of visible ASCII, the
/// limit W3C sets for what a vendor must propagate. Anything else is left off the span (it still
/// travels upstream unchanged with the other request headers).
pub fn trace_state(v: Option<&[u8]>) -> Option<Arc<str>> {
    let v = v?.trim_ascii();
    let ok = !v.is_empty() && v.len() <= 512 && v.iter().all(|b| (0x20..0x7f).contains(b));
    ok.then(|| String::from_utf8_lossy(v).into())
}

/// Which requests are recorded: parent-based over trace-id ratio, as OpenTelemetry's
/// `ParentBased(TraceIdRatioBased(ratio))`.
///
/// A request that comes with a valid `traceparent` follows its caller: recorded when the sampled
/// flag is set, never otherwise, so a trace is whole or absent across services. A request that
/// starts a trace is recorded when the low 63 bits of its trace id fall under `ratio * 2^63`:
/// the same test as OpenTelemetry's, so every service with the same ratio agrees on a trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    upper_bound: u64,
}

impl Sampler {
    /// A sampler recording `ratio` (clamped to 0..=1) of new traces.
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() { 0.0 } else { ratio.clamp(0.0, 1.0) };
        Sampler { upper_bound: (ratio * (1u64 << 63) as f64) as u64 }
    }

    /// Whether a new trace with this id is recorded.
    pub fn by_ratio(&self, trace_id: u128) -> bool {
        ((trace_id as u64) >> 1) < self.upper_bound
    }

    /// Whether a request is recorded, given its caller's context (if any) and its trace id.
    pub fn decide(&self, parent: Option<&Parent>, trace_id: u128) -> bool {
        match parent {
            Some(p) => p.flags & SAMPLED != 0,
            None => self.by_ratio(trace_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parses_as_w3c_reads_it() {
        let p = Parent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
        assert_eq!(p, Parent { trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736, span_id: 0x00f067aa0ba902b7, flags: 1 });
        let future =
            Parent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-ever").expect("valid");
        assert_eq!(future.flags, 9, "a later version's extra fields are ignored");
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"[..],
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            b"garbage",
        ] {
            assert_eq!(Parent::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn traceparent_is_written_back_in_lower_case_hex() {
        let v = traceparent(0x4bf92f3577b34da6a3ce929d0e0e4736, 0xb7, 1);
        assert_eq!(v, "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000b7-01");
        assert_eq!(Parent::parse(v.as_bytes()).map(|p| p.span_id), Some(0xb7));
    }

    #[test]
    fn tracestate_is_kept_only_when_printable_and_short() {
        assert_eq!(trace_state(Some(b" a=1,b=2 ")).as_deref(), Some("a=1,b=2"));
        assert_eq!(trace_state(Some(&[b'a'; 513])), None);
        assert_eq!(trace_state(Some(b"a=\x01")), None);
        assert_eq!(trace_state(None), None);
    }

    #[test]
    fn the_ratio_is_decided_by_the_trace_id_as_opentelemetry_does() {
        // TraceIdRatioBased: the low 8 bytes, shifted right once, under ratio * 2^63.
        let half = Sampler::new(0.5);
        assert!(half.by_ratio(0x7fff_ffff_ffff_ffff));
        assert!(!half.by_ratio(0x8000_0000_0000_0000));
        assert!(!half.by_ratio(0xffff_ffff_ffff_ffff_8000_0000_0000_0000), "the high half does not count");
        assert!(Sampler::new(1.0).by_ratio(u128::MAX), "1.0 records everything");
        assert!(!Sampler::new(0.0).by_ratio(1), "0.0 records nothing new");
        assert_eq!(Sampler::new(f64::NAN), Sampler::new(0.0));
        assert_eq!(Sampler::new(7.0), Sampler::new(1.0));

        let tenth = Sampler::new(0.1);
        let mut rng = fastrand::Rng::with_seed(7);
        let ids: Vec<u128> = (0..100_000).map(|_| rng.u128(1..)).collect();
        let kept = ids.iter().filter(|id| tenth.by_ratio(**id)).count();
        assert!((9_000..11_000).contains(&kept), "{kept} of 100000 at 0.1");
        assert!(ids.iter().all(|id| tenth.by_ratio(*id) == tenth.by_ratio(*id)), "deterministic");
    }

    #[test]
    fn a_caller_decides_for_its_trace() {
        let parent = |flags| Parent { trace_id: 1, span_id: 1, flags };
        assert!(Sampler::new(0.0).decide(Some(&parent(0x01)), 1));
        assert!(Sampler::new(0.0).decide(Some(&parent(0x03)), 1));
        assert!(!Sampler::new(1.0).decide(Some(&parent(0x00)), 1));
        assert!(Sampler::new(1.0).decide(None, 1));
    }
}
