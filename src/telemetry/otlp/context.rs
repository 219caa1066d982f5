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
