//! The labs, one function per case; [`ALL`] lists them in catalogue order.

mod dns;
mod more;
mod nat;
mod path;
mod tcp;

use crate::LabSpec;
use netcase_model::CaseId;

/// Every lab, in catalogue order.
pub static ALL: &[LabSpec] = &[
    LabSpec {
        case: CaseId::ClientTimeoutFinWait2,
        summary: "client read timeout 2.0 s, server answers after 4.0 s: FIN_WAIT2, late answer draws RST (control: answers after 0.5 s)",
        host_changes: false,
        note: None,
        run: tcp::client_timeout_fin_wait2,
    },
    LabSpec {
        case: CaseId::KeepaliveRace502,
        summary: "backend closes idle keep-alive connections after 1.0 s, client reuses them after 1.3 s: RST (control: reuse after 0.5 s)",
        host_changes: false,
        note: None,
        run: tcp::keepalive_race_502,
    },
    LabSpec {
        case: CaseId::CloseWaitLeak,
        summary: "server never closes after the client's FIN: 8 CLOSE_WAIT held by the process (control: closes)",
        host_changes: false,
        note: None,
        run: tcp::close_wait_leak,
    },
    LabSpec {
        case: CaseId::CloseWaitInAcceptQueue,
        summary: "listener (backlog 8) never accepts, 9 clients connect and leave: CLOSE_WAIT in the accept queue (control: accepts)",
        host_changes: false,
        note: None,
        run: tcp::close_wait_in_accept_queue,
    },
    LabSpec {
        case: CaseId::TimeWaitPileup,
        summary: "50 requests with Connection: close, server closes first: 50 TIME_WAIT (control: one keep-alive connection)",
        host_changes: false,
        note: None,
        run: tcp::time_wait_pileup,
    },
    LabSpec {
        case: CaseId::LingerZeroRst,
        summary: "server aborts 5 connections with SO_LINGER 0 while data is unsent: RST, data discarded (control: normal close)",
        host_changes: false,
        note: None,
        run: tcp::linger_zero_rst,
    },
    LabSpec {
        case: CaseId::KeepaliveSettings,
        summary: "client sets SO_KEEPALIVE, TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s; the connection idles 4.5 s: a probe every second (control: no keep-alive)",
        host_changes: false,
        note: None,
        run: tcp::keepalive_settings,
    },
    LabSpec {
        case: CaseId::IpConflict,
        summary: "two namespaces on one bridge hold the same address, one refuses: connects split (control: distinct addresses)",
        host_changes: false,
        note: None,
        run: more::ip_conflict,
    },
    LabSpec {
        case: CaseId::PortUnreachable,
        summary: "5 connects to a port nobody listens on: SYN answered by RST,ACK (control: a listener)",
        host_changes: false,
        note: None,
        run: tcp::port_unreachable,
    },
    LabSpec {
        case: CaseId::AcceptQueueOverflow,
        summary: "listener (backlog 4) does not accept, 12 clients: accept queue full, ListenOverflows (control: accepts)",
        host_changes: false,
        note: None,
        run: tcp::accept_queue_overflow,
    },
    LabSpec {
        case: CaseId::SynQueueOverflow,
        summary: "syncookies off, backlog 16, half-open handshakes fill the SYN queue; a probe times out (control: handshakes complete)",
        host_changes: false,
        note: None,
        run: more::syn_queue_overflow,
    },
    LabSpec {
        case: CaseId::UdpRcvbufDrops,
        summary: "receiver with SO_RCVBUF 8 KiB does not read for a while: 2000 datagrams, most dropped (control: 4 MiB buffer, reads)",
        host_changes: false,
        note: None,
        run: more::udp_rcvbuf_drops,
    },
    LabSpec {
        case: CaseId::UdpTruncation,
        summary: "20 datagrams of 1400 bytes read into a 1024-byte buffer: MSG_TRUNC (control: 900 bytes)",
        host_changes: false,
        note: None,
        run: more::udp_truncation,
    },
    LabSpec {
        case: CaseId::RetransHolBlocking,
        summary: "relay (RTT 20 ms) drops one segment of a small-message stream: later messages stall behind it (control: no loss)",
        host_changes: false,
        note: None,
        run: more::retrans_hol_blocking,
    },
    LabSpec {
        case: CaseId::DupackNoFastRetransmit,
        summary: "relay drops a segment and its fast retransmits for 600 ms: dup ACKs, hole unfilled past an RTO (control: no loss)",
        host_changes: false,
        note: Some(
            "simulated: this kernel fast-retransmits correctly; the relay loses the retransmissions so the receiver's capture looks like the CentOS 7 regression. The host evidence (TcpExtTCPWqueueTooBig, kernel 3.10.0-957) cannot be reproduced here.",
        ),
        run: more::dupack_no_fast_retransmit,
    },
    LabSpec {
        case: CaseId::NoWindowScale,
        summary: "relay with 50 ms RTT, window scaling off on the client: 2 MiB download capped at 64 KiB/RTT (control: scaling on)",
        host_changes: false,
        note: None,
        run: more::no_window_scale,
    },
    LabSpec {
        case: CaseId::ZeroWindow,
        summary: "receiver (SO_RCVBUF 8 KiB) stops reading for 2.0 s: zero window and persist probes (control: reads at once)",
        host_changes: false,
        note: None,
        run: tcp::zero_window,
    },
    LabSpec {
        case: CaseId::NagleDelayedAck,
        summary: "write-write-read with Nagle on: each request waits ~40 ms for the delayed ACK (control: TCP_NODELAY)",
        host_changes: false,
        note: None,
        run: more::nagle_delayed_ack,
    },
    LabSpec {
        case: CaseId::DnsConntrackRace5s,
        summary: "glibc A+AAAA from one socket, the second packet of the flow dropped: 5 s lookup (control: no drop)",
        host_changes: false,
        note: Some(
            "the lost AAAA query is dropped by an nftables rule standing in for conntrack's insert race (the race needs DNAT and two CPUs inserting at the same instant).",
        ),
        run: dns::dns_conntrack_race_5s,
    },
    LabSpec {
        case: CaseId::DnsIdCollision,
        summary: "musl-like client sends A and AAAA with one id, AAAA answered first: A answers discarded (control: distinct ids)",
        host_changes: false,
        note: None,
        run: dns::dns_id_collision,
    },
    LabSpec {
        case: CaseId::ResolverOrder,
        summary: "hosts: dns files (Go's order without nsswitch.conf): DNS asked before /etc/hosts, its answer wins (control: files dns)",
        host_changes: false,
        note: None,
        run: dns::resolver_order,
    },
    LabSpec {
        case: CaseId::SnatPortCollision,
        summary: "two clients masqueraded to one address (MASQUERADE without --random-fully) connect at the same instant from one source port, threads on CPU 0 and 1, 200 rounds: conntrack insert_failed, SYNs retransmitted after 1 s (control: --random-fully)",
        host_changes: false,
        note: None,
        run: nat::snat_port_collision,
    },
    LabSpec {
        case: CaseId::NatTimestampPaws,
        summary: "two clients masqueraded to one address, 15 connects each (a random TSval offset per connection); a relay makes tcp_tw_recycle's per-peer PAWS check: SYNs older than the last accepted TSval go unanswered (control: relay forwards all)",
        host_changes: false,
        note: Some(
            "simulated: tcp_tw_recycle is gone since Linux 4.12, so this kernel does not drop the SYNs itself; the userspace relay in front of the server makes its per-peer PAWS check (a SYN whose TSval is older than the last one accepted from that IP is dropped). The client kernels, their random timestamp offsets and the NAT are real; the capture is taken on the relay's NAT-facing side, where the server would see the SYNs arrive.",
        ),
        run: nat::nat_timestamp_paws,
    },
    LabSpec {
        case: CaseId::IptablesRedirectHijack,
        summary: "nat OUTPUT REDIRECT of port 80 to a local sidecar on 15001: every call answered locally (control: no rule)",
        host_changes: false,
        note: None,
        run: more::iptables_redirect_hijack,
    },
    LabSpec {
        case: CaseId::ConntrackTableFull,
        summary: "global nf_conntrack_max lowered to host count + 512, 600 UDP flows fill the lab's table (control: limit untouched)",
        host_changes: true,
        note: None,
        run: dns::conntrack_table_full,
    },
    LabSpec {
        case: CaseId::Http204ContentLength,
        summary: "server answers 204 with Content-Length: 10, client waits for the body until its 2.0 s timeout (control: no Content-Length)",
        host_changes: false,
        note: None,
        run: more::http_204_content_length,
    },
    LabSpec {
        case: CaseId::PmtuBlackhole,
        summary: "c - r1 - r2 - s, the r1-r2 link MTU 1400, r2 drops its ICMP fragmentation-needed: the 1448-byte segments of a download vanish, the client gives up after 2.5 s (control: ICMP allowed, PMTU discovery works)",
        host_changes: false,
        note: None,
        run: path::pmtu_blackhole,
    },
    LabSpec {
        case: CaseId::ReceiveWindowLimited,
        summary: "relay with 40 ms RTT, the client sets SO_RCVBUF 16 KiB: a 2 MiB download runs at window / RTT (control: default buffers)",
        host_changes: false,
        note: None,
        run: path::receive_window_limited,
    },
];

/// Resolves `name` with the C library's `getaddrinfo(AF_UNSPEC)` (what glibc programs do: A
/// and AAAA queries in parallel). Used by `netcase lab __resolve` inside a lab namespace,
/// where `ip netns exec` has put the namespace's resolv.conf, hosts and nsswitch.conf in place.
pub fn getaddrinfo(name: &str) -> anyhow::Result<Vec<String>> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: zeroed addrinfo is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out pointer.
    let rc = unsafe { libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string.
        let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(rc)) };
        anyhow::bail!("getaddrinfo {name}: {}", msg.to_string_lossy());
    }
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned, until NULL.
        let ai = unsafe { &*p };
        if ai.ai_family == libc::AF_INET && !ai.ai_addr.is_null() {
            // SAFETY: an AF_INET entry points at a sockaddr_in.
            let sin = unsafe { &*ai.ai_addr.cast::<libc::sockaddr_in>() };
            out.push(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string());
        } else if ai.ai_family == libc::AF_INET6 && !ai.ai_addr.is_null() {
            // SAFETY: an AF_INET6 entry points at a sockaddr_in6.
            let sin6 = unsafe { &*ai.ai_addr.cast::<libc::sockaddr_in6>() };
            out.push(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).to_string());
        }
        p = ai.ai_next;
    }
    // SAFETY: res came from getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    out.dedup();
    Ok(out)
}
