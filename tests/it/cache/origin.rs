//! An origin for cache tests that counts what it serves and answers as the query tells it:
//!
//! | query          | response                                                          |
//! |----------------|-------------------------------------------------------------------|
//! | `cc=V`         | `Cache-Control: V`                                                |
//! | `expires=N`    | `Expires` N seconds from now (negative: in the past)              |
//! | `etag=V`       | `ETag: "V"`; a matching `If-None-Match` gets 304                  |
//! | `lm=1`         | a fixed `Last-Modified`; a matching `If-Modified-Since` gets 304  |
//! | `vary=V`       | `Vary: V`                                                         |
//! | `cookie=1`     | `Set-Cookie: session=abc`                                         |
//! | `size=N`       | a body of N bytes (`0123456789` repeated)                         |
//! | `chunked=1`    | the body without `Content-Length`, in 16 KiB chunks               |
//! | `pause=MS`     | with `chunked`: wait this long after the first chunk              |
//! | `delay=MS`     | wait before answering (`set_delay_ms` does so for every request)   |
//! | `status=N`     | that status                                                       |
//!
//! Without `size`, the body is `{"n": N, "accept": "...", "auth": bool}`: N counts how many times
//! this origin served that path and query, so a test sees which copy it got.

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[derive(Default)]
struct State {
    served: AtomicUsize,
    conditional: AtomicUsize,
    per_url: Mutex<HashMap<String, usize>>,
    failing: AtomicBool,
    delay_ms: AtomicU64,
}

/// A running counting origin.
pub struct CountingOrigin {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: Option<JoinHandle<()>>,
}

type Body = BoxBody<Bytes, Infallible>;

impl CountingOrigin {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("origin binds");
        let addr = listener.local_addr().expect("origin address");
        let state = Arc::new(State::default());
        let mut o = CountingOrigin { addr, state, task: None };
        o.task = Some(o.serve(listener));
        o
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let state = self.state.clone();
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = state.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(req, state.clone()));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
                while conns.try_join_next().is_some() {}
            }
        })
    }

    /// Responses served (304s included).
    pub fn served(&self) -> usize {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Conditional requests received (`If-None-Match` or `If-Modified-Since`).
    pub fn conditional(&self) -> usize {
        self.state.conditional.load(Ordering::SeqCst)
    }

    /// Answer 503 to everything from now on (or stop).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn set_delay_ms(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Closes the listener and every connection.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for CountingOrigin {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    let url = req.uri().path_and_query().map_or("/".to_string(), |p| p.to_string());
    let q: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3D", "=").replace("%2C", ",").replace("%20", " ")))
        .collect();
    let n = {
        let mut m = state.per_url.lock().expect("lock");
        let n = m.entry(url).or_insert(0);
        *n += 1;
        *n
    };
    state.served.fetch_add(1, Ordering::SeqCst);
    let delay = q.get("delay").and_then(|d| d.parse().ok()).unwrap_or(state.delay_ms.load(Ordering::SeqCst));
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if state.failing.load(Ordering::SeqCst) {
        return Ok(Response::builder().status(503).body(full("failing")).expect("response"));
    }
    let h = req.headers();
    let inm = h.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_string);
    let ims = h.get("if-modified-since").and_then(|v| v.to_str().ok()).map(str::to_string);
    if inm.is_some() || ims.is_some() {
        state.conditional.fetch_add(1, Ordering::SeqCst);
    }
    let etag = q.get("etag").map(|e| format!("\"{e}\""));
    let mut b = Response::builder();
    if let Some(cc) = q.get("cc") {
        b = b.header("cache-control", cc.as_str());
    }
    if let Some(e) = &etag {
        b = b.header("etag", e.as_str());
    }
    if q.contains_key("lm") {
        b = b.header("last-modified", LAST_MODIFIED);
    }
    if let Some(secs) = q.get("expires").and_then(|s| s.parse::<i64>().ok()) {
        let now = SystemTime::now();
        let at =
            if secs >= 0 { now + Duration::from_secs(secs as u64) } else { now - Duration::from_secs((-secs) as u64) };
        b = b.header("expires", httpdate::fmt_http_date(at));
    }
    if let Some(v) = q.get("vary") {
        b = b.header("vary", v.as_str());
    }
    if q.contains_key("cookie") {
        b = b.header("set-cookie", "session=abc");
    }
    let not_modified =
        (etag.is_some() && inm == etag) || (q.contains_key("lm") && ims.as_deref() == Some(LAST_MODIFIED));
    if not_modified {
        return Ok(b.status(304).body(full("")).expect("response"));
    }
    let status = q.get("status").and_then(|s| s.parse().ok()).unwrap_or(200u16);
    b = b.status(status);
    let Some(size) = q.get("size").and_then(|s| s.parse::<usize>().ok()) else {
        let accept = h.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
        let body = serde_json::json!({"n": n, "accept": accept, "auth": h.contains_key("authorization")});
        return Ok(b.header("content-type", "application/json").body(full(body.to_string())).expect("response"));
    };
    let body: Vec<u8> = b"0123456789".iter().copied().cycle().take(size).collect();
    if !q.contains_key("chunked") {
        return Ok(b.body(full(body)).expect("response"));
    }
    let chunks: Vec<Bytes> = body.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let pause = Duration::from_millis(q.get("pause").and_then(|p| p.parse().ok()).unwrap_or(0));
    let frames = stream::unfold((chunks.into_iter(), 0usize), move |(mut rest, sent)| async move {
        let chunk = rest.next()?;
        if sent == 1 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        Some((Ok::<_, Infallible>(Frame::data(chunk)), (rest, sent + 1)))
    });
    Ok(b.body(StreamBody::new(frames).boxed()).expect("response"))
}
