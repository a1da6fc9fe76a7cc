//! close-wait-leak: the peer sent FIN, the application never called close().
//!
//! CLOSE_WAIT sockets that a process still holds (inode ≠ 0), grouped by process, with the
//! (local port, peer) groups, their Recv-Q, the time since the peer's last data (≈ the FIN)
//! and the growth between the two samples.

use super::owner_subject;
use netcase_host::{HostEvidence, Socket, TcpState};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// A handful of CLOSE_WAIT sockets is normal between a FIN and the application's close();
/// five or more held by one process are not.
pub const MIN_SOCKETS: usize = 5;
/// Even one CLOSE_WAIT socket older than this is a missed close().
pub const MIN_AGE_MS: u32 = 30_000;
/// So many half-closed descriptors threaten the process's fd limit (1024 by default).
pub const ERROR_SOCKETS: usize = 500;

fn held(s: &Socket) -> bool {
    s.state == TcpState::CloseWait && s.inode != 0
}

type Key = (Option<(u32, String)>, u16, IpAddr);

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    // Per owner: its sockets and their (local, peer) groups.
    let mut by_owner: BTreeMap<Option<(u32, String)>, Vec<&Socket>> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| held(s)) {
        by_owner.entry(s.owner().map(|(p, c)| (p, c.to_owned()))).or_default().push(s);
    }
    let earlier: BTreeMap<Option<u32>, usize> =
        ev.earlier_sockets.iter().filter(|s| held(s)).fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.owner().map(|o| o.0)).or_default() += 1;
            m
        });
    for (owner, socks) in by_owner {
        let count = socks.len();
        let oldest_ms = socks.iter().filter_map(|s| s.tcp.map(|t| t.last_data_recv_ms)).max().unwrap_or(0);
        let growth = (!ev.earlier_sockets.is_empty() || ev.interval_s > 0.0)
            .then(|| count as f64 - earlier.get(&owner.as_ref().map(|o| o.0)).copied().unwrap_or(0) as f64);
        // Growth alone is evidence only when it is a pile, not the one socket a busy server
        // holds between a client's FIN and its own close() at the moment of the sample.
        if count < MIN_SOCKETS && oldest_ms < MIN_AGE_MS && growth.unwrap_or(0.0) < MIN_SOCKETS as f64 {
            continue;
        }
        let recv_q: u64 = socks.iter().map(|s| u64::from(s.recv_q)).sum();
        let mut groups: BTreeMap<Key, (usize, u64)> = BTreeMap::new();
        for s in &socks {
            let g = groups.entry((owner.clone(), s.local.port(), s.remote.ip())).or_default();
            g.0 += 1;
            g.1 += u64::from(s.recv_q);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
        let first_local: SocketAddr = socks.first().map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.local);
        let subject = owner_subject(ev, owner.as_ref().map(|(p, c)| (*p, c.as_str())), first_local);
        let who = owner.as_ref().map_or_else(|| "an unknown process".to_owned(), |(p, c)| format!("{c} (pid {p})"));
        let top = groups
            .first()
            .map(|((_, port, peer), (n, _))| format!(" (largest group: {n} on local port {port} from {peer})"))
            .unwrap_or_default();
        let severity = if count >= ERROR_SOCKETS { Severity::Error } else { Severity::Warning };
        let mut f = Finding::new(
            CaseId::CloseWaitLeak,
            severity,
            subject,
            format!("{who} holds {count} CLOSE_WAIT sockets whose peer closed {:.0} s ago at most and never called close(){top}", f64::from(oldest_ms) / 1000.0),
        )
        .with_measure("count", count as f64, "count")
        .with_measure("recv_q_bytes", recv_q as f64, "bytes")
        .with_measure("oldest_age_s", f64::from(oldest_ms) / 1000.0, "s")
        .with_measure("groups", groups.len() as f64, "count");
        if let Some((p, _)) = &owner {
            f = f.with_measure("pid", f64::from(*p), "pid");
        }
        if let Some(g) = growth {
            f = f.with_measure("growth", g, "count");
            if ev.interval_s > 0.0 {
                f = f.with_measure("growth_per_s", g / ev.interval_s, "per_s");
            }
        }
        if let Some(((_, port, peer), (n, q))) = groups.first() {
            f = f
                .with_measure("top_local_port", f64::from(*port), "port")
                .with(Evidence::text("top_peer", peer.to_string()))
                .with_measure("top_count", *n as f64, "count")
                .with_measure("top_recv_q_bytes", *q as f64, "bytes");
        }
        let list: Vec<String> = groups
            .iter()
            .take(10)
            .map(|((_, port, peer), (n, q))| format!(":{port} <- {peer}: {n} sockets, Recv-Q {q} B"))
            .collect();
        f = f.with(Evidence::text("groups_by_local_port_and_peer", list.join("; ")));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix(
            "close the socket when read() returns 0 (the peer's FIN): roll back or finish the transaction and close on every path; \
             give pool checkouts and reads a timeout so stuck handlers release their connections",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{empty, tcp};

    fn cw(pid: u32, port: u16) -> Socket {
        let mut s = tcp(TcpState::CloseWait, &format!("10.0.0.1:{port}"), "10.0.0.9:40000");
        s.owners = vec![(pid, "app".into())];
        s.recv_q = 1;
        s
    }

    #[test]
    fn groups_by_process_and_counts() {
        let mut ev = empty();
        ev.sockets = (0..7).map(|_| cw(42, 6379)).chain((0..2).map(|_| cw(43, 80))).collect();
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("count"), Some(7.0));
        assert_eq!(out[0].measure("pid"), Some(42.0));
        assert_eq!(out[0].measure("recv_q_bytes"), Some(7.0));
        assert_eq!(out[0].measure("top_local_port"), Some(6379.0));
    }

    #[test]
    fn one_fresh_close_wait_between_samples_is_not_a_leak() {
        // A busy server sampled twice: the second sample catches one socket between the
        // client's FIN and the server's close() (seen in a CI run of the healthy lab).
        let mut ev = empty();
        ev.interval_s = 1.0;
        ev.earlier_sockets = vec![tcp(TcpState::Established, "10.0.0.1:80", "10.0.0.2:1")];
        ev.sockets = vec![cw(1, 80)];
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Five new ones in one interval are a pile.
        ev.sockets = (0..5).map(|_| cw(1, 80)).collect();
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn healthy_host_is_silent() {
        let mut ev = empty();
        ev.sockets = vec![cw(1, 80), tcp(TcpState::Established, "10.0.0.1:80", "10.0.0.2:1")];
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty());
    }
}
