//! close-wait-in-accept-queue: connections the peer already closed, still waiting in a
//! listener's accept queue (CLOSE_WAIT with no file, inode 0): the application does not
//! accept fast enough (a connection limit, a stuck accept loop).

use super::{ns, push_opt, sysctl};
use netcase_host::{HostEvidence, TcpState};
use netcase_model::{CaseId, Finding, Severity, Subject};
use std::collections::BTreeMap;

/// One or two closed-before-accept connections happen on a busy listener; three or more
/// waiting at once mean the accept loop is behind.
pub const MIN_SOCKETS: usize = 3;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let listeners: Vec<_> = ev.sockets.iter().filter(|s| s.state == TcpState::Listen).collect();
    let mut by_listener: BTreeMap<std::net::SocketAddr, usize> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| s.state == TcpState::CloseWait && s.inode == 0) {
        let l = listeners
            .iter()
            .find(|l| {
                l.local.port() == s.local.port() && (l.local.ip() == s.local.ip() || l.local.ip().is_unspecified())
            })
            .map_or(s.local, |l| l.local);
        *by_listener.entry(l).or_default() += 1;
    }
    for (local, count) in by_listener {
        if count < MIN_SOCKETS {
            continue;
        }
        let l = listeners.iter().find(|l| l.local == local);
        let (q, backlog) = l.map_or((0, 0), |l| (l.recv_q, l.send_q));
        let owner = l
            .and_then(|l| l.owner())
            .map(|(p, c)| format!("{c} (pid {p})"))
            .unwrap_or_else(|| "no process (listener closed?)".into());
        let full = l.is_some() && q > backlog;
        let mut f = Finding::new(
            CaseId::CloseWaitInAcceptQueue,
            if full { Severity::Error } else { Severity::Warning },
            Subject::Listener { local, netns: ns(ev) },
            format!("{count} connections closed by their peers still wait in the accept queue of {local} ({q} of {backlog} queued; listener held by {owner})"),
        )
        .with_measure("count", count as f64, "count")
        .with_measure("accept_queue", f64::from(q), "count")
        .with_measure("backlog", f64::from(backlog), "count");
        if backlog > 0 {
            f = f.with_measure("fill_pct", f64::from(q) * 100.0 / f64::from(backlog), "%");
        }
        push_opt(&mut f, sysctl(ev, "net.core.somaxconn"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix("accept connections faster: raise or remove the connection limit in front of accept(), unblock the accept loop; a larger listen backlog only buys time"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{empty, tcp};

    #[test]
    fn counts_closed_connections_waiting_for_accept() {
        let mut ev = empty();
        let mut l = tcp(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0");
        l.recv_q = 4;
        l.send_q = 8;
        ev.sockets.push(l);
        for i in 0..4 {
            let mut s = tcp(TcpState::CloseWait, "127.0.0.1:8080", &format!("127.0.0.1:{}", 40000 + i));
            s.inode = 0;
            ev.sockets.push(s);
        }
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("count"), Some(4.0));
        assert_eq!(out[0].measure("accept_queue"), Some(4.0));
        assert_eq!(out[0].measure("backlog"), Some(8.0));
    }
}
