//! A validating cursor over JSON text (RFC 8259), for [`super::apply`]'s one pass: it steps
//! through objects and arrays, skips values it is not asked into (checking them, never building
//! them), and gives positions so that a skipped value's raw text can be copied as it came.
//!
//! It refuses what serde_json refuses: bad escapes, control characters in strings, numbers
//! outside the grammar (`01`, `1.`, `-`, `.5`), unclosed containers, trailing commas, anything
//! but whitespace after the document, and nesting deeper than serde_json's limit (so hostile
//! input cannot exhaust the stack). Strings are checked 8 bytes at a time where they have
//! nothing to look at.

use std::fmt;

/// How many containers may be open at once: 127, as with serde_json (which refuses the 128th).
const MAX_DEPTH: u32 = 127;

/// Why the text is not JSON, and where.
#[derive(Debug)]
pub struct ScanError {
    what: &'static str,
    at: usize,
}

impl ScanError {
    /// An error found outside the scanner (a key's escapes), at byte `at`.
    pub fn at(what: &'static str, at: usize) -> ScanError {
        ScanError { what, at }
    }
}

/// The text the error is about, to say where it is as a line and column.
pub struct Located<'a>(pub &'a ScanError, pub &'a [u8]);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let before = &self.1[..self.0.at.min(self.1.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len() - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        write!(f, "{} at line {line} column {column}", self.0.what)
    }
}

/// What a step of the scanner gives: its result, or why the text is not JSON.
pub type Scanned<T> = Result<T, ScanError>;

/// The cursor: a position in the text and how many containers are open there.
pub struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
}

/// An object key as it is in the text: the range between its quotes, and whether it has escapes.
pub struct RawKey {
    /// The offset just past the opening quote.
    pub start: usize,
    /// The offset of the closing quote.
    pub end: usize,
    /// Whether the key has a backslash (then it must be decoded to be compared).
    pub escaped: bool,
}

impl<'a> Scanner<'a> {
    /// A cursor at the start of `text` (UTF-8 already checked: the scanner checks only JSON).
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner { bytes: text.as_bytes(), pos: 0, depth: 0 }
    }

    /// Where the cursor is (a byte offset into the text).
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[cold]
    #[inline(never)]
    fn error<T>(&self, what: &'static str) -> Scanned<T> {
        Err(ScanError { what, at: self.pos })
    }

    #[inline(always)]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The first byte of the next value (the cursor moved onto it, past whitespace).
    #[inline(always)]
    pub fn peek(&mut self) -> Scanned<u8> {
        self.whitespace();
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.error("EOF while parsing a value"),
        }
    }

    /// Nothing but whitespace is left.
    pub fn finish(&mut self) -> Scanned<()> {
        self.whitespace();
        if self.pos < self.bytes.len() {
            return self.error("trailing characters");
        }
        Ok(())
    }

    /// Checks the value at the cursor (whose first byte is `first`) and moves past it.
    #[inline(always)]
    pub fn skip(&mut self, first: u8) -> Scanned<()> {
        match first {
            b'"' => {
                self.pos += 1;
                self.string().map(drop)
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.skip_other(first),
        }
    }

    /// [`Scanner::skip`] for containers and literals (out of line: containers recurse).
    #[inline(never)]
    fn skip_other(&mut self, first: u8) -> Scanned<()> {
        match first {
            b'{' => {
                let mut key = self.first_key()?;
                while key.is_some() {
                    let first = self.peek()?;
                    self.skip(first)?;
                    key = self.next_key()?;
                }
                Ok(())
            }
            b'[' => {
                let mut item = self.first_item()?;
                while let Some(first) = item {
                    self.skip(first)?;
                    item = self.next_item()?;
                }
                Ok(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.error("expected value"),
        }
    }

    #[inline(always)]
    fn open(&mut self) -> Scanned<()> {
        if self.depth >= MAX_DEPTH {
            return self.error("recursion limit exceeded");
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    /// Opens the object at the cursor: its first key (the cursor past its `:`), or `None` when
    /// it is empty (the cursor past its `}`).
    #[inline(always)]
    pub fn first_key(&mut self) -> Scanned<Option<RawKey>> {
        self.open()?;
        if self.peek_in("EOF while parsing an object")? == b'}' {
            self.close();
            return Ok(None);
        }
        self.key().map(Some)
    }

    /// After a value in an object: the next key, or `None` at its end.
    #[inline(always)]
    pub fn next_key(&mut self) -> Scanned<Option<RawKey>> {
        match self.peek_in("EOF while parsing an object")? {
            b',' => {
                self.pos += 1;
                self.peek_in("EOF while parsing an object")?;
                self.key().map(Some)
            }
            b'}' => {
                self.close();
                Ok(None)
            }
            _ => self.error("expected `,` or `}`"),
        }
    }

    #[inline(always)]
    fn key(&mut self) -> Scanned<RawKey> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return self.error("key must be a string");
        }
        self.pos += 1;
        let start = self.pos;
        let escaped = self.string()?;
        let end = self.pos - 1;
        if self.peek_in("EOF while parsing an object")? != b':' {
            return self.error("expected `:`");
        }
        self.pos += 1;
        Ok(RawKey { start, end, escaped })
    }

    /// Opens the array at the cursor: the first byte of its first element, or `None` when it is
    /// empty (the cursor past its `]`).
    #[inline(always)]
    pub fn first_item(&mut self) -> Scanned<Option<u8>> {
        self.open()?;
        match self.peek_in("EOF while parsing a list")? {
            b']' => {
                self.close();
                Ok(None)
            }
            b => Ok(Some(b)),
        }
    }

    /// After an element: the first byte of the next one, or `None` at the array's end.
    #[inline(always)]
    pub fn next_item(&mut self) -> Scanned<Option<u8>> {
        match self.peek_in("EOF while parsing a list")? {
            b',' => {
                self.pos += 1;
                self.peek().map(Some)
            }
            b']' => {
                self.close();
                Ok(None)
            }
            _ => self.error("expected `,` or `]`"),
        }
    }

    #[inline(always)]
    fn close(&mut self) {
        self.pos += 1;
        self.depth -= 1;
    }

    /// The next byte past whitespace inside a container, or `what` at the end of the text.
    #[inline(always)]
    fn peek_in(&mut self, what: &'static str) -> Scanned<u8> {
        self.whitespace();
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.error(what),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Scanned<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) != Some(word) {
            return self.error("expected ident");
        }
        self.pos += word.len();
        Ok(())
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`
    #[inline(always)]
    fn number(&mut self) -> Scanned<()> {
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => drop(self.digits()),
            _ => return self.error("invalid number"),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.error("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.error("invalid number");
            }
        }
        Ok(())
    }

    /// A string's contents, the cursor just past its opening quote; leaves it past the closing
    /// one. Whether the string has escapes.
    #[inline(always)]
    fn string(&mut self) -> Scanned<bool> {
        let mut escaped = false;
        loop {
            let at = match self.bytes.get(self.pos..self.pos + 8) {
                Some(chunk) => {
                    let found = special(u64::from_le_bytes(chunk.try_into().expect("a slice of 8 bytes")));
                    if found == 0 {
                        self.pos += 8;
                        continue;
                    }
                    // The lowest flagged byte is always a real one (a false flag needs a real one below it).
                    self.pos + (found.trailing_zeros() / 8) as usize
                }
                None => match self.bytes[self.pos..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20) {
                    Some(i) => self.pos + i,
                    None => {
                        self.pos = self.bytes.len();
                        return self.error("EOF while parsing a string");
                    }
                },
            };
            self.pos = at;
            match self.bytes[at] {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    self.escape()?;
                }
                _ => return self.error("control character (\\u0000-\\u001F) found while parsing a string"),
            }
        }
    }

    /// The escape after a backslash. As with serde_json, `\u` needs four hex digits; whether they
    /// make a valid character is left to whoever decodes the string.
    #[inline(never)]
    fn escape(&mut self) -> Scanned<()> {
        match self.bytes.get(self.pos) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
            Some(b'u') => {
                let hex = self.bytes.get(self.pos + 1..self.pos + 5);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return self.error("invalid escape");
                }
                self.pos += 5;
            }
            Some(_) => return self.error("invalid escape"),
            None => return self.error("EOF while parsing a string"),
        }
        Ok(())
    }
}

/// Flags (the high bit of each byte) the bytes of `word` that end a run of plain string bytes:
/// `"`, `\` or a control character. The lowest flag is exact; flags above it may be false.
fn special(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    quote | backslash | control
}
