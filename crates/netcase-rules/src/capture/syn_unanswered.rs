//! syn-unanswered: SYNs left without a SYN/ACK whose cause one capture cannot prove. The
//! handshake model ([`super::handshake`]) gathers the evidence per server port and sends here
//! what does not fit a named cause; the finding says what is known, names the candidates and
//! the check that decides between them.

use std::net::IpAddr;

use netcase_flow::Endpoint;
use netcase_model::{CaseId, Evidence, Finding, Severity};

use super::handshake::Entry;
use super::util::{pl, round, server_subject};

/// Unanswered handshakes that make a warning: this many connections never answered (or three
/// with dropped SYNs).
const UNANSWERED_WARN_CONNS: u64 = 2;

/// SYNs without SYN/ACK whose cause the capture does not prove: what is known, the candidates,
/// and the check that decides.
pub(super) fn finding(server: Endpoint, e: &Entry, heard: bool, server_side: bool, vantage: [u64; 2]) -> Finding {
    let d = &e.syn;
    let conns = d.conns;
    // One connection that never got through is one failed attempt; a pattern needs repetition.
    let warn = d.unanswered >= UNANSWERED_WARN_CONNS || conns >= 3;
    let known = if server.addr.is_loopback() && e.answered == 0 {
        "nothing answered on the host's own loopback".to_owned()
    } else if e.answered > 0 {
        format!("{} other connection(s) to it were answered, so it listens", e.answered)
    } else if heard {
        "the host answered other traffic, but no SYN to this port".to_owned()
    } else {
        "nothing at all came back from this host".to_owned()
    };
    let (candidates, check) = if server.addr.is_loopback() {
        (
            "a firewall rule on this host that drops it (a closed local port answers with RST), or a listener \
             whose SYN queue is full with syncookies off",
            "`iptables-save`/`nft list ruleset` on the host (the lo/INPUT rules) and `ss -ltn`",
        )
    } else if e.answered > 0 {
        (
            "plain loss on the path (a SYN lost once and retried), a full SYN or accept queue at the listener, a \
             conntrack/SNAT source-port collision (the retry from the \
             same port then succeeds), a PAWS drop of SYNs whose timestamps went backwards behind one NAT address, \
             or a firewall rate limit",
            "on the server `nstat -az TcpExtListenDrops TcpExtListenOverflows TcpExtTCPReqQFullDrop` and `ss -ltn`; \
             on the NAT/node `conntrack -S` (insert_failed); or `netcase check` on each",
        )
    } else if heard {
        (
            "a firewall DROP rule for this port, a listener whose queue is full with syncookies off, or a policy \
             that drops new connections",
            "the firewall rules on the path and on the host (`iptables-save`, `nft list ruleset`), and `ss -ltn` on \
             the host",
        )
    } else {
        (
            "the host is down or unreachable (routing, ARP), a firewall DROP on the path, or a wrong address",
            "`ping`/`arping` the host, `traceroute -T -p PORT`, and the firewall rules on the path",
        )
    };
    let vp = if server_side {
        "the capture was taken at the server"
    } else if vantage[1] > 0 {
        "the capture was taken at the client side"
    } else {
        "where the capture was taken is not known (no complete handshake)"
    };
    let mut f = Finding::new(
        CaseId::SynUnanswered,
        if warn { Severity::Warning } else { Severity::Info },
        server_subject("tcp", server),
        format!(
            "{} to {server} had SYNs left without a SYN/ACK ({} never answered, {} answered only after a retry; {} \
             SYNs of the never-answered ones); \
             {known}; {vp}. The capture alone cannot name the cause: {candidates}.",
            pl(conns, "connection", "connections"),
            d.unanswered,
            conns.saturating_sub(d.unanswered),
            d.unanswered_syns,
        ),
    )
    .with_measure("count", conns as f64, "count")
    .with_measure("unanswered", d.unanswered as f64, "count")
    .with_measure("syns", d.unanswered_syns as f64, "count")
    .with_measure("answered_conns", e.answered as f64, "count")
    .with_measure("clients", d.clients.len() as f64, "count")
    .with(Evidence::text("vantage", vp))
    .with(Evidence::text("check", check));
    if let Some(r) = d.retry_s.median() {
        f = f.with_measure("retry_delay_s", round(r, 3), "s");
    }
    if let Some(ev) = d.frames.evidence("retransmitted_syns") {
        f = f.with(ev);
    }
    // The catalogue's cases among the candidates (a firewall, a dead host or a wrong address
    // are not cases of their own).
    let alternatives: &[CaseId] = if e.answered > 0 {
        &[CaseId::SynQueueOverflow, CaseId::AcceptQueueOverflow, CaseId::SnatPortCollision, CaseId::NatTimestampPaws]
    } else if heard || server.addr.is_loopback() {
        &[CaseId::SynQueueOverflow]
    } else {
        &[]
    };
    f.with_fix(format!("Run the checks that decide: {check}."))
        .with_confidence(netcase_model::Confidence::Possible, alternatives)
}

/// One finding for a host that left SYNs to many ports unanswered (`list`: the per-port
/// findings): a port scan, or a host that is gone. `heard`: it answered something.
pub(super) fn many_ports(host: IpAddr, list: &[Finding], heard: bool) -> Finding {
    let n = list.len();
    let syns: f64 = list.iter().filter_map(|f| f.measure("syns")).sum();
    Finding::new(
        CaseId::SynUnanswered,
        Severity::Info,
        netcase_model::Subject::Peer { ip: host },
        format!(
            "{host} left SYNs to {n} ports unanswered ({syns:.0} SYNs){}: a port scan, or a host \
                 that is gone.",
            if heard { " while it answered others" } else { ", and never answered anything" }
        ),
    )
    .with_measure("ports", n as f64, "count")
    .with_measure("syns", syns, "count")
}
