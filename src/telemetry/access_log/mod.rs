//! The JSON access log: one line per finished request, written by its own thread.
//!
//! | file        | job                                                                  |
//! |-------------|----------------------------------------------------------------------|
//! | `mod.rs`    | the line, its length caps, and the byte-bounded queue to the writer  |
//! | [`sink`]    | where lines go, reopened at the same path for log rotation           |
//!
//! Request threads serialize their line and hand it to the writer thread; the writer batches
//! whatever has arrived (waking at most every 5 ms) into one write. The queue is bounded in
//! bytes ([`QUEUE_BYTES`]), not lines, so its memory stays bounded whatever clients send: a full
//! queue drops the line, counts it in `portico_access_log_dropped_total`, and never blocks a
//! request.

pub mod sink;

pub use sink::Sink;

use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of serialized lines queued for the writer at most (8 MiB, about 20,000 typical lines or
/// 1,000 of the longest); a line that does not fit is dropped and counted.
pub const QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// `host` is cut to this many bytes (a DNS name is at most 253, plus a port).
pub const MAX_HOST_BYTES: usize = 270;
/// `path` (with the query) is cut to this many bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// `method` is cut to this many bytes (an extension method can be any token).
pub const MAX_METHOD_BYTES: usize = 32;
/// What ends a field that was cut.
pub const TRUNCATED: &str = "...[truncated]";
/// A batch is written once it passes this many bytes, even if more lines wait.
const BATCH_BYTES: usize = 256 * 1024;
/// How long the writer sleeps before collecting a batch.
const BATCH_WAIT: Duration = Duration::from_millis(5);

/// One access-log line; serialized as a JSON object.
#[derive(Serialize, Clone, Copy)]
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
    /// What the shared cache did (`x-cache-status`), on routes that cache; absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_status: Option<&'a str>,
    /// Error kind, when the request failed inside Portico.
    pub error: Option<&'a str>,
    /// An aggregate route's parts: name, upstream, target, status, outcome, duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<&'a serde_json::Value>,
    /// An upgraded connection's tunnel (the line is written when it closes); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket: Option<TunnelLine>,
}

/// What the access line says about a tunnel: its bytes each way, how long it was open after
/// the upgrade, and why it closed.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct TunnelLine {
    /// Bytes from the client to the upstream.
    pub bytes_in: u64,
    /// Bytes from the upstream to the client.
    pub bytes_out: u64,
    /// Milliseconds from the upgrade to the close.
    pub open_ms: f64,
    /// `client_closed`, `upstream_closed`, `idle_timeout`, `shutdown` or `error`.
    pub close: &'static str,
}

/// What the writer thread is handed.
enum Msg {
    /// A serialized line, newline included.
    Line(Vec<u8>),
    /// Write what has arrived, then open the sink's path again (log rotation).
    Reopen,
}

/// Writes access-log lines from a dedicated thread, so request threads never block on I/O or
/// share a lock: they hand a finished line over, and drop it when the lines already queued
/// hold [`QUEUE_BYTES`].
pub struct AccessLog {
    tx: Option<Sender<Msg>>,
    /// Bytes handed over and not yet written.
    queued: Arc<AtomicUsize>,
    budget: usize,
    dropped: prometheus::IntCounter,
    warned: AtomicBool,
}

impl AccessLog {
    /// A log writing to `sink`, or none.
    pub fn new(sink: Option<Sink>) -> Self {
        Self::with_budget(sink, QUEUE_BYTES)
    }

    /// A log whose queue holds `budget` bytes (tests use small ones).
    pub fn with_budget(sink: Option<Sink>, budget: usize) -> Self {
        let dropped = prometheus::IntCounter::new(
            "portico_access_log_dropped_total",
            "Access-log lines dropped because the writer was too far behind",
        )
        .expect("the drop counter's name and help are valid");
        let mut log = AccessLog {
            tx: None,
            queued: Arc::new(AtomicUsize::new(0)),
            budget,
            dropped,
            warned: AtomicBool::new(false),
        };
        let Some(sink) = sink else { return log };
        let (tx, rx) = channel::<Msg>();
        let written = log.queued.clone();
        let spawned =
            std::thread::Builder::new().name("access-log".into()).spawn(move || write_batches(&rx, sink, &written));
        match spawned {
            Ok(_) => log.tx = Some(tx),
            Err(e) => log::error!("cannot start access log writer: {e}"),
        }
        log
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// The counter of dropped lines, for the metrics registry.
    pub fn dropped_counter(&self) -> prometheus::IntCounter {
        self.dropped.clone()
    }

    /// Waits (up to `within`) until every queued line is written.
    pub fn flush(&self, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.queued.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Has the writer open the log file again at its path once the lines queued before are
    /// written, so a file renamed by logrotate is let go of and a new one started.
    pub fn reopen(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Reopen);
        }
    }

    /// Queues one line, its client-supplied fields cut to their caps; dropped (not blocking
    /// the request) when the writer is too far behind.
    pub fn write(&self, line: &AccessLine<'_>) {
        let Some(tx) = &self.tx else { return };
        let (method, host, path) =
            (cap(line.method, MAX_METHOD_BYTES), cap(line.host, MAX_HOST_BYTES), cap(line.path, MAX_PATH_BYTES));
        let line = AccessLine { method: &method, host: &host, path: &path, ..*line };
        let mut out = Vec::with_capacity(512);
        if serde_json::to_writer(&mut out, &line).is_err() {
            return;
        }
        out.push(b'\n');
        let len = out.len();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > self.budget {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.drop_line();
            return;
        }
        if tx.send(Msg::Line(out)).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.drop_line();
        }
    }

    fn drop_line(&self) {
        self.dropped.inc();
        if !self.warned.swap(true, Ordering::AcqRel) {
            log::warn!("access log writer is behind: dropping lines (counted in portico_access_log_dropped_total)");
        }
    }
}

/// `s` cut to at most `max` bytes (on a character boundary) followed by [`TRUNCATED`], or `s`
/// itself when it fits.
pub fn cap(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{TRUNCATED}", &s[..end]))
}

/// The writer thread: collects what has arrived into one buffer, writes and flushes it, and
/// counts the bytes off `queued`; reopens the sink when asked; returns when every sender is
/// gone.
fn write_batches(rx: &Receiver<Msg>, mut sink: Sink, queued: &AtomicUsize) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    while let Ok(first) = rx.recv() {
        // Wake at most every few milliseconds: while this thread sleeps instead of
        // waiting on the channel, senders hand over lines without a wake-up syscall.
        std::thread::sleep(BATCH_WAIT);
        let mut reopen = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(line) => buf.extend_from_slice(&line),
                Msg::Reopen => {
                    reopen = true;
                    break;
                }
            }
            if buf.len() > BATCH_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            if sink.write_all(&buf).and_then(|_| sink.flush()).is_err() {
                // Nowhere to report it but stderr; keep serving.
                eprintln!("portico: access log write failed");
            }
            queued.fetch_sub(buf.len(), Ordering::AcqRel);
            buf.clear();
        }
        if reopen {
            sink.reopen();
        }
    }
}

#[cfg(test)]
mod tests;
