//! Just enough Ethernet/IPv4/TCP/UDP decoding for a lab to check its own ground truth in
//! the frames it captured (and for the relay's drop rules). Anything else decodes to `None`.

use crate::capture::Frame;
use std::net::Ipv4Addr;

/// TCP flag bits.
pub mod flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
}

/// A decoded TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits ([`flags`]).
    pub flags: u8,
    /// Raw window field.
    pub win: u16,
    /// Payload length.
    pub len: usize,
    /// Whether the options carry Window Scale.
    pub wscale: bool,
    /// The Window Scale shift, when the options carry one.
    pub wscale_shift: Option<u8>,
    /// The Timestamps option's TSval, when the options carry one.
    pub tsval: Option<u32>,
}

/// A decoded IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ip<'a> {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TCP header, when TCP.
    pub tcp: Option<Tcp>,
    /// UDP (sport, dport, payload), when UDP.
    pub udp: Option<(u16, u16, &'a [u8])>,
    /// ICMP type, when ICMP.
    pub icmp: Option<u8>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// Decodes an Ethernet frame carrying IPv4.
pub fn parse(frame: &[u8]) -> Option<Ip<'_>> {
    if be16(frame, 12)? != 0x0800 {
        return None;
    }
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(frame.get(6..12)?);
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?).min(ip.len());
    let proto = *ip.get(9)?;
    let src = Ipv4Addr::from(be32(ip, 12)?);
    let dst = Ipv4Addr::from(be32(ip, 16)?);
    let l4 = ip.get(ihl..total)?;
    let mut out = Ip { src_mac, src, dst, tcp: None, udp: None, icmp: None };
    match proto {
        6 => {
            let doff = usize::from(l4.get(12)? >> 4) * 4;
            let opts = l4.get(20..doff).unwrap_or_default();
            out.tcp = Some(Tcp {
                sport: be16(l4, 0)?,
                dport: be16(l4, 2)?,
                seq: be32(l4, 4)?,
                ack: be32(l4, 8)?,
                flags: *l4.get(13)?,
                win: be16(l4, 14)?,
                len: l4.len().saturating_sub(doff),
                wscale: wscale_shift(opts).is_some(),
                wscale_shift: wscale_shift(opts),
                tsval: tsval(opts),
            });
        }
        17 => out.udp = Some((be16(l4, 0)?, be16(l4, 2)?, l4.get(8..)?)),
        1 => out.icmp = Some(*l4.first()?),
        _ => {}
    }
    Some(out)
}

fn wscale_shift(mut o: &[u8]) -> Option<u8> {
    while let Some(&kind) = o.first() {
        match kind {
            0 => return None,
            1 => o = o.get(1..).unwrap_or_default(),
            3 => return o.get(2).copied(),
            _ => {
                let len = usize::from(o.get(1).copied().unwrap_or(0)).max(2);
                o = o.get(len..).unwrap_or_default();
            }
        }
    }
    None
}

/// The next-hop MTU of an ICMP fragmentation-needed (type 3 code 4) in an Ethernet/IPv4 frame.
pub fn icmp_frag_needed_mtu(frame: &[u8]) -> Option<u16> {
    if be16(frame, 12)? != 0x0800 {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 1 {
        return None;
    }
    let icmp = ip.get(ihl..)?;
    (icmp.first() == Some(&3) && icmp.get(1) == Some(&4)).then(|| be16(icmp, 6)).flatten()
}

/// The TSval of a Timestamps option (kind 8, length 10) in TCP options `o`.
fn tsval(mut o: &[u8]) -> Option<u32> {
    while let Some(&kind) = o.first() {
        match kind {
            0 => return None,
            1 => o = o.get(1..).unwrap_or_default(),
            8 => return (o.get(1) == Some(&10)).then(|| be32(o, 2)).flatten(),
            _ => {
                let len = usize::from(o.get(1).copied().unwrap_or(0)).max(2);
                o = o.get(len..).unwrap_or_default();
            }
        }
    }
    None
}

/// Every TCP segment in `frames` with its timestamp and addresses.
pub fn tcp_segments(frames: &[Frame]) -> Vec<(u64, Ipv4Addr, Ipv4Addr, Tcp)> {
    frames
        .iter()
        .filter_map(|f| {
            let p = parse(&f.data)?;
            Some((f.ts_ns, p.src, p.dst, p.tcp?))
        })
        .collect()
}

/// Counts TCP segments matching `pred`.
pub fn count_tcp(frames: &[Frame], pred: impl Fn(&Tcp) -> bool) -> usize {
    tcp_segments(frames).iter().filter(|(_, _, _, t)| pred(t)).count()
}

/// Distinct connections (by the client port, the one that is not `server_port`) that carry a
/// segment from `server_port` (or to it, when `to_server`) with the RST bit.
pub fn reset_connections(frames: &[Frame], server_port: u16, to_server: bool) -> usize {
    let mut conns = std::collections::HashSet::new();
    for (_, _, _, t) in tcp_segments(frames) {
        if t.flags & flags::RST == 0 {
            continue;
        }
        if !to_server && t.sport == server_port {
            conns.insert(t.dport);
        } else if to_server && t.dport == server_port {
            conns.insert(t.sport);
        }
    }
    conns.len()
}

/// Connections to `server_port` refused: the server answered their SYN with RST and never sent
/// a SYN/ACK (counted by client port). A RST at the end of an accepted connection is not a
/// refusal.
pub fn refused_connections(frames: &[Frame], server_port: u16) -> usize {
    let mut accepted = std::collections::HashSet::new();
    let mut refused = std::collections::HashSet::new();
    for (_, _, _, t) in tcp_segments(frames) {
        if t.sport != server_port {
            continue;
        }
        if t.flags & flags::SYN != 0 && t.flags & flags::ACK != 0 {
            accepted.insert(t.dport);
        } else if t.flags & flags::RST != 0 && !accepted.contains(&t.dport) {
            refused.insert(t.dport);
        }
    }
    refused.len()
}
