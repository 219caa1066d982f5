//! Skipping a whole object or array that no edit goes into, as a table-driven automaton: one
//! table lookup per byte for structure, whitespace and numbers (the tokens that are a few bytes
//! each, where stepping token by token costs more in dispatch than in reading), with strings,
//! literals and the opening and closing of containers as actions out of the table (strings are
//! read 8 bytes at a time, the open containers are bits of a `u128`).
//!
//! It only says where the value ends or that it is not JSON: on any fault it hands the value to
//! the step-by-step scanner ([`super::scan`]), which finds the same fault and says what and where
//! it is, so the messages are the scanner's.

/// A state: what the next byte may be. Each context that a value ends in (an object's member
/// or an array's element) has its own states, so the table knows what follows without a look
/// at the stack.
mod state {
    /// After `:`: a member's value.
    pub const VALUE_O: u8 = 0;
    /// After `,` in an array: an element.
    pub const VALUE_A: u8 = 1;
    /// After `[`: an element or `]`.
    pub const FIRST_A: u8 = 2;
    /// After `{`: a key or `}`.
    pub const FIRST_O: u8 = 3;
    /// After `,` in an object: a key.
    pub const KEY: u8 = 4;
    /// After a key: `:`.
    pub const COLON: u8 = 5;
    /// After a member's value: `,` or `}`.
    pub const AFTER_O: u8 = 6;
    /// After an element: `,` or `]`.
    pub const AFTER_A: u8 = 7;
    /// The states inside a number, for a member's value (add 8 for an element's).
    pub const MINUS: u8 = 8;
    /// `0` (nothing may follow but a fraction, an exponent or the end).
    pub const ZERO: u8 = 9;
    /// In the integer part.
    pub const INT: u8 = 10;
    /// After `.`: a digit.
    pub const DOT: u8 = 11;
    /// In the fraction.
    pub const FRACTION: u8 = 12;
    /// After `e`: a sign or a digit.
    pub const E: u8 = 13;
    /// After the exponent's sign: a digit.
    pub const SIGN: u8 = 14;
    /// In the exponent.
    pub const EXPONENT: u8 = 15;
    /// Just after a string's opening quote: a key's (add 2 for a member's value, 4 for an
    /// element's). Strings of a byte or none are read here, longer ones by an action.
    pub const STRING: u8 = 24;
    /// After a string's first byte (add 2 and 4 as for `STRING`).
    pub const STRING1: u8 = 25;
}

/// What the table says besides "go to this state" (the values from 32 on).
mod action {
    /// Not JSON.
    pub const FAULT: u8 = 32;
    /// `{` where a value goes.
    pub const OPEN_OBJECT: u8 = 33;
    /// `[` where a value goes.
    pub const OPEN_ARRAY: u8 = 34;
    /// The `}` or `]` of the innermost open container.
    pub const CLOSE: u8 = 35;
    /// The first letter of `true`, `false` or `null`, in an object (add 1 in an array).
    pub const LITERAL: u8 = 39;
    /// The rest of a key from its second byte or an escape (add 1 for a member's value, 2
    /// for an element's).
    pub const LONG: u8 = 41;
}

use state::*;

/// The automaton: for each state and byte, the next state or an action.
static TABLE: [[u8; 256]; 32] = table();

const fn table() -> [[u8; 256]; 32] {
    let mut t = [[action::FAULT; 256]; 32];
    let mut s = 0;
    while s < STRING as usize {
        // Whitespace leaves every state but a number's as it is.
        if s < MINUS as usize {
            let mut w = 0;
            while w < 4 {
                t[s][b" \n\t\r"[w] as usize] = s as u8;
                w += 1;
            }
        }
        s += 1;
    }
    // Where a value goes, in each context (`in_array` 0 or 1).
    let mut in_array = 0;
    while in_array < 2 {
        let numbers = MINUS + 8 * in_array;
        let after = if in_array == 1 { AFTER_A } else { AFTER_O };
        let values: &[u8] = if in_array == 1 { &[VALUE_A, FIRST_A] } else { &[VALUE_O] };
        let mut v = 0;
        while v < values.len() {
            let row = &mut t[values[v] as usize];
            row[b'"' as usize] = STRING + 2 + 2 * in_array;
            row[b'{' as usize] = action::OPEN_OBJECT;
            row[b'[' as usize] = action::OPEN_ARRAY;
            row[b't' as usize] = action::LITERAL + in_array;
            row[b'f' as usize] = action::LITERAL + in_array;
            row[b'n' as usize] = action::LITERAL + in_array;
            row[b'-' as usize] = numbers;
            row[b'0' as usize] = numbers + (ZERO - MINUS);
            let mut d = b'1';
            while d <= b'9' {
                row[d as usize] = numbers + (INT - MINUS);
                d += 1;
            }
            v += 1;
        }
        // The number states (`numbers` is this context's MINUS).
        const fn number(numbers: u8, state: u8) -> usize {
            (numbers + (state - MINUS)) as usize
        }
        let mut d = b'0';
        while d <= b'9' {
            t[number(numbers, MINUS)][d as usize] =
                if d == b'0' { number(numbers, ZERO) as u8 } else { number(numbers, INT) as u8 };
            t[number(numbers, INT)][d as usize] = number(numbers, INT) as u8;
            t[number(numbers, DOT)][d as usize] = number(numbers, FRACTION) as u8;
            t[number(numbers, FRACTION)][d as usize] = number(numbers, FRACTION) as u8;
            t[number(numbers, E)][d as usize] = number(numbers, EXPONENT) as u8;
            t[number(numbers, SIGN)][d as usize] = number(numbers, EXPONENT) as u8;
            t[number(numbers, EXPONENT)][d as usize] = number(numbers, EXPONENT) as u8;
            d += 1;
        }
        let mut n = 0;
        while n < 3 {
            let s = number(numbers, [ZERO, INT, FRACTION][n]);
            if n < 2 {
                t[s][b'.' as usize] = number(numbers, DOT) as u8;
            }
            t[s][b'e' as usize] = number(numbers, E) as u8;
            t[s][b'E' as usize] = number(numbers, E) as u8;
            n += 1;
        }
        t[number(numbers, E)][b'+' as usize] = number(numbers, SIGN) as u8;
        t[number(numbers, E)][b'-' as usize] = number(numbers, SIGN) as u8;
        // After a value, or where a number may end: what may follow it.
        let ends = [
            after as usize,
            number(numbers, ZERO),
            number(numbers, INT),
            number(numbers, FRACTION),
            number(numbers, EXPONENT),
        ];
        let mut e = 0;
        while e < ends.len() {
            let row = &mut t[ends[e]];
            let mut w = 0;
            while w < 4 {
                row[b" \n\t\r"[w] as usize] = after;
                w += 1;
            }
            row[b',' as usize] = if in_array == 1 { VALUE_A } else { KEY };
            row[if in_array == 1 { b']' } else { b'}' } as usize] = action::CLOSE;
            e += 1;
        }
        in_array += 1;
    }
    t[FIRST_A as usize][b']' as usize] = action::CLOSE;
    t[FIRST_O as usize][b'}' as usize] = action::CLOSE;
    t[FIRST_O as usize][b'"' as usize] = STRING;
    t[KEY as usize][b'"' as usize] = STRING;
    t[COLON as usize][b':' as usize] = VALUE_O;
    // Strings: the first byte by the table, the rest by an action (8 bytes at a time).
    let mut c = 0;
    while c < 3 {
        let (first, second) = ((STRING + 2 * c) as usize, (STRING1 + 2 * c) as usize);
        let end = [COLON, AFTER_O, AFTER_A][c as usize];
        let mut b = 0x20;
        while b < 256 {
            t[first][b] = STRING1 + 2 * c;
            t[second][b] = action::LONG + c;
            b += 1;
        }
        t[first][b'\\' as usize] = action::LONG + c;
        t[second][b'\\' as usize] = action::LONG + c;
        t[first][b'"' as usize] = end;
        t[second][b'"' as usize] = end;
        c += 1;
    }
    t
}

/// [`TABLE`] flattened, each entry the offset of its row (`state * 256`), or its action times 256.
static OFFSETS: [u16; 32 * 256] = {
    let mut t = [0; 32 * 256];
    let mut i = 0;
    while i < 32 * 256 {
        t[i] = TABLE[i / 256][i % 256] as u16 * 256;
        i += 1;
    }
    t
};

/// The object or array at `pos` (its first byte), `depth` containers being open around it:
/// the offset just past it, or `None` when it is not JSON (or nests deeper than `max_depth`
/// containers in all).
#[inline(always)]
pub fn container(bytes: &[u8], mut pos: usize, depth: u32, max_depth: u32) -> Option<usize> {
    // The containers open inside the value, innermost in the lowest bit: 1 for an object.
    let mut open: u128 = 0;
    let mut inside: u32 = 0;
    let mut row = usize::from(VALUE_A) * 256;
    loop {
        // The steps within the table, up to the next action.
        let next = loop {
            let b = *bytes.get(pos)?;
            let next = usize::from(OFFSETS[(row | usize::from(b)) & (32 * 256 - 1)]);
            if next >= 32 * 256 {
                break next / 256;
            }
            row = next;
            pos += 1;
        };
        let b = bytes[pos];
        let next = next as u8;
        let state = match next {
            action::OPEN_OBJECT | action::OPEN_ARRAY => {
                if depth + inside >= max_depth {
                    return None;
                }
                let object = next == action::OPEN_OBJECT;
                open = open << 1 | u128::from(object);
                inside += 1;
                pos += 1;
                if object {
                    FIRST_O
                } else {
                    FIRST_A
                }
            }
            action::CLOSE => {
                pos += 1;
                open >>= 1;
                inside -= 1;
                if inside == 0 {
                    return Some(pos);
                }
                if open & 1 == 1 {
                    AFTER_O
                } else {
                    AFTER_A
                }
            }
            action::LONG..=43 => {
                pos = super::token::string_end(bytes, pos)?;
                [COLON, AFTER_O, AFTER_A][usize::from(next - action::LONG)]
            }
            action::LITERAL | 40 => {
                let word: &[u8] = match b {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if bytes.get(pos..pos + word.len()) != Some(word) {
                    return None;
                }
                pos += word.len();
                if next == action::LITERAL {
                    AFTER_O
                } else {
                    AFTER_A
                }
            }
            _ => return None,
        };
        row = usize::from(state) * 256;
    }
}
