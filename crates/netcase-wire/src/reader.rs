//! A bounds-checked cursor over untrusted bytes.
//!
//! The one byte reader of the workspace's packet and protocol decoders (headers here, DNS
//! messages and TLS handshakes in `netcase-proto`), in the manner of rustls's
//! `codec::Reader`: every read is a checked split of the unread bytes, and a read that does
//! not fit returns `None` and leaves the reader where it was. Callers turn `None` into their
//! own error (`ok_or(DnsError::Truncated)`) and never index.
//!
//! ```
//! use netcase_wire::Reader;
//! let mut r = Reader::new(&[0x00, 0x03, b'a', b'b', b'c', 0xff]);
//! let n = r.u16_be().unwrap();
//! assert_eq!(r.take(usize::from(n)), Some(&b"abc"[..]));
//! assert_eq!((r.offset(), r.remaining()), (5, 1));
//! assert_eq!(r.u16_be(), None); // one byte left: nothing read, nothing consumed
//! assert_eq!(r.rest(), &[0xff]);
//! ```

/// A cursor over a byte slice whose reads never panic: each returns `None` when the bytes
/// run out, without consuming anything.
///
/// It is `Copy`: a copy is a saved position (read ahead on the copy, keep the original).
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// Invariant: `pos <= buf.len()`.
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes consumed so far: the offset of the next read in the buffer given to
    /// [`Reader::new`].
    #[inline]
    pub fn offset(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Whether every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    /// The unread bytes (not consumed).
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
    /// Moves to `offset` in the whole buffer, backwards or forwards (formats whose fields
    /// point into the message, like DNS name compression). `None`, leaving the reader where
    /// it was, when `offset` lies past the end; the end itself is a valid position.
    #[inline]
    pub fn seek(&mut self, offset: usize) -> Option<()> {
        if offset > self.buf.len() {
            return None;
        }
        self.pos = offset;
        Some(())
    }
    /// Takes the next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    /// A sub-reader over the next `n` bytes, which are consumed from this one.
    #[inline]
    pub fn sub(&mut self, n: usize) -> Option<Reader<'a>> {
        self.take(n).map(Reader::new)
    }
    /// One byte.
    #[inline]
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    /// A big-endian u16.
    #[inline]
    pub fn u16_be(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }
    /// A little-endian u16.
    #[inline]
    pub fn u16_le(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_le_bytes([*s.first()?, *s.get(1)?]))
    }
    /// A big-endian u32.
    #[inline]
    pub fn u32_be(&mut self) -> Option<u32> {
        let s: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(s))
    }
    /// A little-endian u32.
    #[inline]
    pub fn u32_le(&mut self) -> Option<u32> {
        let s: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_le_bytes(s))
    }
    /// A fixed-size array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    /// A vector with a one-byte length prefix (TLS `opaque x<0..2^8-1>`): the length, then
    /// that many bytes. Nothing is consumed when either does not fit.
    #[inline]
    pub fn u8_prefixed(&mut self) -> Option<&'a [u8]> {
        let mut r = *self;
        let n = r.u8()?;
        let s = r.take(usize::from(n))?;
        *self = r;
        Some(s)
    }
    /// A vector with a big-endian two-byte length prefix (TLS `opaque x<0..2^16-1>`, DNS over
    /// TCP). Nothing is consumed when either does not fit.
    #[inline]
    pub fn u16_be_prefixed(&mut self) -> Option<&'a [u8]> {
        let mut r = *self;
        let n = r.u16_be()?;
        let s = r.take(usize::from(n))?;
        *self = r;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

    #[test]
    fn short_reads_consume_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32_be(), None);
        assert_eq!(r.take(4), None);
        assert_eq!(r.take(usize::MAX), None);
        assert_eq!(r.offset(), 0);
        assert_eq!(r.u16_be(), Some(0x0102));
        assert_eq!(r.u16_le(), None);
        assert_eq!((r.offset(), r.remaining(), r.rest()), (2, 1, &[3][..]));
        assert_eq!(r.u8(), Some(3));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
        assert_eq!(r.rest(), &[] as &[u8]);
    }

    #[test]
    fn seeks_within_the_buffer_only() {
        let mut r = Reader::new(&[9, 8, 7]);
        r.skip(2).unwrap();
        assert_eq!(r.seek(4), None);
        assert_eq!(r.offset(), 2);
        r.seek(0).unwrap();
        assert_eq!(r.u8(), Some(9));
        r.seek(3).unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn prefixed_vectors_are_all_or_nothing() {
        let mut r = Reader::new(&[2, b'h', b'2', 0, 3, b'a', b'b']);
        assert_eq!(r.u8_prefixed(), Some(&b"h2"[..]));
        assert_eq!(r.u16_be_prefixed(), None);
        assert_eq!(r.offset(), 3);
        assert_eq!(r.u8_prefixed(), Some(&[][..]));
        assert_eq!(r.u8_prefixed(), None);
        assert_eq!(r.offset(), 4);
        let mut s = Reader::new(&[0, 1, 0xaa, 0, 2]);
        let mut sub = s.sub(3).unwrap();
        assert_eq!(sub.u16_be_prefixed(), Some(&[0xaa][..]));
        assert!(sub.is_empty());
        assert_eq!(s.rest(), &[0, 2]);
    }
}
