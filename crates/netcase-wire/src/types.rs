//! Decoded header facts. Every type is `Copy` (or borrows the frame) and allocation-free.

use std::fmt;
use std::net::IpAddr;

/// A capture link type (the pcap `LINKTYPE_*` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte address family in host byte order.
    Null,
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_RAW` (101, also 12 and 14 on some systems): a bare IPv4 or IPv6 packet.
    Raw,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, address family in network byte order.
    Loop,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1.
    LinuxSll,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2.
    LinuxSll2,
    /// Anything else: frames are counted, not decoded.
    Other(u32),
}

impl LinkType {
    /// From the pcap/pcapng link-type number.
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
    /// The canonical link-type number.
    pub fn as_u32(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(v) => v,
        }
    }
    /// A short name, as capinfos/tshark spell it.
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Null => "null",
            LinkType::Ethernet => "ether",
            LinkType::Raw => "rawip",
            LinkType::Loop => "loop",
            LinkType::LinuxSll => "linux-sll",
            LinkType::Ipv4 => "rawip4",
            LinkType::Ipv6 => "rawip6",
            LinkType::LinuxSll2 => "linux-sll2",
            LinkType::Other(_) => "unknown",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkType::Other(v) => write!(f, "linktype {v}"),
            other => f.write_str(other.name()),
        }
    }
}

/// The layer at which decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Link layer (Ethernet, SLL, VLAN tags, null/loop).
    Link,
    /// IPv4.
    Ipv4,
    /// IPv6 (including extension headers).
    Ipv6,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP or ICMPv6.
    Icmp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Link => "link",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
        })
    }
}

/// Why a frame could not be decoded further. `Copy`, no strings: formatted when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The header at `layer` needs `need` bytes, only `have` were captured.
    Truncated {
        /// Where.
        layer: Layer,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A field holds an impossible value (e.g. IPv4 IHL < 5, TCP data offset < 5).
    Malformed {
        /// Where.
        layer: Layer,
        /// Which field (static name).
        field: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { layer, need, have } => {
                write!(f, "truncated {layer} header: need {need} bytes, have {have}")
            }
            DecodeError::Malformed { layer, field } => write!(f, "malformed {layer} header: bad {field}"),
        }
    }
}

/// Link-layer facts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Source hardware address (Ethernet source, or SLL's address when it is 6 bytes).
    pub src_mac: Option<[u8; 6]>,
    /// Destination hardware address (Ethernet only).
    pub dst_mac: Option<[u8; 6]>,
    /// VLAN ids, outermost first (up to two kept).
    pub vlans: [u16; 2],
    /// How many VLAN tags were seen (may exceed 2).
    pub vlan_count: u8,
    /// The EtherType (or protocol) of the payload.
    pub ethertype: u16,
}

/// IPv4 fragmentation facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// The IP identification field.
    pub id: u32,
}

/// The IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The upper-layer protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Header length in bytes (IPv6: fixed header plus extension headers).
    pub header_len: u16,
    /// Length of the IP payload according to the IP header (total length − header),
    /// or, when the header says 0 (segmentation offload), what was captured.
    pub payload_len: u32,
    /// IPv4 identification.
    pub id: u16,
    /// Fragmentation, when this is a fragment (offset > 0 or more-fragments set).
    pub fragment: Option<Fragment>,
    /// IPv4 options were present.
    pub has_options: bool,
}

/// TCP flag bits as in the header (`tcp.flags`), 9 bits used.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// AE (formerly NS).
    pub const AE: u16 = 0x100;
}

/// TCP options, decoded without allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift as sent (may exceed 14: that is evidence, not an error).
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// Timestamps (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// SACK blocks (left, right), the first `sack_count` are valid.
    pub sack: [(u32, u32); 4],
    /// Number of SACK blocks.
    pub sack_count: u8,
    /// The option list was cut short or malformed.
    pub malformed: bool,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        self.sack.get(..usize::from(self.sack_count)).unwrap_or(&[])
    }
}

/// A TCP header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Raw sequence number.
    pub seq: u32,
    /// Raw acknowledgement number.
    pub ack: u32,
    /// Header length in bytes.
    pub header_len: u8,
    /// Flags (see [`tcp_flags`]).
    pub flags: u16,
    /// Raw window field.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
    /// Segment length by the IP header (`tcp.len`), independent of the snap length.
    pub len: u32,
    /// The captured part of the payload (may be shorter than `len`).
    pub payload: &'a [u8],
}

impl Tcp<'_> {
    /// Whether every bit of `mask` is set.
    #[inline]
    pub fn has(&self, mask: u16) -> bool {
        self.flags & mask == mask
    }
}

/// A UDP header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The UDP length field.
    pub length: u16,
    /// Payload length by the IP header (what the datagram carried).
    pub len: u32,
    /// The captured part of the payload.
    pub payload: &'a [u8],
}

/// The transport header quoted in an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Source of the quoted (original) packet.
    pub src: IpAddr,
    /// Destination of the quoted packet.
    pub dst: IpAddr,
    /// Its protocol.
    pub proto: u8,
    /// Its source port (TCP/UDP).
    pub src_port: u16,
    /// Its destination port (TCP/UDP).
    pub dst_port: u16,
    /// Its TCP sequence number, when quoted.
    pub tcp_seq: Option<u32>,
}

/// An ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp<'a> {
    /// ICMPv6 rather than ICMP.
    pub v6: bool,
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// For errors (unreachable, time exceeded, ...): the quoted packet's header.
    pub quoted: Option<Quoted>,
    /// The bytes after the 4-byte ICMP header.
    pub body: &'a [u8],
}

impl Icmp<'_> {
    /// Destination unreachable / port unreachable (ICMP 3/3, ICMPv6 1/4).
    pub fn is_port_unreachable(&self) -> bool {
        if self.v6 {
            self.icmp_type == 1 && self.code == 4
        } else {
            self.icmp_type == 3 && self.code == 3
        }
    }
}

/// The transport layer of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// TCP.
    Tcp(Tcp<'a>),
    /// UDP.
    Udp(Udp<'a>),
    /// ICMP / ICMPv6.
    Icmp(Icmp<'a>),
    /// A non-first IPv4 fragment, or a protocol netcase does not decode.
    Other {
        /// The protocol number.
        proto: u8,
    },
}

/// An ARP message (Ethernet/IPv4 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 = request, 2 = reply.
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: std::net::Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: std::net::Ipv4Addr,
}

/// A decoded packet. Borrows the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Link-layer facts.
    pub link: LinkInfo,
    /// The ARP message, when the frame is ARP.
    pub arp: Option<Arp>,
    /// The outermost IP header, if any (ARP and other non-IP frames have none).
    pub ip: Option<IpInfo>,
    /// The transport layer, if decoded.
    pub transport: Option<Transport<'a>>,
    /// The captured payload of the IP header in [`Packet::ip`] (trimmed to the IP length;
    /// for a fragment, the fragment's share of the datagram). Empty without IP.
    pub ip_payload: &'a [u8],
    /// Decoding stopped early here (the layers above are `None`).
    pub error: Option<DecodeError>,
}
