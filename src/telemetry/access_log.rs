//! The JSON access log: one line per finished request, written by its own thread.
//!
//! Request threads serialize their line and hand it to a bounded channel; the writer thread
//! batches whatever has arrived (waking at most every 5 ms) into one write. A full channel
//! drops the line rather than block a request.

use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// Lines queued for the writer at most; more are dropped.
const QUEUE_LINES: usize = 65_536;
/// A batch is written once it passes this many bytes, even if more lines wait.
const BATCH_BYTES: usize = 256 * 1024;
/// How long the writer sleeps before collecting a batch.
const BATCH_WAIT: Duration = Duration::from_millis(5);

/// One access-log line; serialized as a JSON object.
#[derive(Serialize)]
pub struct AccessLine<'a> {
    /// RFC 3339 UTC time the request finished.
    pub time: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// W3C trace id.
    pub trace_id: &'a str,
    /// Client address.
    pub client: &'a str,
    /// Listener name.
    pub listener: &'a str,
    /// Method.
    pub method: &'a str,
    /// Host.
    pub host: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Matched route, or empty.
    pub route: &'a str,
    /// Consumer or mTLS identity, when authenticated.
    pub consumer: Option<&'a str>,
    /// Upstream pool name, when proxied.
    pub upstream: Option<&'a str>,
    /// Upstream target address, when proxied.
    pub upstream_target: Option<&'a str>,
    /// Response status.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    /// Total duration in milliseconds.
    pub duration_ms: f64,
    /// Time spent waiting on the upstream, in milliseconds.
    pub upstream_duration_ms: Option<f64>,
    /// Error kind, when the request failed inside Portico.
    pub error: Option<&'a str>,
}

/// Writes access-log lines from a dedicated thread, so request threads never block on I/O or
/// share a lock: they hand a finished line to a bounded channel, and drop it if the writer is
/// far behind.
pub struct AccessLog {
    tx: Option<SyncSender<Vec<u8>>>,
    pending: Arc<AtomicUsize>,
}

impl AccessLog {
    /// A log writing to `sink`, or none.
    pub fn new(sink: Option<Box<dyn Write + Send>>) -> Self {
        let pending = Arc::new(AtomicUsize::new(0));
        let Some(sink) = sink else {
            return AccessLog { tx: None, pending };
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        let written = pending.clone();
        let spawned =
            std::thread::Builder::new().name("access-log".into()).spawn(move || write_batches(&rx, sink, &written));
        match spawned {
            Ok(_) => AccessLog { tx: Some(tx), pending },
            Err(e) => {
                log::error!("cannot start access log writer: {e}");
                AccessLog { tx: None, pending }
            }
        }
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Waits (up to `within`) until every queued line is written.
    pub fn flush(&self, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.pending.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Queues one line; dropped (not blocking the request) when the writer is far behind.
    pub fn write(&self, line: &AccessLine<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut out = Vec::with_capacity(1024);
        if serde_json::to_writer(&mut out, line).is_ok() {
            out.push(b'\n');
            self.pending.fetch_add(1, Ordering::AcqRel);
            if tx.try_send(out).is_err() {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// The writer thread: collects what has arrived into one buffer, writes and flushes it, and
/// counts the lines off `pending`; returns when every sender is gone.
fn write_batches(rx: &Receiver<Vec<u8>>, mut sink: Box<dyn Write + Send>, pending: &AtomicUsize) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    while let Ok(line) = rx.recv() {
        // Wake at most every few milliseconds: while this thread sleeps instead of
        // waiting on the channel, senders hand over lines without a wake-up syscall.
        std::thread::sleep(BATCH_WAIT);
        buf.extend_from_slice(&line);
        let mut lines = 1;
        while let Ok(more) = rx.try_recv() {
            buf.extend_from_slice(&more);
            lines += 1;
            if buf.len() > BATCH_BYTES {
                break;
            }
        }
        if sink.write_all(&buf).and_then(|_| sink.flush()).is_err() {
            // Nowhere to report it but stderr; keep serving.
            eprintln!("portico: access log write failed");
        }
        buf.clear();
        pending.fetch_sub(lines, Ordering::AcqRel);
    }
}
