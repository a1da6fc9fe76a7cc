//! netcase-lab: reproductions of the catalogue's cases in network namespaces.
//!
//! A lab builds a small topology of namespaces joined by veth pairs (addresses in
//! 10.200.0.0/16–10.249.0.0/16 that exist only inside them), runs the servers and clients the case needs
//! on threads that entered those namespaces, captures the traffic with an AF_PACKET socket,
//! checks its own ground truth (kernel counters, socket states, the frames), asks netcase's
//! diagnosis (through the [`Diagnose`] trait) about the capture and the namespaces, and
//! compares what netcase inferred with what the lab set. Most labs share one shape (a client
//! and a server namespace, a listener, server and client threads, the capture at one end),
//! which [`topo`] builds.
//!
//! Safety rules every lab follows: it acts only in namespaces it created (the one exception,
//! conntrack-table-full, needs [`RunOptions::allow_host_changes`]); it sends traffic only to
//! addresses inside them; every loop is bounded in count and time; what it made is removed
//! on every exit path ([`cleanup`]).

pub mod apps;
pub mod capture;
pub mod cleanup;
pub mod diagnose;
pub mod labs;
pub mod ns;
pub mod pkt;
pub mod relay;
pub mod topo;

pub use diagnose::{DiagFinding, Diagnose, ExeDiagnose, NoDiagnosis};

use anyhow::{bail, Context, Result};
use netcase_model::CaseId;
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A lab may run at most this long (setup, traffic, diagnosis).
pub const LAB_LIMIT: Duration = Duration::from_secs(30);

/// One reproducible case.
pub struct LabSpec {
    /// The case id (also the lab's name).
    pub case: CaseId,
    /// One line: topology, fault and control.
    pub summary: &'static str,
    /// Whether the lab changes a host-wide value (needs `--allow-host-changes`).
    pub host_changes: bool,
    /// What the lab cannot reproduce on this kernel, if anything.
    pub note: Option<&'static str>,
    /// The scenario.
    pub run: fn(&mut Ctx<'_>) -> Result<()>,
}

impl LabSpec {
    /// The lab id (the case id).
    pub fn id(&self) -> &'static str {
        self.case.as_str()
    }
}

/// Finds a lab by id.
pub fn find(id: &str) -> Option<&'static LabSpec> {
    labs::ALL.iter().find(|l| l.id() == id)
}

/// The labs, in catalogue order.
pub fn catalogue() -> &'static [LabSpec] {
    labs::ALL
}

/// How to run a lab.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run the healthy twin: same topology and traffic, no fault.
    pub control: bool,
    /// Leave the namespaces up afterwards.
    pub keep: bool,
    /// Write the capture here (otherwise it goes to a temporary file, removed afterwards).
    pub capture: Option<PathBuf>,
    /// Allow the labs that must change a host-wide value (restored on every exit path).
    pub allow_host_changes: bool,
    /// The netcase executable, for labs that run a helper process inside a namespace
    /// (`netcase lab __resolve`). Labs that need it fail without it.
    pub exe: Option<PathBuf>,
}

/// Where a finding must come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", content = "netns", rename_all = "lowercase")]
pub enum Src {
    /// The lab's capture (`netcase pcap`).
    Capture,
    /// A namespace (`netcase check --netns NAME`).
    Netns(String),
}

impl std::fmt::Display for Src {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Src::Capture => f.write_str("capture"),
            Src::Netns(n) => write!(f, "netns {n}"),
        }
    }
}

/// How close an inferred number must be to the number the lab set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Tol {
    /// Within ± this absolute amount.
    Abs(f64),
    /// Within ± this fraction of the set value.
    Rel(f64),
    /// At least the set value.
    AtLeast,
}

impl Tol {
    fn holds(self, set: f64, got: f64) -> bool {
        match self {
            Tol::Abs(d) => (got - set).abs() <= d + 1e-9,
            Tol::Rel(r) => (got - set).abs() <= r * set.abs() + 1e-9,
            Tol::AtLeast => got + 1e-9 >= set,
        }
    }
}

/// A number the finding must carry.
#[derive(Debug, Clone, Serialize)]
pub struct Expect {
    /// Which source's finding.
    pub src: Src,
    /// The measure key (or counter/sysctl name) in the finding's evidence.
    pub key: String,
    /// What the lab set (or measured itself).
    pub set: f64,
    /// The unit, for printing.
    pub unit: String,
    /// The tolerance.
    pub tol: Tol,
}

/// An address (or other text) the finding's subject must name.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectSubject {
    /// Which source's finding.
    pub src: Src,
    /// What the subject must name, e.g. an IP address: matched as a whole JSON string value
    /// of the subject (`10.200.3.1` does not match `10.200.3.11`).
    pub names: String,
}

impl ExpectSubject {
    fn holds(&self, f: &DiagFinding) -> bool {
        f.subject.contains(&format!("\"{}\"", self.names))
    }
}

/// A ground-truth check of the lab (did the fault happen / did the control stay healthy).
#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    /// What was checked, with the numbers.
    pub what: String,
    /// Whether it holds.
    pub ok: bool,
}

/// Findings one source produced (or why it could not).
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The source.
    pub source: Src,
    /// The error, when the diagnosis could not run.
    pub error: Option<String>,
    /// The findings.
    pub findings: Vec<DiagFinding>,
}

/// The verdict: whether netcase named the case the lab made (or, for a control, stayed quiet).
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The verdict holds.
    pub holds: bool,
    /// The comparison, line by line.
    pub lines: Vec<String>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The lab id.
    pub lab: String,
    /// Control run.
    pub control: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The namespaces made.
    pub namespaces: Vec<String>,
    /// The topology, one line per link.
    pub topology: Vec<String>,
    /// The capture file written (when `--capture`).
    pub capture_file: Option<PathBuf>,
    /// Frames captured.
    pub frames: usize,
    /// Ground truth checks.
    pub facts: Vec<Fact>,
    /// Whether every ground-truth check held (the fault happened, or the control stayed healthy).
    pub reproduced: bool,
    /// What netcase's diagnosis said.
    pub diagnosis: Vec<Diagnosis>,
    /// Expected numbers.
    pub expects: Vec<Expect>,
    /// Expected subjects.
    pub subjects: Vec<ExpectSubject>,
    /// The verdict.
    pub verdict: Verdict,
    /// Namespaces were kept.
    pub kept: bool,
    /// Notes (kernel limits, how to enter kept namespaces).
    pub notes: Vec<String>,
}

impl Report {
    /// Renders the report for a terminal.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let mode = if self.control { "control (healthy twin)" } else { "fault" };
        let _ = writeln!(s, "lab {} — {mode}, {:.1} s", self.lab, self.seconds);
        for t in &self.topology {
            let _ = writeln!(s, "  topology: {t}");
        }
        let _ = writeln!(s, "  ground truth ({}):", if self.reproduced { "as intended" } else { "NOT as intended" });
        for f in &self.facts {
            let _ = writeln!(s, "    {} {}", if f.ok { "ok " } else { "BAD" }, f.what);
        }
        for d in &self.diagnosis {
            match &d.error {
                Some(e) => {
                    let _ = writeln!(s, "  diagnosis ({}): unavailable: {e}", d.source);
                }
                None if d.findings.is_empty() => {
                    let _ = writeln!(s, "  diagnosis ({}): no finding", d.source);
                }
                None => {
                    let _ = writeln!(s, "  diagnosis ({}):", d.source);
                    for f in &d.findings {
                        let _ = writeln!(s, "    [{}] {}: {}", f.severity, f.case, f.summary);
                    }
                }
            }
        }
        if let Some(c) = &self.capture_file {
            let _ = writeln!(s, "  capture: {} ({} frames)", c.display(), self.frames);
        }
        let _ = writeln!(s, "  verdict: {}", if self.verdict.holds { "holds" } else { "does NOT hold" });
        for l in &self.verdict.lines {
            let _ = writeln!(s, "    {l}");
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

struct RunGuard(u64);

impl Drop for RunGuard {
    fn drop(&mut self) {
        cleanup::cleanup_run(self.0);
    }
}

/// Two namespaces joined by one veth pair (`eth0` on both sides).
#[derive(Debug, Clone)]
pub struct Pair {
    /// The client namespace.
    pub c: String,
    /// The server namespace.
    pub s: String,
    /// The client's address.
    pub c_ip: Ipv4Addr,
    /// The server's address.
    pub s_ip: Ipv4Addr,
}

/// What a scenario works with: namespaces, capture, facts, expectations, diagnosis.
pub struct Ctx<'a> {
    /// This is the control run.
    pub control: bool,
    /// When the lab must be done.
    pub deadline: Instant,
    /// The options the run was started with.
    pub opts: RunOptions,
    spec: &'static LabSpec,
    run_id: u64,
    subnet: u8,
    diag: &'a dyn Diagnose,
    namespaces: Vec<String>,
    topology: Vec<String>,
    capture: Option<capture::Capture>,
    frames: Option<Vec<capture::Frame>>,
    facts: Vec<Fact>,
    expects: Vec<Expect>,
    subjects: Vec<ExpectSubject>,
    required: Vec<Src>,
    diagnosis: Vec<Diagnosis>,
    notes: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// The lab id.
    pub fn lab(&self) -> &'static str {
        self.spec.id()
    }

    /// An address in this run's private /24: 10.B.S.host, with B in 200..=249 (from the pid
    /// and run number, so concurrent runs of one lab differ) and S from the lab and mode.
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        let b = 200 + ((u64::from(std::process::id()) + self.run_id) % 50) as u8;
        Ipv4Addr::new(10, b, self.subnet, host)
    }

    /// The run's namespace name for `role` (`ncl-LAB-PID-SEQ-ROLE`).
    pub fn ns_name(&self, role: &str) -> String {
        format!("{}{}-{}-{}-{role}", cleanup::PREFIX, self.lab(), std::process::id(), self.run_id)
    }

    /// Time left before the lab's deadline.
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Creates namespace `role` with loopback up and IPv6 off (no router solicitations in the
    /// capture).
    pub fn netns(&mut self, role: &str) -> Result<String> {
        let name = self.ns_name(role);
        ns::ip(&["netns", "add", &name])?;
        cleanup::add_ns(self.run_id, &name);
        self.namespaces.push(name.clone());
        ns::ip(&["-n", &name, "link", "set", "lo", "up"])?;
        ns::sysctl(&name, "net.ipv6.conf.all.disable_ipv6", "1")?;
        ns::sysctl(&name, "net.ipv6.conf.default.disable_ipv6", "1")?;
        Ok(name)
    }

    /// Joins `a_if` in `a` and `b_if` in `b` with a veth pair, brings both up and turns
    /// segmentation and checksum offloads off (wire-sized frames).
    pub fn link(&mut self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<()> {
        ns::ip(&["-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b])?;
        for (n, i) in [(a, a_if), (b, b_if)] {
            ns::exec(n, "ethtool", &["-K", i, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"])?;
            ns::ip(&["-n", n, "link", "set", i, "up"])?;
        }
        self.topology.push(format!("{a}:{a_if} <-> {b}:{b_if}"));
        Ok(())
    }

    /// Adds `ip`/24 to `iface` in `ns`.
    pub fn addr(&mut self, ns: &str, iface: &str, ip: Ipv4Addr) -> Result<()> {
        self.addr_len(ns, iface, ip, 24)
    }

    /// Adds `ip`/`len` to `iface` in `ns` (a lab that needs two subnets splits its /24).
    pub fn addr_len(&mut self, ns: &str, iface: &str, ip: Ipv4Addr, len: u8) -> Result<()> {
        ns::ip(&["-n", ns, "addr", "add", &format!("{ip}/{len}"), "dev", iface])?;
        self.topology.push(format!("{ns}:{iface} {ip}/{len}"));
        Ok(())
    }

    /// Adds a line to the report's topology (a NAT rule, a relay, a route).
    pub fn describe(&mut self, line: impl Into<String>) {
        self.topology.push(line.into());
    }

    /// Client namespace `c` (.1) and server namespace `s` (.2) on one veth pair.
    pub fn pair(&mut self) -> Result<Pair> {
        let c = self.netns("c")?;
        let s = self.netns("s")?;
        self.link(&c, "eth0", &s, "eth0")?;
        let (c_ip, s_ip) = (self.ip(1), self.ip(2));
        self.addr(&c, "eth0", c_ip)?;
        self.addr(&s, "eth0", s_ip)?;
        Ok(Pair { c, s, c_ip, s_ip })
    }

    /// Client `c` (.1) and server `s` (.2) with a middle namespace `m` between them running
    /// the userspace delay/loss relay.
    pub fn relayed_pair(&mut self, cfg: relay::RelayCfg) -> Result<(Pair, relay::Relay)> {
        let c = self.netns("c")?;
        let m = self.netns("m")?;
        let s = self.netns("s")?;
        self.link(&c, "eth0", &m, "c0")?;
        self.link(&m, "s0", &s, "eth0")?;
        let (c_ip, s_ip) = (self.ip(1), self.ip(2));
        self.addr(&c, "eth0", c_ip)?;
        self.addr(&s, "eth0", s_ip)?;
        self.topology.push(format!(
            "relay in {m}: c0 <-> s0, one-way delay {} ms, drops {:?}",
            cfg.delay.as_millis(),
            cfg.drops
        ));
        let r = relay::Relay::start(&m, "c0", "s0", cfg)?;
        Ok((Pair { c, s, c_ip, s_ip }, r))
    }

    /// Starts the lab's capture in `ns` on `iface` (all interfaces when `None`).
    pub fn capture(&mut self, ns: &str, iface: Option<&str>) -> Result<()> {
        self.capture = Some(capture::Capture::start(ns, iface)?);
        Ok(())
    }

    /// Stops the capture (after a 0.3 s grace for the last packets) and returns the frames.
    pub fn stop_capture(&mut self) -> Result<&[capture::Frame]> {
        if let Some(c) = self.capture.take() {
            self.frames = Some(c.stop(Duration::from_millis(300))?);
        }
        Ok(self.frames.as_deref().unwrap_or_default())
    }

    /// Records a ground-truth check.
    pub fn fact(&mut self, what: impl Into<String>, ok: bool) {
        self.facts.push(Fact { what: what.into(), ok });
    }

    /// Records a check that holds in the fault run when `fault` is true and in the control run
    /// when `fault` is false (a fact about whether the fault shows).
    pub fn fault_shows(&mut self, what: impl Into<String>, fault: bool) {
        let ok = fault != self.control;
        self.fact(what, ok);
    }

    /// Requires the case to be found in `src` (fault run) or absent from it (control).
    pub fn require(&mut self, src: Src) {
        if !self.required.contains(&src) {
            self.required.push(src);
        }
    }

    /// Requires the finding from `src` to carry `key` ≈ `set`.
    pub fn expect(&mut self, src: Src, key: &str, set: f64, unit: &str, tol: Tol) {
        self.require(src.clone());
        self.expects.push(Expect { src, key: key.to_owned(), set, unit: unit.to_owned(), tol });
    }

    /// Requires the finding from `src` to be about `names` (e.g. the IP address it must name
    /// as its subject).
    pub fn expect_subject(&mut self, src: Src, names: impl Into<String>) {
        self.require(src.clone());
        self.subjects.push(ExpectSubject { src, names: names.into() });
    }

    /// Runs the namespace diagnosis on `ns` now (while its sockets are in the state the case
    /// needs) and keeps the result for the verdict.
    pub fn snapshot(&mut self, ns: &str) {
        let d = match self.diag.netns(ns) {
            Ok(findings) => Diagnosis { source: Src::Netns(ns.to_owned()), error: None, findings },
            Err(e) => Diagnosis { source: Src::Netns(ns.to_owned()), error: Some(format!("{e:#}")), findings: vec![] },
        };
        self.diagnosis.retain(|x| x.source != d.source);
        self.diagnosis.push(d);
    }

    /// Adds a note to the report.
    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    /// Records a directory to remove at cleanup (`/etc/netns/NAME`).
    pub fn own_dir(&mut self, dir: &std::path::Path) {
        cleanup::add_dir(self.run_id, dir);
    }

    /// Records a child process to kill at cleanup.
    pub fn own_pid(&mut self, pid: u32) {
        cleanup::add_pid(self.run_id, pid);
    }

    /// Forgets a child process that has exited.
    pub fn disown_pid(&mut self, pid: u32) {
        cleanup::remove_pid(self.run_id, pid);
    }

    /// Changes a host-wide value (only with `--allow-host-changes`); restored on every exit
    /// path. Returns the old value.
    pub fn change_host_value(&mut self, path: &std::path::Path, value: &str) -> Result<String> {
        if !self.opts.allow_host_changes {
            bail!("lab {} must change {} and needs --allow-host-changes", self.lab(), path.display());
        }
        let old = cleanup::change_host_value(self.run_id, path, value)?;
        self.note(format!("changed host value {} from {old} to {value} (restored at exit)", path.display()));
        Ok(old)
    }
}

fn verdict(
    control: bool,
    case: CaseId,
    reproduced: bool,
    required: &[Src],
    expects: &[Expect],
    subjects: &[ExpectSubject],
    diagnosis: &[Diagnosis],
) -> Verdict {
    let mut lines = Vec::new();
    let mut holds = reproduced;
    if !reproduced {
        lines.push(if control {
            "the control did not stay healthy (see ground truth)".to_owned()
        } else {
            "the fault did not happen as intended (see ground truth)".to_owned()
        });
    }
    let id = case.as_str();
    for src in required {
        let Some(d) = diagnosis.iter().find(|d| &d.source == src) else {
            holds = false;
            lines.push(format!("{src}: not diagnosed"));
            continue;
        };
        if let Some(e) = &d.error {
            holds = false;
            lines.push(format!("{src}: diagnosis unavailable ({e})"));
            continue;
        }
        let found: Vec<&DiagFinding> = d.findings.iter().filter(|f| f.case == id).collect();
        if control {
            if found.is_empty() {
                lines.push(format!("{src}: no {id} finding, as expected"));
            } else {
                holds = false;
                lines.push(format!("{src}: {id} reported on the healthy twin: {}", found[0].summary));
            }
            continue;
        }
        if found.is_empty() {
            holds = false;
            lines.push(format!("{src}: {id} not found"));
            continue;
        }
        // Pick the finding that matches most of the expected numbers.
        let mine: Vec<&Expect> = expects.iter().filter(|e| &e.src == src).collect();
        let names: Vec<&ExpectSubject> = subjects.iter().filter(|e| &e.src == src).collect();
        let score = |f: &DiagFinding| {
            mine.iter().filter(|e| f.value(&e.key).is_some_and(|v| e.tol.holds(e.set, v))).count()
                + names.iter().filter(|e| e.holds(f)).count()
        };
        let best = found.iter().copied().max_by_key(|f| score(f)).unwrap_or(found[0]);
        lines.push(format!("{src}: {id} found ({})", best.summary));
        for e in names {
            if e.holds(best) {
                lines.push(format!("  ok  subject names {}: {}", e.names, best.subject));
            } else {
                holds = false;
                lines.push(format!("  BAD subject should name {}: {}", e.names, best.subject));
            }
        }
        for e in mine {
            let tol = match e.tol {
                Tol::Abs(d) => format!("± {d}"),
                Tol::Rel(r) => format!("± {:.0} %", r * 100.0),
                Tol::AtLeast => "at least".to_owned(),
            };
            match best.value(&e.key) {
                Some(v) if e.tol.holds(e.set, v) => {
                    lines.push(format!("  ok  {}: {} {} set, {} inferred ({tol})", e.key, num(e.set), e.unit, num(v)))
                }
                Some(v) => {
                    holds = false;
                    lines.push(format!("  BAD {}: {} {} set, {} inferred ({tol})", e.key, num(e.set), e.unit, num(v)));
                }
                None => {
                    holds = false;
                    lines.push(format!("  BAD {}: {} {} set, not reported", e.key, num(e.set), e.unit));
                }
            }
        }
    }
    Verdict { holds, lines }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Runs lab `id`: builds it, makes the failure (or its healthy twin), diagnoses, compares.
/// Errors (not root, unknown id, a host-changing lab without permission, setup failure) are
/// returned as `Err`; a verdict that does not hold is a `Report` with `verdict.holds == false`.
pub fn run(id: &str, opts: &RunOptions, diag: &dyn Diagnose) -> Result<Report> {
    let Some(spec) = find(id) else {
        let near: Vec<&str> = CaseId::closest(id, 3).iter().map(|c| c.as_str()).collect();
        bail!("no lab '{id}' (did you mean {}?); `netcase lab list` shows them", near.join(", "));
    };
    if !is_root() {
        bail!("labs create network namespaces and need root (run with sudo)");
    }
    if spec.host_changes && !opts.control && !opts.allow_host_changes {
        bail!("{}", host_change_refusal(spec));
    }
    cleanup::install_signal_handlers();
    cleanup::cleanup_leftovers();
    let run_id = SEQ.fetch_add(1, Ordering::Relaxed);
    let guard = RunGuard(run_id);
    let watchdog = cleanup::watchdog(id, LAB_LIMIT + Duration::from_secs(30));
    let index = labs::ALL.iter().position(|l| l.id() == id).unwrap_or(0);
    let started = Instant::now();
    let mut ctx = Ctx {
        control: opts.control,
        deadline: started + LAB_LIMIT,
        opts: opts.clone(),
        spec,
        run_id,
        subnet: (index * 2 + usize::from(opts.control)).min(250) as u8,
        diag,
        namespaces: vec![],
        topology: vec![],
        capture: None,
        frames: None,
        facts: vec![],
        expects: vec![],
        subjects: vec![],
        required: vec![],
        diagnosis: vec![],
        notes: spec.note.map(|n| vec![n.to_owned()]).unwrap_or_default(),
    };
    (spec.run)(&mut ctx).with_context(|| format!("lab {id}"))?;
    ctx.stop_capture()?;
    // A healthy twin must look healthy everywhere: every namespace it made that the lab did
    // not diagnose itself is checked as it is at the end (the verdict reads only the sources
    // the lab requires; callers judge the rest, e.g. no warning of any case on a control).
    if ctx.control {
        let undiagnosed: Vec<String> = ctx
            .namespaces
            .iter()
            .filter(|n| !ctx.diagnosis.iter().any(|d| d.source == Src::Netns((*n).clone())))
            .cloned()
            .collect();
        for n in undiagnosed {
            ctx.snapshot(&n);
        }
    }
    // A capture that saw nothing is still diagnosed (a healthy twin may send no packet at all,
    // e.g. a name answered from /etc/hosts): "no finding" is then the capture's answer.
    let captured = ctx.frames.is_some();
    let frames = ctx.frames.take().unwrap_or_default();
    let mut capture_file = None;
    if captured || opts.capture.is_some() {
        let (path, temp) = match &opts.capture {
            Some(p) => (p.clone(), false),
            None => (std::env::temp_dir().join(format!("netcase-lab-{}-{run_id}.pcap", std::process::id())), true),
        };
        capture::write_pcap(&path, &frames)?;
        let d = match diag.capture(&path) {
            Ok(findings) => Diagnosis { source: Src::Capture, error: None, findings },
            Err(e) => Diagnosis { source: Src::Capture, error: Some(format!("{e:#}")), findings: vec![] },
        };
        ctx.diagnosis.push(d);
        if temp {
            let _ = std::fs::remove_file(&path);
        } else {
            capture_file = Some(path);
        }
    }
    let reproduced = !ctx.facts.is_empty() && ctx.facts.iter().all(|f| f.ok);
    let v = verdict(ctx.control, spec.case, reproduced, &ctx.required, &ctx.expects, &ctx.subjects, &ctx.diagnosis);
    if opts.keep {
        cleanup::set_keep(run_id, true);
        let first = ctx.namespaces.first().cloned().unwrap_or_default();
        ctx.notes.push(format!(
            "namespaces kept: {}; enter one with `ip netns exec {first} bash` (or `nsenter --net=/var/run/netns/{first}`); \
             remove them with `netcase lab down {id}`",
            ctx.namespaces.join(", ")
        ));
    }
    let report = Report {
        lab: id.to_owned(),
        control: opts.control,
        seconds: started.elapsed().as_secs_f64(),
        namespaces: ctx.namespaces.clone(),
        topology: ctx.topology.clone(),
        capture_file,
        frames: frames.len(),
        facts: ctx.facts.clone(),
        reproduced,
        diagnosis: ctx.diagnosis.clone(),
        expects: ctx.expects.clone(),
        subjects: ctx.subjects.clone(),
        verdict: v,
        kept: opts.keep,
        notes: ctx.notes.clone(),
    };
    drop(ctx);
    drop(guard);
    drop(watchdog);
    Ok(report)
}

/// Why a host-changing lab refuses to run without `--allow-host-changes`.
pub fn host_change_refusal(spec: &LabSpec) -> String {
    format!(
        "lab {} changes a host-wide value: on this kernel nf_conntrack_max is global (read-only inside a \
         namespace), so the only way to fill a conntrack table is to lower the global limit for a few \
         seconds, which can drop new connections of the host itself while it is low. The lab restores \
         the old value on every exit path. Run it again with --allow-host-changes to accept that.",
        spec.id()
    )
}

/// Removes the namespaces of lab `id` (every lab when `None`) and leftovers of crashed runs.
pub fn down(id: Option<&str>) -> Result<Vec<String>> {
    if !is_root() {
        bail!("removing lab namespaces needs root (run with sudo)");
    }
    if let Some(id) = id {
        if find(id).is_none() {
            bail!("no lab '{id}'; `netcase lab list` shows them");
        }
    }
    Ok(cleanup::down(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(case: &str, key: &str, v: f64) -> DiagFinding {
        DiagFinding {
            case: case.into(),
            severity: "warning".into(),
            subject: String::new(),
            summary: "s".into(),
            values: vec![(key.into(), v)],
            texts: vec![],
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn verdict_compares_numbers_within_tolerance() {
        let exp =
            vec![Expect { src: Src::Capture, key: "timeout_s".into(), set: 2.0, unit: "s".into(), tol: Tol::Abs(0.2) }];
        let diag = vec![Diagnosis {
            source: Src::Capture,
            error: None,
            findings: vec![finding("client-timeout-fin-wait2", "timeout_s", 2.1)],
        }];
        let v = verdict(false, CaseId::ClientTimeoutFinWait2, true, &[Src::Capture], &exp, &[], &diag);
        assert!(v.holds, "{:?}", v.lines);
        let diag2 = vec![Diagnosis {
            source: Src::Capture,
            error: None,
            findings: vec![finding("client-timeout-fin-wait2", "timeout_s", 3.0)],
        }];
        assert!(!verdict(false, CaseId::ClientTimeoutFinWait2, true, &[Src::Capture], &exp, &[], &diag2).holds);
        // The control holds only when the case is absent.
        assert!(!verdict(true, CaseId::ClientTimeoutFinWait2, true, &[Src::Capture], &[], &[], &diag2).holds);
        let quiet = vec![Diagnosis { source: Src::Capture, error: None, findings: vec![] }];
        assert!(verdict(true, CaseId::ClientTimeoutFinWait2, true, &[Src::Capture], &[], &[], &quiet).holds);
    }

    #[test]
    fn verdict_checks_the_subject() {
        let mut f = finding("nat-timestamp-paws", "count", 11.0);
        f.subject = r#"{"kind":"peer","ip":"10.200.3.1"}"#.into();
        let diag = vec![Diagnosis { source: Src::Capture, error: None, findings: vec![f] }];
        let want = |ip: &str| vec![ExpectSubject { src: Src::Capture, names: ip.into() }];
        let v = verdict(false, CaseId::NatTimestampPaws, true, &[Src::Capture], &[], &want("10.200.3.1"), &diag);
        assert!(v.holds, "{:?}", v.lines);
        assert!(
            !verdict(false, CaseId::NatTimestampPaws, true, &[Src::Capture], &[], &want("10.200.3.11"), &diag).holds
        );
        assert!(!verdict(false, CaseId::NatTimestampPaws, true, &[Src::Capture], &[], &want("10.200.3"), &diag).holds);
    }

    #[test]
    fn unavailable_diagnosis_does_not_hold() {
        let diag = vec![Diagnosis { source: Src::Capture, error: Some("not built".into()), findings: vec![] }];
        assert!(!verdict(false, CaseId::ZeroWindow, true, &[Src::Capture], &[], &[], &diag).holds);
    }

    #[test]
    fn every_lab_has_a_distinct_case() {
        let mut ids: Vec<&str> = catalogue().iter().map(LabSpec::id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
