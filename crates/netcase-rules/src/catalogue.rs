//! The case registry: one entry per case of the catalogue — what it is, how netcase detects it,
//! the fix, the rules that emit it (source files under `crates/netcase-rules/src/`), what serves
//! it when no rule does (know-how, a table, a probe), and the real captures on which a reviewer
//! confirmed a finding of it. The lab of a case is `netcase lab run ID` (the `Lab` source of
//! [`CaseId::sources`], listed in `netcase-lab`'s table). `tests/registry.rs` of the `netcase`
//! crate checks the registry against the code: every case has an entry, every listed file exists
//! and builds findings of that case, every rule module is listed, every lab maps to a case.

use netcase_model::CaseId;
use CaseId::*;

/// The registry entry of one case.
#[derive(Debug, Clone, Copy)]
pub struct CaseDoc {
    /// The case.
    pub case: CaseId,
    /// What goes wrong, and why.
    pub what: &'static str,
    /// What netcase reads and what pattern it looks for.
    pub detect: &'static str,
    /// What to change.
    pub fix: &'static str,
    /// The source files (under `crates/netcase-rules/src/`) that build findings of this case,
    /// and the evidence models they rely on.
    pub rules: &'static [&'static str],
    /// When no rule emits the case: what serves it instead, and why.
    pub without_rule: Option<&'static str>,
    /// Real captures (paths from the repository root) on which a reviewer confirmed a finding
    /// of this case (`corpus/review/verdicts.tsv`).
    pub fixtures: &'static [&'static str],
}

/// The registry, in catalogue order (the order of [`CaseId::ALL`]).
pub static CATALOGUE: &[CaseDoc] = &[
    CaseDoc {
        case: ClientTimeoutFinWait2,
        what: "A client gives up waiting for a slow server after its read timeout and closes the connection \
             (HTTP/1 cannot cancel one request, so clients such as Go's transport close the whole connection). \
             The client holds FIN_WAIT2, the server CLOSE_WAIT until its handler finishes; the late response then \
             reaches a closed socket and draws a RST.",
        detect: "Capture: a request, no response for T, a FIN from the client, then the response and a RST from the \
             client. The waits T of many such connections cluster at one value: the client's configured timeout. \
             Host: FIN_WAIT2 sockets grouped by peer.",
        fix: "Raise the client timeout above the server's real latency (with margin), or make the server answer \
             faster; a server-side deadline shorter than the client's avoids the wasted work.",
        rules: &["capture/client_timeout_fin_wait2.rs", "host/client_timeout_fin_wait2.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: KeepaliveRace502,
        what: "A proxy or load balancer reuses an idle keep-alive connection at the very moment the backend's \
             shorter idle timer closes it. The request crosses the backend's FIN, the backend answers with RST and \
             the proxy reports 502 (AWS ALB idle timeout 60 s against a backend that closes after 5 s).",
        detect: "Capture: a request sent on a connection after, or within one round trip of, the peer's FIN, answered \
             by RST; the closer's idle-close intervals (the time from the last response to its FIN), which \
             cluster at its keep-alive timeout.",
        fix: "Make the backend's keep-alive timeout longer than the proxy's idle timeout (e.g. 60 s at the LB, 65 s \
             at the backend), so the proxy always closes first.",
        rules: &["capture/keepalive_race_502.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: CloseWaitLeak,
        what: "The peer closed (sent FIN) but the application never called close(): the socket stays in \
             CLOSE_WAIT forever. Typical causes: a connection pool without checkout timeouts whose users block, a \
             transaction never rolled back, a handler stuck in a loop.",
        detect: "Host: CLOSE_WAIT sockets from sock_diag grouped by owning process, local port and peer, with their \
             count, receive queue and growth between two samples. Capture: a FIN never answered by a FIN.",
        fix: "Close (or return to the pool) every connection on every path, including errors; roll back failed \
             transactions; put timeouts on pool checkout and on reads.",
        rules: &["capture/close_wait_leak.rs", "host/close_wait_leak.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: CloseWaitInAcceptQueue,
        what: "Clients connected and gave up while the connection still waited in the listener's accept queue. \
             Nobody has accepted it, so no process owns it, and it sits in CLOSE_WAIT; the queue is full (Recv-Q \
             at backlog + 1).",
        detect: "Host: a listener whose Recv-Q reaches its Send-Q (the backlog) and CLOSE_WAIT sockets on its port \
             that no process owns.",
        fix: "Accept faster (a stuck accept loop, a too-low connection limit such as a LimitListener), or raise \
             the backlog and the limit.",
        rules: &["host/close_wait_in_accept_queue.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: TimeWaitPileup,
        what: "The side that closes a TCP connection first keeps it in TIME_WAIT for 2×MSL (60 s on Linux). A \
             server that closes (no keep-alive, idle timeouts, a per-connection request cap) or a client that \
             opens short connections to one destination piles them up and can run out of ports.",
        detect: "Host: TIME_WAIT sockets by peer and local port against ip_local_port_range and tcp_max_tw_buckets. \
             Capture: who sends the first FIN per server port, `Connection: close`, requests per connection (an \
             exact cap such as 100 shows a server limit), connections per second.",
        fix: "Use keep-alive (and raise per-connection request caps), let the client close first, enable \
             net.ipv4.tcp_tw_reuse on clients, widen ip_local_port_range.",
        rules: &["capture/time_wait_pileup.rs", "host/time_wait_pileup.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: LingerZeroRst,
        what: "SO_LINGER with a zero timeout makes close() abort the connection with RST instead of FIN, discarding \
             any unsent or unacknowledged data (Go's SetLinger(0)).",
        detect: "Capture: connections that end with a RST from a side that never sent FIN, with data still \
             unacknowledged or arriving afterwards.",
        fix: "Do not set SO_LINGER 0 unless losing data is acceptable; close normally and let TIME_WAIT be \
             handled by keep-alive or tcp_tw_reuse.",
        rules: &["capture/linger_zero_rst.rs", "trace/tcp.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: KeepaliveSettings,
        what: "Firewalls, NAT gateways and load balancers forget idle connections after their own timeout; without \
             TCP keepalive (or with a period longer than that timeout) the next send on such a connection hangs \
             or is reset.",
        detect: "Host: established sockets idle for long without a keepalive timer (sock_diag timer info) and the \
             tcp_keepalive_* sysctls. Capture: keep-alive probes and their interval; long idle gaps on \
             connections without probes.",
        fix: "Enable SO_KEEPALIVE with TCP_KEEPIDLE/TCP_KEEPINTVL below the shortest middlebox idle timeout (e.g. \
             Go SetKeepAlivePeriod(30s)).",
        rules: &["capture/keepalive_settings.rs", "host/keepalive_settings.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: IpConflict,
        what: "Two hosts or containers hold the same IP address. Connections go to whichever answered ARP last: \
             some get SYN → RST,ACK from the wrong holder.",
        detect: "Capture: one IP answering from two MAC addresses, intermittent RSTs to SYNs. Host: the addresses of \
             every network namespace, and duplicates across them.",
        fix: "Give each holder its own address (fix the IPAM or the static configuration); remove the stale \
             namespace or container.",
        rules: &["capture/ip_conflict.rs", "host/ip_conflict.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: PortUnreachable,
        what: "A connection attempt is refused: SYN answered by RST,ACK (or UDP by ICMP port unreachable). Either \
             nothing listens on the port, a REJECT rule answers, or the 5-tuple is wrong (a NAT or a stale address).",
        detect: "Capture: SYNs answered by RST,ACK and ICMP port-unreachable errors, per destination port, with counts \
             and rate. Host: is anything listening, is there a REJECT rule.",
        fix: "Start the service or fix the address/port the client uses; remove the REJECT rule if it is wrong.",
        rules: &["capture/port_unreachable.rs", "trace/tcp.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &["corpus/wild/tcpdump-afs.pcap", "corpus/wild/tcpdump-of10_pf5240.pcap"],
    },
    CaseDoc {
        case: AcceptQueueOverflow,
        what: "The accept queue of a listener holds min(somaxconn, backlog) connections. When the application \
             accepts too slowly it fills; with tcp_abort_on_overflow=0 the kernel drops the client's final ACK \
             (the client retransmits and waits), with 1 it answers RST.",
        detect: "Host: listener Recv-Q against its Send-Q (the effective backlog), ListenOverflows and ListenDrops \
             per second, somaxconn. Capture: SYN/ACK retransmissions by the server, client data retransmitted \
             before the server acknowledges it, RST after the handshake.",
        fix: "Accept faster (more workers, no blocking in the accept loop); raise net.core.somaxconn and the \
             listen() backlog; tcp_abort_on_overflow=1 to fail fast instead of hanging.",
        rules: &["capture/accept_queue_overflow.rs", "capture/handshake.rs", "host/accept_queue_overflow.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: SynQueueOverflow,
        what: "The SYN queue holds half-open connections. When it is full (tcp_max_syn_backlog, or the listen \
             backlog) and syncookies are off, new SYNs are dropped: new connections and liveness probes time out.",
        detect: "Host: SYN_RECV sockets per listener, tcp_max_syn_backlog, tcp_syncookies, TCPReqQFullDrop and \
             ListenDrops per second. Capture: SYNs retransmitted at 1 s, 3 s... without answer.",
        fix: "Enable net.ipv4.tcp_syncookies, raise tcp_max_syn_backlog and the backlog; find why handshakes do \
             not complete (a SYN flood, a slow path).",
        rules: &["capture/syn_queue_overflow.rs", "capture/handshake.rs", "host/syn_queue_overflow.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: UdpRcvbufDrops,
        what: "A UDP receiver that reads slower than datagrams arrive loses them once its receive buffer is full \
             (metrics collectors, DNS servers). An absurd rmem_default such as 2^31-1 is a hazard of its own.",
        detect: "Host: Udp RcvbufErrors/InErrors per second, per-socket drop counts from sock_diag meminfo, receive \
             buffer sizes, rmem_default/rmem_max. Trace: the SOCKET_RCVBUFF drop reason.",
        fix: "Read faster (more readers, SO_REUSEPORT, batch receive), raise SO_RCVBUF within net.core.rmem_max.",
        rules: &["host/udp_rcvbuf_drops.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: UdpTruncation,
        what: "A UDP reader with a small buffer (512, 1024 bytes) truncates larger datagrams: the rest is lost \
             silently (MSG_TRUNC), no kernel counter moves.",
        detect: "Capture: flows whose datagrams exceed common read-buffer sizes, with the largest size seen.",
        fix: "Read with a buffer as large as the largest datagram (65,535 bytes for UDP), or check MSG_TRUNC.",
        rules: &["capture/udp_truncation.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: PacketDropLayers,
        what: "Packets can be lost at every layer: NIC ring, driver, softnet backlog, IP (routing, reassembly), \
             netfilter and conntrack, TCP/UDP (queues, buffers), the socket.",
        detect: "Host: /sys/class/net statistics, softnet_stat per CPU, snmp/netstat counters, conntrack statistics, \
             turned into rates and grouped by layer. Trace: kfree_skb drop reasons grouped by layer.",
        fix: "Fix the layer that loses most: ring size and IRQ/RPS spread for the device, netdev_max_backlog for \
             softnet, conntrack limits, socket buffers or listen backlogs.",
        rules: &["host/packet_drop_layers.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: KernelDropTrace,
        what: "The kernel's kfree_skb tracepoint reports every dropped packet with a reason and the code location \
             that dropped it: the exact place the stack throws a flow's packets away.",
        detect: "Trace: skb:kfree_skb through perf_event_open, reasons named by the running kernel, locations \
             resolved through /proc/kallsyms, aggregated by reason, location and layer.",
        fix: "Follow the dominating reason: SOCKET_RCVBUFF → socket buffers, NETFILTER_DROP → a rule, \
             TCP_LISTEN_OVERFLOW → the accept queue, NO_SOCKET → nothing listening.",
        rules: &["trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: RetransHolBlocking,
        what: "On one TCP stream a lost segment holds back every later byte until it is retransmitted: with \
             many small messages, one loss delays all messages behind it by a retransmission timeout or a round \
             trip (head-of-line blocking).",
        detect: "Capture: retransmissions and the stalls they cause on the receiver (gaps of about an RTO with data \
             outstanding), their count and durations, and the loss rate.",
        fix: "Remove the loss (a bad link, a full queue); for latency-sensitive messages use several connections \
             or a protocol without head-of-line blocking.",
        rules: &["capture/retrans_hol_blocking.rs", "capture/limits.rs", "trace/tcp.rs"],
        without_rule: None,
        fixtures: &["../shared/corpus/ndpi-alexa-app.pcapng"],
    },
    CaseDoc {
        case: DupackNoFastRetransmit,
        what: "The receiver keeps sending duplicate ACKs for a hole but the sender never fast-retransmits and waits \
             for the RTO; seen with a kernel regression after the 2019 SACK fixes (CentOS 7 3.10.0-957, \
             TCPWqueueTooBig growing).",
        detect: "Capture: three or more duplicate ACKs (with SACK) for one hole and no retransmission within an RTO. \
             Host: TCPWqueueTooBig growth and the kernel version.",
        fix: "Upgrade the kernel (3.10.0-1062.1.1 or later on CentOS 7).",
        rules: &["capture/dupack_no_fast_retransmit.rs", "host/dupack_no_fast_retransmit.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: NoWindowScale,
        what: "Without the window scale option in both SYNs the receive window cannot exceed 65,535 bytes, so a \
             bulk transfer is capped at 64 KiB per round trip (about 10 Mbit/s at 50 ms).",
        detect: "Capture: the handshake options of both sides, the RTT, bytes in flight pinned at the window, and the \
             achieved rate against window/RTT. Host: net.ipv4.tcp_window_scaling.",
        fix: "Enable net.ipv4.tcp_window_scaling on both ends and make sure no middlebox strips the option.",
        rules: &["capture/no_window_scale.rs", "capture/limits.rs"],
        without_rule: None,
        fixtures: &["../shared/corpus/zeek-206_example_b.pcap", "tests/data/zeek-206_example_b.pcap"],
    },
    CaseDoc {
        case: ZeroWindow,
        what: "A receiver that stops reading fills its buffer and advertises a zero window; the sender stops and \
             probes until the window opens.",
        detect: "Capture: zero-window advertisements, probes and window updates: which side, how long the sender \
             was stalled, how many probes.",
        fix: "Make the receiving application read faster (or not block), or give it a larger receive buffer.",
        rules: &["capture/zero_window.rs", "capture/limits.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: NagleDelayedAck,
        what: "Nagle's algorithm holds a small write until earlier data is acknowledged, while the peer delays its \
             ACK (about 40 ms on Linux, up to 200 ms elsewhere): write-write-read exchanges stall each time. \
             Message framing is still the application's job either way.",
        detect: "Capture: a small segment sent only after an ACK that came after a ~40 ms (or ~200 ms) delay, \
             repeated; the count and the delay.",
        fix: "Set TCP_NODELAY on the sender, or write each request in one call; on the receiver TCP_QUICKACK helps.",
        rules: &["capture/nagle_delayed_ack.rs"],
        without_rule: None,
        fixtures: &["corpus/wild/tcpdump-of10_7050sx_bsn.pcap", "corpus/wild/tcpdump-of10_pf5240.pcap"],
    },
    CaseDoc {
        case: DnsConntrackRace5s,
        what: "glibc and musl send the A and AAAA queries at once from one socket. Behind DNAT to a single DNS \
             server, conntrack's insert race drops one of them, and the lookup waits for the 5 s resolver \
             timeout (sometimes 10 s).",
        detect: "Capture: A and AAAA from one source port within milliseconds, one never answered, the lookup \
             completed after a ~5 s retry. Host: conntrack insert_failed in a namespace with DNS traffic (sockets \
             to or from port 53, nat rules for port 53), resolv.conf options, libc flavour.",
        fix: "glibc: `options single-request-reopen` (or single-request) in resolv.conf; any libc: `use-vc` (TCP) \
             or a node-local DNS cache; musl ignores those options.",
        rules: &["proto/dns_conntrack_race_5s.rs", "host/dns_conntrack_race_5s.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: DnsIdCollision,
        what: "Concurrent DNS queries share a transaction id (musl picks ids from the clock): the answers can be \
             matched to the wrong query, one is discarded as a duplicate, and the lookup waits for a retry.",
        detect: "Capture: concurrent queries with equal ids from one client to one server, answers out of order.",
        fix: "Serialise the queries or use a resolver that randomises ids per query (a local cache).",
        rules: &["proto/dns_id_collision.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: ResolverOrder,
        what: "Without /etc/nsswitch.conf (Alpine images) some resolvers (Go's) ask DNS before /etc/hosts, so \
             `localhost` and names from /etc/hosts go to the network: slow, and wrong when the network answers.",
        detect: "Host: nsswitch.conf present and its hosts line, resolv.conf, /etc/hosts. Capture: DNS queries for \
             localhost or for names listed in /etc/hosts, and the answers they got.",
        fix: "Add /etc/nsswitch.conf with `hosts: files dns` to the image.",
        rules: &["proto/resolver_order.rs", "host/resolver_order.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: SnatPortCollision,
        what: "Under SNAT (MASQUERADE, a load balancer) concurrent connections from different clients can get the \
             same translated source port; conntrack's insert fails, the SYN is dropped and retried after 1 s.",
        detect: "Host: conntrack insert_failed and drop growth per CPU, MASQUERADE/SNAT rules without \
             --random-fully. Capture: client SYN retransmissions the server never saw.",
        fix: "Add --random-fully to the MASQUERADE/SNAT rule, or route to pod IPs without SNAT.",
        rules: &["host/snat_port_collision.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: NatTimestampPaws,
        what: "With tcp_tw_recycle on (kernels before 4.12), a server drops SYNs whose TCP timestamp is older than \
             the last one seen from the same IP: clients behind one NAT with different clocks get refused.",
        detect: "Host: net.ipv4.tcp_tw_recycle, PAWSPassive/PAWSActive counters. Capture: SYNs from one IP whose \
             TSval goes backwards across connections and that go unanswered.",
        fix: "Turn net.ipv4.tcp_tw_recycle off (it was removed in 4.12).",
        rules: &["capture/nat_timestamp_paws.rs", "host/nat_timestamp_paws.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: IptablesRedirectHijack,
        what: "A nat OUTPUT (or PREROUTING) REDIRECT or DNAT rule, often a sidecar's, sends traffic for a \
             destination to a local port: every call gets an unrelated local answer.",
        detect: "Host: a walk of the nat table for the destination ip:port: the chain path, the final target, who \
             listens on the redirected port. Capture: connections to the local port instead of the remote one.",
        fix: "Narrow or remove the rule (exclude the destination or port), or fix the sidecar's interception config.",
        rules: &["capture/iptables_redirect_hijack.rs", "host/iptables_redirect_hijack.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: ConntrackTableFull,
        what: "The conntrack table has reached nf_conntrack_max: every new flow is dropped.",
        detect: "Host: the fill (nf_conntrack_count against nf_conntrack_max: a warning from 90 %, an error from \
             95 %) and the drops only a full table causes (early_drop, and drop beyond insert_failed). \
             insert_failed with headroom is an insert race (snat-port-collision, dns-conntrack-race-5s), not a \
             full table.",
        fix: "Raise net.netfilter.nf_conntrack_max (and the hash size), shorten timeouts, or exempt high-volume \
             flows with NOTRACK.",
        rules: &["host/conntrack_table_full.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: EphemeralPortOddEven,
        what: "connect() picks a local port from ip_local_port_range; since 4.14 it searches one parity first. \
             With tens of thousands of connections to one destination that half is nearly used up and every \
             connect scans it under a lock.",
        detect: "Host: connections per destination against half of the local port range, with the kernel version.",
        fix: "Widen ip_local_port_range, spread connections over more destination addresses or ports, reuse \
             connections.",
        rules: &["host/ephemeral_port_odd_even.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: ListenHashReuseport,
        what: "Before 4.17 the listener hash had 32 buckets keyed by port only: thousands of ports times dozens of \
             reuseport sockets made every incoming SYN walk long chains.",
        detect: "Host: listening sockets per port and in total, reuseport groups, the kernel version.",
        fix: "Upgrade to 4.17 or later, or use fewer listening sockets.",
        rules: &[],
        without_rule: Some("know-how: no rule reads listener hash chains yet; `ss -ltn` per port and the kernel version (before 4.17) tell"),
        fixtures: &[],
    },
    CaseDoc {
        case: RssRpsImbalance,
        what: "Receive processing concentrates on a few CPUs when the NIC's RSS cannot spread the traffic \
             (tunnels with few outer addresses, protocols RPS ignores).",
        detect: "Host: per-CPU softnet_stat (processed, dropped, time_squeeze) as rates, the busiest CPU against the \
             mean.",
        fix: "Enable RPS/RFS (rps_cpus) or hash on inner headers; spread IRQs.",
        rules: &["host/rss_rps_imbalance.rs", "trace/drops.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: ReuseportBalance,
        what: "Workers sharing one listener with epoll are woken LIFO, so one worker takes most connections; \
             SO_REUSEPORT gives each its own listener, balanced by the kernel.",
        detect: "Host: established connections per process on one local port, reuseport groups, max against mean.",
        fix: "Use SO_REUSEPORT (nginx `reuseport`), or EPOLLEXCLUSIVE with round-robin accept.",
        rules: &["host/reuseport_balance.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: ConsistentHashBalance,
        what: "Ring consistent hashing without virtual nodes spreads keys unevenly; jump consistent hash is even \
             but only removes the last node.",
        detect: "Know-how: netcase reports the imbalance elsewhere (connections per worker or backend).",
        fix: "Use virtual nodes (100+ per backend) or another balanced hashing scheme.",
        rules: &[],
        without_rule: Some("know-how: a design note on ring hashing, nothing on one host to read"),
        fixtures: &[],
    },
    CaseDoc {
        case: UdpSingleSocketContention,
        what: "Many threads sharing one UDP socket contend on its lock; a pool of sockets or SO_REUSEPORT removes \
             the contention.",
        detect: "Host: one UDP socket with a very high packet rate used by a process with many threads.",
        fix: "Use a socket per worker (SO_REUSEPORT) or a pool.",
        rules: &[],
        without_rule: Some("know-how: no rule yet; `ss -uanp` (one socket, many threads of one process) and its drops tell"),
        fixtures: &[],
    },
    CaseDoc {
        case: Http204ContentLength,
        what: "A 204 or 304 response must not carry a body; one that sends Content-Length makes some clients \
             (libcurl) wait for a body that never comes until their timeout.",
        detect: "Capture: HTTP 204/304 responses with Content-Length or body bytes, and how long the client waited \
             before closing.",
        fix: "Fix the server to send no Content-Length (or 0) on 204/304; set a client timeout meanwhile.",
        rules: &["proto/http_204_content_length.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: HttpTimingBreakdown,
        what: "A slow HTTP call is slow in one phase: name lookup, TCP connect, TLS handshake, time to first byte, \
             or transfer.",
        detect: "Capture: per transaction, the DNS lookup (when captured), SYN to SYN/ACK, the TLS handshake, \
             request to first response byte, and the transfer. Probe: `netcase probe http URL` times each \
             phase as curl -w does and sets connect time (the network) against time to first byte (the server).",
        fix: "Work on the slow phase: DNS caching, closer servers or connection reuse, TLS session resumption, \
             server latency, bandwidth.",
        rules: &["proto/http_timing_breakdown.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: DnsPacketChallenge,
        what: "Questions a capture answers directly: the addresses a name got, the largest TTL, the response with \
             the most answers, the slowest response, the CDN behind a CNAME chain.",
        detect: "Capture: the DNS transactions table with filters and sorting (`netcase pcap FILE --dns`).",
        fix: "Nothing to fix: this is reading, not a failure.",
        rules: &[],
        without_rule: Some("a table, not a rule: `netcase pcap FILE --dns` with filters and sorting answers the questions"),
        fixtures: &[],
    },
    CaseDoc {
        case: LatencyMethodology,
        what: "Latency must be measured the right way: single and concurrent, per path and per packet; a TCP \
             connect (SYN → SYN/ACK) distribution tells network from application latency.",
        detect: "Probe: connect-time percentiles to a target (`netcase probe tcp HOST:PORT`, like hping3 -S, single \
             and --concurrency K), the path (`netcase probe path`, like traceroute --tcp); capture: handshake RTTs.",
        fix: "Measure connect time and time to first byte separately before blaming either side.",
        rules: &[],
        without_rule: Some("a measurement, not a rule: connect-time percentiles to a target (`netcase probe tcp`), the path (`netcase probe path`)"),
        fixtures: &[],
    },
    CaseDoc {
        case: CaptureDuplicates,
        what: "The same packet was captured more than once: capture on `any` with a bridge or veth pair, a SPAN \
             port mirroring both directions, two interfaces merged. Read naively, every copy is a retransmission \
             and every copied ACK a duplicate ACK: \"75% loss\" that never happened.",
        detect: "Capture: a frame whose IP addresses, IPv4 ID, length, TCP seq/ack/flags/window/timestamps (or UDP \
             header) and first payload bytes equal a frame seen shortly before (TTL and link headers aside). A real \
             retransmission gets a new IPv4 ID, so a match with a non-zero ID proves a copy; where nothing can \
             prove it (IPv6, ID 0, non-IP), a match is merged only when the link layer shows a second capture \
             point (interface, VLAN, MAC pair, TTL) or the capture is already known to duplicate. The analysis \
             uses the first copy; frame numbers stay the file's. The cause is read from what differs between \
             copies.",
        fix: "Nothing to fix in the network. Capture on one interface (not `any` beside a bridge), or mirror one \
             direction per SPAN session, or remove the copies with `editcap -D`.",
        rules: &["capture/artefacts.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: CaptureLoss,
        what: "The capture missed segments the endpoints did exchange (capture buffer drops, a busy capture host, a \
             mirror port oversubscribed): the receiver acknowledges bytes that are not in the file. Retransmission, \
             loss and stall findings on such flows may describe the capture, not the network.",
        detect: "Capture: per TCP direction, gaps in the sequence space that the peer acknowledges without the data \
             ever appearing, and ACKs beyond the highest byte seen (Zeek's missed_bytes and capture_loss; \
             Wireshark's \"ACKed unseen segment\" and \"previous segment not captured\"). Loss findings on flows \
             with such gaps are withheld (shown as info, with the reason).",
        fix: "Capture with a larger buffer (`tcpdump -B`), a snap length that fits the headers (`-s 128`), a filter \
             that keeps only the traffic of interest, or on the host itself instead of a mirror port; check \
             `tcpdump`'s \"dropped by kernel\" line.",
        rules: &["capture/artefacts.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: CaptureOffload,
        what: "The capture was taken above a NIC that segments and checksums for the host (TSO/GSO/GRO, checksum \
             offload): its own packets appear as super-segments larger than the MSS and with wrong checksums. \
             Neither is an error on the wire.",
        detect: "Capture: TCP payloads larger than the peer's MSS option, per sending host; TCP/UDP checksums verified \
             on a sample of frames and counted per source host — wrong ones concentrated on one host's own \
             packets are offload.",
        fix: "Nothing to fix. To see wire-sized segments, capture on the peer or a mirror port, or turn offload off \
             while capturing (`ethtool -K IF tso off gso off gro off`).",
        rules: &["capture/artefacts.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: CaptureTime,
        what: "Timestamps go backwards or jump: files merged from hosts with different clocks, several interfaces \
             timestamped by different CPUs, a clock step. Durations and rates computed across such a jump are \
             meaningless.",
        detect: "Capture: steps backwards (counted; those over 1 ms listed) and forward gaps of an hour or more; the \
             capture's duration is given without them.",
        fix: "Merge captures with `mergecap` (which sorts by time) from hosts with synchronised clocks; re-sort with \
             `editcap -S`/`reordercap`.",
        rules: &["capture/artefacts.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: IpFragments,
        what: "Datagrams larger than the path MTU travel as IP fragments (DNSSEC and EDNS0 answers, large UDP). A \
             firewall or NAT that drops fragments breaks exactly the large answers: the DNS query \"times out\" \
             while small answers work.",
        detect: "Capture: IPv4 and IPv6 fragments reassembled (overlaps, out-of-order, timeouts, a memory bound); DNS \
             and other UDP are analysed on the whole datagram; datagrams that never complete are reported with \
             the flow they belonged to.",
        fix: "Where answers arrive incomplete: let fragments through the firewall/NAT (or reassemble there), or make \
             answers fit (EDNS0 buffer size 1232, DNS over TCP).",
        rules: &["capture/artefacts.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: SynUnanswered,
        what: "SYNs get no SYN-ACK. A capture alone often cannot say why: a full SYN queue, a firewall DROP, a \
             conntrack or SNAT collision, a PAWS drop, a routing or address problem.",
        detect: "Capture: which SYNs went unanswered, the retry timing, whether other SYNs to the same listener were \
             answered meanwhile, and the candidate causes with the evidence for and against each.",
        fix: "Run the checks that decide between the candidates: `nstat -az TcpExtListenDrops TcpExtTCPReqQFullDrop`, \
             `ss -ltn` on the server, `conntrack -S` (insert_failed), the firewall rules on the path.",
        rules: &["capture/syn_unanswered.rs", "capture/handshake.rs"],
        without_rule: None,
        fixtures: &["../shared/corpus/ndpi-alexa-app.pcapng"],
    },
    CaseDoc {
        case: DnsServerUnresponsive,
        what: "A DNS server answers nothing (or nearly nothing): every lookup waits for the resolver timeout and \
             then tries another server — \"no web access\" that is really no DNS.",
        detect: "Capture: queries to a server with no responses, their retries, other servers tried. Host: the \
             servers in resolv.conf.",
        fix: "Fix or replace the server (resolv.conf, DHCP), or the path to it (firewall, routing).",
        rules: &["proto/dns_server_unresponsive.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: PmtuBlackhole,
        what: "Large segments vanish on a path with a smaller MTU (tunnels, PPPoE 1492) while small ones pass: the \
             ICMP \"fragmentation needed\"/\"packet too big\" is blocked or ignored, so connections hang at the \
             first full-size segment.",
        detect: "Capture: a segment of 1024 bytes or more, larger than anything the sender got acknowledged, sent \
             three times or more at that size and never acknowledged, while the receiver's small packets keep \
             coming and nothing sent after it is acknowledged; ICMP fragmentation-needed / packet-too-big quoting \
             the flow, with the next-hop MTU. Certain when an ICMP shows it or a smaller resend got through at \
             once; working PMTU discovery (ICMP, then smaller resends) is healthy.",
        fix: "Clamp the MSS on the tunnel (`iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j \
             TCPMSS --clamp-mss-to-pmtu`), let ICMP type 3 code 4 / ICMPv6 type 2 through, or set \
             net.ipv4.tcp_mtu_probing=1.",
        rules: &["capture/pmtu_blackhole.rs"],
        without_rule: None,
        fixtures: &[],
    },
    CaseDoc {
        case: ReceiveWindowLimited,
        what: "A receiver advertises a small (non-zero) window that caps the transfer below what the path carries: \
             the sender fills the window again and again and waits.",
        detect: "Capture: transfers of 256 KiB or more lasting a second or more in which the sender waited for window \
             at least half of the time (no room left for another full segment in the window it knew of, taking \
             the capture point into account), filled it at least every other round trip, and ran at half of \
             window / RTT or more. Flows whose 64 KiB ceiling comes from missing window scaling are \
             no-window-scale's; receivers that advertised a zero window for a tenth of the transfer, zero-window's.",
        fix: "Give the receiver larger buffers (do not set SO_RCVBUF small; check net.ipv4.tcp_rmem and that \
             autotuning is on).",
        rules: &["capture/receive_window_limited.rs", "capture/limits.rs"],
        without_rule: None,
        fixtures: &["../shared/corpus/packets-inconsistent_printer.pcapng"],
    },
];

/// The registry entry of `case`.
pub fn doc(case: CaseId) -> CaseDoc {
    CATALOGUE.iter().find(|d| d.case == case).copied().unwrap_or(CaseDoc {
        case,
        what: "",
        detect: "",
        fix: "",
        rules: &[],
        without_rule: None,
        fixtures: &[],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_in_catalogue_order() {
        let ids: Vec<CaseId> = CATALOGUE.iter().map(|d| d.case).collect();
        assert_eq!(ids, CaseId::ALL.to_vec());
    }

    #[test]
    fn every_case_is_explained() {
        for c in CaseId::ALL {
            let d = doc(*c);
            assert!(d.what.len() > 40 && d.detect.len() > 40 && d.fix.len() > 20, "{c}");
        }
    }
}
