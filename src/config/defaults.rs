//! Every default of the config file, in one place.
//!
//! The file structs (`config/file.rs`) hold only what the user wrote (`Option` for anything with a
//! default); `config/compile/` fills the gaps from here, so `portico -t`, the running proxy and
//! the README read the same values. A key that is absent and has no constant here means "none"
//! (no admin listener, no TLS, no retries) or an empty list.

use super::model::{Balance, HashKey, KeyPart, PathNormalization, Role};

// === server ===

/// `server.threads`: worker threads per listener service (at least 1). Two keeps a small
/// machine responsive; raise it to the core count on a dedicated host.
pub const THREADS: usize = 2;
/// `server.grace_period_s`: seconds between SIGTERM and the start of draining. Pingora's own
/// default is 300 s; Portico drains as soon as in-flight requests are done anyway.
pub const GRACE_PERIOD_S: u64 = 5;
/// `server.graceful_shutdown_timeout_s`: seconds draining may take before the process exits.
pub const GRACEFUL_SHUTDOWN_TIMEOUT_S: u64 = 5;
/// `server.pid_file`: this name in the private runtime directory (`$RUNTIME_DIRECTORY`,
/// `$XDG_RUNTIME_DIR/portico`, `/run/portico` as root, else `portico-UID` under the temp
/// directory; created 0700 at start, see `config/runtime_dir.rs`).
pub const PID_FILE_NAME: &str = "portico.pid";
/// `server.upgrade_sock`: where `portico -u` takes the listening sockets over; this name in the
/// same private directory, never a world-writable one (whoever replaces the socket gets the
/// listening sockets).
pub const UPGRADE_SOCK_NAME: &str = "portico_upgrade.sock";
/// `server.work_stealing`: off, so each thread keeps the connections it accepted (about 12 %
/// less CPU per request, benches/RESULTS.md).
pub const WORK_STEALING: bool = false;
/// `server.upstream_keepalive_pool_size`: idle upstream connections kept for reuse.
pub const UPSTREAM_KEEPALIVE_POOL_SIZE: usize = 128;

// === access_log ===

/// `access_log.path` (also when `access_log` is absent): `stdout`; `stderr`, `off` or a file
/// path are the alternatives. `format` has one value, `json`.
pub const ACCESS_LOG_PATH: &str = "stdout";

// === listeners ===

/// `listeners[].role`: outside clients, whose forwarded headers and request ids are replaced.
pub const ROLE: Role = Role::Edge;
/// `listeners[].http2`: HTTP/1.1 only unless asked (h2c on plain listeners, ALPN on TLS).
pub const LISTENER_HTTP2: bool = false;
/// `listeners[].keepalive_timeout_s`: idle time allowed between requests on an HTTP/1
/// connection, close to nginx's 75 s (Pingora alone would keep it forever); `0` means one
/// request per connection.
pub const KEEPALIVE_TIMEOUT_S: u64 = 60;

/// Listener `path_normalization`: canonical paths, so that no spelling of a path routes or
/// authorizes differently from what the upstream reads.
pub const PATH_NORMALIZATION: PathNormalization = PathNormalization::Strict;
/// `listeners[].read_buffer_bytes` on a plain listener: small keeps an idle connection at about
/// 11-12 KiB. TLS listeners keep Pingora's 64 KiB unless the key is set, since 16 KiB TLS
/// records make the larger buffer pay.
pub const PLAIN_READ_BUFFER_BYTES: usize = 4096;
/// `listeners[].redirect_https: true`: the port redirected to.
pub const REDIRECT_HTTPS_PORT: u16 = 443;

// === listeners[].limits ===

/// `listeners[].limits.header_timeout_s`: the whole request header block must arrive within this
/// many seconds of its first byte, and a new connection must start its first request (or, on an
/// h2c listener, its HTTP/2 preface) as soon. haproxy's `timeout http-request` is usually 10 s;
/// nginx's `client_header_timeout` 60 s held 100 dribbling clients a minute each.
pub const HEADER_TIMEOUT_S: u64 = 10;
/// `listeners[].limits.body_timeout_s`: longest wait for the next piece of a request body (per
/// read, as nginx's `client_body_timeout`; Pingora's own default is the same 60 s).
pub const BODY_TIMEOUT_S: u64 = 60;
/// `listeners[].limits.write_timeout_s`: longest a response write may wait for a client that
/// stopped reading (Pingora alone waits forever).
pub const WRITE_TIMEOUT_S: u64 = 60;
/// `listeners[].limits.max_header_bytes`: the request line and headers together (Pingora alone
/// takes up to 1 MiB).
pub const MAX_HEADER_BYTES: usize = 32768;
/// `listeners[].limits.max_headers`: header fields in one request (Pingora alone takes 256).
pub const MAX_HEADERS: usize = 100;
/// `listeners[].limits.max_connections`: open client connections on the listener; more are
/// closed as they arrive.
pub const MAX_CONNECTIONS: usize = 100_000;
/// `listeners[].limits.max_connections_per_ip`: open client connections from one address.
pub const MAX_CONNECTIONS_PER_IP: usize = 1000;
/// `listeners[].limits.ipv6_prefix`: IPv6 clients count for `max_connections_per_ip` by their
/// network of this many bits, as `rate_limit` keys them (one client usually holds a whole /64).
pub const CONNECTIONS_IPV6_PREFIX: u8 = portico_filters::rate_limit::DEFAULT_IPV6_PREFIX;
// `listeners[].tls.require_client_cert`: true exactly when `client_ca` is set (see compile).

// === upstreams ===

/// `upstreams.*.targets[].weight`.
pub const TARGET_WEIGHT: usize = 1;
/// `upstreams.*.discovery.dns.refresh_s` (at least 1).
pub const DNS_REFRESH_S: u64 = 5;
/// `upstreams.*.discovery.dns.timeout_ms` (at least 1): a resolver that does not answer in 2 s
/// fails that round, and the targets found last keep serving (the system resolver alone may
/// wait 5 s per server and attempt).
pub const DNS_TIMEOUT_MS: u64 = 2_000;
/// `upstreams.*.balance`.
pub const BALANCE: Balance = Balance::RoundRobin;
/// `upstreams.*.hash_key`, what `consistent_hash` keys on.
pub const HASH_KEY: HashKey = HashKey::ClientIp;
/// `upstreams.*.health_check.interval_ms` (at least 10).
pub const HEALTH_INTERVAL_MS: u64 = 1000;
/// `upstreams.*.health_check.timeout_ms` (at least 1).
pub const HEALTH_TIMEOUT_MS: u64 = 1000;
/// `upstreams.*.health_check.healthy_after`: one good check brings a target back.
pub const HEALTHY_AFTER: usize = 1;
/// `upstreams.*.health_check.unhealthy_after`: one failed check takes a target out.
pub const UNHEALTHY_AFTER: usize = 1;
/// `upstreams.*.health_check.http.path`. (`http.host` defaults to the upstream's name.)
pub const HEALTH_HTTP_PATH: &str = "/";
/// `upstreams.*.health_check.http.expect_status`.
pub const HEALTH_EXPECT_STATUS: u16 = 200;
/// `upstreams.*.tls.verify`: the chain and hostname are checked unless turned off.
pub const UPSTREAM_TLS_VERIFY: bool = true;
/// `upstreams.*.http2`: HTTP/1.1 to the targets unless asked.
pub const UPSTREAM_HTTP2: bool = false;
/// `upstreams.*.max_streams`: HTTP/2 streams one upstream connection carries at once (Pingora's
/// own default is 1, no multiplexing); more open another connection.
pub const UPSTREAM_MAX_STREAMS: usize = 100;
/// `upstreams.*.timeouts.connect_ms`: a TCP (and TLS) connect that takes longer than 5 s is
/// given up, so a target that drops SYNs cannot hold requests (Pingora alone waits as long as
/// the kernel does, about two minutes).
pub const UPSTREAM_CONNECT_MS: u64 = 5_000;
/// `upstreams.*.timeouts.read_ms`: 60 s, nginx's `proxy_read_timeout`, between two reads from
/// the upstream: a hung upstream answers 504 after a minute instead of never. Raise it for
/// long polls, server-sent events and WebSockets that stay quiet longer.
pub const UPSTREAM_READ_MS: u64 = 60_000;
/// `upstreams.*.timeouts.write_ms`: 60 s, nginx's `proxy_send_timeout`, for each write to the
/// upstream.
pub const UPSTREAM_WRITE_MS: u64 = 60_000;
// `upstreams.*.timeouts.idle_ms`: unset, Pingora's default for pooled connections.
// `upstreams.*.tls.sni`: empty (no SNI sent, no name checked beyond the chain).

// === routes ===

/// `routes[].priority`: higher first; ties go to the longer path, exact before prefix, then
/// file order.
pub const PRIORITY: i32 = 0;
/// `routes[].websocket.idle_timeout_s`: 5 minutes, long enough for a chat that is quiet between
/// messages (clients that send pings keep a tunnel open forever), short enough that abandoned
/// tunnels do not pile up.
pub const WEBSOCKET_IDLE_TIMEOUT_S: u64 = 300;
/// `routes[].mirror.percent`: every request is copied.
pub const MIRROR_PERCENT: f64 = 100.0;
/// `routes[].mirror.max_body_bytes`: bodies above this are not mirrored.
pub const MIRROR_MAX_BODY_BYTES: usize = 64 * 1024;
/// `routes[].mirror.max_in_flight`: copies in flight across the process above which this
/// route's copies are dropped (and counted), so a slow shadow cannot pile up tasks and memory.
pub const MIRROR_MAX_IN_FLIGHT: usize = 64;
/// `routes[].retry.attempts`: extra attempts after the first.
pub const RETRY_ATTEMPTS: u32 = 1;
/// `routes[].retry.on` when empty or absent: only connections that could not be made, which
/// are safe to retry for any method.
pub const RETRY_ON: &[&str] = &["connect_error"];
/// `routes[].retry.budget_percent`: over the last 10 s, retries may be at most this share of
/// requests, as in Envoy and Linkerd.
pub const RETRY_BUDGET_PERCENT: f64 = 20.0;
/// `routes[].retry.non_idempotent`: methods that are not idempotent are not retried.
pub const RETRY_NON_IDEMPOTENT: bool = false;
/// `routes[].respond.status`.
pub const RESPOND_STATUS: u16 = 200;
/// `routes[].aggregate[].method`.
pub const AGGREGATE_METHOD: &str = "GET";
/// `routes[].aggregate[].required`: a part fails the whole answer unless it says otherwise.
pub const AGGREGATE_REQUIRED: bool = true;
/// `routes[].aggregate_merge`: one field per part name.
pub const AGGREGATE_MERGE: bool = false;
/// The bound on an aggregate route's whole composition when the route has no `timeout_ms`:
/// the parts still have their upstreams' own connect and read timeouts, this caps them all.
pub const AGGREGATE_TIMEOUT_MS: u64 = 10_000;
/// The largest body one part may answer with (1 MiB); a larger one fails the part
/// (`too_large`), so a composed answer holds at most this much per part.
pub const AGGREGATE_MAX_PART_BYTES: usize = 1024 * 1024;
// `routes[].listeners`: every listener. `routes[].respond.body`: empty.

// === cache_store, routes[].cache ===

/// `cache_store.max_size_mb`: bodies and headers stored together, in MiB.
pub const CACHE_MAX_SIZE_MB: u64 = 256;
/// `cache_store.max_object_mb`: a larger response is passed through, not stored.
pub const CACHE_MAX_OBJECT_MB: u64 = 8;
/// `cache_store.lock_timeout_ms`: concurrent misses for one key wait this long for the first
/// fetch before going to the origin themselves (nginx's `proxy_cache_lock_timeout` is 5 s).
pub const CACHE_LOCK_TIMEOUT_MS: u64 = 3000;
/// `routes[].cache.ttl_s`: freshness when the origin sends neither `Cache-Control` nor `Expires`.
pub const CACHE_TTL_S: u64 = 60;
/// `routes[].cache.key`: the URL as the client sent it.
pub const CACHE_KEY: &[KeyPart] = &[KeyPart::Host, KeyPart::Path, KeyPart::Query];
/// `routes[].cache.stale_while_revalidate_s`: off unless asked (or the origin says so).
pub const CACHE_STALE_WHILE_REVALIDATE_S: u64 = 0;
/// `routes[].cache.stale_if_error_s`: off unless asked (or the origin says so).
pub const CACHE_STALE_IF_ERROR_S: u64 = 0;
// `routes[].cache.methods`: GET and HEAD. `routes[].cache.vary`: none beside the origin's `Vary`.
