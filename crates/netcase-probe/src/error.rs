//! Errors of the probes: what could not be set up (a bad target, no privilege, a socket
//! that could not be made). What happens to a probe once it is sent (a timeout, a reset) is
//! data in the report, not an error.

use std::io;

/// An error that stops a probe run before it measured anything.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target could not be parsed or resolved.
    #[error("bad target '{target}': {reason}")]
    Target {
        /// The target as given.
        target: String,
        /// Why it is not usable.
        reason: String,
    },
    /// A measurement needs root (raw sockets).
    #[error("{0} needs root (raw sockets); run it with sudo")]
    NeedsRoot(&'static str),
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// TLS could not be configured.
    #[error("tls: {0}")]
    Tls(String),
    /// An option is out of range.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }
}

/// The result of a probe run.
pub type Result<T> = std::result::Result<T, Error>;
