//! Errors of the tracing layer.

use std::path::PathBuf;

/// What went wrong while reading kernel trace evidence.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of tracefs, procfs or sysfs could not be read.
    // The cause is the error's source: printed once by whoever prints the chain.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A tracepoint format file did not parse.
    #[error("tracepoint format {event}: {what}")]
    Format {
        /// The event (`skb/kfree_skb`) or `?` when not known yet.
        event: String,
        /// What is wrong with it.
        what: String,
    },
    /// The running kernel has no such tracepoint.
    #[error("the kernel has no tracepoint {0} (is it older than the tracepoint, or built without it?)")]
    NoTracepoint(String),
    /// tracefs is not mounted and could not be mounted.
    #[error("tracefs is not mounted and mounting it failed")]
    NoTracefs(#[source] std::io::Error),
    /// Kernel tracing needs privilege this process does not have (the reason says which).
    #[error(
        "kernel tracing needs root ({0}); run it with sudo. Without privilege, `netcase check` reads the kernel's \
         drop and retransmission counters (/proc/net/snmp, /proc/net/netstat, softnet_stat) by layer"
    )]
    NoPrivilege(String),
    /// A system call failed.
    #[error("{call}")]
    Sys {
        /// The call and its object (`perf_event_open skb/kfree_skb cpu 1`).
        call: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A named network namespace does not exist or cannot be entered.
    #[error("network namespace {name}")]
    Netns {
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn format(event: &str, what: impl Into<String>) -> Self {
        Error::Format { event: event.to_owned(), what: what.into() }
    }
    pub(crate) fn sys(call: impl Into<String>, source: std::io::Error) -> Self {
        Error::Sys { call: call.into(), source }
    }
}
