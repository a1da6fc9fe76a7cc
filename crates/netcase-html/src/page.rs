//! The page around the graphs: one HTML document with its style inline, no script, and a
//! Content-Security-Policy that forbids every fetch, so opening it never touches the network.

use crate::esc::{escape, Esc};
use netcase_model::{Evidence, Finding, Severity};
use std::fmt::Write;

/// The style sheet (inline; system fonts only).
pub const CSS: &str = r#"
:root{--fg:#1d232a;--mut:#5b6570;--bg:#fff;--line:#d8dde3;--err:#b3261e;--warn:#9a6700;--info:#2f5f98}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1010px;padding:16px 20px 60px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:30px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:22px 0 6px}
a{color:#1f5fbf}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.sub{color:var(--mut);margin:0 0 10px}
nav{margin:10px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}th{font-weight:600;color:var(--mut)}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.finding{border-left:4px solid var(--info);padding:4px 0 4px 12px;margin:12px 0}
.finding.sev-warning{border-color:var(--warn)}.finding.sev-error{border-color:var(--err)}
.finding h3{margin:0 0 4px}.sev{font-size:11px;text-transform:uppercase;font-weight:700;letter-spacing:.04em;margin-right:6px}
.sev-error .sev{color:var(--err)}.sev-warning .sev{color:var(--warn)}.sev-info .sev{color:var(--info)}
.finding ul{margin:4px 0;padding-left:20px;color:#333}.finding .fix{margin:4px 0}.finding .links{font-size:13px;margin:4px 0}
figure{margin:10px 0 18px}figcaption{font-size:13px;color:var(--mut);margin:0 0 2px}
.row{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{max-width:100%;height:auto;display:block;background:#fff}
svg.chart text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#333}
svg.chart .label{font-size:12px;fill:#222}
svg.chart .plot{fill:#fbfcfd;stroke:none}
svg.chart .axis line,svg.chart .axis path{stroke:#666;stroke-width:1;fill:none}
svg.chart .axis .grid{stroke:#e6e9ed}
svg.chart .hs{fill:transparent}svg.chart .hs:hover{fill:rgba(30,60,120,.08)}
svg.chart path,svg.chart line{fill:none}
.seg path,path.seg{stroke:#1f3fbf;stroke-width:2}
.ack path,path.ack{stroke:#1a9b3c;stroke-width:1.2}
.win path,path.win{stroke:#c9a400;stroke-width:1.2}
.sack path,path.sack{stroke:#8e3fbf;stroke-width:2.2;opacity:.75}
path.rtx{stroke:#d11a1a;stroke-width:2}
.tput path,path.tput{stroke:#1f3fbf;stroke-width:1.4}
.good path,path.good{stroke:#1a9b3c;stroke-width:1.4}
.rtt path,path.rtt{stroke:#7a3fbf;stroke-width:1.4}.rtt circle,circle.rtt{fill:#7a3fbf}
.inflight path,path.inflight{stroke:#d9731a;stroke-width:1.4}
.rwin path,path.rwin{stroke:#c9a400;stroke-width:1.4}
.iobytes rect,path.iobytes{fill:#9ec5f0;stroke:none}.iopkts path,path.iopkts{stroke:#1f3fbf;stroke-width:1.3}
.e-retrans path,path.e-retrans{stroke:#d11a1a;stroke-width:1.6}.e-dupack path,path.e-dupack{stroke:#1a9b3c;stroke-width:1.6}
.e-zwin path,path.e-zwin{stroke:#d9731a;stroke-width:1.6}.e-rst path,path.e-rst{stroke:#111;stroke-width:1.6}
.e-dns path,path.e-dns{stroke:#8e3fbf;stroke-width:1.6}.e-http path,path.e-http{stroke:#0f8a8a;stroke-width:1.6}
.mark text,.mark-key text{font-weight:700;font-size:13px;text-anchor:middle}
.m-R text{fill:#d11a1a}.m-O text{fill:#b35900}.m-P text{fill:#7a3fbf}.m-Z text{fill:#d9731a}.m-3 text{fill:#1a7a30}.m-RST text{fill:#111}
.m-E text,.m-E circle{fill:none;stroke:#d11a1a;stroke-width:1.5}
.mark.ev text{text-decoration:underline}
.hist rect,rect.hist{fill:#5b8fd6}.hist-un rect,rect.hist-un{fill:#d11a1a}
.w-dns rect,rect.w-dns{fill:#8e3fbf}.w-connect rect,rect.w-connect{fill:#d9731a}.w-tls rect,rect.w-tls{fill:#b35900}
.w-req rect,rect.w-req{fill:#9aa4ae}.w-ttfb rect,rect.w-ttfb{fill:#1a9b3c}.w-transfer rect,rect.w-transfer{fill:#1f3fbf}
.w-none rect,rect.w-none{fill:#f3c2c2}
.tl-sev-error rect,rect.tl-sev-error{fill:#b3261e}.tl-sev-warning rect,rect.tl-sev-warning{fill:#9a6700}.tl-sev-info rect,rect.tl-sev-info{fill:#2f5f98}
.tl-span{stroke:#9aa4ae;stroke-width:3}
.note{color:var(--mut);font-size:13px}
.st rect,rect.st{fill:#5b8fd6}rect.st-close{fill:#9aa4ae}rect.st-bad{fill:#d9731a}
.dr rect,rect.dr{fill:#b3261e}rect.dr-zero{fill:#d8dde3}
.q rect,rect.q{fill:#5b8fd6}.q-full rect,rect.q-full{fill:#d11a1a}line.q-limit{stroke:#1d232a;stroke-width:1.2;stroke-dasharray:4 3}
.cbar{display:inline-block;height:10px;background:#5b8fd6;min-width:1px}tr.cited .cbar{background:#d11a1a}
tr.cited td{background:#fff4e5}.tag{font-size:10px;text-transform:uppercase;color:var(--warn);font-weight:700}
tr.taken td{background:#fde8e7;font-weight:600}
:target{outline:2px solid #d11a1a;outline-offset:2px}
"#;

/// The start of a page: doctype, head with the style and the policy, `<body>`.
pub fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"generator\" content=\"netcase {}\"><title>{}</title><style>{CSS}</style></head><body>\n",
        env!("CARGO_PKG_VERSION"),
        Esc(title)
    );
}

/// The end of a page.
pub fn foot(out: &mut String) {
    let _ = writeln!(
        out,
        "<p class=\"note\">Made by netcase {}. Hover a graph for the numbers under the pointer; the page needs no network and runs no script.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
}

/// The CSS class of a severity.
pub fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Error => "sev-error",
        Severity::Warning => "sev-warning",
        Severity::Info => "sev-info",
    }
}

/// Where a finding's links go: the graph that shows it and, per evidence frame, the mark
/// that shows that frame (`None`: the frame is not drawn).
pub struct FindingLinks {
    /// `#id` of the graph and its name.
    pub graph: (String, String),
    /// `(frame, #id)` for each evidence frame.
    pub frames: Vec<(u64, Option<String>)>,
    /// Further places that show the finding's evidence: `#id` and name (a counter's row).
    pub extra: Vec<(String, String)>,
}

/// One finding as an `<article>` whose id is `finding-N` (N from 1), with its links.
pub fn finding(out: &mut String, n: usize, f: &Finding, links: &FindingLinks) {
    let sev = sev_class(f.severity);
    let _ = write!(
        out,
        "<article class=\"finding {sev}\" id=\"finding-{n}\"><h3><span class=\"sev\">{}</span><code>{}</code> {}</h3><p>{}</p>",
        f.severity,
        Esc(f.case.as_str()),
        Esc(&f.subject.to_string()),
        Esc(&f.summary)
    );
    if f.confidence == netcase_model::Confidence::Possible || !f.alternatives.is_empty() {
        let alt: Vec<&str> = f.alternatives.iter().map(|c| c.as_str()).collect();
        let _ = write!(out, "<p class=\"note\">how sure: {}", f.confidence);
        if !alt.is_empty() {
            let _ = write!(out, "; not excluded: {}", Esc(&alt.join(", ")));
        }
        out.push_str("</p>");
    }
    if !f.evidence.is_empty() {
        out.push_str("<ul>");
        for e in &f.evidence {
            match e {
                Evidence::Frames { key, frames } => {
                    let _ = write!(out, "<li>{}: frames ", Esc(key));
                    for (i, fr) in frames.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        match links.frames.iter().find(|l| l.0 == *fr).and_then(|l| l.1.as_deref()) {
                            Some(id) => {
                                let _ = write!(out, "<a class=\"frame-link\" href=\"#{}\">{fr}</a>", Esc(id));
                            }
                            None => {
                                let _ = write!(out, "{fr}");
                            }
                        }
                    }
                    out.push_str("</li>");
                }
                e => {
                    let _ = write!(out, "<li>{}</li>", Esc(&e.to_string()));
                }
            }
        }
        out.push_str("</ul>");
    }
    if !f.fix.is_empty() {
        let _ = write!(out, "<p class=\"fix\"><b>fix:</b> {}</p>", Esc(&f.fix));
    }
    let _ = write!(
        out,
        "<p class=\"links\">shown in: <a class=\"graph-link\" href=\"#{}\">{}</a>",
        Esc(&links.graph.0),
        escape(&links.graph.1)
    );
    for (id, name) in &links.extra {
        let _ = write!(out, ", <a class=\"graph-link\" href=\"#{}\">{}</a>", Esc(id), escape(name));
    }
    out.push_str("</p></article>\n");
}

/// A `<figure>` around a chart.
pub fn figure(out: &mut String, caption: &str, svg: &str) {
    let _ = writeln!(out, "<figure><figcaption>{}</figcaption>{svg}</figure>", Esc(caption));
}
