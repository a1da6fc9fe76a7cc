//! resolver-order: names that belong in /etc/hosts (localhost first of all) go to DNS first,
//! because nsswitch.conf is missing (Go's resolver then asks DNS before files on minimal
//! images) or its hosts line puts dns before files.

use super::ns;
use netcase_host::resolver::Libc;
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let r = &ev.resolver;
    let names: Vec<&str> = r.hosts.iter().flat_map(|(_, n)| n.iter().map(String::as_str)).collect();
    let (order, problem) = match (&r.nsswitch_hosts, r.nsswitch_present) {
        (_, false) => (
            "none (no /etc/nsswitch.conf)".to_owned(),
            "without /etc/nsswitch.conf Go's resolver may query DNS before /etc/hosts (and glibc falls back to its built-in order)".to_owned(),
        ),
        (None, true) => ("none (nsswitch.conf has no hosts line)".to_owned(), "nsswitch.conf has no hosts: line, so the order is each resolver's default".to_owned()),
        (Some(srcs), true) => {
            let files = srcs.iter().position(|s| s == "files");
            let dns = srcs.iter().position(|s| s == "dns" || s == "resolve");
            match (files, dns) {
                (Some(f), Some(d)) if d < f => (srcs.join(" "), "nsswitch.conf asks DNS before /etc/hosts".to_owned()),
                (None, Some(_)) => (srcs.join(" "), "nsswitch.conf never consults /etc/hosts".to_owned()),
                _ => return,
            }
        }
    };
    let leaked = if names.contains(&"localhost") {
        "localhost".to_owned()
    } else {
        names.first().map_or_else(|| "localhost".to_owned(), |n| (*n).to_owned())
    };
    let mut f = Finding::new(
        CaseId::ResolverOrder,
        Severity::Warning,
        Subject::Name { name: leaked.clone() },
        format!(
            "resolver order in {}: {problem}; '{leaked}' and the other {} /etc/hosts names can be sent to DNS first",
            r.root,
            names.len().saturating_sub(1)
        ),
    )
    .with(Evidence::text("order", order))
    .with(Evidence::text("root", r.root.clone()))
    .with(Evidence::text("libc", format!("{:?}", r.libc).to_lowercase()))
    .with_measure("hosts_names", names.len() as f64, "count")
    .with_measure("nsswitch_present", if r.nsswitch_present { 1.0 } else { 0.0 }, "bool");
    if let Some(rc) = &r.resolv_conf {
        f = f.with(Evidence::text("nameservers", rc.nameservers.join(" ")));
    }
    if let Some(n) = ns(ev) {
        f = f.with(Evidence::text("netns", n));
    }
    if r.libc == Libc::Musl {
        f = f.with(Evidence::text(
            "note",
            "musl itself always reads /etc/hosts first; the risk is programs with their own resolver (Go)",
        ));
    }
    out.push(f.with_fix("create /etc/nsswitch.conf with 'hosts: files dns' in this root (image); GODEBUG=netdns=go+2 prints the order a Go program uses"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::empty;

    #[test]
    fn missing_nsswitch_is_named() {
        let mut ev = empty();
        ev.resolver.nsswitch_present = false;
        ev.resolver.nsswitch_hosts = None;
        ev.resolver.hosts = vec![("127.0.0.1".parse().unwrap(), vec!["localhost".into()])];
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, Subject::Name { name: "localhost".into() });
    }

    #[test]
    fn files_first_is_silent() {
        let ev = empty();
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty());
    }
}
