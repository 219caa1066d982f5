use super::*;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// A writer that holds every write until the gate opens, like a disk that stalls.
#[derive(Clone, Default)]
struct Gated {
    open: Arc<(Mutex<bool>, Condvar)>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Gated {
    fn open(&self) {
        let (lock, cv) = &*self.open;
        *lock.lock().expect("gate lock") = true;
        cv.notify_all();
    }

    fn text(&self) -> String {
        String::from_utf8(self.out.lock().expect("output lock").clone()).expect("utf-8 output")
    }
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (lock, cv) = &*self.open;
        let mut open = lock.lock().expect("gate lock");
        while !*open {
            open = cv.wait(open).expect("gate wait");
        }
        self.out.lock().expect("output lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn line<'a>(host: &'a str, path: &'a str) -> AccessLine<'a> {
    AccessLine {
        time: "2026-01-01T00:00:00.000Z",
        request_id: "id",
        trace_id: "",
        client: "127.0.0.1:1",
        listener: "web",
        method: "GET",
        host,
        path,
        route: "r",
        consumer: None,
        upstream: None,
        upstream_target: None,
        status: 200,
        bytes: 0,
        duration_ms: 1.0,
        upstream_duration_ms: None,
        cache_status: None,
        error: None,
        websocket: None,
        parts: None,
    }
}

#[test]
fn a_stalled_writer_makes_lines_drop_by_bytes_without_blocking_requests() {
    let gate = Gated::default();
    let log = AccessLog::with_budget(Some(Sink::Writer(Box::new(gate.clone()))), 4096);
    let path = format!("/{}", "p".repeat(200));
    let started = Instant::now();
    for _ in 0..100 {
        log.write(&line("example.com", &path));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "writing blocked: {:?}", started.elapsed());
    let dropped = log.dropped_counter().get();
    assert!(dropped >= 80, "about 4096 / 400 bytes of lines fit the queue; dropped {dropped}");

    gate.open();
    log.flush(Duration::from_secs(5));
    let written = gate.text().lines().count() as u64;
    assert_eq!(written + dropped, 100, "every line is written or counted as dropped");
    assert!(written > 0);

    // With the writer keeping up again, lines are taken again.
    log.write(&line("example.com", "/after"));
    log.flush(Duration::from_secs(5));
    assert!(gate.text().ends_with("\"error\":null}\n") && gate.text().contains("/after"));
    assert_eq!(log.dropped_counter().get(), dropped);
}

#[test]
fn client_supplied_fields_are_cut_with_a_marker() {
    let gate = Gated::default();
    gate.open();
    let log = AccessLog::new(Some(Sink::Writer(Box::new(gate.clone()))));
    let host = "h".repeat(5000);
    let path = format!("/{}", "é".repeat(10_000));
    log.write(&AccessLine { method: &"M".repeat(100), ..line(&host, &path) });
    log.flush(Duration::from_secs(5));
    let text = gate.text();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).expect("one JSON line");
    let field = |k: &str| v[k].as_str().expect("a string field").to_string();
    assert_eq!(field("host"), format!("{}{TRUNCATED}", "h".repeat(MAX_HOST_BYTES)));
    assert!(field("path").ends_with(TRUNCATED) && field("path").len() <= MAX_PATH_BYTES + TRUNCATED.len());
    assert!(field("path").len() > MAX_PATH_BYTES - 2, "cut on a character boundary, not far before");
    assert_eq!(field("method").len(), MAX_METHOD_BYTES + TRUNCATED.len());
    assert!(text.len() < 5000, "the whole line stays small: {}", text.len());

    assert_eq!(cap("short", 10), "short");
    assert_eq!(cap("aé", 2), format!("a{TRUNCATED}"), "never inside a character");
}

#[test]
fn a_renamed_file_is_let_go_of_on_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("access.log");
    let sink = Sink::open(&crate::config::AccessLogTarget::File(path.clone())).expect("opens");
    let log = AccessLog::new(sink);
    log.write(&line("a", "/before"));
    log.flush(Duration::from_secs(5));
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).expect("rename");

    log.write(&line("a", "/still-old"));
    log.reopen();
    log.write(&line("a", "/after"));
    log.flush(Duration::from_secs(5));
    let old = std::fs::read_to_string(&rotated).expect("rotated file");
    let new = std::fs::read_to_string(&path).expect("a new file at the old path");
    assert!(old.contains("/before") && old.contains("/still-old") && !old.contains("/after"), "{old}");
    assert!(new.contains("/after") && new.lines().count() == 1, "{new}");
}
