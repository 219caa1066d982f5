//! A JWKS URL: fetched on first use and then every `jwks_refresh_s` in the background, and again
//! (at most once every [`MIN_REFETCH`]) when a token names a key id the set does not have.
//!
//! The last good key set of each URL is also kept process-wide ([`last_good`]): a filter built by
//! a reload starts from it, so a reload while the identity provider is down does not leave every
//! `jwt` filter without keys (and every caller with a 401) until a fetch succeeds. Only a
//! successful fetch replaces it.

use super::keys::KeySet;
use crate::RequestHeader;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Fetches of a JWKS URL triggered by requests are at least this far apart.
const MIN_REFETCH: Duration = Duration::from_secs(5);
/// Longest a JWKS fetch may take, connecting included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// A JWKS URL: the latest key set, and the bookkeeping that keeps it fresh.
pub(super) struct Remote {
    pub(super) url: String,
    uri: http::Uri,
    refresh: Duration,
    pub(super) keys: ArcSwap<KeySet>,
    /// Bumped whenever the key set changes, so cached verifications made with old keys lapse.
    pub(super) generation: AtomicU64,
    pub(super) loaded: AtomicBool,
    /// When the last fetch started, in ms since the Unix epoch (0: never).
    pub(super) last_attempt_ms: AtomicU64,
    in_flight: AtomicBool,
    fetched: Notify,
    task_started: AtomicBool,
}

/// Clears `in_flight` and wakes the waiters however a fetch ends (even if its request is
/// dropped midway).
struct FlightGuard<'a>(&'a Remote);

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.store(false, Ordering::Release);
        self.0.fetched.notify_waiters();
    }
}

/// The last key set fetched from each JWKS URL, as long as a filter of some live config holds it.
///
/// Weak, so sets die with the last config that uses them; a reload builds the new config while
/// the old one still runs, which is what carries them over. Only building a filter and a
/// successful fetch take the lock, never a request.
type LastGood = Mutex<HashMap<String, Weak<KeySet>>>;

fn last_good_sets() -> &'static LastGood {
    static LAST_GOOD: OnceLock<LastGood> = OnceLock::new();
    LAST_GOOD.get_or_init(Default::default)
}

/// The key set a live filter last fetched from `url`, if any.
pub(super) fn last_good(url: &str) -> Option<Arc<KeySet>> {
    let sets = last_good_sets().lock().unwrap_or_else(PoisonError::into_inner);
    sets.get(url).and_then(Weak::upgrade)
}

/// Makes `set` the last good key set of `url` (and forgets sets no filter holds any more).
fn remember(url: &str, set: &Arc<KeySet>) {
    let mut sets = last_good_sets().lock().unwrap_or_else(PoisonError::into_inner);
    sets.retain(|_, s| s.strong_count() > 0);
    sets.insert(url.to_string(), Arc::downgrade(set));
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a call to [`Remote::refetch`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fetched {
    Ok,
    Failed,
    /// Another fetch was running (and was waited for), or one ran too recently.
    Skipped,
}

impl Remote {
    pub(super) fn new(url: String, refresh: Duration) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err("must start with http:// or https://".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        // A set fetched for the config that runs now (before this reload) is the start.
        let carried = last_good(&url);
        let loaded = carried.is_some();
        Ok(Remote {
            url,
            uri,
            refresh,
            keys: ArcSwap::new(carried.unwrap_or_default()),
            generation: AtomicU64::new(0),
            loaded: AtomicBool::new(loaded),
            last_attempt_ms: AtomicU64::new(0),
            in_flight: AtomicBool::new(false),
            fetched: Notify::new(),
            task_started: AtomicBool::new(false),
        })
    }

    /// Starts the background refresh on the current runtime, once. It holds only a weak
    /// reference, so it ends when the filter is dropped (config reload).
    pub(super) fn start(self: &Arc<Self>) {
        if self.task_started.load(Ordering::Relaxed) || self.task_started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(refresh_loop(Arc::downgrade(self)));
            }
            Err(_) => self.task_started.store(false, Ordering::Release),
        }
    }

    /// Fetches the key set unless a fetch started less than [`MIN_REFETCH`] ago; when one is
    /// already running, waits for it instead.
    pub(super) async fn refetch(&self) -> Fetched {
        let notified = self.fetched.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.in_flight.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            let _ = tokio::time::timeout(FETCH_TIMEOUT, notified).await;
            return Fetched::Skipped;
        }
        let _guard = FlightGuard(self);
        let now = now_ms();
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < MIN_REFETCH.as_millis() as u64 {
            return Fetched::Skipped;
        }
        self.last_attempt_ms.store(now, Ordering::Release);
        let result = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&self.uri)).await {
            Ok(r) => r,
            Err(_) => Err("timed out".into()),
        };
        match result.and_then(|body| KeySet::from_jwks(&body, &self.url)) {
            Ok(set) => {
                self.install(set);
                Fetched::Ok
            }
            Err(e) => {
                log::warn!("jwt: fetching {} failed: {e}", self.url);
                Fetched::Failed
            }
        }
    }

    pub(super) fn install(&self, set: KeySet) {
        if self.loaded.load(Ordering::Acquire) && self.keys.load().source == set.source {
            return;
        }
        log::info!("jwt: loaded {} key(s) from {}", set.keys.len(), self.url);
        let set = Arc::new(set);
        remember(&self.url, &set);
        self.keys.store(set);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.loaded.store(true, Ordering::Release);
    }
}

async fn refresh_loop(remote: Weak<Remote>) {
    let mut failures = 0u32;
    loop {
        let Some(r) = remote.upgrade() else { return };
        match r.refetch().await {
            Fetched::Failed => failures = failures.saturating_add(1),
            Fetched::Ok | Fetched::Skipped => failures = 0,
        }
        // After a failure, retry sooner: 5 s, 10 s, 20 s, ... up to the refresh interval.
        let wait =
            if failures == 0 { r.refresh } else { r.refresh.min(MIN_REFETCH.saturating_mul(1 << failures.min(6)) / 2) };
        drop(r);
        tokio::time::sleep(wait.max(MIN_REFETCH)).await;
    }
}

/// One HTTP/1.1 GET with Pingora's client (TLS with the system's trust store for `https`).
async fn fetch(uri: &http::Uri) -> Result<Vec<u8>, String> {
    use pingora::connectors::http::v1::Connector;
    use pingora::upstreams::peer::HttpPeer;

    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut peer = HttpPeer::new(addr, tls, host.to_string());
    peer.options.connection_timeout = Some(Duration::from_secs(5));
    peer.options.total_connection_timeout = Some(Duration::from_secs(5));
    peer.options.read_timeout = Some(FETCH_TIMEOUT);
    peer.options.write_timeout = Some(FETCH_TIMEOUT);

    let connector = Connector::new(None);
    let (mut http, _) = connector.get_http_session(&peer).await.map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).map_err(|e| e.to_string())?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    for (name, value) in
        [("host", authority), ("accept", "application/json"), ("user-agent", "portico"), ("connection", "close")]
    {
        req.insert_header(name, value).map_err(|e| e.to_string())?;
    }
    http.write_request_header(Box::new(req)).await.map_err(|e| e.to_string())?;
    http.read_response().await.map_err(|e| e.to_string())?;
    let status = http.resp_header().map_or(0, |r| r.status.as_u16());
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = http.read_body_ref().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(chunk);
    }
    http.shutdown().await;
    Ok(body)
}
