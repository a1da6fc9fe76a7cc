//! The decoder: link layer → IP → transport, one bounds-checked pass, no allocation.

use crate::reader::Reader;
use crate::types::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const ETH_ARP: u16 = 0x0806;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88A8;
const ETH_QINQ_OLD: u16 = 0x9100;

/// How deep IP-in-IP tunnels are followed.
const MAX_IP_NESTING: u8 = 3;
/// How many IPv6 extension headers are walked before giving up.
const MAX_V6_EXT: u8 = 16;
/// How many VLAN tags are walked before giving up.
const MAX_VLANS: u8 = 8;

fn truncated(layer: Layer, need: usize, have: usize) -> DecodeError {
    DecodeError::Truncated { layer, need, have }
}

/// Decodes one captured frame of the given link type.
///
/// Never panics and never allocates. When a header is cut short or malformed, the layers
/// decoded so far are returned with [`Packet::error`] set.
#[inline]
pub fn decode(link: LinkType, data: &[u8]) -> Packet<'_> {
    if link == LinkType::Ethernet {
        if let Some(p) = fast_eth_ipv4_tcp(data) {
            return p;
        }
    }
    decode_layers(link, data)
}

/// The common case in one step: Ethernet, IPv4 without options, not a fragment, a non-zero
/// total length, a whole TCP header. Returns `None` for anything else, which the general path
/// then decodes; when it returns a packet, it is exactly what the general path would return.
#[inline]
fn fast_eth_ipv4_tcp(data: &[u8]) -> Option<Packet<'_>> {
    let h: &[u8; 54] = data.get(..54)?.try_into().ok()?;
    let be16 = |a: u8, b: u8| u16::from_be_bytes([a, b]);
    let be32 = |a: u8, b: u8, c: u8, d: u8| u32::from_be_bytes([a, b, c, d]);
    if be16(h[12], h[13]) != ETH_IPV4 || h[14] != 0x45 || h[23] != 6 {
        return None;
    }
    let total = usize::from(be16(h[16], h[17]));
    let frag = be16(h[20], h[21]);
    let off_flags = be16(h[46], h[47]);
    let header_len = usize::from(off_flags >> 12) * 4;
    if total < 40 || frag & 0x3FFF != 0 || header_len < 20 {
        return None;
    }
    let ip_len = total - 20;
    let after_ip = data.get(34..)?;
    let ip_payload = after_ip.get(..ip_len.min(after_ip.len()))?;
    let opt_bytes = ip_payload.get(20..header_len)?;
    let rest = ip_payload.get(header_len..)?;
    let options = match opt_bytes {
        [] => TcpOptions::default(),
        // NOP, NOP, timestamps: what Linux sends on every segment.
        [1, 1, 8, 10, a0, a1, a2, a3, b0, b1, b2, b3] => TcpOptions {
            timestamp: Some((be32(*a0, *a1, *a2, *a3), be32(*b0, *b1, *b2, *b3))),
            ..TcpOptions::default()
        },
        _ => tcp_options(opt_bytes),
    };
    let len = (ip_len as u32).saturating_sub(header_len as u32);
    let payload = rest.get(..(len as usize).min(rest.len()))?;
    Some(Packet {
        link: LinkInfo {
            src_mac: Some([h[6], h[7], h[8], h[9], h[10], h[11]]),
            dst_mac: Some([h[0], h[1], h[2], h[3], h[4], h[5]]),
            vlans: [0; 2],
            vlan_count: 0,
            ethertype: ETH_IPV4,
        },
        arp: None,
        ip: Some(IpInfo {
            src: IpAddr::V4(Ipv4Addr::new(h[26], h[27], h[28], h[29])),
            dst: IpAddr::V4(Ipv4Addr::new(h[30], h[31], h[32], h[33])),
            proto: 6,
            ttl: h[22],
            header_len: 20,
            payload_len: ip_len as u32,
            id: be16(h[18], h[19]),
            fragment: None,
            has_options: false,
        }),
        transport: Some(Transport::Tcp(Tcp {
            src_port: be16(h[34], h[35]),
            dst_port: be16(h[36], h[37]),
            seq: be32(h[38], h[39], h[40], h[41]),
            ack: be32(h[42], h[43], h[44], h[45]),
            header_len: header_len as u8,
            flags: off_flags & 0x01FF,
            window: be16(h[48], h[49]),
            urgent: be16(h[52], h[53]),
            options,
            len,
            payload,
        })),
        ip_payload,
        error: None,
    })
}

/// The general decoder, layer by layer.
fn decode_layers(link: LinkType, data: &[u8]) -> Packet<'_> {
    let mut pkt =
        Packet { link: LinkInfo::default(), arp: None, ip: None, transport: None, ip_payload: &[], error: None };
    let mut r = Reader::new(data);
    let ethertype = match link_layer(link, &mut r, &mut pkt.link) {
        Ok(Some(t)) => t,
        Ok(None) => return pkt,
        Err(e) => {
            pkt.error = Some(e);
            return pkt;
        }
    };
    pkt.link.ethertype = ethertype;
    let version = match ethertype {
        ETH_IPV4 => 4,
        ETH_IPV6 => 6,
        ETH_ARP => {
            pkt.arp = arp(r);
            return pkt;
        }
        _ => return pkt,
    };
    if let Err(e) = ip_layer(version, r, &mut pkt, 0) {
        pkt.error = Some(e);
    }
    pkt
}

/// Returns the EtherType of what follows, `None` when it is not something we decode.
fn link_layer(link: LinkType, r: &mut Reader<'_>, info: &mut LinkInfo) -> Result<Option<u16>, DecodeError> {
    match link {
        LinkType::Ethernet => {
            let have = r.remaining();
            let dst = r.array::<6>().ok_or(truncated(Layer::Link, 14, have))?;
            let src = r.array::<6>().ok_or(truncated(Layer::Link, 14, have))?;
            info.dst_mac = Some(dst);
            info.src_mac = Some(src);
            let t = r.u16_be().ok_or(truncated(Layer::Link, 14, have))?;
            if t <= 1500 {
                // 802.3 length field: LLC/SNAP, not decoded.
                return Ok(None);
            }
            vlan_tags(t, r, info).map(Some)
        }
        LinkType::LinuxSll => {
            let have = r.remaining();
            let mut h = r.sub(16).ok_or(truncated(Layer::Link, 16, have))?;
            let _pkttype = h.u16_be();
            let _hatype = h.u16_be();
            let halen = h.u16_be().unwrap_or(0);
            let addr = h.array::<8>().unwrap_or([0; 8]);
            if halen == 6 {
                info.src_mac = addr.get(..6).and_then(|s| s.try_into().ok());
            }
            let proto = h.u16_be().unwrap_or(0);
            sll_proto(proto, r, info)
        }
        LinkType::LinuxSll2 => {
            let have = r.remaining();
            let mut h = r.sub(20).ok_or(truncated(Layer::Link, 20, have))?;
            let proto = h.u16_be().unwrap_or(0);
            let _reserved = h.u16_be();
            let _ifindex = h.u32_be();
            let _hatype = h.u16_be();
            let _pkttype = h.u8();
            let halen = h.u8().unwrap_or(0);
            let addr = h.array::<8>().unwrap_or([0; 8]);
            if halen == 6 {
                info.src_mac = addr.get(..6).and_then(|s| s.try_into().ok());
            }
            sll_proto(proto, r, info)
        }
        LinkType::Null | LinkType::Loop => {
            let have = r.remaining();
            let raw = r.array::<4>().ok_or(truncated(Layer::Link, 4, have))?;
            let af = if link == LinkType::Loop {
                u32::from_be_bytes(raw)
            } else {
                // Host byte order of the capturing machine: the family fits in 16 bits, so
                // a value that does not is the other byte order.
                let le = u32::from_le_bytes(raw);
                if le > 0xFFFF {
                    u32::from_be_bytes(raw)
                } else {
                    le
                }
            };
            Ok(match af {
                2 => Some(ETH_IPV4),
                10 | 24 | 28 | 30 => Some(ETH_IPV6),
                _ => None,
            })
        }
        LinkType::Raw => {
            let v = r.rest().first().map(|b| b >> 4);
            Ok(match v {
                Some(4) => Some(ETH_IPV4),
                Some(6) => Some(ETH_IPV6),
                Some(_) => None,
                None => return Err(truncated(Layer::Link, 1, 0)),
            })
        }
        LinkType::Ipv4 => Ok(Some(ETH_IPV4)),
        LinkType::Ipv6 => Ok(Some(ETH_IPV6)),
        LinkType::Other(_) => Ok(None),
    }
}

/// Ethernet/IPv4 ARP (hardware type 1, protocol 0x0800, lengths 6 and 4).
fn arp(mut r: Reader<'_>) -> Option<Arp> {
    let htype = r.u16_be()?;
    let ptype = r.u16_be()?;
    let hlen = r.u8()?;
    let plen = r.u8()?;
    if htype != 1 || ptype != ETH_IPV4 || hlen != 6 || plen != 4 {
        return None;
    }
    let op = r.u16_be()?;
    let sender_mac = r.array::<6>()?;
    let sender_ip = Ipv4Addr::from(r.array::<4>()?);
    let target_mac = r.array::<6>()?;
    let target_ip = Ipv4Addr::from(r.array::<4>()?);
    Some(Arp { op, sender_mac, sender_ip, target_mac, target_ip })
}

fn sll_proto(proto: u16, r: &mut Reader<'_>, info: &mut LinkInfo) -> Result<Option<u16>, DecodeError> {
    match proto {
        ETH_IPV4 | ETH_IPV6 | ETH_ARP => Ok(Some(proto)),
        ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => vlan_tags(proto, r, info).map(Some),
        _ => Ok(None),
    }
}

fn vlan_tags(mut t: u16, r: &mut Reader<'_>, info: &mut LinkInfo) -> Result<u16, DecodeError> {
    let mut n = 0u8;
    while matches!(t, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD) {
        if n >= MAX_VLANS {
            return Err(DecodeError::Malformed { layer: Layer::Link, field: "vlan tag count" });
        }
        let have = r.remaining();
        let tci = r.u16_be().ok_or(truncated(Layer::Link, 4, have))?;
        t = r.u16_be().ok_or(truncated(Layer::Link, 4, have))?;
        if let Some(slot) = info.vlans.get_mut(usize::from(n)) {
            *slot = tci & 0x0FFF;
        }
        n += 1;
        info.vlan_count = n;
    }
    Ok(t)
}

fn ip_layer<'a>(version: u8, mut r: Reader<'a>, pkt: &mut Packet<'a>, depth: u8) -> Result<(), DecodeError> {
    let (ip, payload) = if version == 4 { ipv4(&mut r)? } else { ipv6(&mut r)? };
    pkt.ip = Some(ip);
    pkt.ip_payload = payload;
    if ip.fragment.is_some_and(|f| f.offset > 0) {
        pkt.transport = Some(Transport::Other { proto: ip.proto });
        return Ok(());
    }
    match ip.proto {
        4 | 41 if depth < MAX_IP_NESTING => {
            // IP in IP: analyse the inner packet, as tshark does.
            let inner_v = if ip.proto == 4 { 4 } else { 6 };
            return ip_layer(inner_v, Reader::new(payload), pkt, depth + 1);
        }
        6 => pkt.transport = Some(Transport::Tcp(tcp(payload, ip.payload_len)?)),
        17 => pkt.transport = Some(Transport::Udp(udp(payload, ip.payload_len)?)),
        1 | 58 => pkt.transport = Some(Transport::Icmp(icmp(payload, ip.proto == 58)?)),
        p => pkt.transport = Some(Transport::Other { proto: p }),
    }
    Ok(())
}

/// Parses an IPv4 header; returns it and the captured payload (trimmed to the IP length).
fn ipv4<'a>(r: &mut Reader<'a>) -> Result<(IpInfo, &'a [u8]), DecodeError> {
    let have = r.remaining();
    let mut h = *r;
    let vihl = h.u8().ok_or(truncated(Layer::Ipv4, 20, have))?;
    if vihl >> 4 != 4 {
        return Err(DecodeError::Malformed { layer: Layer::Ipv4, field: "version" });
    }
    let ihl = usize::from(vihl & 0x0F) * 4;
    if ihl < 20 {
        return Err(DecodeError::Malformed { layer: Layer::Ipv4, field: "header length" });
    }
    let mut h = r.sub(ihl).ok_or(truncated(Layer::Ipv4, ihl.max(20), have))?;
    h.skip(2);
    let total = usize::from(h.u16_be().unwrap_or(0));
    let id = h.u16_be().unwrap_or(0);
    let frag = h.u16_be().unwrap_or(0);
    let ttl = h.u8().unwrap_or(0);
    let proto = h.u8().unwrap_or(0);
    h.skip(2);
    let src = Ipv4Addr::from(h.array::<4>().unwrap_or([0; 4]));
    let dst = Ipv4Addr::from(h.array::<4>().unwrap_or([0; 4]));
    let captured = r.remaining();
    let payload_len = if total == 0 {
        // Segmentation offload: the header carries no length; what was captured is the packet.
        captured
    } else if total < ihl {
        return Err(DecodeError::Malformed { layer: Layer::Ipv4, field: "total length" });
    } else {
        total - ihl
    };
    let payload = r.rest().get(..payload_len.min(captured)).unwrap_or(&[]);
    let offset = (frag & 0x1FFF) * 8;
    let more = frag & 0x2000 != 0;
    let fragment = (offset > 0 || more).then_some(Fragment { offset, more, id: u32::from(id) });
    let info = IpInfo {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        proto,
        ttl,
        header_len: ihl as u16,
        payload_len: payload_len as u32,
        id,
        fragment,
        has_options: ihl > 20,
    };
    Ok((info, payload))
}

/// Parses an IPv6 header and its extension headers.
fn ipv6<'a>(r: &mut Reader<'a>) -> Result<(IpInfo, &'a [u8]), DecodeError> {
    let have = r.remaining();
    let mut h = r.sub(40).ok_or(truncated(Layer::Ipv6, 40, have))?;
    let v = h.u8().unwrap_or(0);
    if v >> 4 != 6 {
        return Err(DecodeError::Malformed { layer: Layer::Ipv6, field: "version" });
    }
    h.skip(3);
    let plen = usize::from(h.u16_be().unwrap_or(0));
    let mut next = h.u8().unwrap_or(0);
    let hop = h.u8().unwrap_or(0);
    let src = Ipv6Addr::from(h.array::<16>().unwrap_or([0; 16]));
    let dst = Ipv6Addr::from(h.array::<16>().unwrap_or([0; 16]));
    let captured = r.remaining();
    let mut remaining_len = if plen == 0 { captured } else { plen };
    let mut ext_len = 0usize;
    let mut fragment = None;
    let mut steps = 0u8;
    while matches!(next, 0 | 43 | 60 | 135 | 139 | 140 | 51 | 44) {
        steps += 1;
        if steps > MAX_V6_EXT {
            return Err(DecodeError::Malformed { layer: Layer::Ipv6, field: "extension header chain" });
        }
        let have = r.remaining();
        let mut e = *r;
        let nh = e.u8().ok_or(truncated(Layer::Ipv6, 2, have))?;
        let l = e.u8().ok_or(truncated(Layer::Ipv6, 2, have))?;
        let len = match next {
            44 => 8,
            51 => (usize::from(l) + 2) * 4,
            _ => (usize::from(l) + 1) * 8,
        };
        let mut body = r.sub(len).ok_or(truncated(Layer::Ipv6, len, have))?;
        if next == 44 {
            body.skip(2);
            let off = body.u16_be().unwrap_or(0);
            let id = body.u32_be().unwrap_or(0);
            fragment = Some(Fragment { offset: off & 0xFFF8, more: off & 1 != 0, id });
        }
        ext_len += len;
        remaining_len = remaining_len.saturating_sub(len);
        next = nh;
        if fragment.is_some_and(|f: Fragment| f.offset > 0) {
            break;
        }
    }
    let payload = r.rest().get(..remaining_len.min(r.remaining())).unwrap_or(&[]);
    let info = IpInfo {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        proto: next,
        ttl: hop,
        header_len: (40 + ext_len) as u16,
        payload_len: remaining_len as u32,
        id: 0,
        fragment,
        has_options: ext_len > 0,
    };
    Ok((info, payload))
}

/// Parses a TCP header. `ip_len` is the transport length the IP header announces.
fn tcp(data: &[u8], ip_len: u32) -> Result<Tcp<'_>, DecodeError> {
    let mut r = Reader::new(data);
    let have = r.remaining();
    let t = truncated(Layer::Tcp, 20, have);
    let src_port = r.u16_be().ok_or(t)?;
    let dst_port = r.u16_be().ok_or(t)?;
    let seq = r.u32_be().ok_or(t)?;
    let ack = r.u32_be().ok_or(t)?;
    let off_flags = r.u16_be().ok_or(t)?;
    let window = r.u16_be().ok_or(t)?;
    let _csum = r.u16_be().ok_or(t)?;
    let urgent = r.u16_be().ok_or(t)?;
    let header_len = usize::from(off_flags >> 12) * 4;
    if header_len < 20 {
        return Err(DecodeError::Malformed { layer: Layer::Tcp, field: "data offset" });
    }
    let opt_bytes = r.take(header_len - 20).ok_or(truncated(Layer::Tcp, header_len, have))?;
    let options = tcp_options(opt_bytes);
    let len = ip_len.saturating_sub(header_len as u32);
    let payload = r.rest();
    let payload = payload.get(..(len as usize).min(payload.len())).unwrap_or(&[]);
    Ok(Tcp {
        src_port,
        dst_port,
        seq,
        ack,
        header_len: header_len as u8,
        flags: off_flags & 0x01FF,
        window,
        urgent,
        options,
        len,
        payload,
    })
}

fn tcp_options(bytes: &[u8]) -> TcpOptions {
    let mut o = TcpOptions::default();
    let mut r = Reader::new(bytes);
    while let Some(kind) = r.u8() {
        match kind {
            0 => break,
            1 => continue,
            _ => {}
        }
        let Some(len) = r.u8() else {
            o.malformed = true;
            break;
        };
        if len < 2 {
            o.malformed = true;
            break;
        }
        let Some(mut body) = r.sub(usize::from(len) - 2) else {
            o.malformed = true;
            break;
        };
        match (kind, len) {
            (2, 4) => o.mss = body.u16_be(),
            (3, 3) => o.wscale = body.u8(),
            (4, 2) => o.sack_perm = true,
            (5, _) => {
                while let (Some(l), Some(rr)) = (body.u32_be(), body.u32_be()) {
                    if let Some(slot) = o.sack.get_mut(usize::from(o.sack_count)) {
                        *slot = (l, rr);
                        o.sack_count += 1;
                    }
                }
            }
            (8, 10) => {
                if let (Some(a), Some(b)) = (body.u32_be(), body.u32_be()) {
                    o.timestamp = Some((a, b));
                }
            }
            (2 | 3 | 4 | 8, _) => o.malformed = true,
            _ => {}
        }
    }
    o
}

fn udp(data: &[u8], ip_len: u32) -> Result<Udp<'_>, DecodeError> {
    let mut r = Reader::new(data);
    let have = r.remaining();
    let t = truncated(Layer::Udp, 8, have);
    let src_port = r.u16_be().ok_or(t)?;
    let dst_port = r.u16_be().ok_or(t)?;
    let length = r.u16_be().ok_or(t)?;
    let _csum = r.u16_be().ok_or(t)?;
    let len = ip_len.saturating_sub(8);
    let payload = r.rest();
    let payload = payload.get(..(len as usize).min(payload.len())).unwrap_or(&[]);
    Ok(Udp { src_port, dst_port, length, len, payload })
}

fn icmp(data: &[u8], v6: bool) -> Result<Icmp<'_>, DecodeError> {
    let mut r = Reader::new(data);
    let have = r.remaining();
    let t = truncated(Layer::Icmp, 4, have);
    let icmp_type = r.u8().ok_or(t)?;
    let code = r.u8().ok_or(t)?;
    let _csum = r.u16_be().ok_or(t)?;
    let body = r.rest();
    let is_error = if v6 { (1..=4).contains(&icmp_type) } else { matches!(icmp_type, 3 | 4 | 5 | 11 | 12) };
    let quoted = if is_error { r.skip(4).and_then(|()| quoted(r.rest())) } else { None };
    Ok(Icmp { v6, icmp_type, code, quoted, body })
}

/// The header of the packet an ICMP error quotes (IP header plus at least 8 bytes).
fn quoted(data: &[u8]) -> Option<Quoted> {
    let mut r = Reader::new(data);
    let version = r.rest().first()? >> 4;
    let (ip, payload) = match version {
        4 => ipv4(&mut r).ok()?,
        6 => ipv6(&mut r).ok()?,
        _ => return None,
    };
    let mut p = Reader::new(payload);
    let (src_port, dst_port, tcp_seq) = match ip.proto {
        6 => (p.u16_be()?, p.u16_be()?, p.u32_be()),
        17 => (p.u16_be()?, p.u16_be()?, None),
        _ => (0, 0, None),
    };
    Some(Quoted { src: ip.src, dst: ip.dst, proto: ip.proto, src_port, dst_port, tcp_seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_ipv4_tcp(payload: &[u8], opts: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let tcp_len = 20 + opts.len();
        let total = 20 + tcp_len + payload.len();
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0]);
        f.push(((tcp_len / 4) as u8) << 4);
        f.push(0x02);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(opts);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn decodes_tcp_with_options() {
        let opts = [2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 1, 1];
        let f = eth_ipv4_tcp(b"hi", &opts);
        let p = decode(LinkType::Ethernet, &f);
        assert_eq!(p.error, None);
        let Some(Transport::Tcp(t)) = p.transport else { panic!("no tcp: {p:?}") };
        assert_eq!((t.src_port, t.dst_port, t.seq, t.len), (12345, 80, 1, 2));
        assert_eq!(t.options.mss, Some(1460));
        assert_eq!(t.options.wscale, Some(7));
        assert!(t.options.sack_perm);
        assert_eq!(t.options.timestamp, Some((9, 0)));
        assert_eq!(t.payload, b"hi");
    }

    #[test]
    fn snaplen_cut_payload_keeps_ip_length() {
        let f = eth_ipv4_tcp(&[7u8; 1000], &[]);
        let cut = f.get(..80).unwrap();
        let p = decode(LinkType::Ethernet, cut);
        let Some(Transport::Tcp(t)) = p.transport else { panic!() };
        assert_eq!(t.len, 1000);
        assert_eq!(t.payload.len(), 80 - 54);
    }

    #[test]
    fn every_prefix_is_safe() {
        let opts = [2, 4, 5, 0xb4, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let f = eth_ipv4_tcp(b"payload", &opts);
        for n in 0..=f.len() {
            for lt in [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Raw, LinkType::Null] {
                let _ = decode(lt, f.get(..n).unwrap());
            }
        }
    }

    /// The Ethernet/IPv4/TCP fast path returns exactly what the general decoder returns.
    #[test]
    fn fast_path_matches_general_decoder() {
        let ts = [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7];
        let opts: [&[u8]; 5] =
            [&[], &ts, &[2, 4, 5, 0xb4], &[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2], &[1, 1, 8, 9, 0, 0, 0, 9, 0, 0, 0, 7]];
        let mut frames = Vec::new();
        for o in opts {
            for p in [&b""[..], b"x", b"hello world"] {
                frames.push(eth_ipv4_tcp(p, o));
            }
        }
        let mut checked = 0;
        for f in &frames {
            // Every prefix, and single-byte changes in the headers.
            let mut variants: Vec<Vec<u8>> = (0..=f.len()).map(|n| f[..n].to_vec()).collect();
            for i in 12..f.len().min(70) {
                for v in [0u8, 1, 4, 5, 6, 0x20, 0x40, 0x45, 0x46, 0x50, 0xff] {
                    let mut g = f.clone();
                    g[i] = v;
                    variants.push(g);
                }
            }
            for g in &variants {
                let slow = decode_layers(LinkType::Ethernet, g);
                if let Some(fast) = fast_eth_ipv4_tcp(g) {
                    assert_eq!(fast, slow, "{g:?}");
                    checked += 1;
                }
                assert_eq!(decode(LinkType::Ethernet, g), slow);
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn vlan_and_null_link() {
        let mut f = eth_ipv4_tcp(b"", &[]);
        f.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        let p = decode(LinkType::Ethernet, &f);
        assert_eq!(p.link.vlans[0], 42);
        assert!(matches!(p.transport, Some(Transport::Tcp(_))));
        let mut n = vec![2, 0, 0, 0];
        n.extend_from_slice(f.get(18..).unwrap());
        let p = decode(LinkType::Null, &n);
        assert!(matches!(p.transport, Some(Transport::Tcp(_))), "{p:?}");
    }
}
