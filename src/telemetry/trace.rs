//! Request ids, made without allocating more than the one string they produce. (The W3C trace
//! context is the request span's, in [`super::otlp`].)

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, mut v: u128, digits: usize) {
    let mut buf = [0u8; 32];
    for i in (0..digits).rev() {
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or(""));
}

/// A new random request id (UUID v4 text form).
pub fn new_request_id() -> String {
    let v = (fastrand::u128(..) & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut s = String::with_capacity(36);
    push_hex(&mut s, v >> 96, 8);
    s.push('-');
    push_hex(&mut s, (v >> 80) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, (v >> 64) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, (v >> 48) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, v & 0xffff_ffff_ffff, 12);
    s
}

/// Whether a client-sent request id is safe to keep and log.
pub fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 128 && v.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(valid_request_id(id.as_bytes()));
        assert!(!valid_request_id(b"has space"));
    }
}
