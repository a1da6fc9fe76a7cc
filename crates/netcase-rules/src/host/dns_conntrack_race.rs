//! dns-conntrack-race-5s: the resolver sends A and AAAA at once from one socket; conntrack's
//! insert race drops one and the lookup waits the resolv.conf timeout (5 s). A risk when the
//! libc sends them in parallel without the options that avoid it (or is musl, which ignores
//! them) and conntrack insert_failed grows.

use super::ns;
use netcase_host::resolver::Libc;
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let (Some(rc), Some(ct)) = (&ev.resolver.resolv_conf, &ev.conntrack) else { return };
    if rc.nameservers.is_empty() {
        return;
    }
    let libc = ev.resolver.libc;
    let protected = match libc {
        Libc::Musl => false,
        _ => rc.single_request || rc.single_request_reopen || rc.use_vc,
    };
    if protected {
        return;
    }
    let failed = ct.totals.get("insert_failed").copied().unwrap_or(0);
    let rate = ct.per_s.get("insert_failed").copied();
    let active = rate.map_or(failed > 0, |r| r > 0.0);
    if !active {
        return;
    }
    let fix = match libc {
        Libc::Musl => "musl ignores single-request options: run a node-local DNS cache, or resolve over TCP in the application; or switch the image to glibc",
        _ => "add 'options single-request-reopen' (or single-request, or use-vc) to resolv.conf; a node-local DNS cache avoids the DNAT race entirely",
    };
    let mut f = Finding::new(
        CaseId::DnsConntrackRace5s,
        if rate.is_some() { Severity::Warning } else { Severity::Info },
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        format!(
            "parallel A/AAAA lookups ({libc:?} libc, options '{}') while conntrack insert_failed is {failed}: lookups can stall for the {} s resolver timeout",
            rc.options.join(" "),
            rc.timeout_s
        ),
    )
    .with_measure("insert_failed", failed as f64, "count")
    .with_measure("timeout_s", f64::from(rc.timeout_s), "s")
    .with(Evidence::text("libc", format!("{libc:?}").to_lowercase()))
    .with(Evidence::text("nameservers", rc.nameservers.join(" ")))
    .with(Evidence::Counter { name: "conntrack.insert_failed".into(), value: failed, per_s: rate });
    if let Some(r) = rate {
        f = f.with_measure("insert_failed_per_s", r, "per_s");
    }
    out.push(f.with_fix(fix));
}
