//! The capture itself: duplicated frames, capture loss, offload, timestamps and IP fragments
//! (`capture-duplicates`, `capture-loss`, `capture-offload`, `capture-time`, `ip-fragments`).
//!
//! These findings are about the evidence, not the network: they are `info` (nothing on the
//! wire is broken), and they say how the analysis corrected for the artefact. Capture loss also
//! qualifies other findings: a loss, retransmission or stall finding on a flow whose capture has
//! gaps is withheld (lowered to `info` and marked), since the gap may be the capture's.

use std::collections::HashMap;
use std::net::IpAddr;

use netcase_artefact::{ArtefactReport, DupCause};
use netcase_flow::ConnSummary;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};

/// A capture-loss estimate needs at least this many payload bytes seen in flows whose two
/// directions were both captured (below it, a single missed ACK is a large percentage).
const LOSS_MIN_BYTES: u64 = 10_000;
/// Checksums: a host whose verified checksums are wrong this often (and at least
/// [`CSUM_MIN_BAD`] of them) has offload, or its packets were corrupted.
const CSUM_BAD_SHARE: f64 = 0.5;
const CSUM_MIN_BAD: u64 = 3;
/// The largest TCP payload a 9000-byte jumbo frame carries: anything larger was never one
/// frame on an Ethernet wire.
const JUMBO_PAYLOAD: u16 = 8960;
/// How many flows the findings list by name.
const LIST: usize = 10;

/// One datagram whose fragments never completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteDatagram {
    /// Sender.
    pub src: IpAddr,
    /// Receiver.
    pub dst: IpAddr,
    /// Upper-layer protocol (17 = UDP).
    pub proto: u8,
    /// Ports, when the first fragment was seen (UDP/TCP).
    pub ports: Option<(u16, u16)>,
    /// The first fragment's frame.
    pub first_frame: u64,
    /// Bytes of the datagram held.
    pub bytes_held: u64,
    /// Total length, when the last fragment was seen.
    pub total_len: Option<u32>,
    /// Why it did not complete.
    pub reason: &'static str,
}

/// What IP reassembly saw, as the rules need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragFacts {
    /// Fragments seen.
    pub fragments: u64,
    /// Datagrams made whole.
    pub reassembled: u64,
    /// Reassembled datagrams that were UDP to or from port 53.
    pub reassembled_dns: u64,
    /// Datagrams that never completed (in all).
    pub incomplete: u64,
    /// The first of them.
    pub incomplete_list: Vec<IncompleteDatagram>,
    /// Overlapping fragments with different bytes.
    pub overlaps_inconsistent: u64,
    /// Datagrams dropped at the memory bound.
    pub dropped_at_bound: u64,
}

/// What the pipeline knows of the capture as a whole, for the artefact findings.
#[derive(Debug, Clone, Default)]
pub struct CaptureFacts {
    /// Frames in the file.
    pub frames: u64,
    /// Duplicates, time, checksums, padding.
    pub artefacts: ArtefactReport,
    /// IP fragments.
    pub frag: FragFacts,
}

#[derive(Debug, Default, Clone, Copy)]
struct Offload {
    max_seg: u32,
    mss: u32,
    flows: u32,
    first_frame: u64,
}

/// Per-connection capture facts folded as connections close.
#[derive(Debug, Default)]
pub(super) struct Agg {
    /// Streams with capture gaps: missed bytes, gaps, client, server.
    gaps: HashMap<u32, (u64, u32)>,
    missed_bytes: u64,
    missed_gaps: u64,
    /// Payload bytes in connections whose two directions were both captured.
    seen_bytes: u64,
    flows_both: u64,
    /// Connections where data flowed one way and nothing came back (a one-sided capture).
    one_sided: u64,
    one_sided_first: Option<u32>,
    offload: HashMap<IpAddr, Offload>,
    /// Directions whose gaps were too large to be capture loss.
    implausible: u64,
    /// Streams whose sequence numbers jump implausibly (corrupt or anonymised captures).
    confused: std::collections::HashSet<u32>,
}

impl Agg {
    pub(super) fn closed(&mut self, s: &ConnSummary) {
        let both = s.ab.frames > 0 && s.ba.frames > 0;
        // A direction whose "missed" bytes dwarf what it sent is sequence confusion (anonymised
        // or corrupted numbers), not capture loss: not counted.
        let plausible = |d: &netcase_flow::DirTotals| d.missed_bytes <= 10 * d.payload_bytes + (1 << 20);
        let (mut missed, mut gaps) = (0, 0);
        for d in [&s.ab, &s.ba] {
            if plausible(d) {
                missed += d.missed_bytes;
                gaps += d.missed_gaps;
            } else {
                self.implausible += 1;
                self.confused.insert(s.stream);
            }
        }
        if both {
            self.flows_both += 1;
            self.seen_bytes += s.ab.payload_bytes + s.ba.payload_bytes;
        } else if s.ab.payload_bytes + s.ba.payload_bytes > 0 {
            self.one_sided += 1;
            self.one_sided_first.get_or_insert(s.stream);
        }
        if missed > 0 {
            self.missed_bytes += missed;
            self.missed_gaps += u64::from(gaps);
            self.gaps.insert(s.stream, (missed, gaps));
        }
        // Super-segments: payloads above the MSS the receiver announced.
        let a_is_client = match (&s.syn, &s.synack) {
            (Some(h), _) => Some(h.frame == s.first_frame),
            (None, Some(h)) => Some(h.frame != s.first_frame),
            _ => None,
        };
        let client_mss = s.syn.as_ref().and_then(|h| h.mss);
        let server_mss = s.synack.as_ref().and_then(|h| h.mss);
        // What each side may send is capped by the other side's MSS; without a handshake, by
        // the largest payload any Ethernet frame carries (a 9000-byte jumbo MTU).
        let (a_cap, b_cap) = match a_is_client {
            Some(true) => (server_mss, client_mss),
            Some(false) => (client_mss, server_mss),
            None => (None, None),
        };
        for (sender, seg, cap) in [(s.a.addr, s.ab.max_segment, a_cap), (s.b.addr, s.ba.max_segment, b_cap)] {
            let cap = cap.unwrap_or(JUMBO_PAYLOAD);
            if seg > u32::from(cap) {
                let o =
                    self.offload.entry(sender).or_insert(Offload { first_frame: s.first_frame, ..Default::default() });
                o.max_seg = o.max_seg.max(seg);
                o.mss = if o.mss == 0 { u32::from(cap) } else { o.mss.min(u32::from(cap)) };
                o.flows += 1;
            }
        }
    }

    /// The capture-loss finding, and every loss finding on a flow with gaps withheld.
    pub(super) fn finish(&self, facts: Option<&CaptureFacts>, findings: &mut Vec<Finding>) {
        let mut withheld = Vec::new();
        for f in findings.iter_mut() {
            let Subject::Flow { stream: Some(st), .. } = f.subject else { continue };
            if !matches!(
                f.case,
                CaseId::RetransHolBlocking
                    | CaseId::DupackNoFastRetransmit
                    | CaseId::LingerZeroRst
                    | CaseId::PmtuBlackhole
            ) {
                continue;
            }
            let Ok(st32) = u32::try_from(st) else { continue };
            if self.confused.contains(&st32) {
                if f.severity > Severity::Info {
                    withheld.push(format!("{} (stream {st})", f.case.as_str()));
                }
                f.severity = Severity::Info;
                f.summary = format!(
                    "Withheld: this flow's sequence numbers jump by far more than it carried (a corrupt or \
                     anonymised capture), so its loss analysis cannot be trusted. {}",
                    f.summary
                );
                f.confidence = Confidence::Possible;
                continue;
            }
            let Some(&(missed, gaps)) = self.gaps.get(&st32) else { continue };
            if f.severity > Severity::Info {
                withheld.push(format!("{} (stream {st})", f.case.as_str()));
            }
            f.severity = Severity::Info;
            f.summary = format!(
                "Withheld: the capture missed {missed} bytes of this flow in {gaps} gap(s) that the receiver \
                 acknowledged, so this may be the capture's loss, not the network's. {}",
                f.summary
            );
            f.evidence.push(Evidence::measure("capture_missed_bytes", missed as f64, "bytes"));
            f.confidence = Confidence::Possible;
            f.alternatives = vec![CaseId::CaptureLoss];
        }
        if self.missed_bytes > 0 {
            let total = self.seen_bytes + self.missed_bytes;
            let pct = if total > 0 { 100.0 * self.missed_bytes as f64 / total as f64 } else { 0.0 };
            let mut worst: Vec<(u32, u64)> = self.gaps.iter().map(|(s, (b, _))| (*s, *b)).collect();
            worst.sort_by_key(|&(s, b)| (std::cmp::Reverse(b), s));
            let named: Vec<String> = worst.iter().take(LIST).map(|(s, b)| format!("stream {s}: {b} bytes")).collect();
            let estimate = if self.seen_bytes >= LOSS_MIN_BYTES {
                format!(" — {pct:.2}% of the payload")
            } else {
                String::new()
            };
            let mut f = Finding::new(
                CaseId::CaptureLoss,
                Severity::Info,
                Subject::Capture,
                format!(
                    "The capture missed {} bytes in {} gap(s) on {} TCP connection(s){estimate}: the receivers \
                     acknowledged data that is not in the file. Loss and stall findings on these connections \
                     would describe the capture, not the network{}.",
                    self.missed_bytes,
                    self.missed_gaps,
                    self.gaps.len(),
                    if withheld.is_empty() { String::new() } else { format!("; withheld: {}", withheld.join(", ")) }
                ),
            )
            .with_measure("missed_bytes", self.missed_bytes as f64, "bytes")
            .with_measure("missed_gaps", self.missed_gaps as f64, "count")
            .with_measure("flows_with_gaps", self.gaps.len() as f64, "count")
            .with_measure("flows_both_directions", self.flows_both as f64, "count");
            if self.seen_bytes >= LOSS_MIN_BYTES {
                f = f.with_measure("capture_loss_pct", pct, "%");
            }
            f = f.with(Evidence::text("flows", named.join("; ")));
            if !withheld.is_empty() {
                f = f.with(Evidence::text("withheld", withheld.join(", ")));
            }
            findings.push(f.with_fix(netcase_fix(CaseId::CaptureLoss)).with_confidence(Confidence::Certain, &[]));
        }
        if let Some(facts) = facts {
            duplicates(facts, findings);
            time(facts, findings);
            fragments(facts, findings);
        }
        self.offload(facts, findings);
    }

    fn offload(&self, facts: Option<&CaptureFacts>, out: &mut Vec<Finding>) {
        let mut hosts: Vec<(IpAddr, Offload)> = self.offload.iter().map(|(h, o)| (*h, *o)).collect();
        hosts.sort_by_key(|(h, o)| (std::cmp::Reverse(o.flows), *h));
        let mut parts = Vec::new();
        let mut f = Finding::new(CaseId::CaptureOffload, Severity::Info, Subject::Capture, String::new());
        if !hosts.is_empty() {
            let named: Vec<String> = hosts
                .iter()
                .take(LIST)
                .map(|(h, o)| format!("{h} up to {} bytes against MSS {} ({} conn.)", o.max_seg, o.mss, o.flows))
                .collect();
            parts.push(format!(
                "{} host(s) sent TCP segments larger than the MSS ({}{}): the capture was taken above a NIC that \
                 segments (TSO/GSO on the sender) or merges (GRO on the receiver)",
                hosts.len(),
                named.join("; "),
                if hosts.len() > LIST { "; …" } else { "" }
            ));
            let max = hosts.iter().map(|(_, o)| o.max_seg).max().unwrap_or(0);
            f = f
                .with_measure("hosts_with_large_segments", hosts.len() as f64, "count")
                .with_measure("max_segment", f64::from(max), "bytes")
                .with(Evidence::frames(
                    "first_flow_frames",
                    hosts.iter().take(LIST).map(|(_, o)| o.first_frame).collect(),
                ));
        }
        if let Some(facts) = facts {
            let cs = &facts.artefacts.checksums;
            let bad_hosts: Vec<_> = cs
                .hosts
                .iter()
                .filter(|h| h.bad >= CSUM_MIN_BAD && h.bad as f64 >= CSUM_BAD_SHARE * h.checked as f64)
                .collect();
            if !bad_hosts.is_empty() {
                let in_bad: u64 = bad_hosts.iter().map(|h| h.bad).sum();
                let checked_bad_hosts: u64 = bad_hosts.iter().map(|h| h.checked).sum();
                let others = cs.checked - checked_bad_hosts;
                let others_bad = cs.bad - in_bad;
                let named: Vec<String> =
                    bad_hosts.iter().take(LIST).map(|h| format!("{} {}/{}", h.host, h.bad, h.checked)).collect();
                let why = if bad_hosts.len() > 1 {
                    "several hosts' packets are wrong: offload on each host where the capture was taken (a \
                     merged capture), or corruption on the way"
                } else if others_bad as f64 <= 0.05 * others as f64 {
                    "the other hosts' are right, so these hosts' NICs compute the checksums after the capture \
                     point (checksum offload on the capturing host): not errors"
                } else {
                    "other hosts' are often wrong too: offload on several capturing hosts, or corruption"
                };
                parts.push(format!(
                    "TCP/UDP checksums of {} host(s) are wrong on their own packets ({}; verified on a sample), {why}",
                    bad_hosts.len(),
                    named.join(", ")
                ));
                f = f
                    .with_measure("hosts_with_bad_checksums", bad_hosts.len() as f64, "count")
                    .with_measure("bad_checksums", in_bad as f64, "count")
                    .with_measure("checksums_checked", cs.checked as f64, "count")
                    .with(Evidence::frames(
                        "first_bad_checksums",
                        bad_hosts.iter().take(LIST).map(|h| h.first_bad).collect(),
                    ));
            }
        }
        if parts.is_empty() {
            return;
        }
        f.summary = format!("{}. Neither is an error on the wire.", parts.join(". "));
        out.push(f.with_fix(netcase_fix(CaseId::CaptureOffload)).with_confidence(Confidence::Certain, &[]));
    }
}

fn netcase_fix(case: CaseId) -> String {
    crate::catalogue::doc(case).fix.to_owned()
}

fn duplicates(facts: &CaptureFacts, out: &mut Vec<Finding>) {
    let d = &facts.artefacts.dups;
    if d.copies == 0 {
        return;
    }
    let share = 100.0 * d.copies as f64 / facts.frames.max(1) as f64;
    let cause = d.main_cause().unwrap_or(DupCause::SameInterface);
    let causes: Vec<String> =
        DupCause::ALL.iter().filter(|c| d.count(**c) > 0).map(|c| format!("{} {}", d.count(*c), c.id())).collect();
    let examples: Vec<u64> = d.examples.iter().map(|e| e.0).collect();
    let originals: Vec<u64> = d.examples.iter().map(|e| e.1).collect();
    let mut f = Finding::new(
        CaseId::CaptureDuplicates,
        Severity::Info,
        Subject::Capture,
        format!(
            "{} of {} frames ({share:.1}%) are copies of an earlier frame — {}; {} proven by the IPv4 ID. The \
             analysis used the first copy of each (frame numbers are the file's); read naively they would be \
             {} TCP retransmissions or duplicate ACKs that never happened.",
            d.copies,
            facts.frames,
            cause.describe(),
            d.proven,
            d.tcp_copies
        ),
    )
    .with_measure("copies", d.copies as f64, "count")
    .with_measure("share_pct", share, "%")
    .with_measure("proven_by_ip_id", d.proven as f64, "count")
    .with_measure("tcp_copies", d.tcp_copies as f64, "count")
    .with_measure("max_delay_ms", d.max_delay_ns as f64 / 1e6, "ms")
    .with(Evidence::text("cause", cause.id()))
    .with(Evidence::text("by_cause", causes.join(", ")))
    .with(Evidence::frames("copies", examples))
    .with(Evidence::frames("originals", originals));
    if d.unproven_kept > 0 {
        f = f.with_measure("lookalikes_kept", d.unproven_kept as f64, "count");
    }
    out.push(f.with_fix(netcase_fix(CaseId::CaptureDuplicates)).with_confidence(Confidence::Certain, &[]));
}

fn time(facts: &CaptureFacts, out: &mut Vec<Finding>) {
    let t = &facts.artefacts.time;
    if !t.distorted() {
        return;
    }
    let file_span = match (t.first_ns, t.last_ns) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => 0.0,
    };
    let frames: Vec<u64> = t.examples.iter().map(|e| e.0).collect();
    let steps: Vec<String> = t
        .examples
        .iter()
        .map(|(fr, d)| format!("frame {fr}: {}{:.3} s", if *d < 0 { "" } else { "+" }, *d as f64 / 1e9))
        .collect();
    out.push(
        Finding::new(
            CaseId::CaptureTime,
            Severity::Info,
            Subject::Capture,
            format!(
                "Timestamps step backwards {} time(s) by more than 1 ms (largest {:.3} s) and leave gaps of an \
                 hour or more {} time(s) ({}): {}. Without the steps the capture covers {:.3} s (last − first \
                 frame says {file_span:.3} s); durations and rates across a step are not meaningful.",
                t.backwards_notable,
                t.max_backwards_ns as f64 / 1e9,
                t.jumps,
                steps.join(", "),
                if t.backwards_notable > 0 {
                    "a merged file, several interfaces or a clock step"
                } else {
                    "a merged file, a clock step, or a capture left running while nothing was sent"
                },
                t.span_ns as f64 / 1e9
            ),
        )
        .with_measure("backwards_steps", t.backwards_notable as f64, "count")
        .with_measure("backwards_any", t.backwards as f64, "count")
        .with_measure("max_backwards_s", t.max_backwards_ns as f64 / 1e9, "s")
        .with_measure("forward_jumps", t.jumps as f64, "count")
        .with_measure("active_span_s", t.span_ns as f64 / 1e9, "s")
        .with_measure("file_span_s", file_span, "s")
        .with(Evidence::frames("steps", frames))
        .with_fix(netcase_fix(CaseId::CaptureTime))
        .with_confidence(Confidence::Certain, &[]),
    );
}

fn fragments(facts: &CaptureFacts, out: &mut Vec<Finding>) {
    let fr = &facts.frag;
    if fr.fragments == 0 {
        return;
    }
    let mut s = format!(
        "{} IP fragments made {} whole datagram(s) ({} of them DNS), analysed whole.",
        fr.fragments, fr.reassembled, fr.reassembled_dns
    );
    if fr.incomplete > 0 {
        let who: Vec<String> = fr
            .incomplete_list
            .iter()
            .take(LIST)
            .map(|d| {
                let ports = d.ports.map_or(String::new(), |(a, b)| format!(" ports {a}->{b}"));
                format!("{} -> {} proto {}{ports} (frame {}, {})", d.src, d.dst, d.proto, d.first_frame, d.reason)
            })
            .collect();
        s.push_str(&format!(
            " {} datagram(s) never completed: {} — a firewall or NAT that drops fragments loses exactly these \
             (large DNS answers).",
            fr.incomplete,
            who.join("; ")
        ));
    }
    if fr.overlaps_inconsistent > 0 {
        s.push_str(&format!(" {} overlapping fragment(s) carried different bytes.", fr.overlaps_inconsistent));
    }
    let mut f = Finding::new(CaseId::IpFragments, Severity::Info, Subject::Capture, s)
        .with_measure("fragments", fr.fragments as f64, "count")
        .with_measure("reassembled", fr.reassembled as f64, "count")
        .with_measure("reassembled_dns", fr.reassembled_dns as f64, "count")
        .with_measure("incomplete", fr.incomplete as f64, "count")
        .with_measure("overlaps_inconsistent", fr.overlaps_inconsistent as f64, "count")
        .with_measure("dropped_at_bound", fr.dropped_at_bound as f64, "count");
    if !fr.incomplete_list.is_empty() {
        f = f.with(Evidence::frames(
            "incomplete_first_frames",
            fr.incomplete_list.iter().map(|d| d.first_frame).collect(),
        ));
    }
    out.push(f.with_fix(netcase_fix(CaseId::IpFragments)).with_confidence(Confidence::Certain, &[]));
}
