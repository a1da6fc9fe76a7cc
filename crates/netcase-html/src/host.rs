//! The host report: what `netcase check` read and found on the live host, as one page —
//! the findings (each linked to the chart or table row that shows it), sockets by state per
//! network namespace, accept-queue fill per listener, counter rates (those a finding cites
//! highlighted), drops by layer and, for a redirect hijack, the netfilter path it takes.
//!
//! The command fills a [`HostData`] from its evidence (this crate does not read the host and
//! does not depend on netcase-host); [`render`] draws it. Every string is escaped.

use crate::esc::Esc;
use crate::page::{self, FindingLinks};
use crate::svg::{Axis, Chart, Fmt, Glyph};
use netcase_model::{Evidence, Finding, Severity, Subject};
use std::fmt::Write;
use std::net::SocketAddr;

/// Listeners drawn per namespace (fullest first).
pub const MAX_LISTENERS: usize = 40;
/// Counter rows per namespace besides those a finding cites.
pub const MAX_COUNTERS: usize = 40;
/// Rules shown per chain of a netfilter path.
pub const MAX_CHAIN_RULES: usize = 30;

/// Everything the host report shows.
#[derive(Debug, Clone, Default)]
pub struct HostData {
    /// The host's name (`/proc/sys/kernel/hostname`), for the title.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// Seconds between the two samples (0: absolute values only).
    pub interval_s: f64,
    /// Whether the reader had the privileges to see everything (root or CAP_NET_ADMIN).
    pub privileged: bool,
    /// When the host was read, as text (UTC).
    pub taken: String,
    /// The namespaces read.
    pub namespaces: Vec<NsData>,
    /// The findings, sorted as `netcase check` prints them.
    pub findings: Vec<Finding>,
    /// Evidence that could not be read: (what, why).
    pub unavailable: Vec<(String, String)>,
}

/// One network namespace.
#[derive(Debug, Clone, Default)]
pub struct NsData {
    /// Its label as findings name it (`None`: the reader's own namespace).
    pub label: Option<String>,
    /// How to show it (`own (ino:N)`, a name).
    pub name: String,
    /// Sockets by protocol and state.
    pub states: Vec<StateCount>,
    /// Listening sockets.
    pub listeners: Vec<ListenerRow>,
    /// Every counter read (snmp, netstat, snmp6, conntrack statistics).
    pub counters: Vec<CounterRow>,
    /// Drops by layer, in stack order.
    pub drops: Vec<DropLayer>,
    /// Rules of the nat table (for the path of a redirect hijack).
    pub nat_rules: Vec<RuleRow>,
    /// Whether netfilter rules could be read at all.
    pub netfilter_read: bool,
}

/// Sockets of one protocol in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    /// `tcp`, `udp`, ...
    pub proto: String,
    /// `ESTABLISHED`, `TIME-WAIT`, ...
    pub state: String,
    /// How many.
    pub count: u64,
}

/// A listening socket and its accept queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRow {
    /// Local address.
    pub local: SocketAddr,
    /// Connections waiting in the accept queue (Recv-Q).
    pub queued: u32,
    /// The effective backlog (Send-Q).
    pub backlog: u32,
    /// The owning process, `comm (pid N)`, when known.
    pub owner: Option<String>,
}

impl ListenerRow {
    /// Fill in percent of the backlog (the kernel counts a queue full above the backlog).
    pub fn fill_pct(&self) -> f64 {
        if self.backlog == 0 {
            if self.queued > 0 {
                100.0
            } else {
                0.0
            }
        } else {
            f64::from(self.queued) * 100.0 / f64::from(self.backlog)
        }
    }
    /// Whether the kernel refuses new connections (`sk_acceptq_is_full`).
    pub fn full(&self) -> bool {
        self.queued > self.backlog
    }
}

/// A kernel counter.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterRow {
    /// `TcpExt.ListenOverflows`, `conntrack.drop`, ...
    pub name: String,
    /// Value at the last sample.
    pub value: u64,
    /// Growth per second, when two samples were taken.
    pub per_s: Option<f64>,
}

/// Drops counted at one layer of the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct DropLayer {
    /// `device`, `softnet`, `ip`, `netfilter`, `tcp`, `udp`, `socket`.
    pub layer: String,
    /// Per second with two samples, otherwise the total since start.
    pub value: f64,
    /// Where the number comes from (counter names).
    pub from: String,
}

/// One netfilter rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    /// `ip`, `ip6`, ...
    pub family: String,
    /// Chain.
    pub chain: String,
    /// The rule as iptables-save prints it.
    pub text: String,
    /// Its target (`REDIRECT`, a chain), when it has one.
    pub target: Option<String>,
}

fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// The id of namespace `i`'s element `what` (`ns0-sockets`).
fn nid(i: usize, what: &str) -> String {
    format!("ns{i}-{what}")
}

fn counter_id(i: usize, name: &str) -> String {
    format!("ns{i}-c-{}", slug(name))
}

/// The namespace label a finding names (`None`: the own one or not said).
fn finding_ns(f: &Finding) -> Option<String> {
    let from_subject = match &f.subject {
        Subject::Socket { netns, .. } | Subject::Listener { netns, .. } | Subject::Process { netns, .. } => {
            netns.clone()
        }
        Subject::Netns { name } => Some(name.clone()),
        _ => None,
    };
    from_subject.or_else(|| {
        f.evidence.iter().find_map(|e| match e {
            Evidence::Text { key, value } if key == "netns" => Some(value.clone()),
            _ => None,
        })
    })
}

fn ns_index(d: &HostData, f: &Finding) -> usize {
    let label = finding_ns(f);
    d.namespaces
        .iter()
        .position(|n| match (&label, &n.label) {
            (Some(l), Some(m)) => l == m,
            (None, None) => true,
            (Some(l), None) => l == "host",
            (None, Some(_)) => false,
        })
        .unwrap_or(0)
}

/// Counters a finding cites.
fn cited(f: &Finding) -> impl Iterator<Item = &str> {
    f.evidence.iter().filter_map(|e| match e {
        Evidence::Counter { name, .. } => Some(name.as_str()),
        _ => None,
    })
}

fn is_drop_case(f: &Finding) -> bool {
    f.case.as_str() == "packet-drop-layers"
}

fn path_of(f: &Finding) -> Option<Vec<String>> {
    if !matches!(f.subject, Subject::Rule { .. }) {
        return None;
    }
    f.evidence.iter().find_map(|e| match e {
        Evidence::Text { key, value } if key == "path" => {
            Some(value.split(" -> ").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        }
        _ => None,
    })
}

fn listener_id(i: usize, k: usize) -> String {
    format!("ns{i}-l{k}")
}

/// The drawn listeners of a namespace, fullest first, with their index in `listeners`.
fn drawn_listeners(n: &NsData) -> Vec<(usize, &ListenerRow)> {
    let mut v: Vec<(usize, &ListenerRow)> = n.listeners.iter().enumerate().collect();
    v.sort_by(|a, b| b.1.fill_pct().total_cmp(&a.1.fill_pct()).then(a.1.local.cmp(&b.1.local)));
    v.truncate(MAX_LISTENERS);
    v
}

/// The links of finding `k` (1-based).
fn links(d: &HostData, k: usize, f: &Finding) -> FindingLinks {
    let i = ns_index(d, f);
    let n = d.namespaces.get(i);
    let ns_name = n.map_or_else(String::new, |n| n.name.clone());
    let mut extra = Vec::new();
    let graph = if let (Subject::Listener { local, .. }, Some(n)) = (&f.subject, n) {
        match drawn_listeners(n).iter().position(|(_, l)| l.local == *local) {
            Some(p) => (listener_id(i, p), format!("accept queue of {local} ({ns_name})")),
            None => (nid(i, "queues"), format!("accept queues ({ns_name})")),
        }
    } else if path_of(f).is_some() {
        (format!("nf-f{k}"), "netfilter path".to_owned())
    } else if is_drop_case(f) {
        (nid(i, "drops"), format!("drops by layer ({ns_name})"))
    } else if matches!(f.subject, Subject::Listener { .. })
        || f.case.as_str().contains("accept")
        || f.case.as_str().contains("syn-queue")
    {
        (nid(i, "queues"), format!("accept queues ({ns_name})"))
    } else if matches!(f.subject, Subject::Socket { .. } | Subject::Process { .. }) || f.case.as_str().contains("wait")
    {
        (nid(i, "sockets"), format!("sockets by state ({ns_name})"))
    } else if cited(f).next().is_some() {
        (nid(i, "counters"), format!("counter rates ({ns_name})"))
    } else {
        (nid(i, "sockets"), format!("namespace {ns_name}"))
    };
    if let Some(n) = n {
        for c in cited(f) {
            if n.counters.iter().any(|r| r.name == c) {
                extra.push((counter_id(i, c), c.to_owned()));
            }
        }
        if graph.0 != nid(i, "drops") && f.case.as_str().contains("drop") {
            extra.push((nid(i, "drops"), "drops by layer".to_owned()));
        }
    }
    FindingLinks { graph, frames: Vec::new(), extra }
}

/// Renders the host report.
pub fn render(d: &HostData) -> String {
    let mut out = String::with_capacity(1 << 16);
    let host = if d.hostname.is_empty() { "this host" } else { d.hostname.as_str() };
    page::head(&mut out, &format!("netcase host report — {host}"));
    let _ = write!(out, "<header><h1>netcase host report: <span class=\"mono\">{}</span></h1>", Esc(host));
    let _ = write!(
        out,
        "<p class=\"sub\">read {} · kernel {} · {}</p>",
        Esc(&d.taken),
        Esc(&d.kernel),
        if d.interval_s > 0.0 {
            format!("rates over {:.1} s", d.interval_s)
        } else {
            "one sample: totals, no rates".to_owned()
        }
    );
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#findings\">Findings</a>");
    for (i, n) in d.namespaces.iter().enumerate() {
        let _ = write!(out, "<a href=\"#{}\">namespace {}</a>", nid(i, "section"), Esc(&n.name));
    }
    out.push_str("</nav></header>\n");

    summary(&mut out, d);

    let _ = write!(out, "<section id=\"findings\"><h2>Findings ({})</h2>", d.findings.len());
    if d.findings.is_empty() {
        out.push_str("<p>No findings: nothing read on this host matched a case of the catalogue.</p>");
    }
    for (k, f) in d.findings.iter().enumerate() {
        let l = links(d, k + 1, f);
        page::finding(&mut out, k + 1, f, &l);
    }
    out.push_str("</section>\n");

    let paths: Vec<(usize, &Finding, Vec<String>)> =
        d.findings.iter().enumerate().filter_map(|(k, f)| path_of(f).map(|p| (k + 1, f, p))).collect();
    if !paths.is_empty() {
        out.push_str("<section id=\"netfilter\"><h2>Netfilter paths</h2>");
        for (k, f, p) in paths {
            nf_path(&mut out, d, k, f, &p);
        }
        out.push_str("</section>\n");
    }

    for (i, n) in d.namespaces.iter().enumerate() {
        namespace(&mut out, d, i, n);
    }
    if !d.unavailable.is_empty() {
        out.push_str("<section id=\"unavailable\"><h2>Not read</h2><ul>");
        for (what, why) in &d.unavailable {
            let _ = write!(out, "<li><b>{}</b>: {}</li>", Esc(what), Esc(why));
        }
        out.push_str("</ul></section>\n");
    }
    page::foot(&mut out);
    out
}

fn summary(out: &mut String, d: &HostData) {
    out.push_str("<section id=\"summary\"><h2>Summary</h2><table>");
    let count = |s| d.findings.iter().filter(|f| f.severity == s).count();
    let rows = [
        ("kernel", d.kernel.clone()),
        (
            "namespaces",
            format!(
                "{}: {}",
                d.namespaces.len(),
                d.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ),
        (
            "sockets",
            d.namespaces.iter().map(|n| n.states.iter().map(|s| s.count).sum::<u64>()).sum::<u64>().to_string(),
        ),
        (
            "samples",
            if d.interval_s > 0.0 {
                format!("two, {:.1} s apart (counters as rates)", d.interval_s)
            } else {
                "one (counters as totals since the namespace or boot started)".to_owned()
            },
        ),
        (
            "privileges",
            if d.privileged {
                "full (owners, netfilter rules readable)".to_owned()
            } else {
                "unprivileged: some evidence was not read (see the end of the page)".to_owned()
            },
        ),
        (
            "findings",
            format!(
                "{} error, {} warning, {} info",
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info)
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", Esc(k), Esc(&v));
    }
    out.push_str("</table></section>\n");
}

fn namespace(out: &mut String, d: &HostData, i: usize, n: &NsData) {
    let _ = write!(out, "<section id=\"{}\"><h2>Namespace {}</h2>", nid(i, "section"), Esc(&n.name));
    out.push_str("<div class=\"row\">");
    let _ = write!(
        out,
        "<figure><figcaption>Sockets by state ({} sockets)</figcaption>{}</figure>",
        n.states.iter().map(|s| s.count).sum::<u64>(),
        states_chart(i, n)
    );
    let _ = write!(
        out,
        "<figure><figcaption>Drops by layer ({})</figcaption>{}</figure>",
        if d.interval_s > 0.0 { "packets per second between the samples" } else { "totals since start" },
        drops_chart(d, i, n)
    );
    out.push_str("</div>");
    out.push_str(
        "<p class=\"note\">The layers' counters say how many packets each layer dropped, not why: the kernel's \
         drop reasons (skb:kfree_skb with the function that dropped) need tracing, which <code>netcase drops</code> does \
         (root, a few seconds).</p>",
    );
    let drawn = drawn_listeners(n);
    let _ = write!(
        out,
        "<figure><figcaption>Accept queue fill per listener: connections waiting (Recv-Q) against the backlog \
         (Send-Q); above 100&nbsp;% the kernel drops new handshakes{}</figcaption>{}</figure>",
        if n.listeners.len() > drawn.len() {
            format!(" ({} fullest of {} listeners)", drawn.len(), n.listeners.len())
        } else {
            String::new()
        },
        queues_chart(i, &drawn)
    );
    counters_table(out, d, i, n);
    out.push_str("</section>\n");
}

fn states_chart(i: usize, n: &NsData) -> String {
    let rows = n.states.len().max(1);
    let h = 30.0 + 44.0 + 20.0 * rows as f64;
    let max = n.states.iter().map(|s| s.count).max().unwrap_or(0) as f64;
    let mut c = Chart::new(
        nid(i, "sockets"),
        "sockets by state",
        Axis::zero_to(max.max(1.0), Fmt::Count, "sockets"),
        Axis::new(0.0, rows as f64, Fmt::Count, ""),
        h,
    )
    .with_width(475.0)
    .with_left(140.0);
    c.hide_y_ticks();
    c.attr("data-kind", "states");
    c.legend("st", "sockets", Glyph::Box);
    let x0 = c.px(0.0);
    for (r, s) in n.states.iter().enumerate() {
        let (y0, y1) = (c.py(rows as f64 - r as f64) + 3.0, c.py(rows as f64 - r as f64 - 1.0) - 3.0);
        let x1 = c.px(s.count as f64);
        let class = match s.state.as_str() {
            "CLOSE-WAIT" | "SYN-RECV" => "st-bad",
            "TIME-WAIT" | "FIN-WAIT-2" | "FIN-WAIT-1" | "LAST-ACK" | "CLOSING" => "st-close",
            _ => "st",
        };
        let _ = write!(
            c.body(),
            "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            (x1 - x0).max(1.0),
            y1 - y0
        );
        let label = format!("{} {}", s.proto, s.state);
        let _ = write!(
            c.over(),
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0 - 6.0,
            (y0 + y1) / 2.0 + 4.0,
            Esc(&label),
            x1 + 4.0,
            (y0 + y1) / 2.0 + 4.0,
            s.count
        );
        row_hover(&mut c, y0, y1, &format!("{label}: {} sockets", s.count));
    }
    if n.states.is_empty() {
        let _ = write!(c.over(), "<text x=\"{:.1}\" y=\"50\">no sockets</text>", x0 + 8.0);
    }
    c.finish()
}

/// A hover strip across a horizontal bar row.
fn row_hover(c: &mut Chart, y0: f64, y1: f64, title: &str) {
    let (l, w) = (c.left(), c.plot_w());
    let _ = write!(
        c.over(),
        "<rect class=\"hs\" x=\"{l:.1}\" y=\"{y0:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
        (y1 - y0).max(1.0),
        Esc(title)
    );
}

fn drops_chart(d: &HostData, i: usize, n: &NsData) -> String {
    let rows = n.drops.len().max(1);
    let h = 30.0 + 44.0 + 22.0 * rows as f64;
    let max = n.drops.iter().map(|l| l.value).fold(0.0, f64::max);
    let unit = if d.interval_s > 0.0 { "drops per second" } else { "drops since start" };
    let mut c = Chart::new(
        nid(i, "drops"),
        "drops by layer",
        Axis::zero_to(max.max(1.0), Fmt::Count, unit),
        Axis::new(0.0, rows as f64, Fmt::Count, ""),
        h,
    )
    .with_width(475.0)
    .with_left(90.0);
    c.hide_y_ticks();
    c.attr("data-kind", "drops");
    c.legend("dr", "dropped", Glyph::Box);
    let x0 = c.px(0.0);
    for (r, l) in n.drops.iter().enumerate() {
        let (y0, y1) = (c.py(rows as f64 - r as f64) + 3.0, c.py(rows as f64 - r as f64 - 1.0) - 3.0);
        let x1 = c.px(l.value.max(0.0));
        let _ = write!(
            c.body(),
            "<rect class=\"{}\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            if l.value > 0.0 { "dr" } else { "dr-zero" },
            (x1 - x0).max(1.0),
            y1 - y0
        );
        let v = if d.interval_s > 0.0 { format!("{:.1}/s", l.value) } else { format!("{:.0}", l.value) };
        let _ = write!(
            c.over(),
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0 - 6.0,
            (y0 + y1) / 2.0 + 4.0,
            Esc(&l.layer),
            x1 + 4.0,
            (y0 + y1) / 2.0 + 4.0,
            Esc(&v)
        );
        row_hover(&mut c, y0, y1, &format!("{}: {v} (from {})", l.layer, l.from));
    }
    c.finish()
}

fn queues_chart(i: usize, drawn: &[(usize, &ListenerRow)]) -> String {
    let rows = drawn.len().max(1);
    let h = 30.0 + 44.0 + 20.0 * rows as f64;
    let max = drawn.iter().map(|(_, l)| l.fill_pct()).fold(100.0, f64::max);
    let mut c = Chart::new(
        nid(i, "queues"),
        "accept queue fill per listener",
        Axis::new(0.0, (max / 25.0).ceil() * 25.0, Fmt::Count, "accept queue fill (% of the backlog)"),
        Axis::new(0.0, rows as f64, Fmt::Count, ""),
        h,
    )
    .with_left(260.0);
    c.hide_y_ticks();
    c.attr("data-kind", "queues");
    c.legend("q", "waiting", Glyph::Box);
    c.legend("q-full", "full: new handshakes dropped", Glyph::Box);
    let x0 = c.px(0.0);
    let x100 = c.px(100.0);
    for (r, (_, l)) in drawn.iter().enumerate() {
        let (y0, y1) = (c.py(rows as f64 - r as f64) + 3.0, c.py(rows as f64 - r as f64 - 1.0) - 3.0);
        let x1 = c.px(l.fill_pct());
        let owner = l.owner.as_deref().unwrap_or("owner unknown");
        let _ = write!(
            c.over(),
            "<g class=\"qbar\" id=\"{}\"><rect class=\"{}\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></g>",
            listener_id(i, r),
            if l.full() { "q-full" } else { "q" },
            (x1 - x0).max(1.0),
            y1 - y0
        );
        let label = format!("{} {owner}", l.local);
        let shown: String =
            if label.chars().count() > 38 { label.chars().take(37).chain(['…']).collect() } else { label.clone() };
        let _ = write!(
            c.over(),
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\">{}/{}</text>",
            x0 - 6.0,
            (y0 + y1) / 2.0 + 4.0,
            Esc(&shown),
            x1 + 4.0,
            (y0 + y1) / 2.0 + 4.0,
            l.queued,
            l.backlog
        );
        row_hover(
            &mut c,
            y0,
            y1,
            &format!("{label}: {} waiting, backlog {} ({:.0} %)", l.queued, l.backlog, l.fill_pct()),
        );
    }
    // The backlog (100 %) over the bars: a bar that crosses it is a full queue.
    let (top, bottom) = (c.top(), c.bottom_px());
    let _ = write!(
        c.over(),
        "<line class=\"q-limit\" x1=\"{x100:.1}\" y1=\"{top:.1}\" x2=\"{x100:.1}\" y2=\"{bottom:.1}\"/>"
    );
    if drawn.is_empty() {
        let _ = write!(c.over(), "<text x=\"{:.1}\" y=\"50\">no TCP listener</text>", x0 + 8.0);
    }
    c.finish()
}

fn counters_table(out: &mut String, d: &HostData, i: usize, n: &NsData) {
    let cited_here: Vec<&str> =
        d.findings.iter().filter(|f| ns_index(d, f) == i).flat_map(cited).fold(Vec::new(), |mut v, c| {
            if !v.contains(&c) {
                v.push(c);
            }
            v
        });
    let rates = d.interval_s > 0.0;
    let mut rows: Vec<&CounterRow> = n.counters.iter().filter(|c| cited_here.contains(&c.name.as_str())).collect();
    let mut moving: Vec<&CounterRow> = n
        .counters
        .iter()
        .filter(|c| !cited_here.contains(&c.name.as_str()))
        .filter(|c| if rates { c.per_s.is_some_and(|r| r > 0.0) } else { c.value > 0 && is_trouble(&c.name) })
        .collect();
    if rates {
        moving.sort_by(|a, b| b.per_s.unwrap_or(0.0).total_cmp(&a.per_s.unwrap_or(0.0)).then(a.name.cmp(&b.name)));
    } else {
        moving.sort_by(|a, b| b.value.cmp(&a.value).then(a.name.cmp(&b.name)));
    }
    let left = moving.len().saturating_sub(MAX_COUNTERS);
    moving.truncate(MAX_COUNTERS);
    rows.extend(moving);
    let _ = write!(
        out,
        "<h3 id=\"{}\">Counters{}</h3>",
        nid(i, "counters"),
        if rates { " (growth per second between the samples)" } else { " (totals; one sample)" }
    );
    if rows.is_empty() {
        out.push_str("<p class=\"note\">No counter moved between the samples.</p>");
        return;
    }
    let max = rows
        .iter()
        .map(|c| if rates { c.per_s.unwrap_or(0.0) } else { c.value as f64 })
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    out.push_str("<table class=\"counters\"><tr><th>counter</th><th>value</th><th>per second</th><th></th></tr>");
    for c in rows {
        let v = if rates { c.per_s.unwrap_or(0.0) } else { c.value as f64 };
        let w = (v / max * 200.0).clamp(0.0, 200.0);
        let is_cited = cited_here.contains(&c.name.as_str());
        let _ = write!(
            out,
            "<tr id=\"{}\"{}><td class=\"mono\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><span class=\"cbar\" style=\"width:{w:.0}px\"></span></td></tr>",
            Esc(&counter_id(i, &c.name)),
            if is_cited { " class=\"cited\"" } else { "" },
            Esc(&c.name),
            if is_cited { " <span class=\"tag\">cited</span>" } else { "" },
            c.value,
            c.per_s.map_or_else(|| "–".to_owned(), |r| format!("{r:.1}")),
        );
    }
    out.push_str("</table>");
    if left > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{left} more counters moved; <code>netcase check --json</code> lists them all.</p>"
        );
    }
}

/// Counters worth showing as totals (drops, errors, overflows, retransmissions).
fn is_trouble(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    ["drop", "err", "overflow", "fail", "retrans", "timeout", "abort", "prune", "collapse", "discard"]
        .iter()
        .any(|w| l.contains(w))
}

fn nf_path(out: &mut String, d: &HostData, k: usize, f: &Finding, path: &[String]) {
    let i = ns_index(d, f);
    let (table, rule_text) = match &f.subject {
        Subject::Rule { table, rule, .. } => (table.as_str(), rule.as_str()),
        _ => ("nat", ""),
    };
    let _ = write!(
        out,
        "<figure><figcaption>Finding {k}: the path of a packet through the {} table: {}</figcaption><table class=\"nf\" id=\"nf-f{k}\"><tr><th>step</th><th>chain</th><th>rule</th><th>target</th></tr>",
        Esc(table),
        Esc(&path.join(" → "))
    );
    let rules = d.namespaces.get(i).map(|n| n.nat_rules.as_slice()).unwrap_or_default();
    for (s, chain) in path.iter().enumerate() {
        let next = path.get(s + 1);
        let in_chain: Vec<&RuleRow> = rules.iter().filter(|r| &r.chain == chain).take(MAX_CHAIN_RULES).collect();
        if in_chain.is_empty() {
            let _ = write!(
                out,
                "<tr><td class=\"n\">{}</td><td class=\"mono\">{}</td><td class=\"note\">(rules not shown)</td><td></td></tr>",
                s + 1,
                Esc(chain)
            );
        }
        for r in in_chain {
            let taken = r.text == rule_text || next.is_some_and(|n| r.target.as_deref() == Some(n.as_str()));
            let _ = write!(
                out,
                "<tr{}><td class=\"n\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                if taken { " class=\"taken\"" } else { "" },
                s + 1,
                Esc(chain),
                Esc(&r.text),
                Esc(r.target.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("</table></figure>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcase_model::{CaseId, Confidence};

    fn data() -> HostData {
        let l: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let f = Finding::new(
            CaseId::AcceptQueueOverflow,
            Severity::Error,
            Subject::Listener { local: l, netns: Some("t<1>".into()) },
            "accept queue full".to_owned(),
        )
        .with(Evidence::Counter { name: "TcpExt.ListenOverflows".into(), value: 3, per_s: Some(1.5) })
        .with_confidence(Confidence::Certain, &[]);
        HostData {
            hostname: "h<script>".into(),
            kernel: "6.1".into(),
            interval_s: 1.0,
            namespaces: vec![NsData {
                label: Some("t<1>".into()),
                name: "t<1>".into(),
                states: vec![StateCount { proto: "tcp".into(), state: "LISTEN".into(), count: 1 }],
                listeners: vec![ListenerRow { local: l, queued: 2, backlog: 1, owner: Some("x<y> (pid 1)".into()) }],
                counters: vec![CounterRow { name: "TcpExt.ListenOverflows".into(), value: 3, per_s: Some(1.5) }],
                drops: vec![DropLayer { layer: "tcp".into(), value: 1.5, from: "TcpExt.ListenDrops".into() }],
                ..Default::default()
            }],
            findings: vec![f],
            ..Default::default()
        }
    }

    #[test]
    fn hijack_links_to_its_netfilter_path() {
        let mut d = data();
        d.namespaces[0].label = None;
        d.namespaces[0].nat_rules = vec![
            RuleRow {
                family: "ip".into(),
                chain: "OUTPUT".into(),
                text: "-A OUTPUT -p tcp -j MESH".into(),
                target: Some("MESH".into()),
            },
            RuleRow {
                family: "ip".into(),
                chain: "MESH".into(),
                text: "-A MESH -p tcp -j REDIRECT --to-ports 15001".into(),
                target: Some("REDIRECT".into()),
            },
        ];
        d.findings = vec![Finding::new(
            CaseId::IptablesRedirectHijack,
            Severity::Error,
            Subject::Rule {
                table: "nat".into(),
                chain: "MESH".into(),
                rule: "-A MESH -p tcp -j REDIRECT --to-ports 15001".into(),
            },
            "hijacked".to_owned(),
        )
        .with(Evidence::text("path", "OUTPUT -> MESH"))];
        let html = render(&d);
        assert!(html.contains("href=\"#nf-f1\""), "{html}");
        assert!(html.contains("id=\"nf-f1\""));
        assert_eq!(html.matches("<tr class=\"taken\">").count(), 2, "both rules of the path are taken");
    }

    #[test]
    fn finding_links_to_its_listener_and_counter() {
        let html = render(&data());
        assert!(html.contains("href=\"#ns0-l0\""), "{html}");
        assert!(html.contains("id=\"ns0-l0\""));
        assert!(html.contains("href=\"#ns0-c-TcpExt.ListenOverflows\""));
        assert!(html.contains("id=\"ns0-c-TcpExt.ListenOverflows\" class=\"cited\""));
        assert!(!html.contains("<script>") && !html.contains("x<y>"));
    }
}
