//! In-order delivery of one TCP direction by sequence number.
//!
//! Bytes already delivered (retransmissions, overlaps) are dropped; segments ahead of the
//! next expected byte wait in a bounded buffer. When that buffer would overflow, or when the
//! connection ends, the hole is declared a gap: the consumer is told how many bytes it will
//! never see and delivery resumes after it. Bytes a segment carried but the capture cut off
//! (snap length) are reported as `missing`, with their length, in stream order.

/// What the reassembler hands to its consumer.
pub(crate) trait Consumer {
    /// In-order payload bytes that arrived in `frame` at `ts_ns`.
    fn data(&mut self, data: &[u8], frame: u64, ts_ns: i64);
    /// `n` in-order bytes that the segment of `frame` carried but the capture did not keep.
    fn missing(&mut self, n: u32, frame: u64, ts_ns: i64);
    /// A hole of `n` bytes that never arrived: the stream resumes after it.
    fn gap(&mut self, n: u32);
}

#[derive(Debug)]
struct Held {
    seq: u32,
    data: Vec<u8>,
    missing: u32,
    frame: u64,
    ts_ns: i64,
}

impl Held {
    fn len(&self) -> u32 {
        u32::try_from(self.data.len()).unwrap_or(u32::MAX).saturating_add(self.missing)
    }
}

/// Bytes of out-of-order data held per direction before a hole is declared a gap.
pub(crate) const MAX_HELD_BYTES: usize = 256 * 1024;
/// Segments held per direction before a hole is declared a gap.
pub(crate) const MAX_HELD_SEGS: usize = 128;

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub(crate) struct Reasm {
    next: Option<u32>,
    held: Vec<Held>,
    held_bytes: usize,
    acked: Option<u32>,
    /// Holes declared.
    pub(crate) gaps: u32,
    /// Segments (or parts) dropped as already delivered.
    pub(crate) dup_segments: u32,
}

fn deliver<C: Consumer>(c: &mut C, data: &[u8], missing: u32, skip: u32, frame: u64, ts: i64) {
    let skip = skip as usize;
    if skip < data.len() {
        c.data(data.get(skip..).unwrap_or(&[]), frame, ts);
        if missing > 0 {
            c.missing(missing, frame, ts);
        }
    } else {
        let m = missing.saturating_sub(u32::try_from(skip - data.len()).unwrap_or(u32::MAX));
        if m > 0 {
            c.missing(m, frame, ts);
        }
    }
}

impl Reasm {
    /// A SYN fixes the initial sequence number.
    pub(crate) fn syn(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq.wrapping_add(1));
        }
    }

    /// The peer acknowledged everything before `ack`: a hole below it will never be filled
    /// from this capture (the segment was lost before the capture point), so it is a gap now.
    pub(crate) fn ack<C: Consumer>(&mut self, c: &mut C, ack: u32) {
        let Some(next) = self.next else { return };
        if (ack.wrapping_sub(next) as i32) <= 0 {
            return;
        }
        if !matches!(self.acked, Some(a) if (ack.wrapping_sub(a) as i32) <= 0) {
            self.acked = Some(ack);
        }
        while let (Some(next), Some(h)) = (self.next, self.held.first()) {
            if (ack.wrapping_sub(next) as i32) <= 0 || (h.seq.wrapping_sub(ack) as i32) > 0 {
                break;
            }
            self.skip_first_hole(c);
        }
    }

    /// One segment: `data` is the captured payload, `seg_len` the payload length by the IP
    /// header (≥ `data.len()`).
    pub(crate) fn segment<C: Consumer>(
        &mut self,
        c: &mut C,
        seq: u32,
        data: &[u8],
        seg_len: u32,
        frame: u64,
        ts_ns: i64,
    ) {
        let cap = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let seg_len = seg_len.max(cap);
        if seg_len == 0 {
            return;
        }
        let data = data.get(..cap as usize).unwrap_or(data);
        let missing = seg_len - cap;
        let next = *self.next.get_or_insert(seq);
        let rel = seq.wrapping_sub(next) as i32;
        if rel <= 0 {
            let skip = rel.unsigned_abs();
            if skip >= seg_len {
                self.dup_segments += 1;
                return;
            }
            if skip > 0 {
                self.dup_segments += 1;
            }
            deliver(c, data, missing, skip, frame, ts_ns);
            self.next = Some(seq.wrapping_add(seg_len));
            self.drain(c);
            return;
        }
        if rel > (1 << 30) {
            // Far outside any window: not this stream's data.
            self.dup_segments += 1;
            return;
        }
        let acked_past_hole = self.acked.is_some_and(|a| (a.wrapping_sub(next) as i32) > 0);
        let no_room = self.held_bytes + data.len() > MAX_HELD_BYTES || self.held.len() >= MAX_HELD_SEGS;
        if (acked_past_hole || no_room) && self.held.is_empty() {
            // The bytes before this segment were acknowledged but never captured.
            self.gaps += 1;
            c.gap(rel.unsigned_abs());
            self.next = Some(seq);
            self.segment(c, seq, data, seg_len, frame, ts_ns);
            return;
        }
        if self.held_bytes + data.len() > MAX_HELD_BYTES || self.held.len() >= MAX_HELD_SEGS {
            self.skip_first_hole(c);
            // Try again with the hole behind us.
            self.segment(c, seq, data, seg_len, frame, ts_ns);
            return;
        }
        // Keep sorted by sequence (relative to next).
        let pos = self.held.iter().position(|h| (h.seq.wrapping_sub(next) as i32) > rel).unwrap_or(self.held.len());
        self.held_bytes += data.len();
        self.held.insert(pos, Held { seq, data: data.to_vec(), missing, frame, ts_ns });
    }

    /// Delivers held segments that now continue the stream.
    fn drain<C: Consumer>(&mut self, c: &mut C) {
        while let Some(h) = self.held.first() {
            let Some(next) = self.next else { return };
            let rel = h.seq.wrapping_sub(next) as i32;
            if rel > 0 {
                return;
            }
            let h = self.held.remove(0);
            self.held_bytes = self.held_bytes.saturating_sub(h.data.len());
            let skip = rel.unsigned_abs();
            let len = h.len();
            if skip >= len {
                continue;
            }
            deliver(c, &h.data, h.missing, skip, h.frame, h.ts_ns);
            self.next = Some(h.seq.wrapping_add(len));
        }
    }

    /// Declares the first hole a gap and delivers what follows it.
    fn skip_first_hole<C: Consumer>(&mut self, c: &mut C) {
        let (Some(next), Some(h)) = (self.next, self.held.first()) else { return };
        let n = h.seq.wrapping_sub(next);
        self.gaps += 1;
        c.gap(n);
        self.next = Some(h.seq);
        self.drain(c);
    }

    /// Whether out-of-order data waits for a hole to fill.
    pub(crate) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether everything before `seq` has been delivered (or nothing was ever seen).
    pub(crate) fn ends_at(&self, seq: u32) -> bool {
        self.next.is_none_or(|n| n == seq)
    }

    /// The stream ended: deliver everything held, declaring each hole a gap.
    pub(crate) fn flush<C: Consumer>(&mut self, c: &mut C) {
        while !self.held.is_empty() {
            self.skip_first_hole(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rec(Vec<u8>, Vec<u64>, u32);
    impl Consumer for Rec {
        fn data(&mut self, d: &[u8], f: u64, _: i64) {
            self.0.extend_from_slice(d);
            self.1.push(f);
        }
        fn missing(&mut self, n: u32, _: u64, _: i64) {
            self.0.resize(self.0.len() + n as usize, b'?');
        }
        fn gap(&mut self, n: u32) {
            self.2 += n;
        }
    }

    #[test]
    fn reorders_and_drops_retransmissions() {
        let mut r = Reasm::default();
        let mut c = Rec::default();
        r.syn(999);
        r.segment(&mut c, 1000, b"abc", 3, 2, 0);
        r.segment(&mut c, 1006, b"ghi", 3, 3, 0);
        r.segment(&mut c, 1000, b"abc", 3, 4, 0); // retransmission
        r.segment(&mut c, 1002, b"cdef", 4, 5, 0); // overlap + fill
        assert_eq!(c.0, b"abcdefghi");
        assert_eq!(c.1, vec![2, 5, 3]);
    }

    #[test]
    fn wraps_and_reports_missing_and_gaps() {
        let mut r = Reasm::default();
        let mut c = Rec::default();
        r.segment(&mut c, u32::MAX - 1, b"ab", 4, 1, 0);
        r.segment(&mut c, 6, b"zz", 2, 2, 0);
        r.flush(&mut c);
        assert_eq!(c.0, b"ab??zz");
        assert_eq!(c.2, 4);
    }
}
