//! `listeners[].limits`: timeouts and connection caps that keep slow or greedy clients from
//! pinning connections and buffers.

use crate::config::defaults as d;
use crate::config::file::ListenerLimitsFile;
use crate::config::model::ListenerLimits;
use crate::config::Errors;
use std::time::Duration;

/// Pingora's own ceiling on a request header block (`MAX_HEADER_SIZE` in pingora-core's HTTP/1
/// code): a larger limit could not be honoured.
const PINGORA_MAX_HEADER_BYTES: usize = 1_048_575;
/// Pingora's own ceiling on header fields (`MAX_HEADERS`).
const PINGORA_MAX_HEADERS: usize = 256;
/// The smallest header block limit accepted: below this, ordinary browser requests fail.
const MIN_HEADER_BYTES: usize = 1024;

/// The limits of the listener at `at` (`listeners[0]`), defaults filled in; a value out of range
/// is an error at its key, and its default stands in so that compiling goes on.
pub(super) fn limits(file: Option<ListenerLimitsFile>, at: &str, errors: &mut Errors<'_>) -> ListenerLimits {
    let f = file.unwrap_or_default();
    let at = format!("{at}.limits");
    let mut seconds = |value: Option<u64>, key: &str, default: u64| {
        let s = value.unwrap_or(default);
        if s == 0 {
            errors.at(format!("{at}.{key}"), "must be at least 1 second");
            return Duration::from_secs(default);
        }
        Duration::from_secs(s)
    };
    let header_timeout = seconds(f.header_timeout_s, "header_timeout_s", d::HEADER_TIMEOUT_S);
    let body_timeout = seconds(f.body_timeout_s, "body_timeout_s", d::BODY_TIMEOUT_S);
    let write_timeout = seconds(f.write_timeout_s, "write_timeout_s", d::WRITE_TIMEOUT_S);
    let mut bounded = |value: Option<usize>, key: &str, default: usize, range: std::ops::RangeInclusive<usize>| {
        let n = value.unwrap_or(default);
        if !range.contains(&n) {
            let message = match *range.end() {
                usize::MAX => format!("must be at least {}", range.start()),
                end => format!("must be between {} and {end}", range.start()),
            };
            errors.at(format!("{at}.{key}"), message);
            return default;
        }
        n
    };
    ListenerLimits {
        header_timeout,
        body_timeout,
        write_timeout,
        max_header_bytes: bounded(
            f.max_header_bytes,
            "max_header_bytes",
            d::MAX_HEADER_BYTES,
            MIN_HEADER_BYTES..=PINGORA_MAX_HEADER_BYTES,
        ),
        max_headers: bounded(f.max_headers, "max_headers", d::MAX_HEADERS, 1..=PINGORA_MAX_HEADERS),
        max_connections: bounded(f.max_connections, "max_connections", d::MAX_CONNECTIONS, 1..=usize::MAX),
        max_connections_per_ip: bounded(
            f.max_connections_per_ip,
            "max_connections_per_ip",
            d::MAX_CONNECTIONS_PER_IP,
            1..=usize::MAX,
        ),
        ipv6_prefix: bounded(f.ipv6_prefix.map(usize::from), "ipv6_prefix", d::CONNECTIONS_IPV6_PREFIX.into(), 1..=128)
            .try_into()
            .expect("ipv6_prefix is bounded to 1..=128, which fits a u8"),
    }
}
