//! The one canonical form of a request path.
//!
//! Routing, filters, ACLs, `rewrite.strip_prefix` and the upstream must all see the same path, or
//! `/api/x/../admin`, `//api/admin` and `/api/%61dmin` match the public `/api` route while the
//! upstream serves `/api/admin`. [`canonical_path`] computes that one form:
//!
//! 1. percent-escapes of unreserved characters (`ALPHA DIGIT - . _ ~`, RFC 3986 2.3) are
//!    decoded, every other escape is kept with its hex digits in upper case (RFC 3986 6.2.2.1-2);
//! 2. bytes that may not appear raw in a path (space, `"`, `#`, `<`, `>`, `[`, `]`, `^`, `` ` ``,
//!    `{`, `|`, `}`, `?` and every non-ASCII byte) are percent-encoded, so the result is a valid
//!    URI path and pure ASCII;
//! 3. duplicate slashes are merged;
//! 4. `.` and `..` segments are resolved as in RFC 3986 5.2.4, after decoding, so `%2e%2e` is `..`;
//!    a trailing slash (also the one a final `.` or `..` leaves, `/a/b/..` -> `/a/`) is kept.
//!
//! Refused (400): `%2F` and `%5C` (an encoded separator the upstream may decode into a new
//! segment), `%00`, a raw `\` (Windows and some frameworks take it for `/`), a raw control byte,
//! a `%` not followed by two hex digits, a `..` that climbs above `/` (RFC 3986 would clamp it to
//! `/`; a client that sends one is probing), and a `;` raw or as `%3B` (path parameters, below).
//!
//! **Path parameters** (`;` in a segment, RFC 3986 3.3's "matrix" parameters) have no one reading:
//! Tomcat, Jetty and Spring drop `;...` from each segment before routing (`/api/admin;x/users` and
//! `/api/admin;/users` are `/api/admin/users` to them, `/api/x/..;/admin` is `/api/admin`), most
//! other servers keep `;` as an ordinary character. A router that keeps it sees `admin;` where the
//! origin sees `admin`: the request matches the public `/api` route and the origin serves the
//! protected `/api/admin/users`. Stripping the parameters would keep one path but silently change
//! what applications that use them (`;jsessionid=`, JAX-RS `@MatrixParam`) receive. So the
//! canonical form has none: a `;` in the path is refused, raw or encoded (some servers decode
//! `%3B` first and strip afterwards), as Spring Security's `StrictHttpFirewall` does by default.
//! A `.;`/`..;` segment gets its own message ([`PathError::DotSegmentParams`]). The query keeps its
//! `;`s; a listener whose origins need path parameters sets `path_normalization: off`.
//!
//! Not origin-form: the asterisk-form `*` (`OPTIONS * HTTP/1.1`) is returned as is, an empty path is
//! `/` (RFC 9112 3.2.1), anything else not starting with `/` is refused. The absolute-form
//! (`GET http://host/path`) is the caller's to split: [`strip_absolute_form`] gives its path and
//! query, and `host.rs` takes its authority.
//!
//! The query is not part of the path: it is kept byte for byte ([`canonical_target`]), because
//! its meaning belongs to the application (`a=%2F` and `a=/` differ to many of them).
//!
//! Cost: an already-canonical path (the common case) is one table-driven scan and no allocation
//! (`Cow::Borrowed`); see `benches/canonical.rs`.

use pingora::http::authority::{raw_target_authority, RawTargetAuthority};
use std::borrow::Cow;

/// Why a request path was refused. Every variant is a 400 with the `invalid_path` code; the
/// variant's [`message`](Self::message) tells the client which rule it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Neither `/`-rooted nor the asterisk-form `*`: a relative path has no meaning on a server.
    NotOriginForm,
    /// `%2F` or `%5C`: an encoded `/` or `\` that an upstream may decode into a segment boundary
    /// the router never saw.
    EncodedSeparator,
    /// `%00`: truncates the path in C-string upstreams.
    EncodedNul,
    /// A raw `\`: some servers read it as `/`.
    Backslash,
    /// A raw control byte (0x00-0x1F, 0x7F).
    ControlByte,
    /// A `%` not followed by two hex digits: upstreams disagree on what it means.
    InvalidEscape,
    /// More `..` segments than there are segments to remove.
    AboveRoot,
    /// A `.;` or `..;` segment, which Java servers resolve as a dot segment.
    DotSegmentParams,
    /// A `;` (or `%3B`) elsewhere in the path: a path parameter, which Java servers strip before
    /// routing, so the origin would read another path than the router.
    PathParameter,
}

impl PathError {
    /// The `error` code of the 400 body: one code for every path refusal, so clients and logs
    /// need not know the rules one by one.
    pub fn as_str(&self) -> &'static str {
        "invalid_path"
    }

    /// The `message` of the 400 body: which rule the path broke.
    pub fn message(&self) -> &'static str {
        match self {
            PathError::NotOriginForm => "the request path must start with '/'",
            PathError::EncodedSeparator => "an encoded '/' or '\\' (%2F, %5C) is not allowed in the path",
            PathError::EncodedNul => "an encoded NUL (%00) is not allowed in the path",
            PathError::Backslash => "a '\\' is not allowed in the path",
            PathError::ControlByte => "a control character is not allowed in the path",
            PathError::InvalidEscape => "a '%' in the path must be followed by two hex digits",
            PathError::AboveRoot => "the path climbs above '/'",
            PathError::DotSegmentParams => "a '.;' or '..;' segment is not allowed in the path",
            PathError::PathParameter => "a ';' (path parameter, also as %3B) is not allowed in the path",
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for PathError {}

// === byte classes ===

/// Kept as is: unreserved, sub-delims, `:` and `@` (RFC 3986 `pchar` without `%`).
const PLAIN: u8 = 0;
/// The segment separator.
const SLASH: u8 = 1;
/// Starts a percent-escape.
const PCT: u8 = 2;
/// Not allowed raw in a path: percent-encoded in the output.
const ENCODE: u8 = 3;
/// Refused: `\`.
const BACKSLASH: u8 = 4;
/// Refused: control bytes.
const CONTROL: u8 = 5;
/// Refused: `;`, which starts a path parameter.
const SEMICOLON: u8 = 6;

/// The class of every byte, built at compile time.
static CLASS: [u8; 256] = {
    let mut t = [ENCODE; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b < 0x20 || b == 0x7f {
            CONTROL
        } else if b.is_ascii_alphanumeric() {
            PLAIN
        } else {
            match b {
                b'-' | b'.' | b'_' | b'~' => PLAIN,
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' => PLAIN,
                b';' => SEMICOLON,
                b':' | b'@' => PLAIN,
                b'/' => SLASH,
                b'%' => PCT,
                b'\\' => BACKSLASH,
                _ => ENCODE,
            }
        };
        i += 1;
    }
    t
};

/// Whether `b` is an unreserved character (RFC 3986 2.3), whose escape is decoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The value of one hex digit.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The byte a `%XY` at `raw[i]` stands for, refusing what must never be decoded or forwarded.
fn escape_at(raw: &[u8], i: usize) -> Result<u8, PathError> {
    let (Some(&h), Some(&l)) = (raw.get(i + 1), raw.get(i + 2)) else {
        return Err(PathError::InvalidEscape);
    };
    let (Some(h), Some(l)) = (hex_val(h), hex_val(l)) else {
        return Err(PathError::InvalidEscape);
    };
    match h << 4 | l {
        b'/' | b'\\' => Err(PathError::EncodedSeparator),
        0 => Err(PathError::EncodedNul),
        b';' => Err(PathError::PathParameter),
        v => Ok(v),
    }
}

/// Whether a segment (between slashes, never containing one) is one that the slow path would
/// change: empty or a dot segment. Only raw dots are looked at: an escaped dot already sends the
/// path to the slow path (and a `;` is never plain).
fn segment_is_plain(seg: &[u8]) -> bool {
    !(seg.is_empty() || seg == b"." || seg == b"..")
}

/// The fast scan: whether `raw` (starting with `/`) is already canonical. Exactly the set of
/// outputs of [`canonicalize`], so that the result is idempotent and borrowed whenever it can be.
fn is_canonical(raw: &[u8]) -> bool {
    let mut seg_start = 1;
    let mut i = 1;
    while i < raw.len() {
        match CLASS[raw[i] as usize] {
            PLAIN => i += 1,
            SLASH => {
                if !segment_is_plain(&raw[seg_start..i]) {
                    return false;
                }
                i += 1;
                seg_start = i;
            }
            PCT => {
                // Canonical escapes: upper-case hex, a byte that is neither unreserved nor refused.
                let upper = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b));
                if !(upper(raw.get(i + 1)) && upper(raw.get(i + 2))) {
                    return false;
                }
                match escape_at(raw, i) {
                    Ok(v) if !is_unreserved(v) => i += 3,
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
    // The last segment may be empty: `/` itself, or a trailing slash.
    seg_start == raw.len() || segment_is_plain(&raw[seg_start..])
}

/// Appends `b` as `%XY`.
fn push_escaped(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', HEX_UPPER[(b >> 4) as usize], HEX_UPPER[(b & 0xf) as usize]]);
}

/// The slow path: builds the canonical form of `raw` (starting with `/`, not canonical).
fn canonicalize(raw: &[u8]) -> Result<String, PathError> {
    // The output holds only ASCII: everything else is escaped.
    let mut out: Vec<u8> = Vec::with_capacity(raw.len() + 8);
    let mut trailing_slash;
    let mut i = 1;
    loop {
        // One segment: raw[i..end], decoded onto `out` after a '/'.
        let seg_out = out.len();
        out.push(b'/');
        while i < raw.len() && raw[i] != b'/' {
            let b = raw[i];
            match CLASS[b as usize] {
                PLAIN => {
                    out.push(b);
                    i += 1;
                }
                PCT => {
                    let v = match escape_at(raw, i) {
                        Err(PathError::PathParameter) if matches!(&out[seg_out + 1..], b"." | b"..") => {
                            return Err(PathError::DotSegmentParams)
                        }
                        v => v?,
                    };
                    if is_unreserved(v) {
                        out.push(v);
                    } else {
                        push_escaped(&mut out, v);
                    }
                    i += 3;
                }
                ENCODE => {
                    push_escaped(&mut out, b);
                    i += 1;
                }
                BACKSLASH => return Err(PathError::Backslash),
                SEMICOLON => {
                    // `..;x` is a dot segment to the servers that strip parameters.
                    let so_far = &out[seg_out + 1..];
                    let dot = so_far == b"." || so_far == b"..";
                    return Err(if dot { PathError::DotSegmentParams } else { PathError::PathParameter });
                }
                _ => return Err(PathError::ControlByte),
            }
        }
        let last = i >= raw.len();
        let seg = &out[seg_out + 1..];
        if seg.is_empty() || seg == b"." {
            // A duplicate slash or `.`: nothing to keep; at the end it leaves a trailing slash.
            out.truncate(seg_out);
            trailing_slash = last;
        } else if seg == b".." {
            out.truncate(seg_out);
            match out.iter().rposition(|&b| b == b'/') {
                Some(prev) => out.truncate(prev),
                None => return Err(PathError::AboveRoot),
            }
            trailing_slash = last;
        } else {
            trailing_slash = false;
        }
        if last {
            break;
        }
        i += 1; // the '/'
    }
    if out.is_empty() || trailing_slash {
        out.push(b'/');
    }
    Ok(String::from_utf8(out).expect("canonical path is ASCII: every other byte is percent-encoded"))
}

/// The canonical form of a request path (the part before `?`), borrowed when `raw` already is.
///
/// See the module documentation for the rules. Non-ASCII characters in `raw` are
/// percent-encoded (as UTF-8 bytes), so the result is always ASCII.
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    match canonical_bytes(raw.as_bytes())? {
        // The fast scan admitted the whole input: the borrowed form is `raw` itself.
        Canon::Same(b) if b.len() == raw.len() => Ok(Cow::Borrowed(raw)),
        // The one other borrowed answer: "/" for the empty path.
        Canon::Same(_) => Ok(Cow::Borrowed("/")),
        Canon::New(s) => Ok(Cow::Owned(s)),
    }
}

/// [`canonical_path`] on raw bytes, as Pingora keeps the request target
/// (`RequestHeader::raw_path`, which need not be UTF-8).
pub fn canonical_path_bytes(raw: &[u8]) -> Result<Cow<'_, str>, PathError> {
    match canonical_bytes(raw)? {
        // The fast scan admits only ASCII bytes, which are always valid UTF-8.
        Canon::Same(b) => std::str::from_utf8(b).map(Cow::Borrowed).map_err(|_| PathError::ControlByte),
        Canon::New(s) => Ok(Cow::Owned(s)),
    }
}

/// What [`canonical_bytes`] found.
enum Canon<'a> {
    /// Already canonical: `raw` itself, or the static `/` for an empty `raw`; ASCII either way.
    Same(&'a [u8]),
    /// The rewritten path.
    New(String),
}

/// The shared body of [`canonical_path`] and [`canonical_path_bytes`].
fn canonical_bytes(raw: &[u8]) -> Result<Canon<'_>, PathError> {
    match raw.first() {
        Some(b'/') if is_canonical(raw) => Ok(Canon::Same(raw)),
        Some(b'/') => canonicalize(raw).map(Canon::New),
        None => Ok(Canon::Same(b"/")),
        Some(b'*') if raw.len() == 1 => Ok(Canon::Same(raw)),
        Some(_) => Err(PathError::NotOriginForm),
    }
}

/// Splits a request target at the first `?` into the path and the query (without the `?`).
pub fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// The origin-form part (`/path?query`) of an absolute-form target (`http://host/path?query`), or
/// the target itself when it is not absolute-form. The boundaries are Pingora's own
/// (`pingora::http::authority::raw_target_authority`), so this path and the authority Pingora
/// checked against `Host` come from the same split. An absolute-form target without a path gives
/// `""` or `?query`, which [`canonical_target_bytes`] turns into `/` and `/?query`. A target
/// Pingora calls ambiguous (`http:/\host`) is returned as is, and refused as not origin-form.
pub fn strip_absolute_form(target: &[u8]) -> &[u8] {
    match raw_target_authority(target) {
        RawTargetAuthority::Absolute { path_and_query, .. } => path_and_query,
        _ => target,
    }
}

/// The canonical path followed by `?` and the query byte for byte: what routing, filters and the
/// upstream see. Borrowed (`target` itself) when the path is already canonical.
pub fn canonical_target(target: &str) -> Result<Cow<'_, str>, PathError> {
    let (path, query) = split_query(target);
    match (canonical_path(path)?, query) {
        (Cow::Borrowed(p), _) if p.len() == path.len() => Ok(Cow::Borrowed(target)),
        (p, None) => Ok(Cow::Owned(p.into_owned())),
        (p, Some(q)) => Ok(Cow::Owned(format!("{p}?{q}"))),
    }
}

/// [`canonical_target`] on raw bytes (Pingora's `RequestHeader::raw_path`, to be written back with
/// `set_raw_path`): the path part of the result is ASCII, the query is kept byte for byte even
/// when it is not UTF-8.
pub fn canonical_target_bytes(target: &[u8]) -> Result<Cow<'_, [u8]>, PathError> {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], Some(&target[q..])),
        None => (target, None),
    };
    match canonical_path_bytes(path)? {
        Cow::Borrowed(p) if p.len() == path.len() => Ok(Cow::Borrowed(target)),
        p => {
            let mut out = Vec::with_capacity(p.len() + query.map_or(0, <[u8]>::len));
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(query.unwrap_or_default());
            Ok(Cow::Owned(out))
        }
    }
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
