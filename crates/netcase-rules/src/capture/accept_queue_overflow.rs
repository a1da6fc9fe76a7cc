//! accept-queue-overflow: connections that completed the handshake but were not accepted in
//! time. The evidence (SYN/ACK retransmitted after the client's ACK, client data retried
//! before any was acknowledged, a RST right after the handshake) is gathered per server port by
//! the handshake model ([`super::handshake`]), which decides when it is enough; this module
//! words the finding.

use netcase_flow::Endpoint;
use netcase_model::{CaseId, Evidence, Finding, Severity};

use super::handshake::Entry;
use super::util::{round, server_subject};

/// Share of a port's connections affected above which the finding is an error.
const ERROR_SHARE: f64 = 0.10;

/// The finding for `server`, whose connections over `span` seconds show the signs.
pub(super) fn finding(server: Endpoint, e: &Entry, span: f64) -> Finding {
    let share = e.accept_conns as f64 / e.conns.max(1) as f64;
    let sev = if share >= ERROR_SHARE { Severity::Error } else { Severity::Warning };
    let mode = if e.rst_after_ack > 0 && e.synack_after_ack == 0 && e.client_retrans == 0 {
        "the server reset connections right after the handshake (tcp_abort_on_overflow=1)"
    } else {
        "the server dropped the clients' handshake ACKs and retransmitted its SYN/ACK \
         (tcp_abort_on_overflow=0)"
    };
    let mut f = Finding::new(
        CaseId::AcceptQueueOverflow,
        sev,
        server_subject("tcp", server),
        format!(
            "{} of {} connections to {server} completed the handshake but were not accepted in time: \
             {mode}; {} of the SYNs were dropped too.",
            e.accept_conns, e.conns, e.syn.dropped_syns,
        ),
    )
    .with_measure("count", e.accept_conns as f64, "count")
    .with_measure("conns", e.conns as f64, "count")
    .with_measure("affected_pct", round(share * 100.0, 1), "%")
    .with_measure("synack_retrans_after_ack", e.synack_after_ack as f64, "count")
    .with_measure("client_retrans_before_ack", e.client_retrans as f64, "count")
    .with_measure("rst_after_ack", e.rst_after_ack as f64, "count")
    .with_measure("dropped_syns", e.syn.dropped_syns as f64, "count")
    .with_measure("drops_per_s", round(e.accept_conns as f64 / span, 2), "per_s")
    .with(Evidence::text("clients", e.clients.text(8)));
    if let Some(ev) = e.accept_frames.evidence("frames") {
        f = f.with(ev);
    }
    f.with_fix(
        "Accept faster (more workers, no blocking in the accept loop) and raise the accept queue: \
         net.core.somaxconn and the listen() backlog (the queue is the smaller of the two); \
         tcp_abort_on_overflow=1 makes clients fail fast instead of hanging.",
    )
}
