//! The engine: flow tables for TCP and UDP, driven one decoded packet at a time.

use std::collections::VecDeque;

use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};
use netcase_wire::{DecodeError, IpInfo, Layer, LinkType, Packet, Tcp, Transport, Udp};

use crate::flags::AnalysisFlags as F;
use crate::key::{FlowKey, FxBuild, FxMap};
use crate::stats::LogHistogram;
use crate::tcp::{AnalysisCfg, Conn, SeqSnap};
use crate::types::*;
use crate::udp::UdpFlow;

/// Engine settings. The defaults reproduce tshark 4.0's analysis.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// A connection with no frame for this long (capture time) is summarised and its state
    /// freed. Its stream number and base sequence numbers are remembered (see
    /// `max_remembered`) so a late frame still gets the same `tcp.stream`.
    pub idle_timeout_ns: i64,
    /// Same, for connections that saw a RST or a FIN from both sides.
    pub closed_linger_ns: i64,
    /// How many finished connections (a RST, or both FINs acknowledged) are held at most:
    /// beyond it the one that finished first is summarised and freed at once rather than after
    /// `closed_linger_ns`. A late frame of it is still numbered and analysed from the
    /// remembered sequence state (see `max_remembered`), but counted in a new summary.
    pub max_closed_held: usize,
    /// UDP flows idle this long are summarised and freed.
    pub udp_idle_timeout_ns: i64,
    /// How often (capture time) to look for idle flows.
    pub sweep_interval_ns: i64,
    /// How many evicted 4-tuples to remember for stream numbering (the most recently
    /// evicted; 224 bytes each). Late frames come within seconds of a connection's end, long
    /// after it only when a long-idle connection wakes up: 16 Ki entries (3.5 MiB) cover the
    /// first in any capture and keep memory flat in the number of connections.
    pub max_remembered: usize,
    /// Unacknowledged segments kept per direction (Wireshark: 10000).
    pub max_unacked_segments: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_ns: 900 * 1_000_000_000,
            closed_linger_ns: 240 * 1_000_000_000,
            max_closed_held: 1024,
            udp_idle_timeout_ns: 300 * 1_000_000_000,
            sweep_interval_ns: 5 * 1_000_000_000,
            max_remembered: 1 << 14,
            max_unacked_segments: 10_000,
        }
    }
}

/// Counters about what the engine saw and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// TCP frames analysed (including ICMP errors quoting TCP).
    pub tcp_frames: u64,
    /// UDP datagrams.
    pub udp_frames: u64,
    /// TCP connections created (= next `tcp.stream`).
    pub tcp_streams: u32,
    /// UDP flows created (= next `udp.stream`).
    pub udp_streams: u32,
    /// Connections whose state was freed before the end of the capture.
    pub tcp_evicted: u64,
    /// Frames that matched a remembered (evicted) 4-tuple and rebuilt its state.
    pub tcp_resumed: u64,
    /// Most connections held at once.
    pub tcp_peak_active: usize,
    /// TCP inside IP fragments, not analysed (no reassembly).
    pub tcp_in_fragments: u64,
}

/// What is kept of an evicted connection: enough to number late frames, keep their relative
/// sequence numbers and window scaling, and go on with the sequence analysis.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    key: FlowKey,
    stream: u32,
    a_is_lo: bool,
    seq: [SeqSnap; 2],
    first_rtt: i64,
    ts_mru_syn: i64,
}

/// The ISNs of a forgotten connection's two sides (lower address first), when known.
#[derive(Debug, Clone, Copy)]
struct Isns([Option<u32>; 2]);

fn key_hash(k: &FlowKey) -> u64 {
    use std::hash::BuildHasher;
    FxBuild.hash_one(k)
}

/// The flow engine. Feed it decoded packets in frame order with [`FlowTracker::packet`], then
/// call [`FlowTracker::finish`].
pub struct FlowTracker {
    cfg: FlowConfig,
    acfg: AnalysisCfg,
    tcp_index: FxMap<FlowKey, u32>,
    /// The connection of the last TCP frame: the next frame is often of the same one (a
    /// burst, or data and its ACK), which then costs one key comparison instead of a lookup.
    last_tcp: Option<(FlowKey, u32)>,
    conns: Vec<Conn>,
    free: Vec<u32>,
    /// Evicted 4-tuples → slot in `tombs`.
    remembered: FxMap<FlowKey, u32>,
    tombs: Vec<Remembered>,
    tomb_free: Vec<u32>,
    /// (slot, stream) in order of eviction; entries whose slot changed hands are skipped.
    remembered_order: VecDeque<(u32, u32)>,
    /// 4-tuples forgotten from `remembered` (by a 64-bit hash of the key) → the ISNs of their
    /// (lower, higher) sides: 16 bytes instead of 224, enough to flag a SYN with another ISN
    /// as a reused port (`tcp.analysis.reused_ports`) however long ago the 4-tuple was seen.
    forgotten: FxMap<u64, Isns>,
    /// Finished connections waiting to be evicted: (slot, stream) in order of finishing.
    closing: VecDeque<(u32, u32)>,
    udp_index: FxMap<FlowKey, u32>,
    udps: Vec<UdpFlow>,
    udp_free: Vec<u32>,
    udp_remembered: FxMap<FlowKey, (u32, bool)>,
    udp_remembered_order: VecDeque<FlowKey>,
    next_tcp_stream: u32,
    next_udp_stream: u32,
    last_sweep: Option<i64>,
    stats: TrackerStats,
}

impl Default for FlowTracker {
    fn default() -> Self {
        Self::new(FlowConfig::default())
    }
}

impl FlowTracker {
    /// A new engine.
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTracker {
            cfg,
            acfg: AnalysisCfg { max_unacked: cfg.max_unacked_segments },
            tcp_index: FxMap::with_capacity_and_hasher(1024, FxBuild),
            last_tcp: None,
            conns: Vec::with_capacity(1024),
            free: Vec::new(),
            remembered: FxMap::with_hasher(FxBuild),
            tombs: Vec::new(),
            tomb_free: Vec::new(),
            remembered_order: VecDeque::new(),
            forgotten: FxMap::with_hasher(FxBuild),
            closing: VecDeque::new(),
            udp_index: FxMap::with_capacity_and_hasher(256, FxBuild),
            udps: Vec::with_capacity(256),
            udp_free: Vec::new(),
            udp_remembered: FxMap::with_hasher(FxBuild),
            udp_remembered_order: VecDeque::new(),
            next_tcp_stream: 0,
            next_udp_stream: 0,
            last_sweep: None,
            stats: TrackerStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TrackerStats {
        let mut s = self.stats;
        s.tcp_streams = self.next_tcp_stream;
        s.udp_streams = self.next_udp_stream;
        s
    }

    /// Connections currently held.
    pub fn active_tcp(&self) -> usize {
        self.tcp_index.len()
    }

    /// Analyses one decoded packet. Frames must come in file order; `frame` is the 1-based
    /// frame number, `ts_ns` the capture time, `orig_len` the length on the wire, `data` the
    /// captured bytes `pkt` was decoded from (used, as tshark does, to cut the segment length
    /// to what the frame's original length can hold; pass `&[]` if unknown).
    #[inline(always)]
    pub fn packet<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts_ns: i64,
        orig_len: u32,
        data: &[u8],
        pkt: &Packet<'_>,
        sink: &mut S,
    ) {
        self.maybe_sweep(ts_ns, sink);
        if !self.closing.is_empty() {
            self.drain_closing(ts_ns, sink);
        }
        let Some(ip) = pkt.ip.as_ref() else { return };
        match pkt.transport {
            Some(Transport::Tcp(ref t)) => {
                if ip.fragment.is_some() {
                    // The reference reassembles IP fragments first; without reassembly the
                    // segment length is unknown, so fragments are left out of the analysis.
                    self.stats.tcp_in_fragments += 1;
                    return;
                }
                let len = clip_len(t.len, t.payload, data, orig_len);
                self.tcp(frame, ts_ns, orig_len, ip, t, len, sink);
            }
            Some(Transport::Udp(ref u)) => {
                if ip.fragment.is_some() {
                    return;
                }
                self.udp(frame, ts_ns, orig_len, ip, u, sink);
            }
            Some(Transport::Icmp(ref icmp)) => {
                let Some(q) = icmp.quoted else { return };
                match q.proto {
                    // tshark keeps only 8 quoted bytes of an ICMPv4 redirect: no stream.
                    6 if !icmp.v6 && icmp.icmp_type == 5 => {}
                    6 => self.icmp_tcp(frame, ts_ns, orig_len, icmp.body, &q, sink),
                    17 => self.icmp_udp(frame, ts_ns, orig_len, &q, sink),
                    _ => {}
                }
            }
            None if ip.proto == 6 && ip.fragment.is_none() => {
                if let Some(
                    DecodeError::Truncated { layer: Layer::Tcp, .. } | DecodeError::Malformed { layer: Layer::Tcp, .. },
                ) = pkt.error
                {
                    self.tcp_damaged(frame, ts_ns, orig_len, data, ip, sink);
                }
            }
            _ => {}
        }
    }

    /// A TCP header the decoder rejected (cut short, or a data offset below 20). tshark still
    /// files it under its connection once the first 16 bytes (up to the window) are there,
    /// and analyses it if the header length fits in what the IP length leaves.
    fn tcp_damaged<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts: i64,
        orig_len: u32,
        data: &[u8],
        ip: &IpInfo,
        sink: &mut S,
    ) {
        let Some(off) = tcp_offset(data, ip) else { return };
        let Some(h) = data.get(off..) else { return };
        let be16 = |i: usize| h.get(i..i + 2).and_then(|b| <[u8; 2]>::try_from(b).ok()).map(u16::from_be_bytes);
        let be32 = |i: usize| h.get(i..i + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes);
        let (Some(sp), Some(dp), Some(seq), Some(ack), Some(offf), Some(win)) =
            (be16(0), be16(2), be32(4), be32(8), be16(12), be16(14))
        else {
            return;
        };
        let hlen = u32::from(offf >> 12) * 4;
        let reported = ip.payload_len.min(orig_len.saturating_sub(off as u32));
        let t = Tcp {
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            header_len: hlen as u8,
            flags: offf & 0x01FF,
            window: win,
            urgent: 0,
            options: netcase_wire::TcpOptions::default(),
            len: reported.saturating_sub(hlen),
            payload: &[],
        };
        if reported >= hlen {
            self.tcp(frame, ts, orig_len, ip, &t, t.len, sink);
        } else {
            self.tcp_stream_only(frame, ts, orig_len, ip.src, ip.dst, &t, false, sink);
        }
    }

    /// Decodes a frame with [`netcase_wire::decode`] and analyses it.
    pub fn frame<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts_ns: i64,
        orig_len: u32,
        link: LinkType,
        data: &[u8],
        sink: &mut S,
    ) {
        let pkt = netcase_wire::decode(link, data);
        self.packet(frame, ts_ns, orig_len, data, &pkt, sink);
    }

    /// Summarises every flow still held (in stream order) and empties the tables.
    pub fn finish<S: FlowSink + ?Sized>(&mut self, sink: &mut S) {
        let mut live: Vec<u32> = self.tcp_index.values().copied().collect();
        live.sort_by_key(|i| self.conns.get(*i as usize).map_or(u32::MAX, |c| c.stream));
        for i in live {
            self.evict_tcp(i, sink, false);
        }
        self.closing.clear();
        let mut live: Vec<u32> = self.udp_index.values().copied().collect();
        live.sort_by_key(|i| self.udps.get(*i as usize).map_or(u32::MAX, |c| c.stream));
        for i in live {
            self.evict_udp(i, sink, false);
        }
    }

    // ---------------------------------------------------------------- TCP

    fn alloc_conn(&mut self, key: FlowKey, a_is_lo: bool, frame: u64, ts: i64) -> u32 {
        let stream = self.next_tcp_stream;
        self.next_tcp_stream = self.next_tcp_stream.wrapping_add(1);
        self.alloc_conn_with(key, a_is_lo, stream, frame, ts)
    }

    fn alloc_conn_with(&mut self, key: FlowKey, a_is_lo: bool, stream: u32, frame: u64, ts: i64) -> u32 {
        let idx = if let Some(i) = self.free.pop() {
            if let Some(c) = self.conns.get_mut(i as usize) {
                c.reinit(key, a_is_lo, stream, frame, ts);
            }
            i
        } else {
            self.conns.push(Conn::new(key, a_is_lo, stream, frame, ts));
            (self.conns.len() - 1) as u32
        };
        self.tcp_index.insert(key, idx);
        self.last_tcp = Some((key, idx));
        self.stats.tcp_peak_active = self.stats.tcp_peak_active.max(self.tcp_index.len());
        idx
    }

    /// Finds the connection for `key`, creating it (and a new stream) if needed. `syn_seq` is
    /// the ISN of a SYN (without ACK): on a remembered 4-tuple whose sender had another ISN it
    /// starts a new stream (reused ports, returned as `true`) instead of resuming the old one.
    fn lookup_or_create(
        &mut self,
        key: FlowKey,
        src_is_lo: bool,
        frame: u64,
        ts: i64,
        syn_seq: Option<u32>,
    ) -> (u32, bool) {
        if let Some((k, i)) = self.last_tcp {
            if k == key {
                return (i, false);
            }
        }
        if let Some(&i) = self.tcp_index.get(&key) {
            self.last_tcp = Some((key, i));
            return (i, false);
        }
        if let Some(slot) = self.remembered.remove(&key) {
            self.tomb_free.push(slot);
            let Some(m) = self.tombs.get(slot as usize).copied() else {
                return (self.alloc_conn(key, src_is_lo, frame, ts), false);
            };
            let side = usize::from(src_is_lo != m.a_is_lo);
            let sender_base = m.seq.get(side).and_then(SeqSnap::base);
            if let (Some(seq), Some(base)) = (syn_seq, sender_base) {
                if seq != base {
                    return (self.alloc_conn(key, src_is_lo, frame, ts), true);
                }
            }
            self.stats.tcp_resumed += 1;
            let i = self.alloc_conn_with(key, m.a_is_lo, m.stream, frame, ts);
            if let Some(c) = self.conns.get_mut(i as usize) {
                c.resumed = true;
                c.first_rtt = m.first_rtt;
                c.ts_mru_syn = m.ts_mru_syn;
                for (d, snap) in c.dirs.iter_mut().zip(m.seq.iter()) {
                    d.restore(snap);
                }
            }
            return (i, false);
        }
        if !self.forgotten.is_empty() {
            if let Some(Isns(isns)) = self.forgotten.remove(&key_hash(&key)) {
                // Seen long ago: a SYN with another ISN is a reused port; anything else starts
                // a new stream (the sequence state is gone).
                let [lo, hi] = isns;
                let sender = if src_is_lo { lo } else { hi };
                let reused = matches!((syn_seq, sender), (Some(seq), Some(base)) if seq != base);
                return (self.alloc_conn(key, src_is_lo, frame, ts), reused);
            }
        }
        (self.alloc_conn(key, src_is_lo, frame, ts), false)
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts: i64,
        orig_len: u32,
        ip: &IpInfo,
        t: &Tcp<'_>,
        seglen: u32,
        sink: &mut S,
    ) {
        self.stats.tcp_frames += 1;
        let (key, src_is_lo) = FlowKey::new(ip.src, t.src_port, ip.dst, t.dst_port);
        let tflags = t.flags;
        let syn_seq = (tflags & (SYN | ACK) == SYN).then_some(t.seq);
        let (mut idx, reused) = self.lookup_or_create(key, src_is_lo, frame, ts, syn_seq);
        let mut pre = if reused { F::REUSED_PORTS } else { F::empty() };

        // A SYN with a new ISN on a 4-tuple whose sender already has a base sequence starts a
        // new conversation (and stream); a repeated ISN rewinds nextseq (retransmitted SYN).
        if tflags & (SYN | ACK) == SYN {
            let side = self.side_of(idx, src_is_lo);
            let restart = match self.conns.get_mut(idx as usize) {
                Some(c) => {
                    let (fwd, _) = c.fwd_rev(side);
                    if fwd.base_set && t.seq != fwd.base_seq {
                        true
                    } else {
                        if fwd.base_set {
                            fwd.nextseq = fwd.max_to_ack;
                        }
                        false
                    }
                }
                None => false,
            };
            if restart {
                self.evict_tcp(idx, sink, false);
                idx = self.alloc_conn(key, src_is_lo, frame, ts);
                pre |= F::REUSED_PORTS;
            }
        }
        let side = self.side_of(idx, src_is_lo);
        let Some(c) = self.conns.get_mut(idx as usize) else { return };
        if tflags & (SYN | ACK) == (SYN | ACK) {
            let (fwd, _) = c.fwd_rev(side);
            if fwd.base_set && t.seq != fwd.base_seq {
                fwd.base_seq = t.seq;
                pre |= F::REUSED_PORTS;
            }
        }
        // Stall: a gap while data is outstanding in either direction.
        let gap = ts.wrapping_sub(c.ts_last);
        if gap > c.longest_stall && c.dirs.iter().any(|d| !d.segs.is_empty()) {
            c.longest_stall = gap;
            c.longest_stall_frame = Some(frame);
        }
        c.ts_last = ts;
        {
            let (fwd, _) = c.fwd_rev(side);
            fwd.sack_n = 0;
        }

        let window = u32::from(t.window);
        let mut r = c.analyze(self.acfg, side, frame, ts, t.seq, t.ack, seglen, tflags, window, pre);
        if t.header_len < 20 {
            // A bogus data offset: tshark analyses the segment but stops before showing it.
            r = crate::tcp::SegResult::default();
        }

        let (fwd, rev) = c.fwd_rev(side);
        let rel_seq = t.seq.wrapping_sub(fwd.base_seq);
        let rel_ack = if tflags & ACK != 0 { t.ack.wrapping_sub(rev.base_seq) } else { t.ack };
        let (calc_window, window_scale) = if tflags & SYN != 0 {
            (window, None)
        } else {
            let ws = fwd.win_scale;
            let cw = if ws >= 0 { window << (ws as u32).min(14) } else { window };
            (cw, Some(WindowScale::from_raw(ws)))
        };

        // Per-direction statistics.
        fwd.frames += 1;
        fwd.bytes += u64::from(orig_len);
        fwd.payload_bytes += u64::from(seglen);
        fwd.max_seg = fwd.max_seg.max(seglen);
        if tflags & FIN != 0 {
            fwd.fin += 1;
        }
        if tflags & RST != 0 {
            fwd.rst += 1;
        }
        if tflags & SYN == 0 {
            fwd.sent_non_syn = true;
            fwd.win_min = fwd.win_min.min(calc_window);
            fwd.win_max = fwd.win_max.max(calc_window);
            if tflags & (FIN | RST) == 0 {
                if window == 0 {
                    fwd.zero_since.get_or_insert(ts);
                } else if let Some(s) = fwd.zero_since.take() {
                    fwd.zero_total = fwd.zero_total.saturating_add(ts.saturating_sub(s).max(0));
                }
            }
        }

        // Handshake bookkeeping (after the analysis, as the reference does).
        if tflags & SYN != 0 {
            let opts = HandshakeOptions {
                frame,
                mss: t.options.mss,
                wscale: t.options.wscale,
                sack_perm: t.options.sack_perm,
                timestamps: t.options.timestamp.is_some(),
            };
            if tflags & ACK != 0 {
                if c.synack.is_none() {
                    c.synack = Some(opts);
                }
            } else {
                if c.syn.is_none() {
                    c.syn = Some(opts);
                }
                c.ts_mru_syn = ts;
            }
            let (fwd, _) = c.fwd_rev(side);
            fwd.is_first_ack = true;
        }
        if tflags & FIN != 0 && c.first_fin.is_none() {
            c.first_fin = Some(side);
        }
        if tflags & RST != 0 && c.first_rst.is_none() {
            c.first_rst = Some(side);
            c.fin_before_rst = c.first_fin.is_some();
        }
        let pure_ack = tflags & (SYN | ACK) == ACK;
        if pure_ack && c.ts_mru_syn != 0 && c.first_rtt == 0 {
            c.first_rtt = ts.wrapping_sub(c.ts_mru_syn);
        }
        {
            let (fwd, _) = c.fwd_rev(side);
            if pure_ack {
                fwd.is_first_ack = false;
            }
            // Options are read after the analysis: they affect later segments only.
            if let Some(ws) = t.options.wscale {
                fwd.win_scale = ws.min(14) as i8;
            }
            let blocks = t.options.sack_blocks();
            if !blocks.is_empty() {
                let n = blocks.len().min(3);
                for (dst, b) in fwd.sack.iter_mut().zip(blocks.iter()) {
                    *dst = *b;
                }
                fwd.sack_n = n as u8;
            }
        }
        if tflags & SYN != 0 {
            // Scaling is used only if both SYN and SYN-ACK offer it.
            let synack = tflags & ACK != 0;
            let (fwd, rev) = c.fwd_rev(side);
            if fwd.win_scale == -1 {
                fwd.win_scale = -2;
                rev.win_scale = -2;
            } else if synack && rev.win_scale == -2 {
                fwd.win_scale = -2;
            }
        }

        // Connection statistics.
        c.flag_counts.add(r.flags);
        if r.flags.intersects(F::RETRANSMISSION) {
            c.retrans_bytes += u64::from(seglen);
        }
        c.max_bif = c.max_bif.max(r.bif);
        let ack_rtt = (r.acks_frame.is_some() && r.ack_rtt_ns != 0).then_some(r.ack_rtt_ns);
        if let Some(rtt) = ack_rtt {
            c.rtt.get_or_insert_with(LogHistogram::new).add((rtt.max(0) as u64) / 1000);
        }
        if !c.closing && tflags & (FIN | RST | ACK) != 0 && c.finished() {
            c.closing = true;
            self.closing.push_back((idx, c.stream));
        }

        let (src, dst) =
            (crate::Endpoint { addr: ip.src, port: t.src_port }, crate::Endpoint { addr: ip.dst, port: t.dst_port });
        let fa = FrameAnalysis {
            frame,
            ts_ns: ts,
            orig_len,
            stream: c.stream,
            side,
            src,
            dst,
            icmp_error: false,
            seq: rel_seq,
            ack: rel_ack,
            seq_raw: t.seq,
            ack_raw: t.ack,
            len: seglen,
            tcp_flags: tflags,
            window: t.window,
            calc_window,
            window_scale,
            flags: r.flags,
            dupack_num: r.dupack_num,
            dupack_frame: r.dupack_frame,
            acks_frame: r.acks_frame,
            ack_rtt_ns: ack_rtt,
            bytes_in_flight: (r.bif != 0).then_some(r.bif),
            initial_rtt_ns: (c.first_rtt != 0).then_some(c.first_rtt),
            options: t.options,
            payload: t.payload,
        };
        sink.frame(&fa);
    }

    fn side_of(&self, idx: u32, src_is_lo: bool) -> Side {
        let a_is_lo = self.conns.get(idx as usize).is_none_or(|c| c.a_is_lo);
        if src_is_lo == a_is_lo {
            Side::A
        } else {
            Side::B
        }
    }

    /// An ICMP error quoting a TCP header: gets the quoted connection's stream (creating it,
    /// as the reference does) and no analysis.
    fn icmp_tcp<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts: i64,
        orig_len: u32,
        body: &[u8],
        q: &netcase_wire::Quoted,
        sink: &mut S,
    ) {
        // The reference reads the quoted header up to the window field before it looks the
        // connection up: fewer than 16 quoted TCP bytes give no stream.
        let quoted = body.get(4..).map(|b| netcase_wire::decode(LinkType::Raw, b));
        let (tcp, have) = match quoted.as_ref().map(|p| (p.transport, p.error)) {
            Some((Some(Transport::Tcp(t)), _)) => (Some(t), usize::MAX),
            Some((_, Some(DecodeError::Truncated { layer: Layer::Tcp, have, .. }))) => (None, have),
            _ => (None, 0),
        };
        if have < 16 {
            return;
        }
        let seq = q.tcp_seq.unwrap_or(0);
        let t = match tcp {
            Some(t) => Tcp { payload: &[], len: 0, ..t },
            None => Tcp {
                src_port: q.src_port,
                dst_port: q.dst_port,
                seq,
                ack: 0,
                header_len: 0,
                flags: 0,
                window: 0,
                urgent: 0,
                options: netcase_wire::TcpOptions::default(),
                len: 0,
                payload: &[],
            },
        };
        self.tcp_stream_only(frame, ts, orig_len, q.src, q.dst, &t, true, sink);
    }

    /// Files a TCP header under its connection without analysing it (ICMP errors, headers cut
    /// short): absolute numbers, no flags.
    #[allow(clippy::too_many_arguments)]
    fn tcp_stream_only<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts: i64,
        orig_len: u32,
        src: std::net::IpAddr,
        dst: std::net::IpAddr,
        t: &Tcp<'_>,
        icmp_error: bool,
        sink: &mut S,
    ) {
        self.stats.tcp_frames += 1;
        let (key, src_is_lo) = FlowKey::new(src, t.src_port, dst, t.dst_port);
        let (idx, _) = self.lookup_or_create(key, src_is_lo, frame, ts, None);
        let side = self.side_of(idx, src_is_lo);
        let Some(c) = self.conns.get_mut(idx as usize) else { return };
        c.ts_last = ts;
        let (fwd, _) = c.fwd_rev(side);
        fwd.frames += 1;
        fwd.bytes += u64::from(orig_len);
        if t.flags & FIN != 0 {
            fwd.fin += 1;
        }
        if t.flags & RST != 0 {
            fwd.rst += 1;
        }
        let fa = FrameAnalysis {
            frame,
            ts_ns: ts,
            orig_len,
            stream: c.stream,
            side,
            src: crate::Endpoint { addr: src, port: t.src_port },
            dst: crate::Endpoint { addr: dst, port: t.dst_port },
            icmp_error,
            seq: t.seq,
            ack: t.ack,
            seq_raw: t.seq,
            ack_raw: t.ack,
            len: t.len,
            tcp_flags: t.flags,
            window: t.window,
            calc_window: u32::from(t.window),
            window_scale: None,
            flags: F::empty(),
            dupack_num: 0,
            dupack_frame: 0,
            acks_frame: None,
            ack_rtt_ns: None,
            bytes_in_flight: None,
            initial_rtt_ns: None,
            options: t.options,
            payload: &[],
        };
        sink.frame(&fa);
    }

    fn remember(&mut self, m: Remembered) {
        if self.cfg.max_remembered == 0 {
            return;
        }
        if let Some(&slot) = self.remembered.get(&m.key) {
            if let Some(t) = self.tombs.get_mut(slot as usize) {
                *t = m;
            }
            return;
        }
        // At the cap, forget the oldest first, so its slot is reused and the table never
        // grows past the cap (a push beyond it would double the allocation).
        while self.remembered.len() >= self.cfg.max_remembered {
            let Some((slot, stream)) = self.remembered_order.pop_front() else { break };
            self.forget(slot, stream);
        }
        let slot = match self.tomb_free.pop() {
            Some(s) => {
                if let Some(t) = self.tombs.get_mut(s as usize) {
                    *t = m;
                }
                s
            }
            None => {
                self.tombs.push(m);
                (self.tombs.len() - 1) as u32
            }
        };
        self.remembered.insert(m.key, slot);
        self.remembered_order.push_back((slot, m.stream));
        // Entries of tombstones taken back by late frames are skipped above; keep their number
        // bounded too.
        if self.remembered_order.len() > 2 * self.remembered.len() + 64 {
            let (map, tombs) = (&self.remembered, &self.tombs);
            self.remembered_order.retain(|&(slot, stream)| {
                tombs.get(slot as usize).is_some_and(|t| t.stream == stream && map.get(&t.key) == Some(&slot))
            });
        }
    }

    /// Drops tombstone `slot` if it still holds `stream`.
    fn forget(&mut self, slot: u32, stream: u32) {
        let Some(t) = self.tombs.get(slot as usize) else { return };
        if t.stream == stream && self.remembered.get(&t.key) == Some(&slot) {
            self.remembered.remove(&t.key);
            self.tomb_free.push(slot);
            let [a, b] = [t.seq[0].base(), t.seq[1].base()];
            let isns = if t.a_is_lo { [a, b] } else { [b, a] };
            self.forgotten.insert(key_hash(&t.key), Isns(isns));
        }
    }

    /// Evicts finished connections beyond the held maximum, or idle for `closed_linger_ns`.
    fn drain_closing<S: FlowSink + ?Sized>(&mut self, now: i64, sink: &mut S) {
        while let Some(&(i, stream)) = self.closing.front() {
            let due = match self.conns.get(i as usize) {
                Some(c) if c.live && c.closing && c.stream == stream => {
                    self.closing.len() > self.cfg.max_closed_held
                        || now.saturating_sub(c.ts_last) >= self.cfg.closed_linger_ns
                }
                _ => {
                    self.closing.pop_front();
                    continue;
                }
            };
            if !due {
                break;
            }
            self.closing.pop_front();
            self.evict_tcp(i, sink, true);
        }
    }

    /// Summarises connection `idx`, frees its slot; `keep` remembers it for late frames.
    fn evict_tcp<S: FlowSink + ?Sized>(&mut self, idx: u32, sink: &mut S, keep: bool) {
        let Some(c) = self.conns.get_mut(idx as usize) else { return };
        if !c.live {
            return;
        }
        c.live = false;
        c.closing = false;
        let summary = summarize(c);
        let key = c.key;
        if keep {
            let m = Remembered {
                key,
                stream: c.stream,
                a_is_lo: c.a_is_lo,
                seq: [c.dirs[0].snapshot(), c.dirs[1].snapshot()],
                first_rtt: c.first_rtt,
                ts_mru_syn: c.ts_mru_syn,
            };
            self.remember(m);
            self.stats.tcp_evicted += 1;
        }
        if self.tcp_index.get(&key) == Some(&idx) {
            self.tcp_index.remove(&key);
        }
        if self.last_tcp.is_some_and(|(_, i)| i == idx) {
            self.last_tcp = None;
        }
        self.free.push(idx);
        sink.closed(&summary);
    }

    #[inline(always)]
    fn maybe_sweep<S: FlowSink + ?Sized>(&mut self, now: i64, sink: &mut S) {
        let last = *self.last_sweep.get_or_insert(now);
        if now.saturating_sub(last) >= self.cfg.sweep_interval_ns {
            self.sweep(now, sink);
        }
    }

    /// Evicts the flows idle past their timeout (see [`maybe_sweep`](Self::maybe_sweep)).
    #[cold]
    #[inline(never)]
    fn sweep<S: FlowSink + ?Sized>(&mut self, now: i64, sink: &mut S) {
        self.last_sweep = Some(now);
        let mut victims: Vec<(u32, u32)> = Vec::new();
        for &i in self.tcp_index.values() {
            if let Some(c) = self.conns.get(i as usize) {
                let idle = now.saturating_sub(c.ts_last);
                let closed = c.first_rst.is_some() || c.dirs.iter().all(|d| d.fin > 0);
                let limit = if closed { self.cfg.closed_linger_ns } else { self.cfg.idle_timeout_ns };
                if idle >= limit {
                    victims.push((c.stream, i));
                }
            }
        }
        victims.sort_unstable();
        for (_, i) in victims {
            self.evict_tcp(i, sink, true);
        }
        let mut victims: Vec<(u32, u32)> = Vec::new();
        for &i in self.udp_index.values() {
            if let Some(u) = self.udps.get(i as usize) {
                if now.saturating_sub(u.last_ts) >= self.cfg.udp_idle_timeout_ns {
                    victims.push((u.stream, i));
                }
            }
        }
        victims.sort_unstable();
        for (_, i) in victims {
            self.evict_udp(i, sink, true);
        }
    }

    // ---------------------------------------------------------------- UDP

    fn udp_lookup(&mut self, key: FlowKey, src_is_lo: bool, frame: u64, ts: i64) -> u32 {
        if let Some(&i) = self.udp_index.get(&key) {
            return i;
        }
        let (stream, a_is_lo) = match self.udp_remembered.remove(&key) {
            Some(m) => m,
            None => {
                let s = self.next_udp_stream;
                self.next_udp_stream = self.next_udp_stream.wrapping_add(1);
                (s, src_is_lo)
            }
        };
        let flow = UdpFlow::new(key, a_is_lo, stream, frame, ts);
        let idx = if let Some(i) = self.udp_free.pop() {
            if let Some(slot) = self.udps.get_mut(i as usize) {
                *slot = flow;
            }
            i
        } else {
            self.udps.push(flow);
            (self.udps.len() - 1) as u32
        };
        self.udp_index.insert(key, idx);
        idx
    }

    fn udp<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts: i64,
        orig_len: u32,
        ip: &IpInfo,
        u: &Udp<'_>,
        sink: &mut S,
    ) {
        self.stats.udp_frames += 1;
        let (key, src_is_lo) = FlowKey::new(ip.src, u.src_port, ip.dst, u.dst_port);
        let idx = self.udp_lookup(key, src_is_lo, frame, ts);
        let Some(f) = self.udps.get_mut(idx as usize) else { return };
        let side = f.add(src_is_lo, ts, orig_len, u.len, false);
        let d = UdpDatagram {
            frame,
            ts_ns: ts,
            stream: f.stream,
            side,
            src: crate::Endpoint { addr: ip.src, port: u.src_port },
            dst: crate::Endpoint { addr: ip.dst, port: u.dst_port },
            len: u.len,
            udp_length: u.length,
            payload: u.payload,
            icmp_error: false,
        };
        sink.udp(&d);
    }

    fn icmp_udp<S: FlowSink + ?Sized>(
        &mut self,
        frame: u64,
        ts: i64,
        orig_len: u32,
        q: &netcase_wire::Quoted,
        sink: &mut S,
    ) {
        let (key, src_is_lo) = FlowKey::new(q.src, q.src_port, q.dst, q.dst_port);
        let idx = self.udp_lookup(key, src_is_lo, frame, ts);
        let Some(f) = self.udps.get_mut(idx as usize) else { return };
        let side = f.add(src_is_lo, ts, orig_len, 0, true);
        let d = UdpDatagram {
            frame,
            ts_ns: ts,
            stream: f.stream,
            side,
            src: crate::Endpoint { addr: q.src, port: q.src_port },
            dst: crate::Endpoint { addr: q.dst, port: q.dst_port },
            len: 0,
            udp_length: 0,
            payload: &[],
            icmp_error: true,
        };
        sink.udp(&d);
    }

    fn evict_udp<S: FlowSink + ?Sized>(&mut self, idx: u32, sink: &mut S, keep: bool) {
        let Some(f) = self.udps.get(idx as usize) else { return };
        let s = f.summary();
        let key = f.key;
        let (stream, a_is_lo) = (f.stream, f.a_is_lo);
        if self.udp_index.get(&key) == Some(&idx) {
            self.udp_index.remove(&key);
        } else {
            return;
        }
        if keep && self.cfg.max_remembered > 0 {
            if self.udp_remembered.insert(key, (stream, a_is_lo)).is_none() {
                self.udp_remembered_order.push_back(key);
            }
            while self.udp_remembered.len() > self.cfg.max_remembered {
                match self.udp_remembered_order.pop_front() {
                    Some(k) => {
                        self.udp_remembered.remove(&k);
                    }
                    None => break,
                }
            }
        }
        self.udp_free.push(idx);
        sink.udp_closed(&s);
    }
}

/// The segment length tshark reports: what the IP header says, cut to what fits in the
/// frame's original length after the headers (a frame shorter on the wire than its IP length).
fn clip_len(len: u32, payload: &[u8], data: &[u8], orig_len: u32) -> u32 {
    let (p, d) = (payload.as_ptr() as usize, data.as_ptr() as usize);
    if data.is_empty() || p < d || p > d + data.len() {
        return len;
    }
    let offset = (p - d) as u64;
    let room = u64::from(orig_len).saturating_sub(offset);
    len.min(u32::try_from(room).unwrap_or(u32::MAX))
}

/// Where the TCP header starts in `data`: found by locating the IP header through its
/// addresses (used only for headers the decoder rejected).
fn tcp_offset(data: &[u8], ip: &IpInfo) -> Option<usize> {
    let mut pat = [0u8; 32];
    let (n, at) = match (ip.src, ip.dst) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            pat.get_mut(..4)?.copy_from_slice(&s.octets());
            pat.get_mut(4..8)?.copy_from_slice(&d.octets());
            (8, 12)
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            pat.get_mut(..16)?.copy_from_slice(&s.octets());
            pat.get_mut(16..32)?.copy_from_slice(&d.octets());
            (32, 8)
        }
        _ => return None,
    };
    let pat = pat.get(..n)?;
    let pos = data.windows(n).enumerate().skip(at).find(|(_, w)| *w == pat).map(|(i, _)| i)?;
    Some(pos - at + usize::from(ip.header_len))
}

fn dir_totals(c: &Conn, i: usize) -> DirTotals {
    let Some(d) = c.dirs.get(i) else { return DirTotals::default() };
    let zero_open = d.zero_since.map_or(0, |s| c.ts_last.saturating_sub(s).max(0));
    DirTotals {
        frames: d.frames,
        bytes: d.bytes,
        payload_bytes: d.payload_bytes,
        fin: d.fin,
        rst: d.rst,
        scalefactor: d.sent_non_syn.then(|| WindowScale::from_raw(d.win_scale).tshark_value()),
        window: (d.win_max >= d.win_min && d.sent_non_syn).then_some(WindowRange { min: d.win_min, max: d.win_max }),
        zero_window_ns: d.zero_total.saturating_add(zero_open),
        max_segment: d.max_seg,
        missed_bytes: d.missed().0,
        missed_gaps: d.missed().1,
    }
}

fn endpoint(c: &Conn, lo: bool) -> crate::Endpoint {
    if lo {
        c.key.lo()
    } else {
        c.key.hi()
    }
}

pub(crate) fn summarize(c: &Conn) -> ConnSummary {
    let end = if let Some(by) = c.first_rst {
        ConnEnd::Reset { by, after_fin: c.fin_before_rst }
    } else if let Some(first) = c.first_fin {
        if c.dirs.iter().all(|d| d.fin > 0) {
            ConnEnd::Closed { initiator: first }
        } else {
            ConnEnd::HalfClosed { by: first }
        }
    } else {
        ConnEnd::Open
    };
    ConnSummary {
        stream: c.stream,
        a: endpoint(c, c.a_is_lo),
        b: endpoint(c, !c.a_is_lo),
        ab: dir_totals(c, 0),
        ba: dir_totals(c, 1),
        first_frame: c.first_frame,
        first_ts_ns: c.ts_first,
        last_ts_ns: c.ts_last,
        syn: c.syn,
        synack: c.synack,
        irtt_ns: (c.first_rtt != 0).then_some(c.first_rtt),
        end,
        flag_counts: c.flag_counts,
        rtt: c.rtt.as_ref().and_then(|h| h.summary()),
        max_bytes_in_flight: c.max_bif,
        retransmitted_bytes: c.retrans_bytes,
        longest_stall_ns: c.longest_stall,
        longest_stall_frame: c.longest_stall_frame,
        resumed: c.resumed,
    }
}
