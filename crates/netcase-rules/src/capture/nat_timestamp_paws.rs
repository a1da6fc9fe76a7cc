//! nat-timestamp-paws: with tcp_tw_recycle (kernels before 4.12) a server remembers the last
//! TCP timestamp of each peer IP and drops SYNs whose TSval is older. Hosts behind one NAT
//! have different timestamp clocks, so their SYNs — TSval going backwards across connections
//! from the one IP — go unanswered.
//!
//! A backwards TSval alone proves nothing: Linux gives each connection a random timestamp
//! offset (since 4.10), so about half of all SYNs from one IP go backwards with no fault, and
//! any SYN drop (a full SYN queue, loss) hits some of them. What marks PAWS is selectivity:
//! from one IP the dropped SYNs are (nearly) all backwards ones while forward ones are
//! answered ([`Directions::paws`]). `syn-queue-overflow` asks [`Agg::explains`] so that
//! drops this pattern explains are not claimed twice.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};

use super::util::{pl, FastMap, FrameSample, IntBuild, PeerSet};
use super::Common;
use super::RuleFrame;

/// Peer pairs (client IP, server IP) whose last timestamp is remembered; beyond this new
/// pairs are not tracked (memory stays bounded on captures with very many peers).
const MAX_PAIRS: usize = 65_536;
/// Client IPs whose SYN drops are tallied by direction; beyond this new ones are not (a SYN
/// flood from spoofed sources makes one per SYN) and their drops stay unexplained.
const MAX_CLIENTS: usize = 65_536;
/// Connections with a dropped SYN needed from one IP, all the pattern's other conditions met,
/// before PAWS explains them: with random timestamp offsets a SYN dropped for any reason went
/// backwards half the time, so one or two are a coin toss (three in a row by chance: 1 in 8,
/// and the answered-backwards bound below cuts that further). The same floor as
/// syn-queue-overflow's: a pattern needs a burst.
const PAWS_MIN_DROPS: u64 = 3;
/// Dropped-and-backwards connections needed per dropped connection whose SYN did not go
/// backwards (forward, no timestamp, or nothing accepted before to compare with): at least
/// 9 to 1, i.e. ≥ 90 % of the IP's drops went backwards. PAWS drops only backwards SYNs; the
/// few forward ones it leaves are ordinary loss or the capture's notion of "last accepted"
/// differing a little from the server's. A direction-blind drop splits about evenly
/// (P(≥ 90 % of 10 drops backwards) ≈ 1 %).
const PAWS_BACKWARDS_PER_OTHER: u64 = 9;

/// How one client IP's connections fared by the direction of their first SYN's TSval against
/// the last one the server accepted from that IP.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Directions {
    /// Connections with a SYN dropped (retransmitted or never answered) that went backwards.
    pub(super) dropped_back: u64,
    /// Connections with a SYN dropped that did not go backwards.
    pub(super) dropped_other: u64,
    /// Connections answered at their first SYN although it went backwards.
    pub(super) answered_back: u64,
}

impl Directions {
    pub(super) fn add(&mut self, syn_dropped: bool, backwards: bool) {
        match (syn_dropped, backwards) {
            (true, true) => self.dropped_back += 1,
            (true, false) => self.dropped_other += 1,
            (false, true) => self.answered_back += 1,
            (false, false) => {}
        }
    }

    /// The drops are PAWS's: enough of them ([`PAWS_MIN_DROPS`]), nearly all backwards
    /// ([`PAWS_BACKWARDS_PER_OTHER`]), and at least as many backwards SYNs dropped as answered
    /// at once — PAWS drops every SYN that is backwards against the server's memory (those it
    /// answers are where the capture's view differs: the memory expired after 60 s, or was
    /// not updated), while a direction-blind drop of rate p < 50 % leaves most of them answered.
    pub(super) fn paws(&self) -> bool {
        self.dropped_back >= PAWS_MIN_DROPS
            && self.dropped_back >= PAWS_BACKWARDS_PER_OTHER * self.dropped_other
            && self.answered_back <= self.dropped_back
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    syn_tsval: Option<u32>,
    last_client_tsval: Option<u32>,
    /// How far back the (first) SYN's TSval went against the last one the server accepted.
    backwards: Option<u32>,
    syn_frame: u64,
    recorded_fin: bool,
}

impl State {
    /// The connection's first SYN carried a TSval older than the last one the server accepted
    /// from the same IP.
    pub(super) fn went_backwards(&self) -> bool {
        self.backwards.is_some()
    }

    #[inline]
    pub(super) fn frame(&mut self, agg: &mut Agg, c: &Common, f: &RuleFrame) {
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
            // The SYN answered is the latest one (a retransmission when the first was dropped).
            if let (Some(_), Some(t)) = (self.syn_tsval, self.last_client_tsval) {
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
    /// Per client IP: its connections by SYN drop and TSval direction.
    dirs: FastMap<IpAddr, Directions>,
    /// Per client IP: its backwards SYNs.
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

    /// Folds a closed connection in; `syn_dropped`: a SYN of it was retransmitted or never
    /// answered (the handshake model's view).
    pub(super) fn closed(&mut self, st: &State, c: &Common, syn_dropped: bool) {
        if st.backwards.is_none() && !syn_dropped {
            return;
        }
        let ip = c.client_ep().addr;
        if self.dirs.len() < MAX_CLIENTS || self.dirs.contains_key(&ip) {
            self.dirs.entry(ip).or_default().add(syn_dropped, st.backwards.is_some());
        }
        let Some(back) = st.backwards else { return };
        let e = self.by_client.entry(ip).or_default();
        if c.synack.is_none() {
            e.dropped += 1;
            e.max_back = e.max_back.max(back);
            e.servers.insert(c.server().addr);
            e.frames.push(st.syn_frame);
        } else {
            e.accepted_backwards += 1;
        }
    }

    /// Whether the SYN drops of `client` follow the PAWS pattern (its backwards-SYN drops are
    /// this rule's, not a queue's).
    pub(super) fn explains(&self, client: IpAddr) -> bool {
        self.dirs.get(&client).is_some_and(Directions::paws)
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for (ip, e) in self.by_client {
            if e.dropped == 0 || !self.dirs.get(&ip).is_some_and(Directions::paws) {
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
                c.exchange(t0);
            }
        }
        s.run()
    }

    #[test]
    fn backwards_timestamps_unanswered() {
        let all = run(true);
        let f = one(&all, CaseId::NatTimestampPaws);
        assert_eq!(f.measure("count"), Some(3.0));
        assert!(f.measure("max_tsval_backwards").unwrap() > 8_000_000.0);
        // The drops are PAWS's: not a SYN queue's too.
        none(&all, CaseId::SynQueueOverflow);
    }

    #[test]
    fn paws_pattern_thresholds() {
        use super::Directions;
        let d = |dropped_back, dropped_other, answered_back| Directions { dropped_back, dropped_other, answered_back };
        assert!(d(3, 0, 0).paws());
        assert!(!d(2, 0, 0).paws(), "two backwards drops are a coin toss");
        assert!(d(9, 1, 0).paws(), "90 % backwards");
        assert!(!d(8, 1, 0).paws(), "89 % backwards");
        assert!(d(4, 0, 4).paws());
        assert!(!d(4, 0, 5).paws(), "most backwards SYNs answered");
    }

    #[test]
    fn backwards_but_answered_is_healthy() {
        none(&run(false), CaseId::NatTimestampPaws);
    }
}
