//! The client connection as Pingora's HTTP/1 code reads it: the bytes [`KeepaliveApp`] read
//! ahead replayed first, and the request header block bounded as a whole.
//!
//! Pingora bounds each read of a request header (its keep-alive timeout), not the header block,
//! so a client that sends one byte every 59 s holds its connection and buffers forever.
//! [`ConnIo`] watches the bytes Pingora reads until the header block ends (the first empty line
//! after the request line) and fails the read once the block has taken longer than
//! `header_timeout_s`. The clock starts the first time a header read has to wait, which is
//! within microseconds of the first byte: until then every byte was already there.
//!
//! Cost on the hot path: a header that arrives whole never waits, so no timer is made; what is
//! left is a `memchr` scan for line ends over the header bytes (tens of nanoseconds) and one
//! more dynamic call per read and write. Nothing is allocated per request: the read-ahead
//! buffer is inline, and the stream goes back and forth to Pingora as the same box.
//!
//! [`KeepaliveApp`]: super::KeepaliveApp

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest,
    UniqueID, UniqueIDType, ALPN,
};
use pingora::time::fast_timeout::{fast_timeout, FastOrTokioTimeout};
use pingora::time::Timeout;
use std::future::{pending, poll_fn, Future, Pending};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes can be read ahead: the HTTP/2 connection preface, the longest look needed.
pub(super) const AHEAD: usize = 24;

/// A client connection whose request headers must arrive within a deadline.
pub struct ConnIo {
    inner: Stream,
    /// Bytes read before Pingora saw the connection, replayed to its first reads.
    ahead: [u8; AHEAD],
    ahead_at: u8,
    ahead_len: u8,
    header: HeaderClock,
}

impl ConnIo {
    /// Wraps a connection; the first request's header is bounded by `header_timeout`.
    pub fn new(inner: Stream, header_timeout: Duration) -> Self {
        ConnIo {
            inner,
            ahead: [0; AHEAD],
            ahead_at: 0,
            ahead_len: 0,
            header: HeaderClock { timeout: header_timeout, scan: Some(EndScan::default()), timer: None },
        }
    }

    /// The bytes read ahead and not yet read by Pingora.
    pub fn ahead(&self) -> &[u8] {
        &self.ahead[self.ahead_at as usize..self.ahead_len as usize]
    }

    /// Reads whatever the client has sent next into the read-ahead buffer, waiting for at least
    /// one byte; `Ok(0)` when the client closed (or the buffer is full). Cancel-safe: nothing is
    /// lost when the future is dropped.
    pub async fn read_ahead(&mut self) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_ahead(cx)).await
    }

    fn poll_read_ahead(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut room = ReadBuf::new(&mut self.ahead[self.ahead_len as usize..]);
        if room.remaining() == 0 {
            return Poll::Ready(Ok(0));
        }
        match Pin::new(&mut self.inner).poll_read(cx, &mut room) {
            Poll::Ready(Ok(())) => {
                let n = room.filled().len();
                // At most AHEAD (24) bytes in all: the sum fits a u8.
                self.ahead_len += n as u8;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Starts the header clock for the next request (it runs once a header read has to wait).
    pub fn start_request(&mut self) {
        self.header.scan = Some(EndScan::default());
        self.header.timer = None;
    }

    /// Stops watching for a header: the connection now speaks HTTP/2, whose frames are not
    /// scanned.
    pub fn pass_through(&mut self) {
        self.header.scan = None;
        self.header.timer = None;
    }

    /// Whether the header clock is still running (tests).
    #[cfg(test)]
    pub(super) fn in_header(&self) -> bool {
        self.header.scan.is_some()
    }
}

impl std::fmt::Debug for ConnIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnIo").field("inner", &self.inner).field("ahead", &self.ahead()).finish()
    }
}

// === the header clock ===

/// The deadline of the request header being read.
struct HeaderClock {
    timeout: Duration,
    /// `Some` while the header block has not ended.
    scan: Option<EndScan>,
    /// Made the first time a header read waits (Pingora's 10 ms timer wheel, no Tokio timer).
    timer: Option<Timeout<Pending<()>, FastOrTokioTimeout>>,
}

impl HeaderClock {
    /// Follows the header bytes just read; the clock stops at the end of the block.
    fn saw(&mut self, bytes: &[u8]) {
        if let Some(scan) = &mut self.scan {
            if scan.finds_end(bytes) {
                self.scan = None;
                self.timer = None;
            }
        }
    }

    /// Whether the header has run out of time; registers `cx` to be woken when it does. Only
    /// called when a read waits or once the timer exists.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.scan.is_none() {
            return false;
        }
        let timeout = self.timeout;
        let timer = self.timer.get_or_insert_with(|| fast_timeout(timeout, pending()));
        matches!(Pin::new(timer).poll(cx), Poll::Ready(Err(_)))
    }
}

/// The error a header read fails with once the header block is late; Pingora closes the
/// connection without an answer (nginx does the same; haproxy answers 408).
fn header_timed_out(timeout: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("request header not complete within {}s", timeout.as_secs()))
}

/// Finds the end of a request header block across reads: the first empty line (`\r\n` or a
/// bare `\n`, as Pingora's parser accepts) after a line with content, so that empty lines before
/// the request line, which the parser skips, do not end it.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EndScan {
    line: Line,
    seen_line: bool,
}

/// What the current line holds so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Line {
    #[default]
    Empty,
    Cr,
    Text,
}

impl Line {
    fn then(self, bytes: &[u8]) -> Line {
        match (self, bytes) {
            (line, []) => line,
            (Line::Empty, [b'\r']) => Line::Cr,
            _ => Line::Text,
        }
    }
}

impl EndScan {
    /// Follows `bytes`; true once the header block has ended in them.
    pub(super) fn finds_end(&mut self, bytes: &[u8]) -> bool {
        let mut start = 0;
        for lf in memchr::memchr_iter(b'\n', bytes) {
            if self.line.then(&bytes[start..lf]) == Line::Text {
                self.seen_line = true;
            } else if self.seen_line {
                return true;
            }
            self.line = Line::Empty;
            start = lf + 1;
        }
        self.line = self.line.then(&bytes[start..]);
        false
    }
}

// === impl AsyncRead, AsyncWrite ===

impl AsyncRead for ConnIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // 1. What was read ahead goes first.
        if this.ahead_at < this.ahead_len {
            let n = buf.remaining().min(usize::from(this.ahead_len - this.ahead_at));
            let from = usize::from(this.ahead_at);
            buf.put_slice(&this.ahead[from..from + n]);
            this.header.saw(&this.ahead[from..from + n]);
            // n <= AHEAD (24): fits a u8.
            this.ahead_at += n as u8;
            if this.ahead_at == this.ahead_len {
                (this.ahead_at, this.ahead_len) = (0, 0);
            }
            return Poll::Ready(Ok(()));
        }
        // 2. A header that is already late fails even while bytes keep trickling in.
        if this.header.timer.is_some() && this.header.expired(cx) {
            return Poll::Ready(Err(header_timed_out(this.header.timeout)));
        }
        // 3. The connection itself; a header read that has to wait starts the clock.
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.header.saw(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.header.expired(cx) => Poll::Ready(Err(header_timed_out(this.header.timeout))),
            other => other,
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// === impl Pingora's stream traits: the inner stream's answers ===

#[async_trait]
impl Shutdown for ConnIo {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for ConnIo {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for ConnIo {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for ConnIo {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for ConnIo {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for ConnIo {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for ConnIo {
    /// Only what was read ahead can be peeked: [`KeepaliveApp`](super::KeepaliveApp) reads a
    /// whole h2c preface ahead before Pingora's HTTP/2 loop looks for it.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let ahead = self.ahead();
        if buf.len() > ahead.len() {
            return Ok(false);
        }
        buf.copy_from_slice(&ahead[..buf.len()]);
        Ok(true)
    }
}
