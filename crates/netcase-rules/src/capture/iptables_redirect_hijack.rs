//! iptables-redirect-hijack, from a capture: a SYN to one address answered by a SYN/ACK from
//! another that acknowledges the same initial sequence number. Only a NAT between the capture
//! point and the listener rewrites one and not the other; when the SYN went to a local
//! listener (loopback, or the client's own address) while the SYN/ACK comes back as the remote
//! address the client dialled, a nat OUTPUT `REDIRECT`/`DNAT` on the capturing host sent the
//! connection to a local process instead of where the client meant. That is what a capture on
//! `any` or `lo` shows of a sidecar's nat rule: the redirected SYN leaves on `lo` with its new
//! destination, the reply is translated back before it is captured.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use netcase_flow::Endpoint;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, SYN};

use super::util::{pl, sa, FastMap, FrameSample};
use super::RuleFrame;

/// SYNs remembered while their SYN/ACK may still come (bounded: the oldest leave first).
const PENDING_MAX: usize = 4096;
/// A SYN/ACK this long after the SYN no longer pairs with it.
const PAIR_WINDOW_NS: i64 = 10_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Syn {
    /// The (client, client port, ISN) it was filed under (the map is keyed by its hash).
    key: (IpAddr, u16, u32),
    dst: Endpoint,
    ts: i64,
    frame: u64,
}

/// (client, client port, ISN) as one word for the map (every SYN and SYN/ACK is hashed: a
/// multiply, not SipHash; the full key is checked on a hit).
#[inline]
fn word(k: &(IpAddr, u16, u32)) -> u64 {
    let a = match k.0 {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => {
            let x = u128::from(v);
            (x as u64) ^ ((x >> 64) as u64).rotate_left(29)
        }
    };
    (a ^ (u64::from(k.1) << 32) ^ u64::from(k.2).rotate_left(48)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Connections whose SYN went to `actual` while the client dialled `intended`.
#[derive(Debug, Default)]
struct Entry {
    count: u64,
    clients: BTreeMap<IpAddr, u64>,
    frames: FrameSample,
}

/// Pairs SYNs and SYN/ACKs across flows by (client, client port, ISN).
#[derive(Debug, Default)]
pub(super) struct Agg {
    pending: FastMap<u64, Syn>,
    order: VecDeque<u64>,
    /// (intended, actual) → what was seen.
    by: BTreeMap<(Endpoint, Endpoint), Entry>,
}

/// A local address: where a REDIRECT sends a connection (loopback for locally generated
/// traffic, the receiving interface's address otherwise).
fn local(dst: &Endpoint, client: &IpAddr) -> bool {
    dst.addr.is_loopback() || dst.addr == *client
}

impl Agg {
    /// Sees every SYN and SYN/ACK (other frames return at once).
    #[inline]
    pub(super) fn frame(&mut self, f: &RuleFrame) {
        if f.tcp_flags & SYN == 0 {
            return;
        }
        if f.tcp_flags & ACK == 0 {
            let key = (f.src.addr, f.src.port, f.seq_raw);
            let w = word(&key);
            if self.pending.insert(w, Syn { key, dst: f.dst, ts: f.ts_ns, frame: f.frame }).is_none() {
                self.order.push_back(w);
                while self.order.len() > PENDING_MAX {
                    if let Some(old) = self.order.pop_front() {
                        self.pending.remove(&old);
                    }
                }
            }
            return;
        }
        // A SYN/ACK: which SYN does it acknowledge?
        let key = (f.dst.addr, f.dst.port, f.ack_raw.wrapping_sub(1));
        let Some(syn) = self.pending.remove(&word(&key)) else { return };
        if syn.key != key {
            return;
        }
        if f.ts_ns.saturating_sub(syn.ts) > PAIR_WINDOW_NS || syn.dst == f.src {
            return;
        }
        // Answered by another endpoint: the SYN's destination was rewritten after the capture
        // point saw the reply translated back (or the other way round). Only the local case
        // is this case; a DNAT to another remote host is the network's business.
        let intended = f.src;
        let actual = syn.dst;
        if !local(&actual, &f.dst.addr) || local(&intended, &f.dst.addr) {
            return;
        }
        let e = self.by.entry((intended, actual)).or_default();
        e.count += 1;
        *e.clients.entry(f.dst.addr).or_default() += 1;
        e.frames.push(syn.frame);
        e.frames.push(f.frame);
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        // One finding per local listener, naming the remote addresses it stood in for.
        let mut by_actual: BTreeMap<Endpoint, Vec<(Endpoint, Entry)>> = BTreeMap::new();
        for ((intended, actual), e) in self.by {
            by_actual.entry(actual).or_default().push((intended, e));
        }
        for (actual, list) in by_actual {
            let count: u64 = list.iter().map(|(_, e)| e.count).sum();
            let ports: std::collections::BTreeSet<u16> = list.iter().map(|(i, _)| i.port).collect();
            let intended_txt: Vec<String> = if list.len() == 1 {
                list.iter().map(|(i, _)| i.to_string()).collect()
            } else {
                list.iter().take(4).map(|(i, e)| format!("{i} ({})", e.count)).collect()
            };
            let more = if list.len() > 4 { ", …" } else { "" };
            let mut frames = FrameSample::default();
            for (_, e) in &list {
                frames.merge(&e.frames);
            }
            let first = list.first().map(|(i, _)| *i);
            let mut f = Finding::new(
                CaseId::IptablesRedirectHijack,
                Severity::Warning,
                netcase_model::Subject::ServerPort { proto: "tcp", ip: Some(actual.addr), port: actual.port },
                format!(
                    "{} dialled to {}{more} were answered by the local listener {actual}: the SYN went to {actual}, \
                     the SYN/ACK came back as the remote address (it acknowledges the same initial sequence \
                     number), so a nat rule on the capturing host (OUTPUT REDIRECT/DNAT) sent them to a local \
                     process instead of where the client meant.",
                    pl(count, "connection", "connections"),
                    intended_txt.join(", "),
                ),
            )
            .with_confidence(Confidence::Likely, &[])
            .with_measure("count", count as f64, "count")
            .with_measure("to_port", f64::from(actual.port), "port");
            if let (Some(i), 1) = (first, ports.len()) {
                f = f.with_measure("from_port", f64::from(i.port), "port");
            }
            f = f.with(Evidence::text("local_listener", sa(actual).to_string()));
            if let Some(ev) = frames.evidence("frames") {
                f = f.with(ev);
            }
            out.push(f.with_fix(
                "Find the rule: `iptables -t nat -S OUTPUT` (and `nft list ruleset`) on the capturing host, or \
                 `netcase check`, which walks the nat table for a destination. If a sidecar proxy is meant to \
                 intercept this traffic (Istio's 15001), this is expected; otherwise remove the rule or exclude \
                 this destination from it.",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    #[test]
    fn syn_to_a_local_port_answered_as_the_remote_address_is_a_redirect() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let t = f64::from(i);
            let port = 50_000 + i;
            // The SYN as captured on lo after the nat OUTPUT REDIRECT ...
            let mut redirected = s.conn_ips([10, 0, 0, 1], port, [127, 0, 0, 1], 15001);
            let isn = redirected.c.isn;
            redirected.syn(t);
            // ... and the SYN/ACK translated back to the address the client dialled.
            let mut back = s.conn_ips([10, 0, 0, 1], port, [10, 0, 0, 2], 80);
            back.c.isn = isn;
            back.c.nxt = isn.wrapping_add(1);
            back.synack(t + 0.0001);
        }
        let f = s.run();
        let f = one(&f, CaseId::IptablesRedirectHijack);
        assert_eq!(f.measure("count"), Some(3.0));
        assert_eq!(f.measure("to_port"), Some(15001.0));
        assert_eq!(f.measure("from_port"), Some(80.0));
    }

    #[test]
    fn an_ordinary_handshake_is_not_a_redirect() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let mut c = s.conn_ips([10, 0, 0, 1], 50_000 + i, [127, 0, 0, 1], 15001);
            c.handshake(f64::from(i));
        }
        none(&s.run(), CaseId::IptablesRedirectHijack);
    }
}
