//! Interface addresses and links through `NETLINK_ROUTE` (`RTM_GETADDR`, `RTM_GETLINK`):
//! what `ip -br addr` shows, per network namespace.

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

/// Builds a dump request (`RTM_GETADDR` or `RTM_GETLINK`) for all families.
pub fn request(ty: u16, seq: u32) -> Vec<u8> {
    let body_len = if ty == RTM_GETLINK { 16 } else { 8 };
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

/// Reads the links and addresses of the calling thread's network namespace.
pub fn dump_addrs() -> Result<Vec<IfAddr>> {
    let mut links = Links::new();
    netlink_dump(netlink_sys::constants::NETLINK_ROUTE, &request(RTM_GETLINK, 1), "rtnetlink link", |b| {
        parse_links(b, &mut links)
    })?;
    let mut out = Vec::new();
    netlink_dump(netlink_sys::constants::NETLINK_ROUTE, &request(RTM_GETADDR, 2), "rtnetlink addr", |b| {
        parse_addrs(b, &links, &mut out)
    })?;
    Ok(out)
}
