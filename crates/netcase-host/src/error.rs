//! Errors of host evidence collection.

use std::path::PathBuf;

/// What went wrong while reading host evidence.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A netlink socket operation failed.
    #[error("netlink {what}: {source}")]
    Netlink {
        /// Which step (`socket`, `send`, `recv`).
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel answered a netlink request with an error code.
    #[error("netlink request {what} refused: errno {errno}")]
    NetlinkErrno {
        /// Which request.
        what: &'static str,
        /// The (positive) errno.
        errno: i32,
    },
    /// A message or file body did not parse.
    #[error("malformed {what} at offset {offset}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Byte offset (or line number for text).
        offset: usize,
        /// Why.
        reason: &'static str,
    },
    /// A network namespace could not be entered.
    #[error("cannot enter netns {name}: {source}")]
    Setns {
        /// The namespace.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// A worker thread panicked or could not be spawned.
    #[error("netns worker thread failed: {0}")]
    Thread(String),
    /// A namespace, pid or root given by the user does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// Result of host evidence collection.
pub type Result<T> = std::result::Result<T, Error>;
