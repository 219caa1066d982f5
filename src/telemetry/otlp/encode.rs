//! OTLP/HTTP's protobuf body, `ExportTraceServiceRequest`, written by hand.
//!
//! Field numbers are those of opentelemetry-proto's `collector/trace/v1/trace_service.proto`,
//! `trace/v1/trace.proto`, `common/v1/common.proto` and `resource/v1/resource.proto` (checked
//! against the descriptors of the Python `opentelemetry-proto` 1.45 package, which the
//! integration test decodes with). The wire format needs only varints, fixed64/fixed32 and
//! length-delimited fields; doing it here saves ten crates (prost, prost-derive, opentelemetry,
//! opentelemetry_sdk, opentelemetry-proto, itertools, anyhow and rand 0.9's three), about 22 s
//! of single-core debug build measured on this machine, for about 150 lines.
//!
//! A nested message is written in place after a one-byte length placeholder, which is widened
//! once its length is known: one pass, one buffer, no size pre-computation.

use super::span::{Event, SpanData, StatusCode, Value};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// `Span.flags`: the lower 8 bits are the W3C trace flags; bit 8 says bit 9 is meaningful,
/// bit 9 says the parent is remote (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`, `..._IS_REMOTE_MASK`).
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Who sends the spans: the OTLP `Resource` and `InstrumentationScope`.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `service.name`.
    pub service_name: String,
    /// `service.version` and the scope's version.
    pub version: &'static str,
}

/// Encodes one `ExportTraceServiceRequest` holding `spans`, all from `origin`.
pub fn export_request(origin: &Origin, spans: &[SpanData]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + spans.len() * 256);
    // ExportTraceServiceRequest.resource_spans = 1
    nested(&mut buf, 1, |b| {
        // ResourceSpans.resource = 1 { Resource.attributes = 1 }
        nested(b, 1, |b| {
            key_text(b, 1, "service.name", &origin.service_name);
            key_text(b, 1, "service.version", origin.version);
        });
        // ResourceSpans.scope_spans = 2
        nested(b, 2, |b| {
            // ScopeSpans.scope = 1 { name = 1, version = 2 }
            nested(b, 1, |b| {
                string(b, 1, "portico");
                string(b, 2, origin.version);
            });
            for span in spans {
                // ScopeSpans.spans = 2
                nested(b, 2, |b| encode_span(b, span));
            }
        });
    });
    buf
}

fn encode_span(b: &mut Vec<u8>, s: &SpanData) {
    bytes(b, 1, &s.trace_id.to_be_bytes());
    bytes(b, 2, &s.span_id.to_be_bytes());
    if let Some(state) = &s.trace_state {
        string(b, 3, state);
    }
    if s.parent_span_id != 0 {
        bytes(b, 4, &s.parent_span_id.to_be_bytes());
    }
    string(b, 5, &s.name);
    varint_field(b, 6, s.kind as u64);
    fixed64(b, 7, s.start_unix_nano);
    fixed64(b, 8, s.end_unix_nano);
    for (k, v) in &s.attributes {
        key_value(b, 9, k, v);
    }
    for e in &s.events {
        nested(b, 11, |b| encode_event(b, e));
    }
    if s.status != StatusCode::Unset || s.status_message.is_some() {
        // Span.status = 15 { message = 2, code = 3 }
        nested(b, 15, |b| {
            if let Some(m) = &s.status_message {
                string(b, 2, m);
            }
            if s.status != StatusCode::Unset {
                varint_field(b, 3, s.status as u64);
            }
        });
    }
    let remote = if s.parent_span_id != 0 && s.parent_is_remote { FLAG_IS_REMOTE } else { 0 };
    key(b, 16, FIXED32);
    b.extend_from_slice(&(FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | remote).to_le_bytes());
}

fn encode_event(b: &mut Vec<u8>, e: &Event) {
    fixed64(b, 1, e.time_unix_nano);
    string(b, 2, e.name);
    for (k, v) in &e.attributes {
        key_value(b, 3, k, v);
    }
}

/// A `KeyValue { key = 1, value = 2: AnyValue }` as field `field`.
fn key_value(b: &mut Vec<u8>, field: u32, k: &str, v: &Value) {
    nested(b, field, |b| {
        string(b, 1, k);
        // AnyValue { string_value = 1, bool_value = 2, int_value = 3 }
        nested(b, 2, |b| match v {
            Value::Int(i) => varint_field(b, 3, *i as u64),
            Value::Bool(x) => varint_field(b, 2, u64::from(*x)),
            text => string(b, 1, text.as_str().unwrap_or("")),
        });
    });
}

/// A `KeyValue` with a string value as field `field`.
fn key_text(b: &mut Vec<u8>, field: u32, k: &str, v: &str) {
    nested(b, field, |b| {
        string(b, 1, k);
        nested(b, 2, |b| string(b, 1, v));
    });
}

// === wire format ===

fn key(b: &mut Vec<u8>, field: u32, wire: u8) {
    varint(b, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn varint_field(b: &mut Vec<u8>, field: u32, v: u64) {
    key(b, field, VARINT);
    varint(b, v);
}

fn fixed64(b: &mut Vec<u8>, field: u32, v: u64) {
    key(b, field, FIXED64);
    b.extend_from_slice(&v.to_le_bytes());
}

fn bytes(b: &mut Vec<u8>, field: u32, v: &[u8]) {
    key(b, field, LEN);
    varint(b, v.len() as u64);
    b.extend_from_slice(v);
}

fn string(b: &mut Vec<u8>, field: u32, v: &str) {
    bytes(b, field, v.as_bytes());
}

/// Writes field `field` as a length-delimited message whose body `body` writes.
fn nested(b: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(b, field, LEN);
    let at = b.len();
    b.push(0);
    body(b);
    let len = b.len() - at - 1;
    let width = varint_len(len as u64);
    if width > 1 {
        b.splice(at + 1..at + 1, std::iter::repeat_n(0, width - 1));
    }
    let mut v = len as u64;
    for slot in &mut b[at..at + width] {
        *slot = (v as u8 & 0x7f) | if v >= 0x80 { 0x80 } else { 0 };
        v >>= 7;
    }
}

#[cfg(test)]
mod tests;
