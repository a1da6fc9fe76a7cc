//! Interface addresses, links and neighbours through `NETLINK_ROUTE` (`RTM_GETADDR`,
//! `RTM_GETLINK`, `RTM_GETNEIGH`): what `ip -br addr` and `ip neigh` show, per network
//! namespace.

use crate::error::{Error, Result};
use crate::reader::{Attrs, Reader};
use crate::sockdiag::{netlink_dump, DumpStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
/// `NUD_NOARP`: entries for multicast/loopback-style destinations, not learned from a peer.
const NUD_NOARP: u16 = 0x40;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// An address held by an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfAddr {
    /// Interface name.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Link-layer address of the interface (`aa:bb:..`), when it has one.
    pub mac: Option<String>,
}

/// A neighbour (ARP / NDP) entry: an address this namespace has resolved on a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbour {
    /// Interface name.
    pub ifname: String,
    /// The neighbour's address.
    pub addr: IpAddr,
    /// The link-layer address it resolved to, if any (none while incomplete or failed).
    pub mac: Option<String>,
    /// `NUD_*` state bits (0x02 reachable, 0x04 stale, 0x20 failed, 0x80 permanent, ...).
    pub state: u16,
}

/// Builds a dump request (`RTM_GETADDR`, `RTM_GETLINK` or `RTM_GETNEIGH`) for all families.
pub fn request(ty: u16, seq: u32) -> Vec<u8> {
    // ifinfomsg is 16 bytes, ndmsg 12, ifaddrmsg 8.
    let body_len = match ty {
        RTM_GETLINK => 16,
        RTM_GETNEIGH => 12,
        _ => 8,
    };
    let len = (16 + body_len) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&(0x1u16 | 0x300).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.resize(len as usize, 0);
    b
}

/// A link: index → (name, mac).
pub type Links = BTreeMap<u32, (String, Option<String>)>;

fn mac_str(b: &[u8]) -> Option<String> {
    if b.is_empty() || b.iter().all(|x| *x == 0) {
        return None;
    }
    Some(b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":"))
}

fn walk(buf: &[u8], mut f: impl FnMut(u16, &[u8])) -> Result<DumpStatus> {
    let mut off = 0usize;
    let r = Reader::new(buf);
    while off + 16 <= buf.len() {
        let len = r.u32_ne(off).unwrap_or(0) as usize;
        let ty = r.u16_ne(off + 4).unwrap_or(0);
        if len < 16 || off + len > buf.len() {
            return Err(Error::Malformed { what: "rtnetlink message", offset: off, reason: "bad length" });
        }
        let body = buf.get(off + 16..off + len).unwrap_or(&[]);
        match ty {
            NLMSG_DONE => return Ok(DumpStatus::Done),
            NLMSG_ERROR => {
                let errno = Reader::new(body).i32_ne(0).unwrap_or(0);
                if errno != 0 {
                    return Err(Error::NetlinkErrno { what: "rtnetlink", errno: -errno });
                }
            }
            _ => f(ty, body),
        }
        off += (len + 3) & !3;
    }
    Ok(DumpStatus::More)
}

/// Decodes `RTM_NEWLINK` replies into `links`.
pub fn parse_links(buf: &[u8], links: &mut Links) -> Result<DumpStatus> {
    walk(buf, |ty, body| {
        if ty != RTM_NEWLINK {
            return;
        }
        let r = Reader::new(body);
        let Some(index) = r.u32_ne(4) else { return };
        let mut name = String::new();
        let mut mac = None;
        for (aty, p) in Attrs::new(body.get(16..).unwrap_or(&[])) {
            match aty {
                3 => name = String::from_utf8_lossy(p).trim_end_matches('\0').to_owned(),
                1 => mac = mac_str(p),
                _ => {}
            }
        }
        links.insert(index, (name, mac));
    })
}

/// Decodes `RTM_NEWADDR` replies into `out`, naming interfaces from `links`.
pub fn parse_addrs(buf: &[u8], links: &Links, out: &mut Vec<IfAddr>) -> Result<DumpStatus> {
    walk(buf, |ty, body| {
        if ty != RTM_NEWADDR {
            return;
        }
        let r = Reader::new(body);
        let (Some(family), Some(prefix), Some(index)) = (r.u8(0), r.u8(1), r.u32_ne(4)) else {
            return;
        };
        let mut local = None;
        let mut address = None;
        for (aty, p) in Attrs::new(body.get(8..).unwrap_or(&[])) {
            let ip = match (i32::from(family), p.len()) {
                (libc::AF_INET, 4) => <[u8; 4]>::try_from(p).ok().map(|a| IpAddr::V4(Ipv4Addr::from(a))),
                (libc::AF_INET6, 16) => <[u8; 16]>::try_from(p).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a))),
                _ => None,
            };
            match aty {
                1 => address = ip,
                2 => local = ip,
                _ => {}
            }
        }
        let Some(addr) = local.or(address) else { return };
        let (ifname, mac) = links.get(&index).cloned().unwrap_or_else(|| (format!("if{index}"), None));
        out.push(IfAddr { ifname, ifindex: index, addr, prefix, mac });
    })
}

/// Decodes `RTM_NEWNEIGH` replies into `out`, naming interfaces from `links`. `NUD_NOARP`
/// entries (multicast, broadcast) are skipped.
pub fn parse_neighbours(buf: &[u8], links: &Links, out: &mut Vec<Neighbour>) -> Result<DumpStatus> {
    walk(buf, |ty, body| {
        if ty != RTM_NEWNEIGH {
            return;
        }
        let r = Reader::new(body);
        let (Some(family), Some(index), Some(state)) = (r.u8(0), r.i32_ne(4), r.u16_ne(8)) else {
            return;
        };
        if state & NUD_NOARP != 0 {
            return;
        }
        let mut addr = None;
        let mut mac = None;
        for (aty, p) in Attrs::new(body.get(12..).unwrap_or(&[])) {
            match (aty, i32::from(family), p.len()) {
                (1, libc::AF_INET, 4) => addr = <[u8; 4]>::try_from(p).ok().map(|a| IpAddr::V4(Ipv4Addr::from(a))),
                (1, libc::AF_INET6, 16) => addr = <[u8; 16]>::try_from(p).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a))),
                (2, _, _) => mac = mac_str(p),
                _ => {}
            }
        }
        let Some(addr) = addr else { return };
        let index = u32::try_from(index).unwrap_or(0);
        let ifname = links.get(&index).map_or_else(|| format!("if{index}"), |(n, _)| n.clone());
        out.push(Neighbour { ifname, addr, mac, state });
    })
}

/// Reads the links of the calling thread's network namespace.
fn dump_links() -> Result<Links> {
    let mut links = Links::new();
    netlink_dump(netlink_sys::constants::NETLINK_ROUTE, &request(RTM_GETLINK, 1), "rtnetlink link", |b| {
        parse_links(b, &mut links)
    })?;
    Ok(links)
}

/// Reads the neighbour table (ARP and NDP) of the calling thread's network namespace.
pub fn dump_neighbours() -> Result<Vec<Neighbour>> {
    let links = dump_links()?;
    let mut out = Vec::new();
    netlink_dump(netlink_sys::constants::NETLINK_ROUTE, &request(RTM_GETNEIGH, 3), "rtnetlink neigh", |b| {
        parse_neighbours(b, &links, &mut out)
    })?;
    Ok(out)
}

/// Reads the links and addresses of the calling thread's network namespace.
pub fn dump_addrs() -> Result<Vec<IfAddr>> {
    let links = dump_links()?;
    let mut out = Vec::new();
    netlink_dump(netlink_sys::constants::NETLINK_ROUTE, &request(RTM_GETADDR, 2), "rtnetlink addr", |b| {
        parse_addrs(b, &links, &mut out)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(ty: u16, body: &[u8]) -> Vec<u8> {
        let len = 16 + body.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&[0u8; 10]);
        b.extend_from_slice(body);
        b.resize((b.len() + 3) & !3, 0);
        b
    }

    fn attr(ty: u16, p: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + p.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(p);
        b.resize((b.len() + 3) & !3, 0);
        b
    }

    fn ndmsg(ifindex: i32, state: u16, dst: [u8; 4], mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut body = vec![libc::AF_INET as u8, 0, 0, 0];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]);
        body.extend(attr(1, &dst));
        if let Some(m) = mac {
            body.extend(attr(2, &m));
        }
        nlmsg(RTM_NEWNEIGH, &body)
    }

    #[test]
    fn neighbours_decode_with_names_and_skip_noarp() {
        let mut links = Links::new();
        links.insert(2, ("eth0".into(), None));
        let mut buf = ndmsg(2, 0x02, [10, 0, 0, 2], Some([0x02, 0, 0, 0, 0, 0x0a]));
        buf.extend(ndmsg(2, NUD_NOARP, [224, 0, 0, 1], None));
        buf.extend(ndmsg(7, 0x20, [10, 0, 0, 3], None));
        buf.extend(nlmsg(NLMSG_DONE, &[0, 0, 0, 0]));
        let mut out = Vec::new();
        assert_eq!(parse_neighbours(&buf, &links, &mut out).ok(), Some(DumpStatus::Done));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].ifname, "eth0");
        assert_eq!(out[0].addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(out[0].mac.as_deref(), Some("02:00:00:00:00:0a"));
        assert_eq!(out[0].state, 0x02);
        assert_eq!(out[1].ifname, "if7");
        assert_eq!(out[1].mac, None);
    }

    #[test]
    fn truncated_neighbour_is_an_error_not_a_panic() {
        let mut buf = ndmsg(2, 0x02, [10, 0, 0, 2], None);
        buf.truncate(20);
        buf[0..4].copy_from_slice(&40u32.to_ne_bytes());
        let mut out = Vec::new();
        assert!(parse_neighbours(&buf, &Links::new(), &mut out).is_err());
        assert!(out.is_empty());
    }
}
