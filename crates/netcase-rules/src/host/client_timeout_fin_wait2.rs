//! client-timeout-fin-wait2: a client gave up on a slow server (read timeout) and closed;
//! its sockets wait in FIN_WAIT2 for the server's FIN, which comes only when the server's
//! application finishes the request it no longer needs to answer. The late answer draws RST.
//!
//! FIN_WAIT2 sockets grouped by peer (ip:port), with the oldest age when the kernel's timer
//! tells it (an orphaned FIN_WAIT2 socket runs a `tcp_fin_timeout` timer).

use super::{ns, push_opt, sysctl};
use netcase_host::{HostEvidence, Proto, Socket, TcpState, TimerKind};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// FIN_WAIT2 normally lasts until the peer's application reads EOF and closes: a few
/// milliseconds. Three or more towards one peer at once mean its application is still busy
/// with requests this side has given up on.
pub const MIN_SOCKETS: usize = 3;
/// One FIN_WAIT2 socket older than this is a peer that does not close either.
pub const MIN_AGE_MS: u64 = 10_000;
/// The kernel default `tcp_fin_timeout` (s): the lifetime of an orphaned FIN_WAIT2 socket.
pub const DEFAULT_FIN_TIMEOUT_S: u64 = 60;

/// Age of a FIN_WAIT2 socket in ms, when known: an orphan's timer counts down from
/// `tcp_fin_timeout`; a socket still held by its process tells the time of its last send.
fn age_ms(s: &Socket, fin_timeout_ms: u64) -> Option<u64> {
    match (s.timer, s.tcp) {
        (Some(t), _) if t.kind == TimerKind::TimeWait || s.inode == 0 => {
            Some(fin_timeout_ms.saturating_sub(u64::from(t.expires_ms)))
        }
        (_, Some(t)) => Some(u64::from(t.last_data_sent_ms)),
        _ => None,
    }
}

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let fin_timeout_s = ev.sysctl_u64("net.ipv4.tcp_fin_timeout").unwrap_or(DEFAULT_FIN_TIMEOUT_S);
    let fin_timeout_ms = fin_timeout_s.saturating_mul(1000);
    let mut by_peer: BTreeMap<SocketAddr, Vec<&Socket>> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| s.proto == Proto::Tcp && s.state == TcpState::FinWait2) {
        by_peer.entry(s.remote).or_default().push(s);
    }
    for (peer, socks) in by_peer {
        let n = socks.len();
        let oldest = socks.iter().filter_map(|s| age_ms(s, fin_timeout_ms)).max();
        if n < MIN_SOCKETS && oldest.unwrap_or(0) < MIN_AGE_MS {
            continue;
        }
        let orphans = socks.iter().filter(|s| s.inode == 0).count();
        let age = oldest.map(|ms| format!(", the oldest {:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
        let mut f = Finding::new(
            CaseId::ClientTimeoutFinWait2,
            Severity::Warning,
            Subject::ServerPort { proto: "tcp", ip: Some(peer.ip()), port: peer.port() },
            format!(
                "{n} connections to {peer} closed by this side wait in FIN_WAIT2 for the peer's FIN{age}: \
                 the client gave up (a read timeout) while {peer} is still working on the requests; its late answers will draw RST"
            ),
        )
        .with_measure("count", n as f64, "count")
        .with_measure("orphaned", orphans as f64, "count")
        .with_measure("tcp_fin_timeout_s", fin_timeout_s as f64, "s")
        .with(Evidence::text("peer", peer.to_string()));
        if let Some(ms) = oldest {
            f = f.with_measure("oldest_age_s", ms as f64 / 1000.0, "s");
        }
        if let Some(netns) = ns(ev) {
            f = f.with(Evidence::text("netns", netns));
        }
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_fin_timeout"));
        out.push(f.with_fix(format!(
            "raise the client's timeout above the server's real response time to {peer}, or make the server answer faster; \
             the peer's CLOSE_WAIT sockets show the requests it is still serving"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{empty, tcp};
    use netcase_host::sockdiag::Timer;

    fn fw2(port: u16, expires_ms: u32) -> Socket {
        let mut s = tcp(TcpState::FinWait2, &format!("10.0.0.1:{port}"), "10.0.0.2:8080");
        s.inode = 0;
        s.timer = Some(Timer { kind: TimerKind::TimeWait, expires_ms, retrans: 0 });
        s
    }

    #[test]
    fn groups_by_peer_with_the_oldest_age() {
        let mut ev = empty();
        ev.sysctls.insert("net.ipv4.tcp_fin_timeout".into(), "60".into());
        ev.sockets = vec![fw2(40001, 59_600), fw2(40002, 59_500), fw2(40003, 58_000), fw2(40004, 59_900)];
        ev.sockets.push(tcp(TcpState::FinWait2, "10.0.0.1:40005", "10.0.0.3:80"));
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1, "one lone, fresh FIN_WAIT2 to another peer is normal");
        assert_eq!(out[0].measure("count"), Some(4.0));
        assert_eq!(out[0].measure("orphaned"), Some(4.0));
        assert_eq!(out[0].measure("oldest_age_s"), Some(2.0));
        assert_eq!(out[0].text("peer"), Some("10.0.0.2:8080"));
        assert_eq!(
            out[0].subject,
            Subject::ServerPort { proto: "tcp", ip: Some("10.0.0.2".parse().unwrap()), port: 8080 }
        );
    }

    #[test]
    fn one_old_socket_is_enough() {
        let mut ev = empty();
        ev.sockets = vec![fw2(40001, 30_000)];
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("oldest_age_s"), Some(30.0), "default tcp_fin_timeout 60 s");
    }

    #[test]
    fn no_fin_wait2_is_silent() {
        let mut ev = empty();
        ev.sockets = vec![tcp(TcpState::Established, "10.0.0.1:40001", "10.0.0.2:8080"), fw2(40002, 59_000)];
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty());
    }
}
