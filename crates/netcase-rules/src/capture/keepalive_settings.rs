//! keepalive-settings: TCP keep-alive probes and their period, and connections left idle
//! longer than common middlebox idle timeouts with no probes at all (the middlebox forgets them
//! and the next packet is dropped or reset).

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{FIN, RST, SYN};

use super::util::{pl, round, secs, FlowGroup, FrameSample, Samples};
use super::RuleFrame;
use super::{Common, Role};

/// A keep-alive probe follows at least this much silence (TCP_KEEPIDLE and TCP_KEEPINTVL are
/// whole seconds, ≥ 1); Wireshark's keep-alive flag on segments inside busy traffic (repeats,
/// window probes) is something else.
const MIN_PROBE_IDLE_NS: i64 = 1_000_000_000;
/// The shortest common middlebox idle timeout: Azure's load balancer drops idle flows after
/// 4 min (AWS NLB 350 s, GCP 10 min, many NATs 5 min). Idle longer with no probes is at risk;
/// probes spaced wider than this do not keep such a flow alive.
const MIDDLEBOX_IDLE_NS: i64 = 240_000_000_000;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    probes: [u32; 2],
    /// Silence before each probe (the keep-alive period in use): sum, count, max, first.
    period_sum: i64,
    period_n: u32,
    period_max: i64,
    first_probe: u64,
    /// Longest silence between other frames while open.
    max_idle: i64,
    max_idle_frame: u64,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        let gap = f.ts_ns - c.last_ts;
        if f.flags.intersects(AF::KEEP_ALIVE) && gap >= MIN_PROBE_IDLE_NS && c.win[f.side.other().index()] > 0 {
            self.probes[f.side.index()] += 1;
            self.period_sum += gap;
            self.period_n += 1;
            self.period_max = self.period_max.max(gap);
            if self.first_probe == 0 {
                self.first_probe = f.frame;
            }
            return;
        }
        if f.tcp_flags & (SYN | FIN | RST) == 0 && !c.closing() && gap > self.max_idle {
            self.max_idle = gap;
            self.max_idle_frame = f.frame;
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    probing: FlowGroup,
    probes: [u64; 2],
    period_s: Samples,
    max_period: i64,
    idle: FlowGroup,
    idle_s: Samples,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    /// Idle connections without probes, per server port.
    by_server: BTreeMap<Endpoint, Entry>,
    /// Probing connections, per prober host (the setting belongs to the host that probes).
    by_prober: BTreeMap<std::net::IpAddr, Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        let probes = st.probes[0] + st.probes[1];
        let idle = probes == 0 && st.max_idle >= MIDDLEBOX_IDLE_NS;
        if probes == 0 && !idle {
            return;
        }
        if probes > 0 {
            let prober = if st.probes[c.client.index()] > 0 { Role::Client } else { Role::Server };
            let e = self.by_prober.entry(c.endpoint(prober).addr).or_default();
            e.probing.add(c.stream, c.client_ep(), c.server());
            for role in [Role::Client, Role::Server] {
                e.probes[role as usize] += u64::from(st.probes[c.side(role).index()]);
            }
            e.period_s.push(secs(st.period_sum / i64::from(st.period_n.max(1))));
            e.max_period = e.max_period.max(st.period_max);
            e.frames.push(st.first_probe);
        } else {
            let e = self.by_server.entry(c.server()).or_default();
            e.idle.add(c.stream, c.client_ep(), c.server());
            e.idle_s.push(secs(st.max_idle));
            e.frames.push(st.max_idle_frame);
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for (host, e) in self.by_prober {
            if let Some(p) = e.period_s.median() {
                let slow = e.max_period >= MIDDLEBOX_IDLE_NS;
                let who = match (e.probes[0] > 0, e.probes[1] > 0) {
                    (true, true) => "as client and as server",
                    (true, false) => "as client",
                    _ => "as server",
                };
                let subject = if e.probing.flows == 1 {
                    e.probing.subject("tcp", Endpoint { addr: host, port: 0 })
                } else {
                    netcase_model::Subject::Peer { ip: host }
                };
                let mut f = Finding::new(
                    CaseId::KeepaliveSettings,
                    if slow { Severity::Warning } else { Severity::Info },
                    subject,
                    format!(
                        "{host} sent {} ({who}) on {} after {p:.0} s of silence{}.",
                        pl(e.probes[0] + e.probes[1], "TCP keep-alive probe", "TCP keep-alive probes"),
                        pl(e.probing.flows, "idle connection", "idle connections"),
                        if slow {
                            " — longer than the idle timeout of common middleboxes (4–5 min), which drop the flow first"
                        } else {
                            ", short enough for common middlebox idle timeouts"
                        }
                    ),
                )
                .with_measure("interval_s", round(p, 2), "s")
                .with_measure("max_interval_s", round(secs(e.max_period), 2), "s")
                .with_measure("probes", (e.probes[0] + e.probes[1]) as f64, "count")
                .with_measure("flows", e.probing.flows as f64, "count")
                .with(Evidence::text("prober", who));
                if let Some(ev) = e.frames.evidence("frames") {
                    f = f.with(ev);
                }
                out.push(f.with_fix(if slow {
                    "Lower the keep-alive period below the middlebox idle timeout: TCP_KEEPIDLE (Go SetKeepAlivePeriod) \
                     or net.ipv4.tcp_keepalive_time, e.g. 60 s."
                } else {
                    "Nothing to change: this period keeps idle connections alive through common middleboxes."
                }));
            }
        }
        for (server, e) in self.by_server {
            if let (Some(i), Some(max)) = (e.idle_s.median(), e.idle_s.max()) {
                // A risk, not a failure seen: the connections survived their idle time in this
                // capture (and an idle gap may hold data the capture missed).
                let mut f = Finding::new(
                    CaseId::KeepaliveSettings,
                    Severity::Info,
                    e.idle.subject("tcp", server),
                    format!(
                        "{} with {server} stayed idle for {i:.0} s (longest {max:.0} s) without any TCP keep-alive: \
                         longer than common middlebox idle timeouts (4–5 min), which then drop the connection silently.",
                        pl(e.idle.flows, "connection", "connections"),
                    ),
                )
                .with_measure("idle_s", round(i, 1), "s")
                .with_measure("max_idle_s", round(max, 1), "s")
                .with_measure("idle_flows", e.idle.flows as f64, "count")
                .with_measure("probes", 0.0, "count");
                if let Some(ev) = e.frames.evidence("frames") {
                    f = f.with(ev);
                }
                out.push(f.with_fix(
                    "Enable TCP keep-alive on these sockets (SO_KEEPALIVE; Go SetKeepAlive/SetKeepAlivePeriod) with a \
                     period below the middlebox timeout, e.g. TCP_KEEPIDLE 60 s and TCP_KEEPINTVL 10 s.",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::{CaseId, Severity};

    #[test]
    fn probes_and_their_period() {
        let mut s = Script::new();
        let mut c = s.conn(53000, 5432);
        c.handshake(0.0);
        c.client_data(0.01, 50);
        c.server_data(0.02, 50);
        c.client_ack(0.0201);
        for k in 1..=4 {
            let t = 0.0201 + 30.0 * f64::from(k);
            c.client_keepalive(t);
            c.server_ack(t + 0.0002);
        }
        let f = one(&s.run(), CaseId::KeepaliveSettings);
        assert!((f.measure("interval_s").unwrap() - 30.0).abs() < 0.01);
        assert_eq!(f.measure("probes"), Some(4.0));
        assert_eq!(f.severity, Severity::Info);
    }

    #[test]
    fn long_idle_without_probes() {
        let mut s = Script::new();
        let mut c = s.conn(53000, 5432);
        c.handshake(0.0);
        c.client_data(0.01, 50);
        c.server_data(0.02, 50);
        c.client_data(400.0, 50);
        c.server_data(400.01, 50);
        let f = one(&s.run(), CaseId::KeepaliveSettings);
        assert!((f.measure("idle_s").unwrap() - 400.0).abs() < 0.1);
    }

    #[test]
    fn busy_connection_is_healthy() {
        let mut s = Script::new();
        let mut c = s.conn(53000, 5432);
        c.handshake(0.0);
        for k in 0..100 {
            c.client_data(0.01 + f64::from(k), 50);
            c.server_data(0.02 + f64::from(k), 50);
        }
        none(&s.run(), CaseId::KeepaliveSettings);
    }
}
