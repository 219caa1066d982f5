//! `application/grpc-web-text`: base64 both ways, in whatever pieces the body arrives.
//!
//! Decoding takes 4-character groups and keeps a partial group for the next chunk; each group
//! may carry its own padding, since clients may encode every message on its own and send them
//! one after another (as Envoy's filter accepts). Encoding takes 3-byte groups and keeps the
//! 1 or 2 bytes left over until more come or the body ends, so the response is one base64
//! text (what Envoy sends).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{Bytes, BytesMut};

/// A streaming base64 decoder for request bodies.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    /// The characters of a group not yet complete (at most 3).
    partial: Vec<u8>,
}

/// The request body is not base64.
#[derive(Debug, PartialEq, Eq)]
pub struct NotBase64;

impl Decoder {
    /// Decodes the complete groups of `partial` + `chunk`; keeps the rest. At `end`, a partial
    /// group left over is an error.
    pub fn decode(&mut self, chunk: &[u8], end: bool) -> Result<Bytes, NotBase64> {
        let mut text = std::mem::take(&mut self.partial);
        text.extend(chunk.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        let whole = text.len() - text.len() % 4;
        if end && whole != text.len() {
            return Err(NotBase64);
        }
        let mut out = BytesMut::with_capacity(whole / 4 * 3);
        let mut buf = [0u8; 3];
        for group in text[..whole].chunks_exact(4) {
            let n = STANDARD.decode_slice(group, &mut buf).map_err(|_| NotBase64)?;
            out.extend_from_slice(&buf[..n]);
        }
        self.partial = text[whole..].to_vec();
        Ok(out.freeze())
    }
}

/// A streaming base64 encoder for response bodies.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    /// Bytes not yet encoded (at most 2).
    rest: Vec<u8>,
}

impl Encoder {
    /// Encodes the whole 3-byte groups of what is kept plus `chunk`, keeping the remainder;
    /// `end` flushes it with padding.
    pub fn encode(&mut self, chunk: &[u8], end: bool) -> Bytes {
        let mut data = std::mem::take(&mut self.rest);
        data.extend_from_slice(chunk);
        let whole = if end { data.len() } else { data.len() - data.len() % 3 };
        let out = STANDARD.encode(&data[..whole]);
        self.rest = data[whole..].to_vec();
        Bytes::from(out)
    }
}
