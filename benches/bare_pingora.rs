//! The framework floor for `benches/compare.sh`: the smallest Pingora proxy there is.
//!
//! A `ProxyHttp` whose `upstream_peer` returns a plaintext `HttpPeer` to one fixed address, and
//! nothing else: no filters, no routing, no logging, Pingora's default settings (only the thread
//! count, the pid/upgrade socket paths and the shutdown grace are set, none of which touch the
//! request path). Whatever Portico costs above this is Portico's own. `--cert`/`--key` make the
//! listener terminate TLS (Pingora's default TLS settings), for the `tls` scenario.
//!
//! ```text
//! cargo build --release --example bare_pingora
//! target/release/examples/bare_pingora --listen 127.0.0.1:6190 --upstream 127.0.0.1:8081 --threads 1
//! curl -i localhost:6190/
//! ```

use async_trait::async_trait;
use clap::Parser;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;

/// A minimal Pingora reverse proxy to one upstream.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6190")]
    listen: String,
    /// `ip:port` every request is proxied to.
    #[arg(long)]
    upstream: SocketAddr,
    /// Worker threads of the proxy service.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// PEM certificate: with `--key`, the listener terminates TLS.
    #[arg(long, requires = "key")]
    cert: Option<String>,
    /// PEM private key for `--cert`.
    #[arg(long, requires = "cert")]
    key: Option<String>,
    /// Pingora's pid file.
    #[arg(long, default_value = "/tmp/bare_pingora.pid")]
    pid_file: String,
    /// Pingora's upgrade socket.
    #[arg(long, default_value = "/tmp/bare_pingora_upgrade.sock")]
    upgrade_sock: String,
}

/// Proxies everything to `upstream`.
struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args = Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        pid_file: args.pid_file,
        upgrade_sock: args.upgrade_sock,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream: args.upstream });
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            if let Err(e) = proxy.add_tls(&args.listen, cert, key) {
                eprintln!("bare_pingora: cannot load {cert} / {key}: {e}");
                std::process::exit(1);
            }
        }
        _ => proxy.add_tcp(&args.listen),
    }
    server.add_service(proxy);
    server.run_forever();
}
