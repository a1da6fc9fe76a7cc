//! port-unreachable: a SYN answered by RST/ACK (nothing listens, or a REJECT rule answers
//! with a reset), and UDP answered by ICMP port unreachable. Counted per destination port;
//! a host refusing many ports (a scan, or a host with nothing running) gets one finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_wire::tcp_flags::RST;
use netcase_wire::{Packet, Quoted, Transport};

use super::util::{pl, round, secs, server_subject, FrameSample, IntBuild, PeerSet};
use super::Common;
use super::RuleFrame;

/// The UDP datagram an ICMP (v6) port unreachable in `pkt` quotes.
#[inline]
pub(super) fn unreachable_udp(pkt: &Packet<'_>) -> Option<Quoted> {
    let Some(Transport::Icmp(icmp)) = pkt.transport else { return None };
    if !icmp.is_port_unreachable() {
        return None;
    }
    icmp.quoted.filter(|q| q.proto == 17)
}

/// More refused ports than this on one host are reported as one finding for the host (a
/// port scan, or a host where the service is down on every port), not one per port.
const MAX_PORT_FINDINGS: usize = 5;
/// A refusal followed within this long by another attempt at the same port: the client retried.
const RETRY_WINDOW_NS: i64 = 10_000_000_000;
/// A client whose SYNs to one host went unanswered or refused on this many connections is
/// scanning it (or retrying blindly): its refusals are reported together, as information.
const SCAN_MIN_ATTEMPTS: u32 = 20;
/// Ports from this one up are ephemeral (Linux 32768–60999, Windows 49152–65535): an ICMP port
/// unreachable for one, quoting a datagram from a service port, is a late reply to a client
/// socket that had already closed (a DNS answer after the resolver's timeout).
const EPHEMERAL_MIN: u16 = 32_768;
/// Refused ports remembered per host for the text evidence.
const MAX_PORTS_LISTED: usize = 20;
/// Entries kept (ip, port, proto); a capture with more distinct refused ports than this is a
/// scan of many hosts and further ports are counted in the host entry only.
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    refused: Option<(i64, u64)>,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        if f.tcp_flags & RST != 0
            && self.refused.is_none()
            && f.side != c.client
            && c.syn.is_some()
            && c.synack.is_none()
            && !c.sent_data[c.client.index()]
        {
            self.refused = Some((f.ts_ns, f.frame));
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    count: u64,
    first_ts: i64,
    last_ts: i64,
    /// The first refusals' times (to see whether a client retried).
    times: Vec<i64>,
    clients: PeerSet,
    frames: FrameSample,
}

impl Entry {
    fn add(&mut self, ts: i64, frame: u64, client: IpAddr) {
        if self.count == 0 {
            self.first_ts = ts;
        }
        self.count += 1;
        if self.times.len() < 32 {
            self.times.push(ts);
        }
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
        self.clients.insert(client);
        self.frames.push(frame);
    }
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    /// (proto, server ip, port).
    by_port: BTreeMap<(&'static str, IpAddr, u16), Entry>,
    /// Handshakes without SYN/ACK per (client, server) host pair.
    failed_pairs: HashMap<(IpAddr, IpAddr), u32, IntBuild>,
    /// ICMP port unreachable for late replies: (client ip, client port) → (count, service port, frame).
    late_replies: BTreeMap<(IpAddr, u16), (u64, u16, u64)>,
    /// Completed TCP handshakes: (lower host, higher host, port) → time of the last one. A
    /// refusal followed by a success between the same hosts on that port was a service not
    /// yet (or briefly not) listening.
    succeeded: HashMap<(IpAddr, IpAddr, u16), (i64, i64), IntBuild>,
    /// UDP: who sent first between two endpoints (lower, higher) → the first sender.
    udp_first: HashMap<(std::net::SocketAddr, std::net::SocketAddr), std::net::SocketAddr, IntBuild>,
}

fn pair(a: IpAddr, b: IpAddr, port: u16) -> (IpAddr, IpAddr, u16) {
    if a <= b {
        (a, b, port)
    } else {
        (b, a, port)
    }
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        if c.syn.is_some() && c.synack.is_none() {
            let key = (c.client_ep().addr, c.server().addr);
            if self.failed_pairs.len() < MAX_ENTRIES || self.failed_pairs.contains_key(&key) {
                *self.failed_pairs.entry(key).or_default() += 1;
            }
        }
        if c.synack.is_some() && c.hs_ack.is_some() && self.succeeded.len() < MAX_ENTRIES {
            let s = c.server();
            let e = self.succeeded.entry(pair(c.client_ep().addr, s.addr, s.port)).or_insert((c.first_ts, c.last_ts));
            e.0 = e.0.min(c.first_ts);
            e.1 = e.1.max(c.last_ts);
        }
        let Some((ts, frame)) = st.refused else { return };
        let s = c.server();
        self.add("tcp", s.addr, s.port, ts, frame, c.client_ep().addr);
    }

    fn add(&mut self, proto: &'static str, ip: IpAddr, port: u16, ts: i64, frame: u64, client: IpAddr) {
        let key = (proto, ip, port);
        if self.by_port.len() >= MAX_ENTRIES && !self.by_port.contains_key(&key) {
            return;
        }
        self.by_port.entry(key).or_default().add(ts, frame, client);
    }

    /// An ICMP (v6) port unreachable quoting the UDP datagram `q` (see [`unreachable_udp`]).
    /// A UDP datagram: remembers which end of each endpoint pair spoke first.
    pub(super) fn udp(&mut self, d: &netcase_flow::UdpDatagram<'_>) {
        if d.icmp_error {
            return;
        }
        let a = std::net::SocketAddr::new(d.src.addr, d.src.port);
        let b = std::net::SocketAddr::new(d.dst.addr, d.dst.port);
        let key = if a <= b { (a, b) } else { (b, a) };
        if self.udp_first.len() < MAX_ENTRIES || self.udp_first.contains_key(&key) {
            self.udp_first.entry(key).or_insert(a);
        }
    }

    pub(super) fn unreachable(&mut self, frame: u64, ts: i64, q: &Quoted) {
        let src = std::net::SocketAddr::new(q.src, q.src_port);
        let dst = std::net::SocketAddr::new(q.dst, q.dst_port);
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        // The refused end spoke first: it was the client, and the refused datagram a reply
        // that arrived after it closed its port.
        let refused_was_client = self.udp_first.get(&key) == Some(&dst);
        if (q.dst_port >= EPHEMERAL_MIN && q.src_port < 1024) || refused_was_client {
            if self.late_replies.len() < MAX_ENTRIES {
                let e = self.late_replies.entry((q.dst, q.dst_port)).or_insert((0, q.src_port, frame));
                e.0 += 1;
            }
            return;
        }
        self.add("udp", q.dst, q.dst_port, ts, frame, q.src);
    }

    fn late_replies_finish(&self, out: &mut Vec<Finding>) {
        let mut by_client: BTreeMap<IpAddr, (u64, u64, BTreeSet<u16>, FrameSample)> = BTreeMap::new();
        for ((ip, _port), (n, svc, frame)) in &self.late_replies {
            let e = by_client.entry(*ip).or_default();
            e.0 += n;
            e.1 += 1;
            e.2.insert(*svc);
            e.3.push(*frame);
        }
        for (ip, (n, sockets, svcs, frames)) in by_client {
            let svc: Vec<String> = svcs.iter().map(ToString::to_string).collect();
            let mut f = Finding::new(
                CaseId::PortUnreachable,
                Severity::Info,
                Subject::Peer { ip },
                format!(
                    "{ip} answered {} to its own closed ephemeral ports with ICMP port unreachable: replies from \
                     udp port {} arrived after the client socket had given up (late answers).",
                    pl(n, "reply", "replies"),
                    svc.join(", ")
                ),
            )
            .with_measure("count", n as f64, "count")
            .with_measure("sockets", sockets as f64, "count")
            .with(Evidence::text("proto", "udp"))
            .with(Evidence::text("kind", "late_reply"));
            if let Some(ev) = frames.evidence("frames") {
                f = f.with(ev);
            }
            out.push(f.with_fix(
                "Nothing listens because the client already timed out: look at why the server answers late (DNS: \
                 upstream latency) or raise the client's timeout.",
            ));
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        self.late_replies_finish(out);
        // Group per (proto, host).
        let mut hosts: BTreeMap<(&'static str, IpAddr), Vec<(u16, Entry)>> = BTreeMap::new();
        for ((proto, ip, port), e) in self.by_port {
            hosts.entry((proto, ip)).or_default().push((port, e));
        }
        let scanned: BTreeSet<IpAddr> =
            self.failed_pairs.iter().filter(|(_, n)| **n >= SCAN_MIN_ATTEMPTS).map(|((_, s), _)| *s).collect();
        for ((proto, ip), ports) in hosts {
            let how = if proto == "tcp" { "SYN answered by RST/ACK" } else { "ICMP port unreachable" };
            if ports.len() > MAX_PORT_FINDINGS || (proto == "tcp" && scanned.contains(&ip)) {
                let count: u64 = ports.iter().map(|(_, e)| e.count).sum();
                let first = ports.iter().map(|(_, e)| e.first_ts).min().unwrap_or(0);
                let last = ports.iter().map(|(_, e)| e.last_ts).max().unwrap_or(0);
                let mut clients = PeerSet::default();
                let mut frames = FrameSample::default();
                let mut listed = BTreeSet::new();
                for (p, e) in &ports {
                    clients.merge(&e.clients);
                    if let Some(x) = e.frames.first() {
                        frames.push(x);
                    }
                    if listed.len() < MAX_PORTS_LISTED {
                        listed.insert(*p);
                    }
                }
                let rate = count as f64 / secs(last - first).max(1.0);
                let port_list: Vec<String> = listed.iter().map(ToString::to_string).collect();
                let mut f = Finding::new(
                    CaseId::PortUnreachable,
                    Severity::Info,
                    Subject::Peer { ip },
                    format!(
                        "{ip} refused {} on {} {proto} ports ({how}), {:.1}/s from {}: a port scan (most probes \
                         unanswered or refused), or a host where nothing listens.",
                        pl(count, "connection attempt", "connection attempts"),
                        ports.len(),
                        rate,
                        pl(clients.len() as u64, "client", "clients"),
                    ),
                )
                .with_measure("count", count as f64, "count")
                .with_measure("refused_connections", count as f64, "count")
                .with_measure("ports", ports.len() as f64, "count")
                .with_measure("rate_per_s", round(rate, 2), "per_s")
                .with_measure("clients", clients.len() as f64, "count")
                .with(Evidence::text("proto", proto))
                .with(Evidence::text("ports_sample", port_list.join(",")));
                if let Some(ev) = frames.evidence("frames") {
                    f = f.with(ev);
                }
                out.push(f.with_fix(
                    "If this is a scan, nothing to fix on this host; otherwise start the services that should listen \
                     there, or remove the REJECT rules that answer for them.",
                ));
                continue;
            }
            for (port, e) in ports {
                let rate = e.count as f64 / secs(e.last_ts - e.first_ts).max(1.0);
                let server = netcase_flow::Endpoint { addr: ip, port };
                // A later handshake between the same hosts on this port (either way round):
                // the service was not listening yet, or briefly not; the retry worked.
                let success = |c: &IpAddr| self.succeeded.get(&pair(*c, ip, port)).copied();
                let later_success =
                    proto == "tcp" && e.clients.iter().any(|c| success(c).is_some_and(|(_, last)| last >= e.last_ts));
                // It had worked before: the service went away.
                let earlier_success =
                    proto == "tcp" && e.clients.iter().any(|c| success(c).is_some_and(|(first, _)| first < e.last_ts));
                // A client tried again soon after being refused: it needed the service.
                let mut times = e.times.clone();
                times.sort_unstable();
                let retried = times.windows(2).any(|w| w[1] - w[0] <= RETRY_WINDOW_NS);
                // Otherwise isolated attempts (a stray datagram, an application's probe of a
                // hard-coded address) are facts worth knowing, not failures someone waited on.
                let warn = !later_success && (earlier_success || retried);
                let mut f = Finding::new(
                    CaseId::PortUnreachable,
                    if warn { Severity::Warning } else { Severity::Info },
                    server_subject(proto, server),
                    format!(
                        "{} to {server}/{proto} refused ({how}) from {}: {}",
                        pl(e.count, "attempt", "attempts"),
                        pl(e.clients.len() as u64, "client", "clients"),
                        if later_success {
                            "a later connection between the same hosts on this port succeeded, so the service was \
                             not listening yet (or restarting) when these came."
                        } else if earlier_success {
                            "it had accepted connections earlier in the capture, so the service stopped listening \
                             (or a REJECT rule appeared)."
                        } else if !warn {
                            "isolated attempts, not retried: nothing listens on the port, or a REJECT rule answers \
                             for it, but no client is seen insisting."
                        } else {
                            "nothing listens on the port, or a REJECT rule answers for it."
                        }
                    ),
                )
                .with_measure("count", e.count as f64, "count")
                .with_measure("refused_connections", e.count as f64, "count")
                .with_measure("rate_per_s", round(rate, 2), "per_s")
                .with_measure("clients", e.clients.len() as f64, "count")
                .with(Evidence::text("proto", proto))
                .with(Evidence::text("clients", e.clients.text(8)));
                if let Some(ev) = e.frames.evidence("frames") {
                    f = f.with(ev);
                }
                out.push(f.with_fix(format!(
                    "Check that the service listens on {port}/{proto} on {ip} (ss -ltnu), that no netfilter REJECT \
                     rule matches it, and that clients use the right address and port."
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Refused while the service was not yet listening, then a connection worked: information.
    #[test]
    fn refused_then_connected_is_info() {
        let mut s = Script::new();
        for (i, t) in [0.0, 2.0].iter().enumerate() {
            let mut c = s.conn(45000 + i as u16, 179);
            c.syn(*t);
            c.server_rst(*t + 0.0005);
        }
        let mut c = s.conn(45010, 179);
        c.handshake(6.0);
        c.client_data(6.01, 50);
        c.server_ack(6.011);
        let f = one(&s.run(), CaseId::PortUnreachable);
        assert_eq!(f.severity, netcase_model::Severity::Info);
        assert!(f.summary.contains("later connection"), "{}", f.summary);
    }

    use super::super::testkit::*;
    use netcase_model::CaseId;

    #[test]
    fn syn_answered_by_rst_per_port() {
        let mut s = Script::new();
        for i in 0..4u16 {
            let mut c = s.conn(44000 + i, 5432);
            c.syn(f64::from(i));
            c.server_rst(f64::from(i) + 0.0002);
        }
        s.icmp_port_unreachable(9.0, ([10, 0, 0, 1], 5555), ([10, 0, 0, 3], 514));
        let f = s.run();
        let v: Vec<_> = f.iter().filter(|x| x.case == CaseId::PortUnreachable).collect();
        assert_eq!(v.len(), 2, "{v:#?}");
        let tcp = v.iter().find(|x| x.text("proto") == Some("tcp")).unwrap();
        assert_eq!(tcp.measure("count"), Some(4.0));
        let udp = v.iter().find(|x| x.text("proto") == Some("udp")).unwrap();
        assert_eq!(udp.measure("count"), Some(1.0));
    }

    #[test]
    fn scan_is_one_host_finding() {
        let mut s = Script::new();
        for i in 0..50u16 {
            let mut c = s.conn(44000, 1000 + i);
            c.syn(f64::from(i) * 0.01);
            c.server_rst(f64::from(i) * 0.01 + 0.0002);
        }
        let f = one(&s.run(), CaseId::PortUnreachable);
        assert_eq!(f.measure("ports"), Some(50.0));
        assert_eq!(f.measure("count"), Some(50.0));
    }

    #[test]
    fn accepted_connection_then_reset_is_not_refused() {
        let mut s = Script::new();
        let mut c = s.conn(44000, 5432);
        c.handshake(0.0);
        c.server_rst(0.1);
        none(&s.run(), CaseId::PortUnreachable);
    }
}
