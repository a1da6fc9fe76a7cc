//! Resolver configuration: `resolv.conf`, `nsswitch.conf`, `/etc/hosts` and the libc flavour,
//! for the host, a container root (`--root`), a process (`/proc/P/root`) or a named netns
//! (with the `/etc/netns/NAME/` overrides that `ip netns exec` bind-mounts).

use serde::Serialize;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

/// `resolv.conf`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResolvConf {
    /// `nameserver` lines.
    pub nameservers: Vec<String>,
    /// `search` domains.
    pub search: Vec<String>,
    /// Every option word as written.
    pub options: Vec<String>,
    /// `ndots:N` (default 1).
    pub ndots: u32,
    /// `timeout:N` seconds (default 5).
    pub timeout_s: u32,
    /// `attempts:N` (default 2).
    pub attempts: u32,
    /// `single-request`.
    pub single_request: bool,
    /// `single-request-reopen`.
    pub single_request_reopen: bool,
    /// `use-vc` (TCP).
    pub use_vc: bool,
}

/// Parses `resolv.conf`.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut r = ResolvConf { ndots: 1, timeout_s: 5, attempts: 2, ..ResolvConf::default() };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => r.nameservers.extend(w.next().map(str::to_owned)),
            Some("search" | "domain") => r.search = w.map(str::to_owned).collect(),
            Some("options") => {
                for o in w {
                    r.options.push(o.to_owned());
                    match o.split_once(':') {
                        Some(("ndots", v)) => r.ndots = v.parse().unwrap_or(r.ndots),
                        Some(("timeout", v)) => r.timeout_s = v.parse().unwrap_or(r.timeout_s),
                        Some(("attempts", v)) => r.attempts = v.parse().unwrap_or(r.attempts),
                        _ => match o {
                            "single-request" => r.single_request = true,
                            "single-request-reopen" => r.single_request_reopen = true,
                            "use-vc" | "usevc" => r.use_vc = true,
                            _ => {}
                        },
                    }
                }
            }
            _ => {}
        }
    }
    r
}

/// The `hosts:` sources of `nsswitch.conf` (`["files", "dns"]`), `None` when no hosts line.
pub fn parse_nsswitch_hosts(text: &str) -> Option<Vec<String>> {
    text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("");
        let rest = l.trim_start().strip_prefix("hosts:")?;
        Some(rest.split_whitespace().filter(|w| !w.starts_with('[')).map(str::to_owned).collect())
    })
}

/// `/etc/hosts` entries: (address, names).
pub fn parse_hosts(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or("");
            let mut w = l.split_whitespace();
            let ip: IpAddr = w.next()?.parse().ok()?;
            let names: Vec<String> = w.map(str::to_owned).collect();
            (!names.is_empty()).then_some((ip, names))
        })
        .collect()
}

/// The C library that resolves names in that root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// glibc: honours `single-request(-reopen)`, `use-vc`, nsswitch.conf.
    Glibc,
    /// musl: ignores those options and nsswitch.conf; always files then DNS.
    Musl,
    /// No C library mapped (a static binary such as a Go program with its own resolver).
    Static,
    /// Not determined.
    Unknown,
}

/// Classifies the libc from a `/proc/P/maps` body.
pub fn libc_from_maps(maps: &str) -> Libc {
    if maps.contains("ld-musl") || maps.contains("libc.musl") {
        Libc::Musl
    } else if maps.contains("libc.so.6") || maps.contains("libc-2.") {
        Libc::Glibc
    } else if maps.lines().any(|l| l.contains('/')) {
        Libc::Static
    } else {
        Libc::Unknown
    }
}

/// Classifies the libc from the file names in a root's lib directories.
pub fn libc_from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Libc {
    let mut out = Libc::Unknown;
    for n in names {
        if n.starts_with("ld-musl-") || n.starts_with("libc.musl") {
            return Libc::Musl;
        }
        if n.starts_with("ld-linux") || n == "libc.so.6" {
            out = Libc::Glibc;
        }
    }
    out
}

/// The resolver configuration that applies, with where each file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolver {
    /// The root it was read under (`/`, a `--root`, `/proc/P/root`).
    pub root: String,
    /// `resolv.conf`, if present.
    pub resolv_conf: Option<ResolvConf>,
    /// Whether `nsswitch.conf` exists.
    pub nsswitch_present: bool,
    /// Its `hosts:` line, if any.
    pub nsswitch_hosts: Option<Vec<String>>,
    /// `/etc/hosts` entries.
    pub hosts: Vec<(IpAddr, Vec<String>)>,
    /// The libc flavour.
    pub libc: Libc,
    /// The files read (after overrides and symlinks).
    pub files: Vec<String>,
}

/// Resolves `rel` (an absolute path inside the root) under `root`, following symlinks as the
/// root's owner would see them (absolute links stay inside the root). At most 16 hops.
pub fn path_in_root(root: &Path, rel: &Path) -> PathBuf {
    let mut cur = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = rel.components().rev().map(|c| PathBuf::from(c.as_os_str())).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.components().next() {
            Some(Component::RootDir) => cur = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                cur.pop();
            }
            Some(Component::Normal(n)) => {
                let cand = cur.join(n);
                let host = root.join(cand.strip_prefix("/").unwrap_or(&cand));
                match std::fs::read_link(&host) {
                    Ok(t) if hops < 16 => {
                        hops += 1;
                        if t.is_absolute() {
                            cur = PathBuf::from("/");
                        }
                        for comp in t.components().rev() {
                            todo.push(PathBuf::from(comp.as_os_str()));
                        }
                    }
                    _ => cur = cand,
                }
            }
            _ => {}
        }
    }
    root.join(cur.strip_prefix("/").unwrap_or(&cur))
}

/// Reads the resolver configuration. `root` is the filesystem root (`/` for the host);
/// `netns` is a `/var/run/netns` name whose `/etc/netns/NAME/` files override; `pid` selects
/// that process's libc from its memory map.
pub fn read(root: &Path, netns: Option<&str>, pid: Option<u32>) -> Resolver {
    let mut files = Vec::new();
    let mut get = |name: &str| -> Option<String> {
        if let Some(ns) = netns {
            let p = Path::new("/etc/netns").join(ns).join(name);
            if let Ok(t) = std::fs::read_to_string(&p) {
                files.push(p.display().to_string());
                return Some(t);
            }
        }
        let p = path_in_root(root, &Path::new("/etc").join(name));
        let t = std::fs::read_to_string(&p).ok()?;
        files.push(p.display().to_string());
        Some(t)
    };
    let resolv_conf = get("resolv.conf").map(|t| parse_resolv_conf(&t));
    let nss = get("nsswitch.conf");
    let hosts = get("hosts").map(|t| parse_hosts(&t)).unwrap_or_default();
    let libc = match pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/maps")).ok()) {
        Some(m) => libc_from_maps(&m),
        None => {
            let mut names = Vec::new();
            for d in [
                "/lib",
                "/lib64",
                "/usr/lib",
                "/lib/x86_64-linux-gnu",
                "/lib/aarch64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu",
            ] {
                if let Ok(rd) = std::fs::read_dir(path_in_root(root, Path::new(d))) {
                    names.extend(rd.flatten().filter_map(|e| e.file_name().into_string().ok()));
                }
            }
            libc_from_names(names.iter().map(String::as_str))
        }
    };
    Resolver {
        root: root.display().to_string(),
        resolv_conf,
        nsswitch_present: nss.is_some(),
        nsswitch_hosts: nss.as_deref().and_then(parse_nsswitch_hosts),
        hosts,
        libc,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_options() {
        let r = parse_resolv_conf(
            "# c\nnameserver 10.96.0.10\nsearch a.svc b.svc\noptions ndots:5 timeout:2 single-request-reopen\n",
        );
        assert_eq!(r.nameservers, vec!["10.96.0.10"]);
        assert_eq!(r.ndots, 5);
        assert_eq!(r.timeout_s, 2);
        assert!(r.single_request_reopen && !r.single_request && !r.use_vc);
        assert_eq!(parse_resolv_conf("").timeout_s, 5);
    }

    #[test]
    fn nsswitch_and_hosts() {
        assert_eq!(
            parse_nsswitch_hosts("passwd: files\nhosts: dns [NOTFOUND=return] files\n"),
            Some(vec!["dns".to_owned(), "files".to_owned()])
        );
        assert_eq!(parse_nsswitch_hosts("passwd: files\n"), None);
        let h = parse_hosts("127.0.0.1 localhost\n::1 localhost ip6-localhost\n# x\nbad line\n10.0.0.5 db db.local\n");
        assert_eq!(h.len(), 3);
        assert_eq!(h[2].1, vec!["db", "db.local"]);
    }

    #[test]
    fn libc_flavours() {
        assert_eq!(libc_from_maps("7f r-xp /lib/ld-musl-x86_64.so.1\n"), Libc::Musl);
        assert_eq!(libc_from_maps("7f r-xp /usr/lib/x86_64-linux-gnu/libc.so.6\n"), Libc::Glibc);
        assert_eq!(libc_from_maps("400000 r-xp /usr/local/bin/app\n"), Libc::Static);
        assert_eq!(libc_from_names(["ld-musl-x86_64.so.1"]), Libc::Musl);
        assert_eq!(libc_from_names(["libc.so.6", "libm.so.6"]), Libc::Glibc);
    }

    #[test]
    fn absolute_symlinks_stay_in_root() {
        let d = std::env::temp_dir().join(format!("nch-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::create_dir_all(d.join("run")).unwrap();
        std::fs::write(d.join("run/resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
        std::os::unix::fs::symlink("/run/resolv.conf", d.join("etc/resolv.conf")).unwrap();
        let r = read(&d, None, None);
        assert_eq!(r.resolv_conf.unwrap().nameservers, vec!["192.0.2.53"]);
        assert!(!r.nsswitch_present);
        let _ = std::fs::remove_dir_all(&d);
    }
}
