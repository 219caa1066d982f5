use super::*;
use crate::telemetry::otlp::span::{SpanKind, StatusCode};
use crate::telemetry::otlp::testing::{only, spans_of, Field};

/// The request below as Python's `opentelemetry-proto` 1.45 (protobuf 7) serializes it, field
/// for field: `ExportTraceServiceRequest(...).SerializeToString().hex()`.
const PYTHON_BYTES: &str = "0ab1020a330a150a0c736572766963652e6e616d6512050a037376630a1a0a0f736572766963652e7665727369\
6f6e12070a05302e312e3012f9010a100a07706f727469636f1205302e312e3012e4010a104bf92f3577b34da6a3ce929d0e0e4736120800f067aa0b\
a902b71a036b3d76220811223344556677882a0947455420757365727330023900002a36fe9c97174160e34036fe9c97174a1c0a13687474702e7265\
71756573742e6d6574686f6412050a034745544a120a0b7365727665722e706f7274120318903f4a120a036e6567120b18fbffffffffffffffff014a\
080a026f6b120210015a3809e8032a36fe9c9717120f706f727469636f2e726566757365641a1c0a0a6572726f722e74797065120e0a0c726174655f\
6c696d697465647a081204626f6f6d1802850101030000";

fn origin() -> Origin {
    Origin { service_name: "svc".into(), version: "0.1.0" }
}

fn sample_span() -> SpanData {
    let start = 1_700_000_000_000_000_000;
    let mut s =
        SpanData::new(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, "GET users", SpanKind::Server, start);
    s.parent_span_id = 0x1122334455667788;
    s.parent_is_remote = true;
    s.trace_state = Some("k=v".into());
    s.end_unix_nano = start + 1_500_000;
    s.set("http.request.method", "GET");
    s.set("server.port", 8080i64);
    s.set("neg", -5i64);
    s.set("ok", true);
    s.events.push(Event {
        time_unix_nano: start + 1000,
        name: "portico.refused",
        attributes: vec![("error.type", Value::Owned("rate_limited".into()))],
    });
    s.status = StatusCode::Error;
    s.status_message = Some("boom".into());
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_span_encodes_byte_for_byte_as_the_reference_library_does() {
    assert_eq!(hex(&export_request(&origin(), &[sample_span()])), PYTHON_BYTES);
}

#[test]
fn lengths_widen_past_one_and_two_varint_bytes() {
    for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
        let name = "n".repeat(len);
        let mut s = SpanData::new(1, 2, name.clone(), SpanKind::Client, 10);
        s.set("big", name.clone());
        let body = export_request(&origin(), &[s]);
        let spans = spans_of(&body);
        assert_eq!(only(&spans[0], 5), [name.as_bytes()], "name of {len} bytes");
        assert!(spans[0].contains(&(6, Field::Varint(3))), "client kind");
    }
}

#[test]
fn a_root_span_has_no_parent_and_a_local_flag() {
    let s = SpanData::new(u128::MAX, u64::MAX, "GET", SpanKind::Server, 5);
    let body = export_request(&origin(), &[s.clone(), s]);
    let spans = spans_of(&body);
    assert_eq!(spans.len(), 2);
    let span = &spans[0];
    assert_eq!(only(span, 1), [&[0xff; 16][..]]);
    assert_eq!(only(span, 2), [&[0xff; 8][..]]);
    assert!(only(span, 4).is_empty(), "no parent_span_id");
    assert!(only(span, 15).is_empty(), "no status when unset");
    assert!(span.contains(&(7, Field::Fixed64(5))) && span.contains(&(8, Field::Fixed64(5))));
    assert!(span.contains(&(16, Field::Fixed32(0x101))), "sampled, parent known to be local");
}
