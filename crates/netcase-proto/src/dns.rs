//! DNS messages and transactions.
//!
//! The decoder reads one DNS message from a byte slice through checked reads only; a message
//! it cannot read is counted as malformed. Transactions pair queries and responses the way
//! tshark's `dns.response_in` / `dns.time` do, with a tighter key: (client address and port,
//! server address and port, id, question name, question type). A query repeated with the same
//! key before it is answered is another *attempt* of the same transaction (tshark flags it
//! `dns.retransmission`); `response_time_ns` counts from the first attempt, like `dns.time`.

use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netcase_wire::Reader;

use crate::text::{FxMap, List, Text};
use crate::Transport;

/// Which protocol family a DNS-format message belongs to, by port (as tshark names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsFlavor {
    /// Unicast DNS (port 53).
    Dns,
    /// Multicast DNS (port 5353).
    Mdns,
    /// Link-local multicast name resolution (port 5355).
    Llmnr,
}

impl DnsFlavor {
    /// The flavor for a pair of ports, if either is a DNS port.
    pub fn from_ports(a: u16, b: u16) -> Option<Self> {
        if a == 53 || b == 53 {
            Some(DnsFlavor::Dns)
        } else if a == 5353 || b == 5353 {
            Some(DnsFlavor::Mdns)
        } else if a == 5355 || b == 5355 {
            Some(DnsFlavor::Llmnr)
        } else {
            None
        }
    }
    /// mDNS or LLMNR: multicast name discovery, where a query without an answer is normal
    /// (nobody has the name). Such transactions are never [`DnsTxn::unanswered`].
    pub fn is_multicast(self) -> bool {
        !matches!(self, DnsFlavor::Dns)
    }
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsFlavor::Dns => "dns",
            DnsFlavor::Mdns => "mdns",
            DnsFlavor::Llmnr => "llmnr",
        }
    }
}

/// Record type numbers netcase names.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Pointer.
    pub const PTR: u16 = 12;
    /// Mail exchanger.
    pub const MX: u16 = 15;
    /// Text.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service.
    pub const SRV: u16 = 33;
    /// EDNS(0) pseudo-record.
    pub const OPT: u16 = 41;
    /// Service binding (HTTPS).
    pub const HTTPS: u16 = 65;
    /// Any.
    pub const ANY: u16 = 255;

    /// The mnemonic for a type number (`"TYPE99"` style for unknown ones is left to callers).
    pub fn name(t: u16) -> Option<&'static str> {
        Some(match t {
            A => "A",
            NS => "NS",
            CNAME => "CNAME",
            SOA => "SOA",
            PTR => "PTR",
            MX => "MX",
            TXT => "TXT",
            AAAA => "AAAA",
            SRV => "SRV",
            OPT => "OPT",
            HTTPS => "HTTPS",
            ANY => "ANY",
            _ => return None,
        })
    }
}

/// The data of a resource record, for the types netcase reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A canonical name.
    Cname(String),
    /// A name server.
    Ns(String),
    /// A pointer target.
    Ptr(String),
    /// A mail exchanger (preference, host).
    Mx(u16, String),
    /// Anything else: its length only.
    Other(u16),
}

impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => f.write_str(n),
            RData::Mx(p, n) => write!(f, "{p} {n}"),
            RData::Other(len) => write!(f, "({len} bytes)"),
        }
    }
}

/// One resource record of the answer section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// Owner name.
    pub name: Text,
    /// Record type number.
    pub rtype: u16,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

impl DnsRecord {
    /// A record (for building inputs in tests and labs).
    pub fn new(name: &str, ttl: u32, data: RData) -> Self {
        let rtype = match data {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Cname(_) => rtype::CNAME,
            RData::Ns(_) => rtype::NS,
            RData::Ptr(_) => rtype::PTR,
            RData::Mx(..) => rtype::MX,
            RData::Other(_) => 0,
        };
        DnsRecord { name: Text::new(name), rtype, ttl, data }
    }
}

/// A decoded DNS message (only what transactions need).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    /// Transaction id.
    pub id: u16,
    /// The QR bit.
    pub response: bool,
    /// Opcode.
    pub opcode: u8,
    /// Response code (low 4 bits of the header).
    pub rcode: u8,
    /// TC bit: the answer was truncated (retry over TCP).
    pub truncated: bool,
    /// Section counts from the header: questions, answers, authority, additional.
    pub counts: [u16; 4],
    /// The first question's name (`<Root>` for the root, as tshark prints it).
    pub qname: Option<Text>,
    /// The first question's type.
    pub qtype: u16,
    /// The answer section (records it could read).
    pub answers: Vec<DnsRecord>,
    /// TTLs of every record after the question (answer, authority, additional; OPT excluded).
    pub all_ttls: List<u32>,
    /// A record after the question could not be read (cut by the snap length, or broken):
    /// the sections hold what came before it.
    pub partial: bool,
}

/// Why a DNS message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than the 12-byte header.
    ShortHeader,
    /// A name ran past the end, looped, or was too long.
    BadName,
    /// A section ended early.
    Truncated,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsError::ShortHeader => "dns message shorter than its header",
            DnsError::BadName => "bad dns name",
            DnsError::Truncated => "dns section cut short",
        })
    }
}

/// Reads a (possibly compressed) name at `r` into `out` and leaves `r` after it: after the
/// first compression pointer when there is one, else after the root label. `r` must read the
/// whole message, which pointers index into.
fn read_name(r: &mut Reader<'_>, out: &mut String) -> Result<(), DnsError> {
    let mut cur = *r;
    let mut jumped = false;
    let mut jumps = 0u32;
    let start_len = out.len();
    loop {
        let len = cur.u8().ok_or(DnsError::BadName)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    break;
                }
                let label = cur.take(usize::from(len)).ok_or(DnsError::BadName)?;
                if out.len() > start_len {
                    out.push('.');
                }
                for &b in label {
                    if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                        out.push(char::from(b));
                    } else {
                        // Escape like a zone file (\DDD) so names stay printable and unique.
                        out.push('\\');
                        out.push(char::from(b'0' + b / 100));
                        out.push(char::from(b'0' + (b / 10) % 10));
                        out.push(char::from(b'0' + b % 10));
                    }
                }
                if out.len().saturating_sub(start_len) > 1024 {
                    return Err(DnsError::BadName);
                }
            }
            0xc0 => {
                let lo = cur.u8().ok_or(DnsError::BadName)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                if !jumped {
                    *r = cur;
                    jumped = true;
                }
                jumps += 1;
                // A pointer must land on a byte of the message (not its end).
                if jumps > 64 || target >= cur.offset() + cur.remaining() {
                    return Err(DnsError::BadName);
                }
                cur.seek(target).ok_or(DnsError::BadName)?;
            }
            _ => return Err(DnsError::BadName),
        }
    }
    if out.len() == start_len {
        out.push_str("<Root>");
    }
    if !jumped {
        *r = cur;
    }
    Ok(())
}

/// Decodes one DNS message. Allocates only for the names and records it returns.
pub fn parse_message(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    parse_message_with(msg, &mut String::new())
}

/// [`parse_message`] with a reusable scratch buffer for names.
pub(crate) fn parse_message_with(msg: &[u8], scratch: &mut String) -> Result<DnsMessage, DnsError> {
    let mut r = Reader::new(msg);
    let hdr = (|| Some((r.u16_be()?, r.u16_be()?, r.u16_be()?, r.u16_be()?, r.u16_be()?, r.u16_be()?)))();
    let (id, flags, qd, an, ns, ar) = hdr.ok_or(DnsError::ShortHeader)?;
    let mut m = DnsMessage {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: (flags & 0x000f) as u8,
        truncated: flags & 0x0200 != 0,
        counts: [qd, an, ns, ar],
        ..DnsMessage::default()
    };
    for i in 0..qd {
        scratch.clear();
        read_name(&mut r, scratch)?;
        let qtype = r.u16_be().ok_or(DnsError::Truncated)?;
        r.u16_be().ok_or(DnsError::Truncated)?;
        if i == 0 {
            m.qname = Some(Text::new(scratch));
            m.qtype = qtype;
        }
    }
    // Past the question a record that cannot be read (a response cut by the snap length,
    // or broken) ends the reading: the message still pairs, marked partial.
    if read_records(&mut r, an, u32::from(an) + u32::from(ns) + u32::from(ar), scratch, &mut m).is_err() {
        m.partial = true;
    }
    // Transactions keep the answers to the end: no spare capacity.
    m.answers.shrink_to_fit();
    Ok(m)
}

/// Reads `total` records at `r` (the first `an` are the answer section) into `m`.
fn read_records(
    r: &mut Reader<'_>,
    an: u16,
    total: u32,
    scratch: &mut String,
    m: &mut DnsMessage,
) -> Result<(), DnsError> {
    for i in 0..total {
        let in_answer = i < u32::from(an);
        scratch.clear();
        read_name(r, scratch)?;
        let (t, _class, ttl, rdlen) =
            (|| Some((r.u16_be()?, r.u16_be()?, r.u32_be()?, r.u16_be()?)))().ok_or(DnsError::Truncated)?;
        // Names in the data may point anywhere in the message: read them from a copy of
        // the whole-message reader, not from the data alone.
        let at_data = *r;
        let rd = r.take(usize::from(rdlen)).ok_or(DnsError::Truncated)?;
        if t != rtype::OPT {
            m.all_ttls.push(ttl);
        }
        if !in_answer {
            continue;
        }
        let data = match t {
            rtype::A => match <[u8; 4]>::try_from(rd) {
                Ok(b) => RData::A(Ipv4Addr::from(b)),
                Err(_) => RData::Other(rdlen),
            },
            rtype::AAAA => match <[u8; 16]>::try_from(rd) {
                Ok(b) => RData::Aaaa(Ipv6Addr::from(b)),
                Err(_) => RData::Other(rdlen),
            },
            rtype::CNAME | rtype::NS | rtype::PTR => {
                let mut n = String::new();
                read_name(&mut { at_data }, &mut n)?;
                match t {
                    rtype::CNAME => RData::Cname(n),
                    rtype::NS => RData::Ns(n),
                    _ => RData::Ptr(n),
                }
            }
            rtype::MX if rdlen >= 3 => {
                let mut c = at_data;
                let pref = c.u16_be().ok_or(DnsError::Truncated)?;
                let mut n = String::new();
                read_name(&mut c, &mut n)?;
                RData::Mx(pref, n)
            }
            _ => RData::Other(rdlen),
        };
        m.answers.push(DnsRecord { name: Text::new(scratch), rtype: t, ttl, data });
    }
    Ok(())
}

/// A DNS transaction: one question from one client socket to one server, its attempts and
/// the answer (or none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsTxn {
    /// Time of the first query (ns since the epoch); of the response when no query was seen.
    pub ts_ns: i64,
    /// DNS, mDNS or LLMNR.
    pub flavor: DnsFlavor,
    /// UDP or TCP.
    pub transport: Transport,
    /// The querying socket.
    pub client: SocketAddr,
    /// The server socket.
    pub server: SocketAddr,
    /// The transaction id.
    pub id: u16,
    /// Opcode of the query.
    pub opcode: u8,
    /// The question name (`None` when the message had no question).
    pub name: Option<Text>,
    /// The question type number.
    pub qtype: u16,
    /// The response code (`None` while unanswered).
    pub rcode: Option<u8>,
    /// The TC bit of the response.
    pub truncated: bool,
    /// Answer-section records.
    pub answers: Vec<DnsRecord>,
    /// Answer/authority/additional counts of the response header.
    pub response_counts: [u16; 3],
    /// TTLs of all records of the response (answer, authority, additional; OPT excluded).
    pub response_ttls: List<u32>,
    /// Frames of every query attempt, first first (empty when only the response was seen).
    pub query_frames: List<u64>,
    /// Times of every query attempt (ns since the epoch).
    pub query_ts_ns: List<i64>,
    /// The frame of the (first) response.
    pub response_frame: Option<u64>,
    /// The time of the response.
    pub response_ts_ns: Option<i64>,
    /// Response minus first query (tshark's `dns.time`), ns.
    pub response_time_ns: Option<i64>,
    /// The response could be read only up to some record (cut by the snap length, or
    /// broken after the question): `answers` and `response_ttls` may be incomplete.
    pub response_partial: bool,
    /// Further responses with the same key (duplicates).
    pub duplicate_responses: u32,
    /// Frames of the duplicate responses.
    pub duplicate_frames: List<u64>,
}

impl DnsTxn {
    /// A transaction with one query attempt and no response yet (also how tests and labs
    /// build rule inputs).
    pub fn new(
        client: SocketAddr,
        server: SocketAddr,
        id: u16,
        name: &str,
        qtype: u16,
        frame: u64,
        ts_ns: i64,
    ) -> Self {
        DnsTxn {
            ts_ns,
            flavor: DnsFlavor::Dns,
            transport: Transport::Udp,
            client,
            server,
            id,
            opcode: 0,
            name: Some(Text::new(name)),
            qtype,
            rcode: None,
            truncated: false,
            answers: Vec::new(),
            response_counts: [0; 3],
            response_ttls: List::new(),
            query_frames: List::one(frame),
            query_ts_ns: List::one(ts_ns),
            response_frame: None,
            response_ts_ns: None,
            response_time_ns: None,
            response_partial: false,
            duplicate_responses: 0,
            duplicate_frames: List::new(),
        }
    }

    /// Adds a repeated query attempt (builder style).
    #[must_use]
    pub fn retried(mut self, frame: u64, ts_ns: i64) -> Self {
        self.query_frames.push(frame);
        self.query_ts_ns.push(ts_ns);
        self
    }

    /// Records the response (builder style).
    #[must_use]
    pub fn answered(mut self, frame: u64, ts_ns: i64, rcode: u8, answers: Vec<DnsRecord>) -> Self {
        self.rcode = Some(rcode);
        self.response_counts = [u16::try_from(answers.len()).unwrap_or(u16::MAX), 0, 0];
        self.response_ttls = answers.iter().map(|r| r.ttl).collect();
        self.answers = answers;
        self.response_frame = Some(frame);
        self.response_ts_ns = Some(ts_ns);
        self.response_time_ns = Some(ts_ns - self.ts_ns);
        self
    }

    /// The frame of the first query.
    pub fn query_frame(&self) -> Option<u64> {
        self.query_frames.first().copied()
    }
    /// How many times the query was sent.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.query_frames.len()).unwrap_or(u32::MAX)
    }
    /// A unicast DNS query went out and no response came back. Never true for mDNS and
    /// LLMNR (see [`DnsFlavor::is_multicast`]), where silence is the normal answer; use
    /// [`DnsTxn::no_response`] for the bare fact.
    pub fn unanswered(&self) -> bool {
        self.no_response() && !self.flavor.is_multicast()
    }
    /// A query went out and no response came back (any flavor).
    pub fn no_response(&self) -> bool {
        self.response_frame.is_none() && !self.query_frames.is_empty()
    }
    /// A response with no query in the capture.
    pub fn orphan_response(&self) -> bool {
        self.query_frames.is_empty()
    }
    /// Response time in milliseconds.
    pub fn response_time_ms(&self) -> Option<f64> {
        self.response_time_ns.map(|n| n as f64 / 1e6)
    }
    /// Response time measured from the last attempt (what the client waited after retrying).
    pub fn last_attempt_time_ns(&self) -> Option<i64> {
        Some(self.response_ts_ns? - *self.query_ts_ns.last()?)
    }
    /// The addresses (A and AAAA) of the answer section.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.answers.iter().filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a)),
            RData::Aaaa(a) => Some(IpAddr::V6(a)),
            _ => None,
        })
    }
    /// The largest TTL in the answer section.
    pub fn max_ttl(&self) -> Option<u32> {
        self.answers.iter().map(|r| r.ttl).max()
    }
    /// The CNAME chain from the question name, in order (the last one is the canonical name,
    /// often the CDN's).
    pub fn cname_chain(&self) -> Vec<&str> {
        let mut chain = Vec::new();
        let Some(mut cur) = self.name.as_deref() else { return chain };
        for _ in 0..self.answers.len() {
            let next = self.answers.iter().find_map(|r| match &r.data {
                RData::Cname(t) if r.name.eq_ignore_ascii_case(cur) => Some(t.as_str()),
                _ => None,
            });
            match next {
                Some(t) => {
                    chain.push(t);
                    cur = t;
                }
                None => break,
            }
        }
        chain
    }
    /// The question type as a mnemonic (`A`, `AAAA`, or the number).
    pub fn qtype_name(&self) -> String {
        rtype::name(self.qtype).map_or_else(|| format!("TYPE{}", self.qtype), str::to_owned)
    }
    /// The response code as a mnemonic.
    pub fn rcode_name(&self) -> Option<&'static str> {
        self.rcode.map(rcode_name)
    }
}

/// The mnemonic of a response code.
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
}

type PairKey = (SocketAddr, SocketAddr, u16);

/// Pairs DNS messages into transactions.
#[derive(Debug, Default)]
pub(crate) struct DnsTracker {
    pub(crate) txns: Vec<DnsTxn>,
    /// The newest transaction with a key; `chain[i]` links each to the previous one with
    /// the same key (`u32::MAX`: none).
    pending: FxMap<PairKey, u32>,
    chain: Vec<u32>,
    scratch: String,
    pub(crate) malformed: u64,
    pub(crate) messages: u64,
    /// Recent answered lookups by name, for the DNS phase of HTTP/TLS timing (see
    /// [`DnsTracker::lookup_before`]).
    recent: FxMap<String, VecDeque<Lookup>>,
}

/// An answered lookup, as the timing join needs it.
#[derive(Debug, Clone)]
struct Lookup {
    response_ts_ns: i64,
    response_time_ns: i64,
    addrs: Vec<IpAddr>,
}

/// Answered lookups remembered per name for the timing join.
const RECENT_PER_NAME: usize = 8;
/// Names remembered for the timing join; beyond it the table starts afresh (bounded memory).
const RECENT_NAMES: usize = 1 << 16;

/// Adds an answered lookup of `name` to `recent` (keyed as a lookup name: lower case, no
/// trailing dot; allocating only for a name not yet there).
fn remember(recent: &mut FxMap<String, VecDeque<Lookup>>, name: &str, l: Lookup) {
    let name = name.trim_end_matches('.');
    let q = match recent.get_mut(name).filter(|_| !name.bytes().any(|b| b.is_ascii_uppercase())) {
        Some(q) => q,
        None => {
            let key = name.to_ascii_lowercase();
            if recent.len() >= RECENT_NAMES && !recent.contains_key(&key) {
                recent.clear();
            }
            recent.entry(key).or_default()
        }
    };
    if q.len() >= RECENT_PER_NAME {
        q.pop_front();
    }
    q.push_back(l);
}

fn same_question(t: &DnsTxn, m: &DnsMessage) -> bool {
    match (&t.name, &m.qname) {
        (Some(a), Some(b)) => t.qtype == m.qtype && a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

impl DnsTracker {
    /// The response time of the most recent lookup of `name` answered at or before `start`
    /// that returned `ip` (the DNS phase of a connection to `ip` opened at `start`), among the
    /// last few answered lookups of the name.
    pub(crate) fn lookup_before(&self, name: &str, ip: IpAddr, start: i64) -> Option<i64> {
        self.recent
            .get(name)?
            .iter()
            .filter(|l| l.response_ts_ns <= start && l.addrs.contains(&ip))
            .max_by_key(|l| l.response_ts_ns)
            .map(|l| l.response_time_ns)
    }

    /// Handles one DNS message travelling `src` → `dst`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn message(
        &mut self,
        frame: u64,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        flavor: DnsFlavor,
        bytes: &[u8],
    ) {
        self.messages += 1;
        let m = match parse_message_with(bytes, &mut self.scratch) {
            Ok(m) => m,
            Err(_) => {
                self.malformed += 1;
                return;
            }
        };
        if m.response {
            self.response(frame, ts_ns, src, dst, transport, flavor, m);
        } else {
            self.query(frame, ts_ns, src, dst, transport, flavor, m);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn query(
        &mut self,
        frame: u64,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        flavor: DnsFlavor,
        m: DnsMessage,
    ) {
        let key = (src, dst, m.id);
        let head = self.pending.get(&key).copied().unwrap_or(u32::MAX);
        // The oldest unanswered transaction with this question takes the attempt.
        let mut hit = None;
        let mut i = head;
        while let Some(t) = self.txns.get(i as usize) {
            if t.response_frame.is_none() && same_question(t, &m) {
                hit = Some(i);
            }
            i = self.chain.get(i as usize).copied().unwrap_or(u32::MAX);
        }
        if let Some(t) = hit.and_then(|i| self.txns.get_mut(i as usize)) {
            t.query_frames.push(frame);
            t.query_ts_ns.push(ts_ns);
            return;
        }
        let idx = u32::try_from(self.txns.len()).unwrap_or(u32::MAX);
        self.pending.insert(key, idx);
        self.chain.push(head);
        let mut t = DnsTxn::new(src, dst, m.id, "", m.qtype, frame, ts_ns);
        t.flavor = flavor;
        t.transport = transport;
        t.opcode = m.opcode;
        t.name = m.qname;
        self.txns.push(t);
    }

    #[allow(clippy::too_many_arguments)]
    fn response(
        &mut self,
        frame: u64,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        flavor: DnsFlavor,
        m: DnsMessage,
    ) {
        let key = (dst, src, m.id);
        if let Some(&head) = self.pending.get(&key) {
            // The oldest unanswered attempt with this question; else the oldest unanswered
            // one when the response carries no question; else a duplicate of the newest
            // answered one. The chain runs newest first.
            let mut pick = None;
            let mut dup = None;
            let mut i = head;
            while let Some(t) = self.txns.get(i as usize) {
                let q_ok = same_question(t, &m) || m.qname.is_none();
                if q_ok && t.response_frame.is_none() {
                    pick = Some(i);
                }
                if q_ok && t.response_frame.is_some() && dup.is_none() {
                    dup = Some(i);
                }
                i = self.chain.get(i as usize).copied().unwrap_or(u32::MAX);
            }
            if let Some(i) = pick {
                if let Some(t) = self.txns.get_mut(i as usize) {
                    t.rcode = Some(m.rcode);
                    t.truncated = m.truncated;
                    t.response_counts = [m.counts[1], m.counts[2], m.counts[3]];
                    t.answers = m.answers;
                    t.response_ttls = m.all_ttls;
                    t.response_frame = Some(frame);
                    t.response_ts_ns = Some(ts_ns);
                    t.response_time_ns = Some(ts_ns - t.ts_ns);
                    t.response_partial = m.partial;
                    if flavor == DnsFlavor::Dns && !t.query_frames.is_empty() {
                        if let Some(n) = &t.name {
                            let l = Lookup {
                                response_ts_ns: ts_ns,
                                response_time_ns: ts_ns - t.ts_ns,
                                addrs: t.addresses().collect(),
                            };
                            remember(&mut self.recent, n, l);
                        }
                    }
                }
                return;
            }
            if let Some(i) = dup {
                if let Some(t) = self.txns.get_mut(i as usize) {
                    t.duplicate_responses += 1;
                    t.duplicate_frames.push(frame);
                }
                return;
            }
        }
        // A response without its query.
        self.chain.push(u32::MAX);
        self.txns.push(DnsTxn {
            ts_ns,
            flavor,
            transport,
            client: dst,
            server: src,
            id: m.id,
            opcode: m.opcode,
            name: m.qname,
            qtype: m.qtype,
            rcode: Some(m.rcode),
            truncated: m.truncated,
            answers: m.answers,
            response_counts: [m.counts[1], m.counts[2], m.counts[3]],
            response_ttls: m.all_ttls,
            query_frames: List::new(),
            query_ts_ns: List::new(),
            response_frame: Some(frame),
            response_ts_ns: Some(ts_ns),
            response_time_ns: None,
            response_partial: m.partial,
            duplicate_responses: 0,
            duplicate_frames: List::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn query_bytes(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v
    }

    #[test]
    fn parses_query_and_compressed_answer() {
        let mut r = query_bytes(7, "www.example.com", 1);
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2; // two answers
                  // CNAME www.example.com -> cdn.example.net, pointer to offset 12
        r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 17]);
        r.extend_from_slice(&[3, b'c', b'd', b'n', 7]);
        r.extend_from_slice(b"example");
        r.extend_from_slice(&[3, b'n', b'e', b't', 0]);
        let cname_at = r.len() - 17;
        r.extend_from_slice(&[0xc0, cname_at as u8, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 1, 2, 3, 4]);
        let m = parse_message(&r).unwrap();
        assert!(m.response);
        assert_eq!(m.qname.as_deref(), Some("www.example.com"));
        assert_eq!(parse_message_with(&r, &mut String::new()).unwrap(), m);
        assert_eq!(m.answers.len(), 2);
        assert_eq!(m.answers[0].data, RData::Cname("cdn.example.net".into()));
        assert_eq!(m.answers[1].name, "cdn.example.net");
        assert_eq!(m.answers[1].data, RData::A(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(m.answers[1].ttl, 256);
    }

    #[test]
    fn cut_response_keeps_header_question_and_whole_records() {
        let mut r = query_bytes(9, "www.example.com", 1);
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0]); // cut by the snap length
        let m = parse_message(&r).unwrap();
        assert!(m.partial && m.response);
        assert_eq!(m.qname.as_deref(), Some("www.example.com"));
        assert_eq!(m.answers.len(), 1);
        assert!(!parse_message(&query_bytes(1, "a", 1)).unwrap().partial);
        // A cut question is still an error.
        assert_eq!(parse_message(&r[..20]), Err(DnsError::BadName));
    }

    #[test]
    fn names_end_inside_the_message_and_stay_short() {
        // A pointer to the end of the message (no byte there) and a label running past it.
        let mut r = query_bytes(7, "a", 1);
        r.truncate(12);
        let end = r.len() as u8 + 2;
        r.extend_from_slice(&[0xc0, end]);
        assert_eq!(parse_message(&r), Err(DnsError::BadName));
        let mut r = query_bytes(7, "a", 1);
        r.truncate(12);
        r.extend_from_slice(&[5, b'a', b'b']);
        assert_eq!(parse_message(&r), Err(DnsError::BadName));
        // The root name, and a name past the 1 KiB cap (labels repeated through a pointer).
        let mut r = query_bytes(7, "a", 1);
        r.truncate(12);
        r.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse_message(&r).unwrap().qname.as_deref(), Some("<Root>"));
        let mut r = query_bytes(7, "a", 1);
        r[5] = 2;
        r.truncate(12);
        r.push(63);
        r.extend_from_slice(&[b'x'; 63]);
        r.extend_from_slice(&[0xc0, 12]); // loops back: 64 jumps would give 4 KiB of name
        r.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(parse_message(&r), Err(DnsError::BadName));
    }

    #[test]
    fn record_names_point_back_from_the_data() {
        // An MX record whose exchange name is a pointer to the question name.
        let mut r = query_bytes(3, "example.com", 15);
        r[2] = 0x81;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 9, 0, 4, 0, 10, 0xc0, 12]);
        let m = parse_message(&r).unwrap();
        assert_eq!(m.answers[0].data, RData::Mx(10, "example.com".into()));
        assert!(!m.partial);
        // The same with the data cut in the middle of the name: the record is dropped.
        r.truncate(r.len() - 1);
        let m = parse_message(&r).unwrap();
        assert!(m.partial && m.answers.is_empty());
    }

    #[test]
    fn pointer_loop_is_an_error() {
        let mut r = query_bytes(7, "a", 1);
        r.truncate(12);
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_message(&r), Err(DnsError::BadName));
    }
}
