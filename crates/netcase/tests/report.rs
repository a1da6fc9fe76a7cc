//! `netcase report`: writes one self-contained page, exits as `netcase pcap` does.

use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");

fn netcase() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netcase"))
}

#[test]
fn writes_a_self_contained_page_and_exits_on_findings() {
    let out = std::env::temp_dir().join(format!("netcase-report-cli-{}.html", std::process::id()));
    let r = netcase().args(["report", &format!("{DATA}/zeek-206_example_b.pcap"), "-o"]).arg(&out).output().unwrap();
    // The capture has a warning: exit 1, as `netcase pcap` exits.
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("default-src 'none'"), "a policy forbids every fetch");
    // URLs from the capture appear as text (tooltips); nothing may point the browser at one.
    for remote in
        ["src=", "href=\"http", "href=\"//", "<script", "<link", "<iframe", "@import", "url(h", "url(//", "url(\""]
    {
        let hits: Vec<_> =
            html.match_indices(remote).map(|(i, _)| &html[i.saturating_sub(40)..(i + 60).min(html.len())]).collect();
        // The SVG namespace is a name, not a fetch.
        let hits: Vec<_> = hits.into_iter().filter(|h| !h.contains("www.w3.org/2000/svg")).collect();
        assert!(hits.is_empty(), "{remote} in the page: {hits:?}");
    }
    assert!(html.contains("id=\"stream-0-tseq\""), "the lossy stream has a time-sequence graph");
}

#[test]
fn page_on_stdout_and_no_stdin() {
    let r = netcase()
        .args(["report", &format!("{DATA}/zeek-206_example_b.pcap"), "-o", "-", "--fail-on", "error"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stdout).ends_with("</html>\n"));
    let r = netcase().args(["report", "-"]).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
}
