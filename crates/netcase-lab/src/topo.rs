//! The shape most labs share, in one place: a client and a server namespace on one veth pair
//! (or through the delay/loss relay), a TCP listener in the server namespace, the capture on
//! one end's `eth0` ([`TcpLabBuilder`]); a server thread that accepts one connection or serves
//! each of several on its own thread ([`serve_one`], [`serve_each`]); client threads in the
//! client namespace ([`clients`], [`join_ok`]).
//!
//! Every accept and connect stays bounded in time as in [`crate::apps`]; the namespaces, the
//! relay and the capture are owned by the [`Ctx`] and removed on every exit path as before.

use crate::apps::{accept_timeout, listen_with};
use crate::relay::{Relay, RelayCfg};
use crate::{ns, Ctx, Pair, Src};
use anyhow::Result;
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the labs' servers wait for each connection before they give up accepting.
pub const ACCEPT_WAIT: Duration = Duration::from_secs(3);

/// The listen(2) backlog a [`TcpLabBuilder`] uses unless told otherwise.
pub const DEFAULT_BACKLOG: i32 = 16;

/// One end of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client namespace (`c`, address .1).
    Client,
    /// The server namespace (`s`, address .2).
    Server,
}

impl Pair {
    /// The namespace at `end`.
    pub fn ns(&self, end: End) -> &str {
        match end {
            End::Client => &self.c,
            End::Server => &self.s,
        }
    }

    /// The diagnosis source of the namespace at `end` (`netcase check --netns NAME`).
    pub fn src(&self, end: End) -> Src {
        Src::Netns(self.ns(end).to_owned())
    }
}

/// Socket options a lab sets on its listener before listen(2).
type ListenOpts = Box<dyn FnOnce(&socket2::Socket) -> std::io::Result<()> + Send>;

/// A [`Pair`] with a TCP listener in the server namespace and the lab's capture running.
pub struct TcpLab {
    /// The namespaces and their addresses.
    pub p: Pair,
    /// Where the listener listens (the server's address, the lab's port).
    pub to: SocketAddrV4,
    /// The listener (not accepting until a server thread does).
    pub l: TcpListener,
}

/// Builds a [`TcpLab`] (see [`Ctx::tcp_lab`]): the namespaces, then the sysctls in the order
/// given, then the listener, then the capture.
#[must_use = "a builder does nothing until build() or build_relayed()"]
pub struct TcpLabBuilder<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    port: u16,
    backlog: i32,
    sysctls: Vec<(End, &'static str, String)>,
    opts: Option<ListenOpts>,
    capture: End,
}

impl<'a> Ctx<'a> {
    /// Starts the common TCP lab: client `c` and server `s` ([`Ctx::pair`]), a listener on
    /// the server's address and `port` with backlog [`DEFAULT_BACKLOG`], the capture on the
    /// client's `eth0`. The builder's methods change any of these.
    pub fn tcp_lab(&mut self, port: u16) -> TcpLabBuilder<'_, 'a> {
        TcpLabBuilder {
            ctx: self,
            port,
            backlog: DEFAULT_BACKLOG,
            sysctls: Vec::new(),
            opts: None,
            capture: End::Client,
        }
    }
}

impl TcpLabBuilder<'_, '_> {
    /// The listener's listen(2) backlog.
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets sysctl `key` (dotted) to `value` in the namespace at `end` before the listener is
    /// made.
    pub fn sysctl(mut self, end: End, key: &'static str, value: impl Into<String>) -> Self {
        self.sysctls.push((end, key, value.into()));
        self
    }

    /// Socket options set on the listener before listen(2) (they are inherited by the
    /// accepted sockets).
    pub fn listen_opts(mut self, opts: impl FnOnce(&socket2::Socket) -> std::io::Result<()> + Send + 'static) -> Self {
        self.opts = Some(Box::new(opts));
        self
    }

    /// Captures on the `eth0` of the namespace at `end` (the client's by default).
    pub fn capture_at(mut self, end: End) -> Self {
        self.capture = end;
        self
    }

    /// Builds it on one veth pair.
    pub fn build(self) -> Result<TcpLab> {
        let p = self.ctx.pair()?;
        self.finish(p)
    }

    /// Builds it with the relay ([`Ctx::relayed_pair`]) between client and server; the caller
    /// stops the relay (after the capture) for its statistics.
    pub fn build_relayed(self, cfg: RelayCfg) -> Result<(TcpLab, Relay)> {
        let (p, relay) = self.ctx.relayed_pair(cfg)?;
        Ok((self.finish(p)?, relay))
    }

    fn finish(self, p: Pair) -> Result<TcpLab> {
        for (end, key, value) in &self.sysctls {
            ns::sysctl(p.ns(*end), key, value)?;
        }
        let to = SocketAddrV4::new(p.s_ip, self.port);
        let opts = self.opts.unwrap_or_else(|| Box::new(|_| Ok(())));
        let l = listen_with(&p.s, to, self.backlog, opts)?;
        self.ctx.capture(p.ns(self.capture), Some("eth0"))?;
        Ok(TcpLab { p, to, l })
    }
}

/// A server thread: accepts one connection on `l` (waiting at most [`ACCEPT_WAIT`]) and runs
/// `f` on it. The listener is closed when `f` returns.
pub fn serve_one<T: Send + 'static>(
    l: TcpListener,
    f: impl FnOnce(TcpStream) -> Result<T> + Send + 'static,
) -> JoinHandle<Result<T>> {
    std::thread::spawn(move || {
        let (s, _) = accept_timeout(&l, ACCEPT_WAIT)?;
        f(s)
    })
}

/// A server thread: accepts up to `n` connections on `l` (waiting at most [`ACCEPT_WAIT`] for
/// each; it stops accepting at the first wait that ends without one), runs `f` on each on a
/// thread of its own, and returns what the handlers returned (a handler that panicked is left
/// out) once all are done. The listener is closed after the last handler.
pub fn serve_each<T, F>(l: TcpListener, n: usize, f: F) -> JoinHandle<Vec<T>>
where
    T: Send + 'static,
    F: Fn(TcpStream) -> T + Clone + Send + 'static,
{
    std::thread::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..n {
            let Ok((s, _)) = accept_timeout(&l, ACCEPT_WAIT) else { break };
            let f = f.clone();
            handlers.push(std::thread::spawn(move || f(s)));
        }
        handlers.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// `n` client threads, each running `f` with the name of namespace `ns` (where it makes its
/// sockets, e.g. with [`crate::apps::connect`]).
pub fn clients<T, F>(ns: &str, n: usize, f: F) -> Vec<JoinHandle<Result<T>>>
where
    T: Send + 'static,
    F: Fn(&str) -> Result<T> + Clone + Send + 'static,
{
    (0..n)
        .map(|_| {
            let (ns, f) = (ns.to_owned(), f.clone());
            std::thread::spawn(move || f(&ns))
        })
        .collect()
}

/// Waits for the threads of [`clients`] and returns the results of those that succeeded, in
/// order (an error or a panic is left out).
pub fn join_ok<T>(threads: Vec<JoinHandle<Result<T>>>) -> Vec<T> {
    threads.into_iter().filter_map(|h| h.join().ok().and_then(Result::ok)).collect()
}
