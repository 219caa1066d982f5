//! The steps of [`super::scan`] over `(bytes, offset)`, as free functions so that the offset
//! stays in a register: whitespace, keys and colons, strings (8 bytes at a time), numbers by
//! the RFC 8259 grammar, literals, and the step-by-step loop over a container that names its
//! fault when the automaton ([`super::skip`]) finds one.

use super::scan::{fail, RawKey, Scanned, EOF_LIST, EOF_OBJECT, EOF_VALUE, MAX_DEPTH};

/// The offset of the first byte at or after `pos` that is not whitespace (or the end).
#[inline(always)]
pub(super) fn whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The byte at `pos` past whitespace, and its offset; `what` at the end of the text.
#[inline(always)]
fn next_byte(bytes: &[u8], pos: usize, what: &'static str) -> Scanned<(u8, usize)> {
    let pos = whitespace(bytes, pos);
    match bytes.get(pos) {
        Some(&b) => Ok((b, pos)),
        None => fail(what, pos),
    }
}

/// An object's key at `pos` (whitespace skipped), through its `:`: the key, and the offset past
/// the `:`.
#[inline(always)]
pub(super) fn key(bytes: &[u8], pos: usize) -> Scanned<(RawKey, usize)> {
    match bytes.get(pos) {
        Some(b'"') => {}
        Some(_) => return fail("key must be a string", pos),
        None => return fail(EOF_OBJECT, pos),
    }
    let (close, escaped) = string(bytes, pos + 1)?;
    Ok((RawKey { start: pos + 1, end: close - 1, escaped }, colon(bytes, close)?))
}

/// The `:` after a key, at `pos` or past whitespace: the offset past it.
#[inline(always)]
pub(super) fn colon(bytes: &[u8], pos: usize) -> Scanned<usize> {
    match next_byte(bytes, pos, EOF_OBJECT)? {
        (b':', at) => Ok(at + 1),
        (_, at) => fail("expected `:`", at),
    }
}

/// A value that is not a string or a number, at `pos` (its first byte `first`), `depth`
/// containers being open around it: the offset just past it. Out of line: it is the big one.
#[inline(never)]
pub(super) fn other(bytes: &[u8], pos: usize, first: u8, depth: u32) -> Scanned<usize> {
    match first {
        // The automaton first; the step-by-step loop says what the fault is, if any.
        b'{' | b'[' => match super::skip::container(bytes, pos, depth, MAX_DEPTH) {
            Some(end) => Ok(end),
            None => containers(bytes, pos, first, depth),
        },
        b't' => literal(bytes, pos, b"true"),
        b'f' => literal(bytes, pos, b"false"),
        b'n' => literal(bytes, pos, b"null"),
        _ => fail("expected value", pos),
    }
}

/// The object or array at `pos` (its first byte `first`), `depth` containers being open around
/// it, checked as one loop: the offset just past it, or what the fault is.
#[cold]
#[inline(never)]
fn containers(bytes: &[u8], mut pos: usize, first: u8, depth: u32) -> Scanned<usize> {
    // The containers open inside the value, innermost in the lowest bit: 1 for an object.
    // At most MAX_DEPTH are open (fewer than 128).
    let mut open: u128 = 0;
    let mut inside = 0;
    let mut b = first;
    loop {
        // `b`, at `pos`, is the first byte of a value.
        match b {
            b'{' => {
                if depth + inside >= MAX_DEPTH {
                    return fail("recursion limit exceeded", pos);
                }
                open = open << 1 | 1;
                inside += 1;
                pos = whitespace(bytes, pos + 1);
                match bytes.get(pos) {
                    Some(b'}') => {}
                    Some(b'"') => {
                        (b, pos) = value_byte(bytes, skip_key(bytes, pos + 1)?)?;
                        continue;
                    }
                    Some(_) => return fail("key must be a string", pos),
                    None => return fail(EOF_OBJECT, pos),
                }
                pos += 1;
                open >>= 1;
                inside -= 1;
            }
            b'[' => {
                if depth + inside >= MAX_DEPTH {
                    return fail("recursion limit exceeded", pos);
                }
                open <<= 1;
                inside += 1;
                pos = whitespace(bytes, pos + 1);
                match bytes.get(pos) {
                    Some(b']') => {}
                    Some(&c) => {
                        b = c;
                        continue;
                    }
                    None => return fail(EOF_LIST, pos),
                }
                pos += 1;
                open >>= 1;
                inside -= 1;
            }
            b'"' => pos = string(bytes, pos + 1)?.0,
            b'-' | b'0'..=b'9' => pos = number(bytes, pos)?,
            b't' => pos = literal(bytes, pos, b"true")?,
            b'f' => pos = literal(bytes, pos, b"false")?,
            b'n' => pos = literal(bytes, pos, b"null")?,
            _ => return fail("expected value", pos),
        }
        // After a value: the next one, or the ends of the containers it was the last of.
        loop {
            if inside == 0 {
                return Ok(pos);
            }
            pos = whitespace(bytes, pos);
            let next = bytes.get(pos).copied();
            if open & 1 == 1 {
                match next {
                    Some(b',') => {
                        pos = whitespace(bytes, pos + 1);
                        match bytes.get(pos) {
                            Some(b'"') => (b, pos) = value_byte(bytes, skip_key(bytes, pos + 1)?)?,
                            Some(_) => return fail("key must be a string", pos),
                            None => return fail(EOF_OBJECT, pos),
                        }
                        break;
                    }
                    Some(b'}') => {}
                    Some(_) => return fail("expected `,` or `}`", pos),
                    None => return fail(EOF_OBJECT, pos),
                }
            } else {
                match next {
                    Some(b',') => {
                        (b, pos) = value_byte(bytes, pos + 1)?;
                        break;
                    }
                    Some(b']') => {}
                    Some(_) => return fail("expected `,` or `]`", pos),
                    None => return fail(EOF_LIST, pos),
                }
            }
            pos += 1;
            open >>= 1;
            inside -= 1;
        }
    }
}

/// A key being skipped, from `pos` (just past its opening quote) through its `:`: the offset
/// past the `:`.
#[inline(always)]
fn skip_key(bytes: &[u8], pos: usize) -> Scanned<usize> {
    let close = string(bytes, pos)?.0;
    colon(bytes, close)
}

/// The first byte of a value at `pos` or past whitespace, and its offset.
#[inline(always)]
fn value_byte(bytes: &[u8], pos: usize) -> Scanned<(u8, usize)> {
    next_byte(bytes, pos, EOF_VALUE)
}

/// The literal `word` at `pos`: the offset past it.
#[inline(always)]
fn literal(bytes: &[u8], pos: usize, word: &'static [u8]) -> Scanned<usize> {
    if bytes.get(pos..pos + word.len()) != Some(word) {
        return fail("expected ident", pos);
    }
    Ok(pos + word.len())
}

/// The offset of the first byte at or after `pos` that is not a digit.
#[inline(always)]
fn digits(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b'0'..=b'9') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The number at `pos`: `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`; the offset past it.
#[inline(always)]
pub(super) fn number(bytes: &[u8], mut pos: usize) -> Scanned<usize> {
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match bytes.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => pos = digits(bytes, pos + 1),
        _ => return fail("invalid number", pos),
    }
    match bytes.get(pos) {
        Some(b'.' | b'e' | b'E') => fraction(bytes, pos),
        _ => Ok(pos),
    }
}

/// The rest of a number from its `.` or exponent at `pos`: the offset past it.
#[inline(never)]
fn fraction(bytes: &[u8], mut pos: usize) -> Scanned<usize> {
    if bytes.get(pos) == Some(&b'.') {
        let end = digits(bytes, pos + 1);
        if end == pos + 1 {
            return fail("invalid number", end);
        }
        pos = end;
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        let end = digits(bytes, pos);
        if end == pos {
            return fail("invalid number", end);
        }
        pos = end;
    }
    Ok(pos)
}

/// [`string`] for [`super::skip`]: the offset just past the closing quote, if the string is good.
#[inline(always)]
pub(super) fn string_end(bytes: &[u8], pos: usize) -> Option<usize> {
    string(bytes, pos).ok().map(|(end, _)| end)
}

/// A string's contents from `pos` (just past its opening quote): the offset just past its
/// closing quote, and whether it has escapes.
#[inline(always)]
pub(super) fn string(bytes: &[u8], mut pos: usize) -> Scanned<(usize, bool)> {
    let mut escaped = false;
    loop {
        // The first `"`, `\` or control character, and its offset.
        let (at, b) = loop {
            match bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
                Some(chunk) => {
                    let word = u64::from_le_bytes(*chunk);
                    let found = special(word);
                    if found != 0 {
                        // The lowest flag is always a real one (a false flag needs a real one
                        // below it); it is the high bit of its byte, taken from the word itself.
                        let bit = found.trailing_zeros();
                        break (pos + (bit / 8) as usize, (word >> (bit - 7)) as u8);
                    }
                    pos += 8;
                }
                None => break tail(bytes, pos)?,
            }
        };
        if b == b'"' {
            return Ok((at + 1, escaped));
        }
        if b != b'\\' {
            return fail("control character (\\u0000-\\u001F) found while parsing a string", at);
        }
        escaped = true;
        pos = escape(bytes, at + 1)?;
    }
}

/// The first `"`, `\` or control character at or after `pos` in the last 7 bytes of the text,
/// and its offset.
#[inline(never)]
fn tail(bytes: &[u8], pos: usize) -> Scanned<(usize, u8)> {
    let rest = bytes.get(pos..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        Some(i) => Ok((pos + i, rest[i])),
        None => fail("EOF while parsing a string", bytes.len()),
    }
}

/// The escape after a backslash, at `pos`: the offset past it. As with serde_json, `\u` needs
/// four hex digits; whether they make a valid character is left to whoever decodes the string.
#[inline(never)]
fn escape(bytes: &[u8], pos: usize) -> Scanned<usize> {
    match bytes.get(pos) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 1),
        Some(b'u') => {
            let hex = bytes.get(pos + 1..pos + 5);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return fail("invalid escape", pos);
            }
            Ok(pos + 5)
        }
        Some(_) => fail("invalid escape", pos),
        None => fail("EOF while parsing a string", pos),
    }
}

/// Flags (the high bit of each byte) the bytes of `word` that end a run of plain string bytes:
/// `"`, `\` or a control character. The lowest flag is exact; flags above it may be false.
#[inline(always)]
fn special(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // With bit 1 flipped, `"` (0x22) becomes 0x20 and the control characters stay below 0x20:
    // exactly the bytes below 0x21. A byte below 0x21 (or a zero after the xor with `\`)
    // borrows into its high bit; `!word` keeps only bytes that were below 0x80.
    let quote_or_control = (word ^ (ONES * 0x02)).wrapping_sub(ONES * 0x21);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (quote_or_control | backslash) & !word & HIGH
}
