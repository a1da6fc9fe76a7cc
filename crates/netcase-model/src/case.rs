//! The case catalogue as a type: one variant per id in `shared/CASES.md`.

use std::fmt;
use std::str::FromStr;

/// Where the evidence for a case can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A capture file or a live capture.
    Pcap,
    /// The live host: sockets, counters, sysctls, conntrack, netfilter, resolver files.
    Host,
    /// Kernel tracepoints.
    Trace,
    /// An active measurement.
    Probe,
    /// A reproduction in network namespaces.
    Lab,
}

macro_rules! cases {
    ($( $(#[$doc:meta])* $variant:ident => $id:literal, $title:literal, [$($src:ident),*] ;)*) => {
        /// A case from the catalogue (`shared/CASES.md`). Its string form is stable API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum CaseId {
            $( $(#[$doc])* $variant, )*
        }

        impl CaseId {
            /// Every case, in catalogue order.
            pub const ALL: &'static [CaseId] = &[ $( CaseId::$variant, )* ];

            /// The stable id, e.g. `"close-wait-leak"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( CaseId::$variant => $id, )* }
            }

            /// A short title for lists.
            pub const fn title(self) -> &'static str {
                match self { $( CaseId::$variant => $title, )* }
            }

            /// The evidence sources this case can be diagnosed from.
            pub fn sources(self) -> &'static [Source] {
                match self { $( CaseId::$variant => &[$(Source::$src),*], )* }
            }
        }

        impl FromStr for CaseId {
            type Err = CaseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $id => Ok(CaseId::$variant), )*
                    _ => Err(CaseIdError { given: s.to_owned() }),
                }
            }
        }
    };
}

cases! {
    /// Client read timeout closes while the server is still working; late answer draws RST.
    ClientTimeoutFinWait2 => "client-timeout-fin-wait2", "client timeout leaves FIN_WAIT2 / late response hits RST", [Pcap, Host, Lab];
    /// A request crosses the backend's idle-close FIN on a keep-alive connection.
    KeepaliveRace502 => "keepalive-race-502", "keep-alive race: request sent into the peer's idle close", [Pcap, Lab];
    /// The application never closes after the peer's FIN.
    CloseWaitLeak => "close-wait-leak", "CLOSE_WAIT leak: the application never calls close()", [Host, Pcap, Lab];
    /// CLOSE_WAIT sockets still sitting in a listener's accept queue.
    CloseWaitInAcceptQueue => "close-wait-in-accept-queue", "CLOSE_WAIT sockets stuck in a listener's accept queue", [Host, Lab];
    /// The side that closes first accumulates TIME_WAIT.
    TimeWaitPileup => "time-wait-pileup", "TIME_WAIT pile-up on the side that closes first", [Host, Pcap, Lab];
    /// SO_LINGER 0 aborts with RST and discards unsent data.
    LingerZeroRst => "linger-zero-rst", "connections aborted with RST (SO_LINGER 0)", [Pcap, Trace, Lab];
    /// Idle connections without TCP keepalive die in middleboxes.
    KeepaliveSettings => "keepalive-settings", "idle connections without (or with too slow) TCP keepalive", [Host, Pcap, Lab];
    /// Two hosts or containers hold the same IP address.
    IpConflict => "ip-conflict", "IP address conflict: two holders of one address", [Pcap, Host, Lab];
    /// SYN answered by RST/ACK, or UDP answered by ICMP port unreachable.
    PortUnreachable => "port-unreachable", "connection refused / port unreachable", [Pcap, Trace, Lab];
    /// The listener's accept queue overflows.
    AcceptQueueOverflow => "accept-queue-overflow", "accept queue overflow", [Host, Pcap, Trace, Lab];
    /// The listener's SYN queue overflows.
    SynQueueOverflow => "syn-queue-overflow", "SYN queue overflow", [Host, Pcap, Lab];
    /// A UDP receiver loses datagrams to a full receive buffer.
    UdpRcvbufDrops => "udp-rcvbuf-drops", "UDP receive buffer drops", [Host, Trace, Lab];
    /// Datagrams larger than the reader's buffer are truncated.
    UdpTruncation => "udp-truncation", "UDP datagrams larger than common read buffers", [Pcap, Lab];
    /// Drops counted layer by layer.
    PacketDropLayers => "packet-drop-layers", "packet drops by layer", [Host, Trace];
    /// kfree_skb with reasons and locations shows where the stack drops.
    KernelDropTrace => "kernel-drop-trace", "kernel drop trace: reason and location", [Trace];
    /// A lost segment stalls every later message on the stream.
    RetransHolBlocking => "retrans-hol-blocking", "retransmission head-of-line blocking", [Pcap, Trace, Lab];
    /// Duplicate ACKs for a hole without fast retransmission.
    DupackNoFastRetransmit => "dupack-no-fast-retransmit", "duplicate ACKs without fast retransmission", [Pcap, Host, Lab];
    /// No window scaling: the window caps throughput at 64 KiB per RTT.
    NoWindowScale => "no-window-scale", "no window scaling: throughput capped at 64 KiB per RTT", [Pcap, Lab];
    /// A receiver advertises a zero window.
    ZeroWindow => "zero-window", "zero window: the receiver stopped reading", [Pcap, Lab];
    /// Nagle's algorithm meets delayed ACK.
    NagleDelayedAck => "nagle-delayed-ack", "Nagle and delayed ACK stall small writes", [Pcap, Lab];
    /// Parallel A/AAAA lookups lose one to the conntrack insert race.
    DnsConntrackRace5s => "dns-conntrack-race-5s", "DNS lookups delayed 5 s by the conntrack insert race", [Pcap, Host, Lab];
    /// Concurrent DNS queries share a transaction id.
    DnsIdCollision => "dns-id-collision", "concurrent DNS queries with the same id", [Pcap, Lab];
    /// Names that belong in /etc/hosts are sent to DNS.
    ResolverOrder => "resolver-order", "resolver order: hosts-file names sent to DNS", [Host, Pcap, Lab];
    /// SNAT gives concurrent connections one source port.
    SnatPortCollision => "snat-port-collision", "SNAT source port collisions", [Host, Lab];
    /// tcp_tw_recycle drops SYNs behind NAT with non-monotonic timestamps.
    NatTimestampPaws => "nat-timestamp-paws", "PAWS drops SYNs from clients behind NAT", [Host, Pcap, Trace, Lab];
    /// A nat OUTPUT REDIRECT sends traffic to a local port.
    IptablesRedirectHijack => "iptables-redirect-hijack", "iptables REDIRECT hijacks outbound traffic", [Host, Pcap, Lab];
    /// The conntrack table is full.
    ConntrackTableFull => "conntrack-table-full", "conntrack table full", [Host, Trace, Lab];
    /// connect() port search under parity split.
    EphemeralPortOddEven => "ephemeral-port-odd-even", "ephemeral ports nearly exhausted for one destination", [Host];
    /// Old kernels' listener hash with many reuseport sockets.
    ListenHashReuseport => "listen-hash-reuseport", "listener hash chains on old kernels with reuseport (know-how)", [];
    /// Receive softirq concentrated on few CPUs.
    RssRpsImbalance => "rss-rps-imbalance", "receive processing concentrated on few CPUs", [Host, Trace];
    /// Connections unevenly spread over workers on one port.
    ReuseportBalance => "reuseport-balance", "connections unevenly spread over workers", [Host];
    /// Ring hashing without virtual nodes is uneven.
    ConsistentHashBalance => "consistent-hash-balance", "consistent hashing imbalance (know-how)", [];
    /// One UDP socket shared by many threads.
    UdpSingleSocketContention => "udp-single-socket-contention", "one UDP socket shared by many threads (know-how)", [];
    /// 204/304 responses that carry Content-Length or a body.
    Http204ContentLength => "http-204-content-length", "HTTP 204/304 with Content-Length or a body", [Pcap, Lab];
    /// Which phase of an HTTP transaction is slow.
    HttpTimingBreakdown => "http-timing-breakdown", "HTTP timing breakdown: DNS, connect, TLS, first byte, transfer", [Pcap, Probe];
    /// Questions answered straight from DNS in a capture.
    DnsPacketChallenge => "dns-packet-challenge", "DNS questions answered from a capture", [Pcap];
    /// Latency measured the right way.
    LatencyMethodology => "latency-methodology", "latency methodology: connect-time percentiles", [Probe];
    /// Frames captured more than once (not retransmissions).
    CaptureDuplicates => "capture-duplicates", "frames captured more than once", [Pcap];
    /// Segments the endpoints exchanged that the capture missed.
    CaptureLoss => "capture-loss", "capture loss: bytes ACKed that the capture never saw", [Pcap];
    /// Segmentation or checksum offload seen from above the NIC.
    CaptureOffload => "capture-offload", "offload: super-segments and checksums of the capturing host", [Pcap];
    /// Timestamps that go backwards or jump.
    CaptureTime => "capture-time", "capture timestamps going backwards or jumping", [Pcap];
    /// Datagrams split into IP fragments.
    IpFragments => "ip-fragments", "IP fragments: reassembled and incomplete datagrams", [Pcap];
    /// SYNs without SYN-ACK whose cause the capture cannot name alone.
    SynUnanswered => "syn-unanswered", "SYNs without SYN-ACK", [Pcap];
    /// A DNS server that answers nothing.
    DnsServerUnresponsive => "dns-server-unresponsive", "DNS server does not answer", [Pcap];
    /// Large segments vanish on a path with a smaller MTU.
    PmtuBlackhole => "pmtu-blackhole", "path MTU black hole", [Pcap, Lab];
    /// A small receive window caps the transfer.
    ReceiveWindowLimited => "receive-window-limited", "transfer capped by a small receive window", [Pcap, Lab];
}

impl CaseId {
    /// The ids closest to `given` (by edit distance), best first, for "did you mean".
    pub fn closest(given: &str, n: usize) -> Vec<CaseId> {
        let mut scored: Vec<(usize, CaseId)> = CaseId::ALL
            .iter()
            .map(|c| {
                let id = c.as_str();
                let mut d = edit_distance(given, id);
                if id.contains(given) || given.contains(id) {
                    d = d.min(1);
                }
                (d, *c)
            })
            .collect();
        scored.sort();
        scored.into_iter().take(n).map(|(_, c)| c).collect()
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CaseId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CaseId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An id that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseIdError {
    /// What was given.
    pub given: String,
}

impl fmt::Display for CaseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown case id '{}'", self.given)
    }
}

impl std::error::Error for CaseIdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for c in CaseId::ALL {
            assert_eq!(c.as_str().parse::<CaseId>().unwrap(), *c);
        }
    }

    #[test]
    fn ids_equal_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/CASES.md");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("skipping: {path} not readable");
            return;
        };
        let mut ids = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("| ") else { continue };
            let Some(id) = rest.split(" |").next() else { continue };
            if id != "id"
                && !id.is_empty()
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                ids.push(id.to_owned());
            }
        }
        let ours: Vec<String> = CaseId::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(ids, ours);
    }

    #[test]
    fn closest_suggests_near_ids() {
        assert_eq!(CaseId::closest("close-wait", 1), vec![CaseId::CloseWaitLeak]);
        assert_eq!(CaseId::closest("zero-windw", 1), vec![CaseId::ZeroWindow]);
    }
}
