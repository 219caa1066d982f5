//! A protobuf reader for tests: enough to walk an encoded `ExportTraceServiceRequest` where
//! no reference bytes are at hand (the byte-exact check against the reference library is in
//! `encode/tests.rs`, the decoding by it in the integration test).

/// One decoded protobuf field.
#[derive(Debug, PartialEq)]
pub enum Field<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 5.
    Fixed32(u32),
    /// Wire type 2.
    Bytes(&'a [u8]),
}

fn read_varint(buf: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// Every `(field number, value)` of one message, in order.
pub fn fields(buf: &[u8]) -> Vec<(u64, Field<'_>)> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at < buf.len() {
        let key = read_varint(buf, &mut at);
        let field = match key & 7 {
            0 => Field::Varint(read_varint(buf, &mut at)),
            1 => {
                at += 8;
                Field::Fixed64(u64::from_le_bytes(buf[at - 8..at].try_into().expect("8 bytes")))
            }
            2 => {
                let len = read_varint(buf, &mut at) as usize;
                at += len;
                Field::Bytes(&buf[at - len..at])
            }
            5 => {
                at += 4;
                Field::Fixed32(u32::from_le_bytes(buf[at - 4..at].try_into().expect("4 bytes")))
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, field));
    }
    assert_eq!(at, buf.len(), "a field ran past the end");
    out
}

/// The length-delimited values of field `number`.
pub fn only<'a>(fs: &[(u64, Field<'a>)], number: u64) -> Vec<&'a [u8]> {
    fs.iter()
        .filter(|(n, _)| *n == number)
        .map(|(_, f)| match f {
            Field::Bytes(b) => *b,
            other => panic!("field {number} is {other:?}"),
        })
        .collect()
}

/// The spans of an encoded `ExportTraceServiceRequest` (one resource, one scope).
pub fn spans_of(body: &[u8]) -> Vec<Vec<(u64, Field<'_>)>> {
    let rs = only(&fields(body), 1);
    let ss = only(&fields(rs[0]), 2);
    only(&fields(ss[0]), 2).into_iter().map(fields).collect()
}
