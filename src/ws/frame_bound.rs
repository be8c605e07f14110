//! Tracks where the client's byte stream stands within its current WebSocket frame, so that
//! reads handed to fastwebsockets stop at the frame's last byte.
//!
//! Why: fastwebsockets gives every `WebSocket` an 8 KiB read buffer for its whole life, and with
//! 100k mostly silent sockets that buffer is the largest per-connection cost. When no read ever
//! crosses a frame boundary, that buffer is empty after every frame, so the `WebSocket` can be
//! dropped between frames and built again when the next frame's first byte arrives; a quiet
//! connection then holds no read buffer at all. Client frames are few and small (actions, pings),
//! so the two or three reads per frame this costs do not matter.

/// Header bytes that decide a frame's length: 2 fixed, then up to 8 of extended length.
const LENGTH_HEAD: usize = 10;
const MASK_BYTES: u64 = 4;

#[derive(Debug, Default, Clone)]
pub struct FrameBound {
    /// The frame's first header bytes, as far as they decide its length.
    head: [u8; LENGTH_HEAD],
    /// Bytes of the current frame handed over so far.
    seen: u64,
    /// The whole frame's length (header and payload), once the header says it.
    total: Option<u64>,
}

impl FrameBound {
    /// True between frames: nothing of a next frame has been handed over.
    pub fn at_boundary(&self) -> bool {
        self.seen == 0
    }

    /// How many more bytes may be handed over without passing the end of the current frame
    /// (or of the header part still needed to learn its length). Never 0.
    pub fn allowance(&self) -> u64 {
        match self.total {
            Some(total) => total - self.seen,
            None => self.length_head_len() - self.seen,
        }
    }

    /// Bytes of header needed to know the frame's length: 2 until the second byte is known.
    fn length_head_len(&self) -> u64 {
        if self.seen < 2 {
            return 2;
        }
        match self.head[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    /// Records bytes handed over; they must fit in [`FrameBound::allowance`].
    pub fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = (self.allowance() as usize).min(bytes.len());
            let (now, rest) = bytes.split_at(take);
            for &byte in now {
                if let Some(slot) = self.head.get_mut(self.seen as usize) {
                    *slot = byte;
                }
                self.seen += 1;
            }
            bytes = rest;
            if self.total.is_none() && self.seen == self.length_head_len() {
                self.total = Some(self.frame_len());
            }
            if self.total == Some(self.seen) {
                *self = FrameBound::default();
            }
        }
    }

    /// The frame's whole length from its complete length header.
    fn frame_len(&self) -> u64 {
        let code = self.head[1] & 0x7f;
        let (head, payload) = match code {
            126 => (
                4,
                u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            ),
            127 => {
                let mut eight = [0u8; 8];
                eight.copy_from_slice(&self.head[2..10]);
                (10, u64::from_be_bytes(eight))
            }
            short => (2, u64::from(short)),
        };
        let mask = if self.head[1] & 0x80 != 0 {
            MASK_BYTES
        } else {
            0
        };
        // A length past u64 is nonsense fastwebsockets refuses on its own (message too large);
        // saturating keeps the arithmetic from overflowing until it does.
        payload.saturating_add(head + mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut out = vec![0x81];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload_len {
            0..=125 => out.push(mask_bit | payload_len as u8),
            126..=65535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(std::iter::repeat_n(b'x', payload_len));
        out
    }

    /// Feeds a stream the way the reader does (never more than the allowance, at most `chunk`
    /// at a time) and returns the offsets at which the bound said a frame ended.
    fn boundaries(stream: &[u8], chunk: usize) -> Vec<usize> {
        let mut bound = FrameBound::default();
        let mut at = 0;
        let mut ends = Vec::new();
        while at < stream.len() {
            let allowance = bound.allowance() as usize;
            assert!(allowance > 0);
            let take = allowance.min(chunk).min(stream.len() - at);
            bound.advance(&stream[at..at + take]);
            at += take;
            if bound.at_boundary() {
                ends.push(at);
            }
        }
        ends
    }

    #[test]
    fn reads_stop_at_every_frame_end_whatever_the_length_encoding() {
        let sizes = [0usize, 1, 125, 126, 300, 65535, 65536, 70_000];
        for masked in [true, false] {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for size in sizes {
                stream.extend(frame(size, masked));
                expected.push(stream.len());
            }
            for chunk in [1, 3, 7, 4096, usize::MAX] {
                assert_eq!(boundaries(&stream, chunk), expected, "chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_huge_declared_length_does_not_overflow() {
        let mut bound = FrameBound::default();
        let mut head = vec![0x81, 0xff];
        head.extend_from_slice(&u64::MAX.to_be_bytes());
        bound.advance(&head);
        assert_eq!(bound.allowance(), u64::MAX - 10);
    }
}
