//! netcase-host: evidence from the live host, read-only.
//!
//! What `ss`, `nstat`, `sysctl`, `conntrack -S`, `iptables-save`, `ip addr` and a look at
//! `/etc` tell an expert, per network namespace: sockets through netlink `sock_diag` (with
//! `tcp_info`, memory, timers and owning processes), counters as rates, sysctls, conntrack
//! statistics, netfilter rules, interface addresses and the resolver configuration.
//!
//! Every parser is sans-I/O (it takes the file body or the netlink buffer); [`collect`] is the
//! thin shell that reads them. Nothing here writes to the system.

mod error;
mod evidence;
pub mod netfilter;
pub mod netns;
pub mod nft;
pub mod procnet;
pub mod procs;
mod reader;
pub mod resolver;
pub mod rtnl;
pub mod sockdiag;

pub use error::{Error, Result};
pub use evidence::{
    collect, privileged, run_tool, which, Conntrack, HostEvidence, NetnsAddrs, Options, Target, Unavailable, SYSCTLS,
};
pub use netns::NetnsRef;
pub use sockdiag::{Proto, Socket, TcpState, TimerKind};
