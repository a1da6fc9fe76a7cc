//! udp-rcvbuf-drops: a UDP receiver slower than its traffic loses datagrams to a full receive
//! buffer: per socket (`sk_drops` from skmeminfo) and namespace-wide (`Udp.RcvbufErrors`).
//! An absurd `rmem_default`/`rmem_max` (2^31-1) is a hazard of its own.

use super::{counter, moving_or_set, ns, push_opt, sysctl};
use netcase_host::{HostEvidence, Proto};
use netcase_model::{CaseId, Finding, Severity, Subject};

/// Above 1 GiB a socket buffer default lets one slow socket pin the machine's memory.
pub const ABSURD_RMEM: u64 = 1 << 30;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let rmem_default = ev.sysctl_u64("net.core.rmem_default");
    let rmem_max = ev.sysctl_u64("net.core.rmem_max");
    let mut per_socket = 0usize;
    for s in ev.sockets.iter().filter(|s| s.proto == Proto::Udp) {
        let Some(mem) = s.mem else { continue };
        if mem.drops == 0 {
            continue;
        }
        let before = ev
            .earlier_sockets
            .iter()
            .find(|e| e.cookie == s.cookie && e.proto == Proto::Udp)
            .and_then(|e| e.mem)
            .map(|m| m.drops);
        let growing = before.is_some_and(|b| mem.drops > b);
        per_socket += 1;
        let owner = s.owner().map(|(p, c)| format!("{c} (pid {p})")).unwrap_or_else(|| "unknown process".into());
        let mut f = Finding::new(
            CaseId::UdpRcvbufDrops,
            if growing || ev.interval_s == 0.0 { Severity::Warning } else { Severity::Info },
            Subject::Socket { proto: "udp", local: s.local, remote: s.remote, netns: ns(ev) },
            format!(
                "UDP socket {} of {owner} dropped {} datagrams on a full receive buffer of {} bytes",
                s.local, mem.drops, mem.rcvbuf
            ),
        )
        .with_measure("drops", f64::from(mem.drops), "count")
        .with_measure("rcvbuf_bytes", f64::from(mem.rcvbuf), "bytes")
        .with_measure("rmem_alloc_bytes", f64::from(mem.rmem_alloc), "bytes")
        .with_measure("recv_q_bytes", f64::from(s.recv_q), "bytes");
        if let (Some(b), true) = (before, ev.interval_s > 0.0) {
            f = f.with_measure("drops_per_s", f64::from(mem.drops.saturating_sub(b)) / ev.interval_s, "per_s");
        }
        if let Some((p, _)) = s.owner() {
            f = f.with_measure("pid", f64::from(p), "pid");
        }
        push_opt(&mut f, counter(ev, "Udp.RcvbufErrors"));
        push_opt(&mut f, counter(ev, "Udp6.RcvbufErrors"));
        push_opt(&mut f, sysctl(ev, "net.core.rmem_default"));
        push_opt(&mut f, sysctl(ev, "net.core.rmem_max"));
        out.push(f.with_fix(format!(
            "read faster (more reader threads or SO_REUSEPORT sockets) and raise SO_RCVBUF (capped by net.core.rmem_max, now {}), e.g. 4-16 MiB for bursty senders",
            rmem_max.map_or_else(|| "?".into(), |v| v.to_string())
        )));
    }
    let (g4, s4) = moving_or_set(ev, "Udp.RcvbufErrors");
    let (g6, s6) = moving_or_set(ev, "Udp6.RcvbufErrors");
    if per_socket == 0 && (g4 || g6 || s4 || s6) {
        let mut f = Finding::new(
            CaseId::UdpRcvbufDrops,
            if g4 || g6 { Severity::Warning } else { Severity::Info },
            Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
            "UDP datagrams were dropped on full receive buffers (no current socket shows them: the receiver may be gone)",
        );
        for n in ["Udp.RcvbufErrors", "Udp6.RcvbufErrors"] {
            if let Some((v, r)) = ev.counter(n) {
                let key = if n.starts_with("Udp6") { "rcvbuf_errors_v6" } else { "rcvbuf_errors" };
                f = f.with_measure(key, v as f64, "count");
                if let Some(r) = r {
                    f = f.with_measure(&format!("{key}_per_s"), r, "per_s");
                }
            }
            push_opt(&mut f, counter(ev, n));
        }
        out.push(f.with_fix("find the slow UDP receiver (ss -uamp, drops column); read faster, raise SO_RCVBUF"));
    }
    let absurd: Vec<(&str, u64)> = [("net.core.rmem_default", rmem_default), ("net.core.rmem_max", rmem_max)]
        .into_iter()
        .filter_map(|(n, v)| v.filter(|v| *v >= ABSURD_RMEM).map(|v| (n, v)))
        .collect();
    if !absurd.is_empty() {
        let mut f = Finding::new(
            CaseId::UdpRcvbufDrops,
            Severity::Warning,
            Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
            format!(
                "receive buffer sysctls are absurd: {}",
                absurd.iter().map(|(n, v)| format!("{n} = {v}")).collect::<Vec<_>>().join(", ")
            ),
        );
        for (n, v) in &absurd {
            f = f.with_measure(n, *v as f64, "bytes");
        }
        push_opt(&mut f, sysctl(ev, "net.core.rmem_default"));
        push_opt(&mut f, sysctl(ev, "net.core.rmem_max"));
        out.push(f.with_fix("set net.core.rmem_default back to 212992 and rmem_max to what one socket may really use (e.g. 16777216); size buffers per socket with SO_RCVBUF"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::empty;
    use netcase_host::sockdiag::{SkMemInfo, Socket, TcpState};

    #[test]
    fn per_socket_drops_and_absurd_rmem() {
        let mut ev = empty();
        ev.sysctls.insert("net.core.rmem_default".into(), "2147483647".into());
        ev.sockets.push(Socket {
            proto: Proto::Udp,
            state: TcpState::Close,
            local: "127.0.0.1:5353".parse().unwrap(),
            remote: "0.0.0.0:0".parse().unwrap(),
            timer: None,
            recv_q: 2048,
            send_q: 0,
            uid: 0,
            inode: 7,
            cookie: 9,
            tcp: None,
            mem: Some(SkMemInfo { drops: 120, rcvbuf: 4608, ..SkMemInfo::default() }),
            shutdown: None,
            owners: vec![],
        });
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 2);
        let s = out.iter().find(|f| matches!(f.subject, Subject::Socket { .. })).unwrap();
        assert_eq!(s.measure("drops"), Some(120.0));
        assert_eq!(s.measure("rcvbuf_bytes"), Some(4608.0));
    }
}
