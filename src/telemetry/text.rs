//! Text for access-log fields, made without the formatting machinery: the time (no date crate)
//! and socket addresses.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as RFC 3339 UTC with milliseconds, without a date crate.
///
/// Every access-log line needs one: the date and time of day are formatted once a second per
/// thread, and only the milliseconds per call.
pub fn now_rfc3339() -> String {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, format_second(secs));
        }
        let mut out = String::with_capacity(24);
        out.push_str(&cached.1);
        out.push('.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            out.push(char::from(b'0' + digit as u8));
        }
        out.push('Z');
        out
    })
}

/// `YYYY-MM-DDTHH:MM:SS` for a Unix time.
fn format_second(secs: u64) -> String {
    let secs = secs as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A socket address as text, quickly for IPv4 (every access-log line has one or two; the
/// standard `Display` goes through the formatting machinery and padding support).
pub fn socket_addr_text(addr: &std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    let mut out = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal(&mut out, u32::from(octet));
    }
    out.push(':');
    push_decimal(&mut out, u32::from(v4.port()));
    out
}

fn push_decimal(out: &mut String, v: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = v;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..n].iter().rev() {
        out.push(char::from(*d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24);
        assert!(t.starts_with("20") && t.ends_with('Z'));
        assert_eq!(format_second(0), "1970-01-01T00:00:00");
        assert_eq!(format_second(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_second(1_795_392_000 + 3_661), "2026-11-23T01:01:01");
    }

    #[test]
    fn socket_addresses_read_as_usual() {
        for a in ["127.0.0.1:8080", "0.0.0.0:0", "255.255.255.255:65535", "10.20.3.4:443", "[::1]:9"] {
            let addr: std::net::SocketAddr = a.parse().expect("address");
            assert_eq!(socket_addr_text(&addr), a);
        }
    }
}
