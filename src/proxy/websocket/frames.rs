//! Who closed a WebSocket: the side that sent the first Close frame. TCP order says little
//! here, since in the close handshake the server closes the connection first (RFC 6455 section
//! 7.1.1), whoever asked. So each direction's bytes are followed frame by frame: only the
//! frame headers are read (at most 14 bytes each), payloads are skipped uncopied.

/// One direction's position in its frame stream.
#[derive(Debug, Default)]
pub struct Frames {
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: u64,
}

/// Opcode of a Close frame.
const CLOSE: u8 = 0x8;

impl Frames {
    /// Follows `data`; `true` when a Close frame starts in it.
    pub fn feed(&mut self, mut data: &[u8]) -> bool {
        let mut close = false;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64);
                data = &data[n as usize..];
                self.skip -= n;
                continue;
            }
            self.head[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if let Some(len) = payload_len(&self.head[..self.have]) {
                close |= self.head[0] & 0x0f == CLOSE;
                self.skip = len;
                self.have = 0;
            }
        }
        close
    }
}

/// The payload length once `h` holds a whole frame header (RFC 6455 section 5.2).
fn payload_len(h: &[u8]) -> Option<u64> {
    let b1 = *h.get(1)?;
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    if h.len() < 2 + ext + mask {
        return None;
    }
    Some(match ext {
        0 => u64::from(b1 & 0x7f),
        2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        _ => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame with `opcode` and `len` payload bytes.
    fn frame(opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(0x88, len));
        f
    }

    #[test]
    fn a_close_frame_is_found_after_frames_of_every_length_in_any_chunking() {
        let mut stream = Vec::new();
        for len in [0, 5, 125, 126, 300, 70_000] {
            stream.extend(frame(0x1, len));
        }
        // Payloads full of 0x88 (a Close opcode byte) must not be mistaken for headers.
        let close_at = stream.len();
        stream.extend(frame(CLOSE, 2));
        for chunk in [1, 2, 3, 7, 1000, stream.len()] {
            let mut f = Frames::default();
            let mut seen = None;
            for (i, part) in stream.chunks(chunk).enumerate() {
                if f.feed(part) && seen.is_none() {
                    seen = Some(i * chunk);
                }
            }
            // Seen in the chunk that completes its 6-byte header.
            let seen = seen.expect("the close frame is seen");
            let header_end = close_at + 5;
            assert!(seen <= header_end && header_end < seen + chunk, "chunk {chunk}: at {seen}");
        }
    }

    #[test]
    fn data_frames_alone_are_no_close() {
        let mut f = Frames::default();
        assert!(!f.feed(&frame(0x2, 1 << 20)));
        assert!(!f.feed(&frame(0x9, 0)), "a ping");
    }
}
