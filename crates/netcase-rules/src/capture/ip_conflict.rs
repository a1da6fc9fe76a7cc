//! ip-conflict: one IP address answering from two link-layer addresses (two containers or
//! hosts holding the same address, or ARP spoofing). Read from ARP senders and from the
//! frames that answer connections (SYN/ACK and RST), per VLAN; connects split between the two
//! holders: one accepts (SYN/ACK), the other refuses (RST).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};
use netcase_wire::tcp_flags::{ACK, RST, SYN};
use netcase_wire::{Packet, Transport};

use super::util::{pl, FrameSample, IntBuild};

/// Addresses tracked (per VLAN); beyond this new addresses are ignored (bounded memory).
const MAX_IPS: usize = 65_536;
/// Frames of one IP from two MACs whose TTLs differ by 1 or 2 are the same traffic seen before
/// and after a router (or a relay): a capture on two segments, not two holders. Two real
/// holders of an address send with their own initial TTL (64 and 64, or 64 and 128).
const ROUTED_TTL_DIFF: std::ops::RangeInclusive<u8> = 1..=2;
/// Link-layer addresses kept per IP: two prove the conflict; a third is counted only.
const MACS_PER_IP: usize = 3;

#[derive(Debug, Default, Clone, Copy)]
struct Holder {
    mac: [u8; 6],
    /// TTL of the first IP frame from this MAC (0 = none seen).
    ttl: u8,
    arp: u32,
    synack: u32,
    rst: u32,
    first_frame: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct IpEntry {
    holders: [Holder; MACS_PER_IP],
    n: u8,
}

/// An address (with its VLAN) and who holds it.
type Claim = (IpAddr, u16, IpEntry);

#[derive(Debug, Default)]
pub(super) struct Agg {
    ips: HashMap<(IpAddr, u16), IpEntry, IntBuild>,
}

fn mac_str(m: &[u8; 6]) -> String {
    let mut s = String::with_capacity(17);
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

use super::{HolderKind as Kind, PacketNote};

/// The address claim in `pkt`: an ARP sender, or the source of a SYN/ACK or RST.
#[inline]
pub(super) fn holder(pkt: &Packet<'_>) -> Option<PacketNote> {
    let vlan = if pkt.link.vlan_count > 0 { pkt.link.vlans[0] } else { 0 };
    if let Some(arp) = pkt.arp {
        if arp.sender_ip.is_unspecified() {
            return None;
        }
        return Some(PacketNote::Holder {
            ip: IpAddr::V4(arp.sender_ip),
            vlan,
            mac: arp.sender_mac,
            kind: Kind::Arp,
            ttl: 0,
        });
    }
    let Some(Transport::Tcp(t)) = pkt.transport else { return None };
    let kind = if t.flags & (SYN | ACK) == (SYN | ACK) {
        Kind::SynAck
    } else if t.flags & RST != 0 {
        Kind::Rst
    } else {
        return None;
    };
    let (Some(ip), Some(mac)) = (pkt.ip, pkt.link.src_mac) else { return None };
    Some(PacketNote::Holder { ip: ip.src, vlan, mac, kind, ttl: ip.ttl.max(1) })
}

impl Agg {
    pub(super) fn note(&mut self, ip: IpAddr, vlan: u16, mac: [u8; 6], kind: Kind, frame: u64, ttl: u8) {
        // Group and zero addresses say nothing about who holds the IP.
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return;
        }
        let len = self.ips.len();
        let e = match self.ips.get_mut(&(ip, vlan)) {
            Some(e) => e,
            None if len < MAX_IPS => self.ips.entry((ip, vlan)).or_default(),
            None => return,
        };
        let n = usize::from(e.n);
        let h = match e.holders.iter().take(n).position(|h| h.mac == mac) {
            Some(i) => &mut e.holders[i],
            None if n < MACS_PER_IP => {
                e.n += 1;
                e.holders[n] = Holder { mac, first_frame: frame, ..Holder::default() };
                &mut e.holders[n]
            }
            None => return,
        };
        if h.ttl == 0 {
            h.ttl = ttl;
        }
        match kind {
            Kind::Arp => h.arp += 1,
            Kind::SynAck => h.synack += 1,
            Kind::Rst => h.rst += 1,
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        // One finding per set of holders: a router relaying for many addresses (or an ARP
        // spoofer) shows the same pair of MACs for every address it touches.
        let mut groups: BTreeMap<Vec<[u8; 6]>, Vec<Claim>> = BTreeMap::new();
        for ((ip, vlan), e) in self.ips {
            if e.n < 2 {
                continue;
            }
            let hs = &e.holders[..usize::from(e.n)];
            let arp_holders = hs.iter().filter(|h| h.arp > 0).count();
            let routed = hs
                .iter()
                .any(|a| hs.iter().any(|b| a.ttl > 0 && b.ttl > 0 && ROUTED_TTL_DIFF.contains(&a.ttl.abs_diff(b.ttl))));
            if routed && arp_holders < 2 {
                continue;
            }
            let mut macs: Vec<[u8; 6]> = e.holders.iter().take(usize::from(e.n)).map(|h| h.mac).collect();
            macs.sort_unstable();
            groups.entry(macs).or_default().push((ip, vlan, e));
        }
        for (macs, mut ips) in groups {
            // The address with ARP evidence first (it is the one really claimed), then by IP.
            ips.sort_by_key(|(ip, vlan, e)| {
                let arp: u32 = e.holders.iter().map(|h| h.arp).sum();
                (std::cmp::Reverse(arp > 0), *ip, *vlan)
            });
            let Some(&(ip, vlan, e0)) = ips.first() else { continue };
            let holders = &e0.holders[..usize::from(e0.n)];
            let split = holders.iter().any(|h| h.rst > 0) && holders.iter().any(|h| h.synack > 0 && h.rst == 0);
            let sev = if split { Severity::Error } else { Severity::Warning };
            let mut desc = String::new();
            let mut frames = FrameSample::default();
            for h in holders {
                if !desc.is_empty() {
                    desc.push_str("; ");
                }
                let _ = write!(desc, "{} (ARP {}, SYN/ACK {}, RST {})", mac_str(&h.mac), h.arp, h.synack, h.rst);
                frames.push(h.first_frame);
            }
            let others: Vec<String> = ips.iter().skip(1).take(8).map(|(i, _, _)| i.to_string()).collect();
            let vlan_txt = if vlan > 0 { format!(" on VLAN {vlan}") } else { String::new() };
            let rst: u32 = holders.iter().map(|h| h.rst).sum();
            let synack: u32 = holders.iter().map(|h| h.synack).sum();
            let arp: u32 = holders.iter().map(|h| h.arp).sum();
            let more = if ips.len() > 1 {
                format!(
                    " The same link-layer addresses also answer for {} more.",
                    pl(ips.len() as u64 - 1, "address", "addresses")
                )
            } else {
                String::new()
            };
            let mut f = Finding::new(
                CaseId::IpConflict,
                sev,
                Subject::Peer { ip },
                format!(
                    "{ip}{vlan_txt} answers from {} link-layer addresses: {desc}{}.{more}",
                    macs.len(),
                    if split { " — connects split between one that accepts and one that resets" } else { "" },
                ),
            )
            .with_measure("holders", macs.len() as f64, "count")
            .with_measure("arp_frames", f64::from(arp), "count")
            .with_measure("synack_frames", f64::from(synack), "count")
            .with_measure("rst_frames", f64::from(rst), "count")
            .with_measure("addresses", ips.len() as f64, "count")
            .with(Evidence::text("link_addresses", desc));
            if !others.is_empty() {
                f = f.with(Evidence::text("also", others.join(", ")));
            }
            if let Some(ev) = frames.evidence("first_frames") {
                f = f.with(ev);
            }
            // Two link-layer holders answering one address differently (one refuses, one
            // accepts) is the conflict itself; without the split a router or balancer with
            // several MACs is not excluded.
            let confidence = if split { Confidence::Certain } else { Confidence::Likely };
            out.push(f.with_confidence(confidence, &[]).with_fix(format!(
                "Find the hosts or containers holding {ip} (`arping -D {ip}`, `ip -all netns exec ip -br addr`) and give \
                 one of them another address; if one MAC is not a legitimate holder, look for ARP spoofing."
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::{CaseId, Severity};

    #[test]
    fn one_ip_two_macs_split_connects() {
        let mut s = Script::new();
        for i in 0..8u16 {
            let t0 = f64::from(i);
            let mut c = s.conn(47000 + i, 80);
            if i % 4 == 3 {
                c.sv.mac = [2, 0, 0, 0, 0xee, 0xee];
                c.syn(t0);
                c.server_rst(t0 + 0.0002);
            } else {
                c.handshake(t0);
            }
        }
        s.arp_reply(0.5, [10, 0, 0, 2], [2, 0, 0, 0, 2, 2]);
        s.arp_reply(3.5, [10, 0, 0, 2], [2, 0, 0, 0, 0xee, 0xee]);
        let f = one(&s.run(), CaseId::IpConflict);
        assert_eq!(f.measure("holders"), Some(2.0));
        assert_eq!(f.measure("rst_frames"), Some(2.0));
        assert_eq!(f.severity, Severity::Error);
    }

    #[test]
    fn one_mac_per_ip_is_healthy() {
        let mut s = Script::new();
        for i in 0..4u16 {
            let mut c = s.conn(47000 + i, 80);
            c.handshake(f64::from(i));
        }
        s.arp_reply(0.5, [10, 0, 0, 2], [2, 0, 0, 0, 2, 2]);
        none(&s.run(), CaseId::IpConflict);
    }
}
