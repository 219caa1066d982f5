//! The smallest HTTP/1.1 client OTLP/HTTP needs: `POST` a protobuf body over plain TCP, read the
//! status, keep the connection for the next batch when the collector allows it.
//!
//! It runs on the exporter's own thread, so it blocks; every connect, write and read is bounded
//! by the export timeout, so a collector that hangs costs one batch per timeout, never a request.

use crate::config::tracing::OtlpEndpoint;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Headers and body of a response larger than this are not read: the connection is dropped.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// One collector connection, made on first use and again after it breaks.
pub struct Client {
    endpoint: OtlpEndpoint,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    /// A client for `endpoint`; nothing is connected until the first [`Client::post`].
    pub fn new(endpoint: OtlpEndpoint, timeout: Duration) -> Self {
        Client { endpoint, timeout, conn: None }
    }

    /// POSTs `body` to the endpoint's traces path and returns the response status.
    ///
    /// A kept-alive connection that the collector closed meanwhile is replaced once (that is a
    /// stale socket, not a failed export); any other failure is returned.
    pub fn post(&mut self, body: &[u8]) -> io::Result<u16> {
        if let Some(conn) = self.conn.take() {
            match self.exchange(conn, body) {
                Ok(status) => return Ok(status),
                Err(e) if is_stale(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let conn = self.connect()?;
        self.exchange(conn, body)
    }

    fn connect(&self) -> io::Result<BufReader<TcpStream>> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the collector's host name has no address");
        for addr in (self.endpoint.host.as_str(), self.endpoint.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout))?;
                    s.set_write_timeout(Some(self.timeout))?;
                    s.set_nodelay(true)?;
                    return Ok(BufReader::new(s));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One request and response on `conn`; keeps `conn` when the response allows reuse.
    fn exchange(&mut self, mut conn: BufReader<TcpStream>, body: &[u8]) -> io::Result<u16> {
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\
             user-agent: portico/{}\r\n\r\n",
            self.endpoint.traces_path,
            self.endpoint.authority,
            body.len(),
            env!("CARGO_PKG_VERSION"),
        );
        let stream = conn.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;

        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the collector closed the connection"));
        }
        let status = parse_status(&line)?;
        let http11 = line.starts_with("HTTP/1.1");
        let (mut length, mut close, mut chunked, mut read) = (None, !http11, false, line.len());
        loop {
            line.clear();
            let n = conn.read_line(&mut line)?;
            read += n;
            if n == 0 || read > MAX_RESPONSE_BYTES {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "response header too long or cut off"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((name, value)) = l.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            }
        }
        // The body (an ExportTraceServiceResponse) is read only to keep the connection usable;
        // a chunked or unsized one ends the connection instead.
        match length {
            Some(n) if !close && !chunked && n <= MAX_RESPONSE_BYTES => {
                io::copy(&mut (&mut conn).take(n as u64), &mut io::sink())?;
                self.conn = Some(conn);
            }
            _ => {}
        }
        Ok(status)
    }
}

/// Whether an error on a reused connection means the collector had closed it.
fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// The status code of an `HTTP/1.x NNN reason` line.
fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.split_ascii_whitespace();
    match (parts.next(), parts.next().and_then(|s| s.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && (100..=599).contains(&code) => Ok(code),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP response: {:?}", line.trim_end()))),
    }
}
