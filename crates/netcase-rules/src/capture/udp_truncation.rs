//! udp-truncation: a UDP reader with a small buffer (512, 1024 bytes…) silently truncates
//! larger datagrams (MSG_TRUNC); no kernel counter moves, so datagram sizes are the only hint a
//! capture gives. Protocols designed for large datagrams (whose readers use 64 KiB buffers)
//! are left out.

use std::collections::{BTreeMap, HashMap};

use netcase_flow::{Endpoint, UdpDatagram, UdpSummary};
use netcase_model::{CaseId, Evidence, Finding, Severity};

use super::util::{pl, FlowGroup, FrameSample, IntBuild};
use super::Role;

/// Datagrams above this exceed the common small read buffers (1024 bytes and smaller); the
/// classic DNS limit of 512 is reported as well but alone does not trigger (EDNS makes larger
/// DNS answers normal).
const MIN_BUFFER: u32 = 1024;
/// Large datagrams needed per receiver: a sustained pattern (a reader fed such datagrams),
/// not the odd large discovery or handshake packet.
const MIN_COUNT: u64 = 5;
/// Read-buffer sizes applications commonly use; the finding names the largest one exceeded.
const COMMON_BUFFERS: [u32; 8] = [512, 1024, 1500, 2048, 4096, 8192, 16_384, 32_768];
/// Ports of protocols built on large datagrams, whose readers use 64 KiB buffers: DNS (EDNS)
/// and DNS over QUIC, QUIC/HTTP3 and DTLS VPNs (443, 80), IPsec and NAT-T, OpenVPN, WireGuard,
/// VXLAN/Geneve/flannel overlays, NFS, mDNS, STUN/TURN.
const LARGE_DATAGRAM_PORTS: [u16; 14] = [53, 80, 443, 853, 500, 4500, 1194, 51820, 4789, 6081, 8472, 2049, 5353, 3478];

#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    over_512: [u32; 2],
    over_min: [u32; 2],
    max: [u32; 2],
    packets: [u32; 2],
    first_over: [u64; 2],
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    over_512: u64,
    over_min: u64,
    max: u32,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    flows: HashMap<u32, Flow, IntBuild>,
    /// Keyed by the receiving endpoint's role in the flow (the client spoke first).
    by: BTreeMap<(Endpoint, Role), Entry>,
}

/// `a` sent the flow's first datagram: it is the client (as Zeek's originator), unless it
/// sent from a well-known port to an ephemeral one (the capture began with a reply).
fn server_is_b(a: Endpoint, b: Endpoint) -> bool {
    !(a.port < 1024 && b.port >= 1024)
}

impl Agg {
    #[inline]
    pub(super) fn udp(&mut self, d: &UdpDatagram<'_>) {
        if d.icmp_error || d.len <= 512 {
            return;
        }
        let fl = self.flows.entry(d.stream).or_default();
        let i = d.side.index();
        fl.over_512[i] += 1;
        if d.len > MIN_BUFFER {
            fl.over_min[i] += 1;
            if fl.first_over[i] == 0 {
                fl.first_over[i] = d.frame;
            }
        }
        fl.max[i] = fl.max[i].max(d.len);
        fl.packets[i] += 1;
    }

    pub(super) fn udp_closed(&mut self, u: &UdpSummary) {
        let Some(fl) = self.flows.remove(&u.stream) else { return };
        if LARGE_DATAGRAM_PORTS.contains(&u.a.port) || LARGE_DATAGRAM_PORTS.contains(&u.b.port) {
            return;
        }
        let b_server = server_is_b(u.a, u.b);
        let (server, client) = if b_server { (u.b, u.a) } else { (u.a, u.b) };
        for (i, recv_is_b) in [(0usize, true), (1usize, false)] {
            if fl.over_min[i] == 0 {
                continue;
            }
            let role = if recv_is_b == b_server { Role::Server } else { Role::Client };
            let e = self.by.entry((server, role)).or_default();
            e.group.add(u.stream, client, server);
            e.over_512 += u64::from(fl.over_512[i]);
            e.over_min += u64::from(fl.over_min[i]);
            e.max = e.max.max(fl.max[i]);
            e.frames.push(fl.first_over[i]);
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, receiver), e) in self.by {
            if e.over_min < MIN_COUNT {
                continue;
            }
            let exceeds = COMMON_BUFFERS.iter().copied().filter(|b| *b < e.max).max().unwrap_or(MIN_BUFFER);
            let mut f = Finding::new(
                CaseId::UdpTruncation,
                Severity::Info,
                e.group.subject("udp", server),
                format!(
                    "{} to the {} of udp {server} exceeded {MIN_BUFFER} bytes (largest {} bytes, over {exceeds}): a \
                     reader with a smaller buffer gets them truncated without any error counter.",
                    pl(e.over_min, "datagram", "datagrams"),
                    receiver.as_str(),
                    e.max
                ),
            )
            .with_measure("count", e.over_min as f64, "count")
            .with_measure("datagrams", e.over_min as f64, "count")
            .with_measure("over_512", e.over_512 as f64, "count")
            .with_measure("datagram_bytes", f64::from(e.max), "bytes")
            .with_measure("exceeds_bytes", f64::from(exceeds), "bytes")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("receiver", receiver.as_str()));
            if let Some(ev) = e.frames.evidence("frames") {
                f = f.with(ev);
            }
            out.push(f.with_fix(format!(
                "Make the {} read with a buffer of at least {} bytes (65,535 covers any UDP datagram) and check \
                 MSG_TRUNC, or keep datagrams below the reader's buffer.",
                receiver.as_str(),
                e.max
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    #[test]
    fn large_datagrams_to_a_udp_service() {
        let mut s = Script::new();
        for i in 0..10 {
            s.udp(f64::from(i) * 0.1, ([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 9999), 1400);
        }
        let f = one(&s.run(), CaseId::UdpTruncation);
        assert_eq!(f.measure("datagram_bytes"), Some(1400.0));
        assert_eq!(f.measure("exceeds_bytes"), Some(1024.0));
        assert_eq!(f.measure("count"), Some(10.0));
        assert_eq!(f.text("receiver"), Some("server"));
    }

    #[test]
    fn small_datagrams_and_quic_are_healthy() {
        let mut s = Script::new();
        for i in 0..10 {
            s.udp(f64::from(i) * 0.1, ([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 9999), 900);
            s.udp(f64::from(i) * 0.1, ([10, 0, 0, 1], 40001), ([10, 0, 0, 2], 443), 1350);
        }
        none(&s.run(), CaseId::UdpTruncation);
    }
}
