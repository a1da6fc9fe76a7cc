//! Per-connection TCP state and the sequence analysis.
//!
//! The analysis follows the semantics of Wireshark 4.0's TCP expert info
//! (`tcp.analysis.*`), re-implemented from its documented behaviour: for every segment the
//! checks run in a fixed order against the state of both directions *before* the segment,
//! then the state is updated. Each direction keeps the highest sequence number sent
//! (`nextseq`), the highest contiguous one (`max_to_ack`), the last ACK it sent with its
//! window, a duplicate-ACK counter and the list of segments not yet acknowledged by the peer.

use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};

use crate::flags::{AnalysisFlags as F, FlagCounts};
use crate::key::FlowKey;
use crate::stats::LogHistogram;
use crate::types::{HandshakeOptions, Side};

/// `a < b` in sequence space.
#[inline]
pub(crate) fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
/// `a > b` in sequence space.
#[inline]
pub(crate) fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
/// `a <= b` in sequence space.
#[inline]
pub(crate) fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// Time from `earlier` to `now` as an unsigned count: a negative gap (time going backwards)
/// becomes huge, so "within N ms" tests fail, as in Wireshark.
#[inline]
fn since(now: i64, earlier: i64) -> u64 {
    now.wrapping_sub(earlier) as u64
}

/// The duplicate-ACK counter after an ACK of unseen data.
const DUPACK_UNSEEN: u32 = u32::MAX;

/// A segment not yet acknowledged.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seg {
    pub frame: u64,
    pub ts: i64,
    pub seq: u32,
    pub nextseq: u32,
}

/// Segments kept inline before the list spills to the heap.
const SEG_INLINE: usize = 3;
/// A spilled buffer larger than this is freed when its connection slot is recycled.
const SEG_KEEP_CAPACITY: usize = 64;

/// The unacknowledged segments of one direction: a few inline (most connections never have
/// more in flight), then a heap vector that is kept (no allocation per packet) until the slot
/// is recycled.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegList {
    inline: [Seg; SEG_INLINE],
    n_inline: u8,
    spilled: bool,
    heap: Vec<Seg>,
}

impl SegList {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[Seg] {
        if self.spilled {
            &self.heap
        } else {
            self.inline.get(..usize::from(self.n_inline)).unwrap_or(&[])
        }
    }
    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.spilled {
            self.heap.len()
        } else {
            usize::from(self.n_inline)
        }
    }
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[inline]
    pub(crate) fn first(&self) -> Option<&Seg> {
        self.as_slice().first()
    }
    #[inline]
    pub(crate) fn push(&mut self, s: Seg) {
        if self.spilled {
            self.heap.push(s);
        } else if let Some(slot) = self.inline.get_mut(usize::from(self.n_inline)) {
            *slot = s;
            self.n_inline += 1;
        } else {
            self.heap.clear();
            self.heap.reserve(SEG_INLINE * 4);
            self.heap.extend_from_slice(&self.inline);
            self.heap.push(s);
            self.spilled = true;
            self.n_inline = 0;
        }
    }
    /// Keeps the segments for which `f` returns true (in order); `f` may modify them.
    #[inline]
    pub(crate) fn retain_mut(&mut self, mut f: impl FnMut(&mut Seg) -> bool) {
        if self.spilled {
            self.heap.retain_mut(f);
            return;
        }
        let n = usize::from(self.n_inline);
        let mut w = 0usize;
        for r in 0..n {
            let Some(mut s) = self.inline.get(r).copied() else { break };
            if f(&mut s) {
                if let Some(slot) = self.inline.get_mut(w) {
                    *slot = s;
                }
                w += 1;
            }
        }
        self.n_inline = w as u8;
    }
    /// Empties the list; a large spilled buffer is freed.
    fn reset(&mut self) {
        if self.heap.capacity() > SEG_KEEP_CAPACITY {
            self.heap = Vec::new();
        } else {
            self.heap.clear();
        }
        self.spilled = false;
        self.n_inline = 0;
    }
}

/// The sequence-analysis state of one direction without its segment list or statistics:
/// what an evicted connection keeps so that a late frame is analysed as if it had stayed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqSnap {
    base_seq: u32,
    window: u32,
    nextseq: u32,
    max_to_ack: u32,
    lastack: u32,
    dupacks: u32,
    nextseq_ts: i64,
    lastack_ts: i64,
    last_non_dupack: u64,
    sack: [(u32, u32); 3],
    last_flags: F,
    win_scale: i8,
    base_set: bool,
    is_first_ack: bool,
    valid_bif: bool,
    sack_n: u8,
}

/// The state of one direction (the segments one side sends and the ACKs it sends back).
#[derive(Debug, Clone)]
pub(crate) struct DirState {
    // --- sequence analysis ---
    pub base_seq: u32,
    pub base_set: bool,
    /// -1 unknown, -2 no scaling, else the shift.
    pub win_scale: i8,
    /// Last raw window field sent (u32::MAX before any).
    pub window: u32,
    pub is_first_ack: bool,
    pub valid_bif: bool,
    pub nextseq: u32,
    pub nextseq_ts: i64,
    pub max_to_ack: u32,
    pub lastack: u32,
    pub lastack_ts: i64,
    pub last_non_dupack: u64,
    pub dupacks: u32,
    pub last_flags: F,
    pub sack_n: u8,
    pub sack: [(u32, u32); 3],
    pub segs: SegList,
    // --- statistics ---
    pub frames: u64,
    pub bytes: u64,
    pub payload_bytes: u64,
    pub fin: u32,
    pub rst: u32,
    pub sent_non_syn: bool,
    pub win_min: u32,
    pub win_max: u32,
    pub zero_since: Option<i64>,
    pub zero_total: i64,
    pub max_seg: u32,
    // --- capture gaps: bytes of this direction the peer ACKed that the capture never saw ---
    pub holes: [Hole; 2],
    pub n_holes: u8,
    pub missed_bytes: u64,
    pub missed_gaps: u32,
}

/// A stretch of sequence space the capture has not shown (yet).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hole {
    start: u32,
    end: u32,
    /// The peer acknowledged it: the receiver got bytes the capture never saw.
    acked: bool,
}

/// Gaps larger than this are not taken as missed bytes (sequence confusion, not capture loss).
const MAX_HOLE: u32 = 1 << 28;

impl SeqSnap {
    /// The base sequence number, once known.
    pub(crate) fn base(&self) -> Option<u32> {
        self.base_set.then_some(self.base_seq)
    }
}

impl DirState {
    fn new() -> Self {
        DirState {
            base_seq: 0,
            base_set: false,
            win_scale: -1,
            window: u32::MAX,
            is_first_ack: false,
            valid_bif: true,
            nextseq: 0,
            nextseq_ts: 0,
            max_to_ack: 0,
            lastack: 0,
            lastack_ts: 0,
            last_non_dupack: 0,
            dupacks: 0,
            last_flags: F::empty(),
            sack_n: 0,
            sack: [(0, 0); 3],
            segs: SegList::default(),
            frames: 0,
            bytes: 0,
            payload_bytes: 0,
            fin: 0,
            rst: 0,
            sent_non_syn: false,
            win_min: u32::MAX,
            win_max: 0,
            zero_since: None,
            zero_total: 0,
            max_seg: 0,
            holes: [Hole::default(); 2],
            n_holes: 0,
            missed_bytes: 0,
            missed_gaps: 0,
        }
    }

    /// Remembers `[start, end)` as not seen by the capture (`acked`: the peer already ACKed it).
    fn add_hole(&mut self, start: u32, end: u32, acked: bool) {
        let size = end.wrapping_sub(start);
        if size == 0 || size > MAX_HOLE {
            return;
        }
        let n = usize::from(self.n_holes).min(self.holes.len());
        // Extends the newest hole when the new one starts inside or right after it.
        if let Some(last) = self.holes.get_mut(n.wrapping_sub(1)) {
            if n > 0 && seq_le(last.start, start) && seq_le(start, last.end) {
                if seq_gt(end, last.end) && end.wrapping_sub(last.start) <= MAX_HOLE {
                    last.end = end;
                }
                last.acked |= acked;
                return;
            }
        }
        if n >= self.holes.len() {
            // Full: the oldest leaves; counted if the peer had ACKed it.
            let old = self.holes[0];
            if old.acked {
                self.missed_bytes += u64::from(old.end.wrapping_sub(old.start));
                self.missed_gaps += 1;
            }
            self.holes[0] = self.holes[1];
            self.n_holes = 1;
        }
        let i = usize::from(self.n_holes);
        if let Some(h) = self.holes.get_mut(i) {
            *h = Hole { start, end, acked };
            self.n_holes += 1;
        }
    }

    /// Data `[seq, end)` was seen: the holes it covers shrink or close.
    fn fill_holes(&mut self, seq: u32, end: u32) {
        let mut kept = [Hole::default(); 2];
        let mut k = 0;
        for h in self.holes.iter().take(usize::from(self.n_holes)) {
            let mut h = *h;
            if seq_le(seq, h.start) && seq_gt(end, h.start) {
                h.start = if seq_lt(end, h.end) { end } else { h.end };
            } else if seq_gt(seq, h.start) && seq_lt(seq, h.end) {
                h.end = seq;
            }
            if h.start != h.end {
                if let Some(slot) = kept.get_mut(k) {
                    *slot = h;
                    k += 1;
                }
            }
        }
        self.holes = kept;
        self.n_holes = k as u8;
    }

    /// The peer ACKed up to `ack`: the holes below it were delivered unseen.
    fn ack_holes(&mut self, ack: u32) {
        for h in self.holes.iter_mut().take(usize::from(self.n_holes)) {
            if !h.acked && seq_le(h.end, ack) {
                h.acked = true;
            }
        }
    }

    /// Bytes and gaps the capture missed in this direction (ACKed by the peer, never seen).
    pub(crate) fn missed(&self) -> (u64, u32) {
        let mut bytes = self.missed_bytes;
        let mut gaps = self.missed_gaps;
        for h in self.holes.iter().take(usize::from(self.n_holes)) {
            if h.acked {
                bytes += u64::from(h.end.wrapping_sub(h.start));
                gaps += 1;
            }
        }
        (bytes, gaps)
    }

    /// Resets to a fresh state, keeping a small segment buffer's allocation.
    fn reset(&mut self) {
        let mut segs = std::mem::take(&mut self.segs);
        segs.reset();
        *self = DirState::new();
        self.segs = segs;
    }

    /// The sequence-analysis state.
    pub(crate) fn snapshot(&self) -> SeqSnap {
        SeqSnap {
            base_seq: self.base_seq,
            window: self.window,
            nextseq: self.nextseq,
            max_to_ack: self.max_to_ack,
            lastack: self.lastack,
            dupacks: self.dupacks,
            nextseq_ts: self.nextseq_ts,
            lastack_ts: self.lastack_ts,
            last_non_dupack: self.last_non_dupack,
            sack: self.sack,
            last_flags: self.last_flags,
            win_scale: self.win_scale,
            base_set: self.base_set,
            is_first_ack: self.is_first_ack,
            valid_bif: self.valid_bif,
            sack_n: self.sack_n,
        }
    }

    /// Restores the sequence-analysis state (the segment list stays empty).
    pub(crate) fn restore(&mut self, s: &SeqSnap) {
        self.base_seq = s.base_seq;
        self.window = s.window;
        self.nextseq = s.nextseq;
        self.max_to_ack = s.max_to_ack;
        self.lastack = s.lastack;
        self.dupacks = s.dupacks;
        self.nextseq_ts = s.nextseq_ts;
        self.lastack_ts = s.lastack_ts;
        self.last_non_dupack = s.last_non_dupack;
        self.sack = s.sack;
        self.last_flags = s.last_flags;
        self.win_scale = s.win_scale;
        self.base_set = s.base_set;
        self.is_first_ack = s.is_first_ack;
        self.valid_bif = s.valid_bif;
        self.sack_n = s.sack_n;
    }
}

/// The result of analysing one segment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SegResult {
    pub flags: F,
    pub dupack_num: u32,
    pub dupack_frame: u64,
    pub acks_frame: Option<u64>,
    pub ack_rtt_ns: i64,
    pub bif: u32,
}

/// One TCP connection (`tcp.stream`).
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub key: FlowKey,
    /// The canonical low end of the key is side A.
    pub a_is_lo: bool,
    pub stream: u32,
    pub dirs: [DirState; 2],
    pub first_frame: u64,
    pub ts_first: i64,
    pub ts_last: i64,
    /// Time of the most recent SYN (0 = none).
    pub ts_mru_syn: i64,
    /// Initial RTT (0 = not known).
    pub first_rtt: i64,
    pub syn: Option<HandshakeOptions>,
    pub synack: Option<HandshakeOptions>,
    pub first_fin: Option<Side>,
    pub first_rst: Option<Side>,
    pub fin_before_rst: bool,
    pub flag_counts: FlagCounts,
    pub rtt: Option<LogHistogram>,
    pub max_bif: u32,
    pub retrans_bytes: u64,
    pub longest_stall: i64,
    pub longest_stall_frame: Option<u64>,
    pub resumed: bool,
    /// Free-list link / liveness.
    pub live: bool,
    /// Queued for early eviction (finished: RST, or both FINs acknowledged).
    pub closing: bool,
}

/// Configuration knobs that change analysis results.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnalysisCfg {
    pub max_unacked: usize,
}

impl Conn {
    pub(crate) fn new(key: FlowKey, a_is_lo: bool, stream: u32, frame: u64, ts: i64) -> Self {
        Conn {
            key,
            a_is_lo,
            stream,
            dirs: [DirState::new(), DirState::new()],
            first_frame: frame,
            ts_first: ts,
            ts_last: ts,
            ts_mru_syn: 0,
            first_rtt: 0,
            syn: None,
            synack: None,
            first_fin: None,
            first_rst: None,
            fin_before_rst: false,
            flag_counts: FlagCounts::default(),
            rtt: None,
            max_bif: 0,
            retrans_bytes: 0,
            longest_stall: 0,
            longest_stall_frame: None,
            resumed: false,
            live: true,
            closing: false,
        }
    }

    /// Re-initialises a recycled slot, keeping the segment buffers.
    pub(crate) fn reinit(&mut self, key: FlowKey, a_is_lo: bool, stream: u32, frame: u64, ts: i64) {
        let [d0, d1] = &mut self.dirs;
        d0.reset();
        d1.reset();
        let dirs = std::mem::replace(&mut self.dirs, [DirState::new(), DirState::new()]);
        *self = Conn::new(key, a_is_lo, stream, frame, ts);
        self.dirs = dirs;
    }

    /// Finished: a RST was seen, or both sides sent a FIN and everything is acknowledged.
    #[inline]
    pub(crate) fn finished(&self) -> bool {
        let [a, b] = &self.dirs;
        self.first_rst.is_some() || (a.fin > 0 && b.fin > 0 && a.segs.is_empty() && b.segs.is_empty())
    }

    /// Splits into (sender's direction, receiver's direction).
    #[inline]
    pub(crate) fn fwd_rev(&mut self, side: Side) -> (&mut DirState, &mut DirState) {
        let [a, b] = &mut self.dirs;
        match side {
            Side::A => (a, b),
            Side::B => (b, a),
        }
    }

    /// The sequence analysis of one segment sent by `side` (Wireshark's first pass).
    /// `pre` carries flags set before the analysis (reused ports).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn analyze(
        &mut self,
        cfg: AnalysisCfg,
        side: Side,
        frame: u64,
        ts: i64,
        seq: u32,
        ack: u32,
        seglen: u32,
        tflags: u16,
        window: u32,
        pre: F,
    ) -> SegResult {
        let first_rtt = self.first_rtt;
        let (fwd, rev) = self.fwd_rev(side);
        let mut r = SegResult { flags: pre, ..SegResult::default() };
        // Whether Wireshark would hold a per-frame analysis record (affects nothing printed
        // here but the record's existence; kept for fidelity of `last_flags`).
        let syn_fin_rst = tflags & (SYN | FIN | RST) != 0;

        // Base sequence numbers: the ISN from a SYN, else one before the first seq seen;
        // the peer's from the first ACK we send.
        if !fwd.base_set {
            fwd.base_seq = if tflags & SYN != 0 { seq } else { seq.wrapping_sub(1) };
            fwd.base_set = true;
        }
        if !rev.base_set && tflags & ACK != 0 {
            rev.base_seq = ack.wrapping_sub(1);
            rev.base_set = true;
        }
        if tflags & ACK != 0 {
            rev.valid_bif = true;
        }

        'fwd: {
            // Zero-window probe: one byte at the next expected seq while the peer's window is 0.
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                r.flags |= F::ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && !syn_fin_rst {
                r.flags |= F::ZERO_WINDOW;
            }
            // A hole before this segment (RSTs excepted).
            if fwd.nextseq != 0 && seq_gt(seq, fwd.nextseq) && tflags & RST == 0 {
                r.flags |= F::LOST_SEGMENT;
                fwd.valid_bif = false;
            }
            // Keep-alive: 0 or 1 byte starting one before the next expected seq.
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && !syn_fin_rst {
                r.flags |= F::KEEP_ALIVE;
            }
            let same_pos = seq == fwd.nextseq && ack == fwd.lastack && !syn_fin_rst;
            if seglen == 0 && window != 0 && window != fwd.window && same_pos {
                r.flags |= F::WINDOW_UPDATE;
            }
            // Window full: the segment ends exactly at the peer's advertised right edge.
            if seglen > 0 && rev.win_scale != -1 && !syn_fin_rst {
                let shift = if rev.is_first_ack || rev.win_scale < 0 { 0 } else { rev.win_scale as u32 };
                let edge = rev.lastack.wrapping_add(rev.window.wrapping_shl(shift.min(31)));
                if seq.wrapping_add(seglen) == edge {
                    r.flags |= F::WINDOW_FULL;
                }
            }
            if seglen == 0
                && window != 0
                && window == fwd.window
                && same_pos
                && rev.last_flags.intersects(F::KEEP_ALIVE)
            {
                r.flags |= F::KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if seglen == 0
                && window == 0
                && window == fwd.window
                && same_pos
                && rev.last_flags.intersects(F::ZERO_WINDOW_PROBE)
            {
                r.flags |= F::ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if seglen == 0 && window != 0 && window == fwd.window && same_pos {
                fwd.dupacks = if fwd.dupacks == DUPACK_UNSEEN { 1 } else { fwd.dupacks.wrapping_add(1) };
                r.flags |= F::DUPLICATE_ACK;
                r.dupack_num = fwd.dupacks;
                r.dupack_frame = fwd.last_non_dupack;
            }
        }

        if ack != fwd.lastack {
            fwd.last_non_dupack = frame;
            fwd.dupacks = 0;
        }

        // ACKed unseen segment: this ACK covers more than the peer was seen to send. If the
        // peer did send beyond its contiguous edge (after a hole), the edge jumps there and
        // the ACK is flagged; otherwise it is flagged only if the peer's duplicate-ACK counter
        // is clear, and the counter is parked at "unseen" (all ones, as the reference's
        // unsigned -1), which also satisfies the fast-retransmission test below.
        if rev.max_to_ack != 0 && seq_gt(ack, rev.max_to_ack) && tflags & ACK != 0 {
            if seq_lt(rev.max_to_ack, rev.nextseq) {
                rev.max_to_ack = rev.nextseq;
                r.flags |= F::ACK_LOST_SEGMENT;
            } else {
                if rev.dupacks == 0 {
                    r.flags |= F::ACK_LOST_SEGMENT;
                }
                rev.dupacks = DUPACK_UNSEEN;
            }
        }

        // Capture gaps (not part of the reference's analysis: nothing above reads them).
        if seglen > 0 && fwd.n_holes > 0 {
            fwd.fill_holes(seq, seq.wrapping_add(seglen));
        }
        // (A hole before this segment is what the reference flags as a lost segment.)
        if r.flags.intersects(F::LOST_SEGMENT) {
            let start = fwd.nextseq;
            fwd.add_hole(start, seq, false);
        }
        if tflags & ACK != 0 {
            if rev.n_holes > 0 {
                rev.ack_holes(ack);
            }
            if seq_gt(ack, rev.nextseq) && rev.nextseq != 0 {
                let start = rev.nextseq;
                rev.add_hole(start, ack, true);
            }
        }

        // Retransmission family: data, SYN or FIN that does not advance the sequence.
        if (seglen > 0 || tflags & (SYN | FIN) != 0) && !r.flags.intersects(F::KEEP_ALIVE) {
            let mut not_advanced = fwd.nextseq != 0 && seq_lt(seq, fwd.nextseq);
            // More than one byte starting at nextseq-1: new data after a probe.
            if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                not_advanced = false;
            }
            let syn_fin = u32::from(tflags & (SYN | FIN) != 0);
            let fast = |r: &mut SegResult| {
                if not_advanced && rev.dupacks >= 2 && rev.lastack == seq && since(ts, rev.lastack_ts) < 20_000_000 {
                    r.flags |= F::FAST_RETRANSMISSION;
                    true
                } else {
                    false
                }
            };
            let ooo = |r: &mut SegResult| {
                let thres = if first_rtt == 0 { 3_000_000 } else { first_rtt as u64 };
                if not_advanced
                    && since(ts, fwd.nextseq_ts) < thres
                    && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin)
                {
                    r.flags |= F::OUT_OF_ORDER;
                    true
                } else {
                    false
                }
            };
            // Spurious first: the data was already acknowledged.
            if seglen > 0 && rev.lastack != 0 && seq_le(seq.wrapping_add(seglen), rev.lastack) {
                r.flags |= F::SPURIOUS_RETRANSMISSION;
            } else {
                // Fast retransmission is tested before out-of-order (tshark's default).
                let done = fast(&mut r) || ooo(&mut r);
                if !done && not_advanced {
                    r.flags |= F::RETRANSMISSION;
                }
            }
        }

        // Remember the segment until it is acknowledged.
        let mut nextseq = seq.wrapping_add(seglen);
        if (seglen > 0 || tflags & (SYN | FIN) != 0) && fwd.segs.len() < cfg.max_unacked {
            if tflags & (SYN | FIN) != 0 {
                nextseq = nextseq.wrapping_add(1);
            }
            fwd.segs.push(Seg { frame, ts, seq, nextseq });
        }
        let zwp = r.flags.intersects(F::ZERO_WINDOW_PROBE);
        if (seq_gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !zwp {
            fwd.nextseq = nextseq;
            fwd.nextseq_ts = ts;
        }
        if (seq == fwd.max_to_ack || fwd.max_to_ack == 0) && !zwp {
            fwd.max_to_ack = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_ts = ts;
        fwd.last_flags = r.flags;

        // Drop what this ACK covers from the peer's unacked list (the ack field is used
        // whether or not the ACK flag is set, as the reference does).
        let mut matched: Option<Seg> = None;
        rev.segs.retain_mut(|s| {
            if ack == s.nextseq {
                if matched.is_none() {
                    matched = Some(*s);
                }
                false
            } else if seq_gt(ack, s.seq) && seq_le(ack, s.nextseq) {
                s.seq = ack;
                true
            } else {
                seq_gt(s.nextseq, ack)
            }
        });
        if let Some(s) = matched {
            r.acks_frame = Some(s.frame);
            r.ack_rtt_ns = ts.wrapping_sub(s.ts);
        }

        // Bytes in flight after this segment: the span of unacked data, less SACKed blocks.
        if seglen != 0 && fwd.valid_bif {
            if let Some(first) = fwd.segs.first() {
                let base = fwd.base_seq;
                let mut lo = first.seq.wrapping_sub(base);
                let mut hi = first.nextseq.wrapping_sub(base);
                for s in fwd.segs.as_slice() {
                    lo = lo.min(s.seq.wrapping_sub(base));
                    hi = hi.max(s.nextseq.wrapping_sub(base));
                }
                let mut in_flight = hi.wrapping_sub(lo);
                for (l, rr) in rev.sack.iter().take(usize::from(rev.sack_n)) {
                    in_flight = in_flight.wrapping_sub(rr.wrapping_sub(*l));
                }
                if in_flight > 0 && in_flight < 2_000_000_000 {
                    r.bif = in_flight - u32::from(tflags & (SYN | FIN) != 0);
                }
            }
        }

        // Wireshark reports fast and spurious retransmissions as retransmissions too.
        if r.flags.intersects(F::FAST_RETRANSMISSION | F::SPURIOUS_RETRANSMISSION) {
            r.flags |= F::RETRANSMISSION;
        }
        r
    }
}
