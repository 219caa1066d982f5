//! The exporter: a bounded queue that requests hand finished spans to, and one thread that
//! batches them and POSTs them to the collector.
//!
//! The request side does one atomic add and one non-blocking channel send per recorded request;
//! it never waits, never locks, and never learns whether the collector is up. The queue is
//! bounded by a count of spans ([`ExportLimits::queue_spans`]): past it, spans are dropped and
//! counted. The thread polls the queue (it never blocks on it, so senders never pay a wake-up)
//! and sends a batch when [`ExportLimits::batch_spans`] are waiting or the oldest has waited
//! [`ExportLimits::interval`]. A batch that fails is dropped and counted: no retry, one
//! connection at a time, each step bounded by [`ExportLimits::timeout`], so an unreachable
//! collector costs this thread at most one timeout per batch and costs requests nothing.

use super::encode::{export_request, Origin};
use super::http::Client;
use super::metrics::TracingMetrics;
use super::span::SpanData;
use crate::config::tracing::OtlpEndpoint;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the export thread looks at an idle queue.
const POLL: Duration = Duration::from_millis(50);

/// The exporter's bounds. The defaults are what Portico runs with; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    /// Spans queued (or being sent) at most; more are dropped. Default 4096: about 4 MB at a
    /// generous 1 KiB a span, 8 full batches (OpenTelemetry's SDK default is 2048).
    pub queue_spans: usize,
    /// Spans per POST at most. Default 512, OpenTelemetry's `max_export_batch_size`.
    pub batch_spans: usize,
    /// The longest a span waits for a fuller batch. Default 1 s.
    pub interval: Duration,
    /// Bound on each of connect, write and read of one export. Default 2 s.
    pub timeout: Duration,
}

impl Default for ExportLimits {
    fn default() -> Self {
        ExportLimits {
            queue_spans: 4096,
            batch_spans: 512,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }
}

/// The sending side, shared by every request through the tracer.
pub struct Exporter {
    tx: Sender<Vec<SpanData>>,
    state: Arc<State>,
}

/// What the request side and the export thread share.
struct State {
    /// Spans handed over and not yet sent or dropped.
    queued: AtomicUsize,
    limits: ExportLimits,
    /// Asks the thread to send what it holds now rather than at the interval.
    flush: AtomicBool,
    metrics: TracingMetrics,
}

impl Exporter {
    /// Starts the export thread for `endpoint`. It stops, after sending what is queued, once the
    /// exporter is dropped.
    pub fn start(
        endpoint: OtlpEndpoint,
        origin: Origin,
        metrics: TracingMetrics,
        limits: ExportLimits,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let state = Arc::new(State { queued: AtomicUsize::new(0), limits, flush: AtomicBool::new(false), metrics });
        let client = Client::new(endpoint, limits.timeout);
        let thread = Worker { rx, state: state.clone(), client, origin };
        std::thread::Builder::new().name("otlp-export".into()).spawn(move || thread.run())?;
        Ok(Exporter { tx, state })
    }

    /// Queues the spans of one request, or drops (and counts) them when the queue is full.
    pub fn submit(&self, spans: Vec<SpanData>) {
        let n = spans.len();
        if self.state.queued.fetch_add(n, Ordering::AcqRel) + n > self.state.limits.queue_spans {
            self.state.queued.fetch_sub(n, Ordering::AcqRel);
            self.state.metrics.dropped_queue_full.inc_by(n as u64);
            return;
        }
        if self.tx.send(spans).is_err() {
            // The thread is gone (it only ends when the exporter is dropped, or on a panic).
            self.state.queued.fetch_sub(n, Ordering::AcqRel);
            self.state.metrics.dropped_export_failed.inc_by(n as u64);
        }
    }

    /// Sends what is queued now and waits (up to `within`) until it is sent or dropped; for
    /// shutdown and tests.
    pub fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        self.state.flush.store(true, Ordering::Release);
        while self.state.queued.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Spans queued and not yet sent or dropped.
    pub fn queued(&self) -> usize {
        self.state.queued.load(Ordering::Acquire)
    }
}

// === the export thread ===

struct Worker {
    rx: Receiver<Vec<SpanData>>,
    state: Arc<State>,
    client: Client,
    origin: Origin,
}

impl Worker {
    fn run(mut self) {
        let limits = self.state.limits;
        let mut batch: Vec<SpanData> = Vec::with_capacity(limits.batch_spans);
        let mut oldest = Instant::now();
        let mut failing = false;
        loop {
            // 1. Take everything queued, sending each full batch as it fills.
            let mut open = true;
            loop {
                match self.rx.try_recv() {
                    Ok(spans) => {
                        if batch.is_empty() {
                            oldest = Instant::now();
                        }
                        batch.extend(spans);
                        if batch.len() >= limits.batch_spans {
                            self.send(&mut batch, false, &mut failing);
                            oldest = Instant::now();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            // 2. Send a partial batch once its oldest span has waited long enough, on a flush
            //    request, or when the exporter is gone.
            let flush = self.state.flush.swap(false, Ordering::AcqRel);
            if !batch.is_empty() && (flush || !open || oldest.elapsed() >= limits.interval) {
                self.send(&mut batch, true, &mut failing);
            }
            if !open {
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    /// POSTs `batch` a batch's worth at a time, counting the outcomes; leaves a partial batch
    /// for later unless `all`.
    fn send(&mut self, batch: &mut Vec<SpanData>, all: bool, failing: &mut bool) {
        let size = self.state.limits.batch_spans.max(1);
        while batch.len() >= size || (all && !batch.is_empty()) {
            let take = batch.len().min(size);
            let body = export_request(&self.origin, &batch[..take]);
            let result = self.client.post(&body);
            let m = &self.state.metrics;
            match result {
                Ok(status) if (200..300).contains(&status) => {
                    m.exported.inc_by(take as u64);
                    if std::mem::replace(failing, false) {
                        log::info!("OTLP collector accepts spans again");
                    }
                }
                outcome => {
                    m.failed_batches.inc();
                    m.dropped_export_failed.inc_by(take as u64);
                    // Logged when exports start failing, not for every batch after.
                    if !std::mem::replace(failing, true) {
                        match outcome {
                            Ok(status) => {
                                log::warn!("OTLP collector answered {status}; dropping spans until it accepts")
                            }
                            Err(e) => log::warn!("OTLP collector unreachable ({e}); dropping spans until it is back"),
                        }
                    }
                }
            }
            batch.drain(..take);
            self.state.queued.fetch_sub(take, Ordering::AcqRel);
        }
    }
}
