//! syn-queue-overflow: SYNs dropped by a listener that answers others. The handshake model
//! ([`super::handshake`]) decides when the evidence fits the queue and no other cause (answers
//! to other SYNs, drops from several client addresses, a burst, a capture at the server);
//! this module words the finding.

use netcase_flow::Endpoint;
use netcase_model::{CaseId, Finding, Severity};

use super::handshake::Entry;
use super::util::{pl, round, server_subject};

/// The finding for `server`, whose connections span `span` seconds.
pub(super) fn finding(server: Endpoint, e: &Entry, span: f64) -> Finding {
    let d = &e.syn;
    let affected = d.retried.max(d.unanswered);
    let share = affected as f64 / e.conns.max(1) as f64;
    let retry = d.retry_s.median();
    let mut f = Finding::new(
        CaseId::SynQueueOverflow,
        // From a capture alone the queue is the likeliest cause, not a certain one.
        Severity::Warning,
        server_subject("tcp", server),
        format!(
            "{server} answered {} connections but dropped {} from {} ({} never answered) from {} client \
             addresses, in a capture taken at the server{}: the listener's SYN queue is the likely cause (a full \
             accept queue drops SYNs too; `nstat -az TcpExtListenDrops TcpExtTCPReqQFullDrop TcpExtListenOverflows` \
             on the server tells them apart).",
            e.answered,
            pl(d.dropped_syns, "SYN", "SYNs"),
            pl(affected, "connection", "connections"),
            d.unanswered,
            d.clients.len(),
            retry.map_or_else(String::new, |r| format!("; clients retried after {r:.1} s")),
        ),
    )
    .with_measure("count", affected as f64, "count")
    .with_measure("dropped_syns", d.dropped_syns as f64, "count")
    .with_measure("unanswered", d.unanswered as f64, "count")
    .with_measure("conns", e.conns as f64, "count")
    .with_measure("affected_pct", round(share * 100.0, 1), "%")
    .with_measure("drops_per_s", round(d.dropped_syns as f64 / span, 2), "per_s")
    .with_confidence(netcase_model::Confidence::Likely, &[CaseId::AcceptQueueOverflow]);
    if let Some(r) = retry {
        f = f.with_measure("retry_delay_s", round(r, 3), "s");
    }
    if let Some(ev) = d.frames.evidence("retransmitted_syns") {
        f = f.with(ev);
    }
    f.with_fix(
        "Enable net.ipv4.tcp_syncookies=1, raise net.ipv4.tcp_max_syn_backlog and the listen() backlog; check \
         that the accept queue is not full too (ss -ltn: Recv-Q against Send-Q).",
    )
}
