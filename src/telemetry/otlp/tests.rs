//! The exporter against small collectors on real sockets: one that accepts, one that refuses,
//! one that hangs, and none at all.

use super::encode::Origin;
use super::export::{ExportLimits, Exporter};
use super::testing::spans_of;
use super::*;
use crate::config::tracing::OtlpEndpoint;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the test collector does with each request.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with a Content-Length body; closes after each response if `close`, without saying so.
    Ok { close: bool },
    /// This status, then closes.
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

/// One POST the collector received.
struct Received {
    path: String,
    content_type: String,
    spans: usize,
    connection: usize,
}

/// Starts a collector; returns its endpoint and the stream of what it receives.
fn collector(answer: Answer) -> (OtlpEndpoint, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (connection, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, connection, answer, tx));
        }
    });
    (OtlpEndpoint::parse(&format!("http://127.0.0.1:{port}")).expect("valid"), rx)
}

fn serve(stream: std::net::TcpStream, connection: usize, answer: Answer, tx: mpsc::Sender<Received>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let (mut length, mut content_type) = (0, String::new());
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header line");
            let Some((k, v)) = line.trim_end().split_once(':') else { break };
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().expect("length"),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let spans = spans_of(&body).len();
        tx.send(Received { path, content_type, spans, connection }).expect("test listens");
        let out = reader.get_mut();
        match answer {
            Answer::Ok { close } => {
                out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                    .expect("write");
                if close {
                    return;
                }
            }
            Answer::Status(s) => {
                let _ = write!(out, "HTTP/1.1 {s} No\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                return;
            }
            Answer::Hang => std::thread::sleep(Duration::from_secs(30)),
        }
    }
}

fn span(i: u64) -> SpanData {
    SpanData::new(u128::from(i) + 1, i + 1, "GET", SpanKind::Server, 1)
}

fn origin() -> Origin {
    Origin { service_name: "test".into(), version: "0" }
}

/// Limits that never send a partial batch by themselves, so only size and `flush` do.
fn slow_interval() -> ExportLimits {
    ExportLimits { interval: Duration::from_secs(600), timeout: Duration::from_millis(300), ..ExportLimits::default() }
}

#[test]
fn batches_go_by_size_and_on_flush_over_one_kept_alive_connection() {
    let (endpoint, rx) = collector(Answer::Ok { close: false });
    let metrics = TracingMetrics::unregistered();
    let exporter = Exporter::start(endpoint, origin(), metrics.clone(), slow_interval()).expect("start");
    for i in 0..1100 {
        exporter.submit(vec![span(i)]);
    }
    assert!(exporter.flush(Duration::from_secs(10)), "flushed");
    let got: Vec<Received> = rx.try_iter().collect();
    assert_eq!(got.iter().map(|r| r.spans).collect::<Vec<_>>(), [512, 512, 76]);
    assert!(got.iter().all(|r| r.path == "/v1/traces" && r.content_type == "application/x-protobuf"));
    assert!(got.iter().all(|r| r.connection == 0), "one connection for every batch");
    assert_eq!((metrics.exported.get(), metrics.failed_batches.get()), (1100, 0));
}

#[test]
fn a_partial_batch_goes_after_the_interval() {
    let (endpoint, rx) = collector(Answer::Ok { close: false });
    let limits = ExportLimits { interval: Duration::from_millis(200), ..ExportLimits::default() };
    let exporter = Exporter::start(endpoint, origin(), TracingMetrics::unregistered(), limits).expect("start");
    let sent = Instant::now();
    exporter.submit(vec![span(1), span(2)]);
    let got = rx.recv_timeout(Duration::from_secs(5)).expect("a batch within the interval");
    assert_eq!(got.spans, 2);
    assert!(sent.elapsed() >= Duration::from_millis(150), "waited for the interval: {:?}", sent.elapsed());
}

#[test]
fn a_connection_the_collector_closed_is_replaced_without_losing_the_batch() {
    let (endpoint, rx) = collector(Answer::Ok { close: true });
    let metrics = TracingMetrics::unregistered();
    let exporter = Exporter::start(endpoint, origin(), metrics.clone(), slow_interval()).expect("start");
    for round in 0..3 {
        exporter.submit(vec![span(round)]);
        assert!(exporter.flush(Duration::from_secs(10)));
    }
    let got: Vec<Received> = rx.try_iter().collect();
    assert_eq!(got.iter().map(|r| r.connection).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!((metrics.exported.get(), metrics.failed_batches.get()), (3, 0));
}

#[test]
fn refused_and_unreachable_collectors_cost_one_counted_batch_each() {
    let (endpoint, rx) = collector(Answer::Status(503));
    let metrics = TracingMetrics::unregistered();
    let exporter = Exporter::start(endpoint, origin(), metrics.clone(), slow_interval()).expect("start");
    exporter.submit(vec![span(1), span(2), span(3)]);
    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!(rx.try_iter().count(), 1, "sent once, not retried");
    assert_eq!((metrics.failed_batches.get(), metrics.dropped_export_failed.get(), metrics.exported.get()), (1, 3, 0));

    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = OtlpEndpoint::parse(&format!("http://{}", dead.local_addr().expect("addr"))).expect("valid");
    drop(dead);
    let metrics = TracingMetrics::unregistered();
    let exporter = Exporter::start(endpoint, origin(), metrics.clone(), slow_interval()).expect("start");
    exporter.submit(vec![span(1)]);
    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!((metrics.failed_batches.get(), metrics.dropped_export_failed.get()), (1, 1));
}

#[test]
fn a_hanging_collector_fills_the_queue_and_requests_never_wait() {
    let (endpoint, rx) = collector(Answer::Hang);
    let metrics = TracingMetrics::unregistered();
    let limits = ExportLimits { queue_spans: 100, batch_spans: 10, timeout: Duration::from_secs(2), ..slow_interval() };
    let exporter = Exporter::start(endpoint, origin(), metrics.clone(), limits).expect("start");
    exporter.submit((0..10).map(span).collect());
    rx.recv_timeout(Duration::from_secs(5)).expect("the first batch reached the collector, which now hangs");
    let started = Instant::now();
    for i in 0..1000 {
        exporter.submit(vec![span(i)]);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(200), "1000 submits took {took:?}");
    // 10 spans are in the hanging POST; 90 more fit the queue; the rest were dropped.
    assert_eq!(exporter.queued(), 100);
    assert_eq!(metrics.dropped_queue_full.get(), 910);
}

#[test]
fn the_counters_appear_on_metrics() {
    let m = crate::telemetry::Metrics::new().expect("metrics");
    let t = TracingMetrics::register(&m).expect("registered once");
    t.dropped_queue_full.inc_by(3);
    t.exported.inc();
    let text = String::from_utf8(m.render()).expect("UTF-8");
    assert!(text.contains("portico_tracing_spans_exported_total 1"), "{text}");
    assert!(text.contains("portico_tracing_spans_dropped_total{reason=\"queue_full\"} 3"), "{text}");
    assert!(text.contains("portico_tracing_spans_dropped_total{reason=\"export_failed\"} 0"), "{text}");
    assert!(text.contains("portico_tracing_export_failures_total 0"), "{text}");
    assert!(TracingMetrics::register(&m).is_err(), "a second registration is refused, so reloads reuse the first");
}

#[test]
fn a_reload_keeps_the_tracer_while_its_settings_are_equal() {
    let metrics = TracingMetrics::unregistered();
    let settings = |ratio| TracingSettings {
        endpoint: OtlpEndpoint::parse("http://127.0.0.1:4318").expect("valid"),
        sample_ratio: ratio,
        service_name: "t".into(),
    };
    assert!(Tracer::for_config(None, None, &metrics).is_none(), "no section, no tracer");
    let first = Tracer::for_config(Some(&settings(1.0)), None, &metrics).expect("started");
    let kept = Tracer::for_config(Some(&settings(1.0)), Some(&first), &metrics).expect("kept");
    assert!(Arc::ptr_eq(&first, &kept), "equal settings keep the exporter and its queue");
    let replaced = Tracer::for_config(Some(&settings(0.5)), Some(&first), &metrics).expect("replaced");
    assert!(!Arc::ptr_eq(&first, &replaced), "changed settings start a new one");
    assert_eq!(replaced.settings().sample_ratio, 0.5);
    assert!(Tracer::for_config(None, Some(&first), &metrics).is_none(), "a removed section drops it");
}
