//! nat-timestamp-paws: with tcp_tw_recycle (kernels before 4.12) a server remembers the last
//! TCP timestamp of each peer IP and drops SYNs whose TSval is older. Hosts behind one NAT
//! have different timestamp clocks, so their SYNs — TSval going backwards across connections
//! from the one IP — go unanswered.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use netcase_flow::FrameAnalysis;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};

use super::util::{pl, FrameSample, IntBuild, PeerSet};
use super::Common;

/// Peer pairs (client IP, server IP) whose last timestamp is remembered; beyond this new
/// pairs are not tracked (memory stays bounded on captures with very many peers).
const MAX_PAIRS: usize = 65_536;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    syn_tsval: Option<u32>,
    last_client_tsval: Option<u32>,
    /// How far back the SYN's TSval went against the last one the server accepted.
    backwards: Option<u32>,
    syn_frame: u64,
    recorded_fin: bool,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, agg: &mut Agg, c: &Common, f: &FrameAnalysis<'_>) {
        let Some((tsval, _)) = f.options.timestamp else { return };
        let fl = f.tcp_flags;
        if f.side == c.client {
            self.last_client_tsval = Some(tsval);
            if fl & (SYN | ACK) == SYN && self.syn_tsval.is_none() {
                self.syn_tsval = Some(tsval);
                self.syn_frame = f.frame;
                if let Some(prev) = agg.pairs.get(&(f.src.addr, f.dst.addr)) {
                    let back = prev.wrapping_sub(tsval);
                    if (back as i32) > 0 {
                        self.backwards = Some(back);
                    }
                }
            } else if fl & (FIN | RST) != 0 && !self.recorded_fin && c.synack.is_some() {
                // What the server keeps after the connection: its last TSval from the peer.
                self.recorded_fin = true;
                agg.record(f.src.addr, f.dst.addr, tsval);
            }
        } else if fl & (SYN | ACK) == (SYN | ACK) && c.synack.is_none() {
            if let Some(t) = self.syn_tsval {
                agg.record(f.dst.addr, f.src.addr, t);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    dropped: u64,
    accepted_backwards: u64,
    max_back: u32,
    servers: PeerSet,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    /// Last TSval accepted per (client IP, server IP).
    pairs: HashMap<(IpAddr, IpAddr), u32, IntBuild>,
    by_client: BTreeMap<IpAddr, Entry>,
}

impl Agg {
    fn record(&mut self, client: IpAddr, server: IpAddr, tsval: u32) {
        let full = self.pairs.len() >= MAX_PAIRS;
        match self.pairs.get_mut(&(client, server)) {
            Some(t) => *t = tsval,
            None if !full => {
                self.pairs.insert((client, server), tsval);
            }
            None => {}
        }
    }

    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        let Some(back) = st.backwards else { return };
        let e = self.by_client.entry(c.client_ep().addr).or_default();
        if c.synack.is_none() {
            e.dropped += 1;
            e.max_back = e.max_back.max(back);
            e.servers.insert(c.server().addr);
            e.frames.push(st.syn_frame);
        } else {
            e.accepted_backwards += 1;
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for (ip, e) in self.by_client {
            if e.dropped == 0 {
                continue;
            }
            let mut f = Finding::new(
                CaseId::NatTimestampPaws,
                Severity::Warning,
                Subject::Peer { ip },
                format!(
                    "{} from {ip} carried a TCP timestamp older than its previous accepted connection (by up to {} \
                     ticks) and went unanswered by {}: several hosts behind one NAT with a server dropping SYNs by \
                     PAWS (tcp_tw_recycle).",
                    pl(e.dropped, "SYN", "SYNs"),
                    e.max_back,
                    e.servers.text(4),
                ),
            )
            .with_measure("count", e.dropped as f64, "count")
            .with_measure("accepted_backwards", e.accepted_backwards as f64, "count")
            .with_measure("max_tsval_backwards", f64::from(e.max_back), "ticks")
            .with(Evidence::text("servers", e.servers.text(8)));
            if let Some(ev) = e.frames.evidence("dropped_syns") {
                f = f.with(ev);
            }
            out.push(f.with_fix(
                "Set net.ipv4.tcp_tw_recycle=0 on the server (the option was removed in Linux 4.12); it breaks \
                 clients behind NAT.",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    /// Two hosts behind one NAT (same IP) with clocks far apart; the server drops `drop`'s SYNs.
    fn run(drop: bool) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        for i in 0..6u16 {
            let t0 = f64::from(i) * 2.0;
            let mut c = s.conn(46000 + i, 80);
            // Even connections: host 1 (clock at 9,000,000); odd: host 2 (clock at 1,000).
            c.c.ts_base = Some(if i % 2 == 0 { 9_000_000 } else { 1_000 });
            if i % 2 == 1 && drop {
                c.syn(t0);
                c.syn(t0 + 1.0);
            } else {
                c.handshake(t0);
                c.client_data(t0 + 0.01, 100);
                c.server_data(t0 + 0.02, 100);
                c.client_fin(t0 + 0.03);
                c.server_fin(t0 + 0.031);
                c.client_ack(t0 + 0.032);
            }
        }
        s.run()
    }

    #[test]
    fn backwards_timestamps_unanswered() {
        let f = one(&run(true), CaseId::NatTimestampPaws);
        assert_eq!(f.measure("count"), Some(3.0));
        assert!(f.measure("max_tsval_backwards").unwrap() > 8_000_000.0);
    }

    #[test]
    fn backwards_but_answered_is_healthy() {
        none(&run(false), CaseId::NatTimestampPaws);
    }
}
