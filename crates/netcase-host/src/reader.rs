//! A bounds-checked little reader over untrusted bytes: every read is a checked split.

/// Reads fixed-width fields from a byte slice without panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// `n` bytes at `off`, if present.
    pub(crate) fn at(&self, off: usize, n: usize) -> Option<&'a [u8]> {
        self.buf.get(off..off.checked_add(n)?)
    }

    pub(crate) fn u8(&self, off: usize) -> Option<u8> {
        self.buf.get(off).copied()
    }

    pub(crate) fn u16_ne(&self, off: usize) -> Option<u16> {
        self.at(off, 2).and_then(|b| b.try_into().ok()).map(u16::from_ne_bytes)
    }

    pub(crate) fn u16_be(&self, off: usize) -> Option<u16> {
        self.at(off, 2).and_then(|b| b.try_into().ok()).map(u16::from_be_bytes)
    }

    pub(crate) fn u32_ne(&self, off: usize) -> Option<u32> {
        self.at(off, 4).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes)
    }

    pub(crate) fn i32_ne(&self, off: usize) -> Option<i32> {
        self.at(off, 4).and_then(|b| b.try_into().ok()).map(i32::from_ne_bytes)
    }

    pub(crate) fn u64_ne(&self, off: usize) -> Option<u64> {
        self.at(off, 8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes)
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Iterates netlink-style attributes (`u16 len, u16 type, payload`, 4-byte aligned).
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    /// (type with flag bits masked, payload)
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let r = Reader::new(self.rest);
        let len = usize::from(r.u16_ne(0)?);
        let ty = r.u16_ne(2)? & 0x3fff;
        if len < 4 {
            self.rest = &[];
            return None;
        }
        let payload = r.at(4, len - 4)?;
        let adv = (len + 3) & !3;
        self.rest = self.rest.get(adv..).unwrap_or(&[]);
        Some((ty, payload))
    }
}
