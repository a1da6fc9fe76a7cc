//! Packet capture inside a lab namespace with an AF_PACKET socket, written as classic pcap
//! (nanosecond timestamps, Ethernet link type). Timestamps are the kernel's (SIOCGSTAMPNS).
//!
//! On loopback every packet passes twice (out, then in); like libpcap, only the incoming copy
//! is kept.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// ioctl returning the kernel receive time of the last packet read.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// Frames kept at most per capture (a lab that needs more is doing something wrong).
pub const MAX_FRAMES: usize = 200_000;

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Kernel receive time, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// The frame from its Ethernet header on.
    pub data: Vec<u8>,
}

/// A running capture.
pub struct Capture {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<Vec<Frame>>>>,
}

impl Drop for Capture {
    /// A capture dropped without [`Capture::stop`] (a lab that failed) stops its thread.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An AF_PACKET socket bound to one interface (or all when `iface` is `None`) in the calling
/// thread's namespace; returns the descriptor and the ifindex bound (0 = all).
pub(crate) fn packet_socket(iface: Option<&str>) -> Result<(std::os::fd::OwnedFd, i32)> {
    use std::os::fd::FromRawFd;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket (needs root)");
    }
    // SAFETY: fd is a fresh descriptor we own.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut ifindex = 0i32;
    if let Some(name) = iface {
        let c = std::ffi::CString::new(name)?;
        // SAFETY: c is a valid NUL-terminated string.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if idx == 0 {
            bail!("no interface {name} in this namespace");
        }
        ifindex = idx as i32;
    }
    // SAFETY: zeroed sockaddr_ll is a valid value; we fill the fields bind needs.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    // SAFETY: sll is a sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(fd, std::ptr::addr_of!(sll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("bind AF_PACKET socket");
    }
    let bufsz: libc::c_int = 8 << 20;
    // SAFETY: setsockopt with an int option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::addr_of!(bufsz).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok((owned, ifindex))
}

/// Sets SO_RCVTIMEO on a descriptor.
pub(crate) fn set_rcvtimeo(fd: i32, d: Duration) {
    let tv = libc::timeval { tv_sec: d.as_secs() as libc::time_t, tv_usec: d.subsec_micros() as libc::suseconds_t };
    // SAFETY: setsockopt with a timeval.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

impl Capture {
    /// Starts capturing in namespace `ns` on `iface` (all interfaces when `None`). Returns once
    /// the socket is bound, so traffic started afterwards is seen.
    pub fn start(ns: &str, iface: Option<&str>) -> Result<Capture> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let stop2 = stop.clone();
        let iface = iface.map(str::to_owned);
        let handle = crate::ns::spawn(ns, move || {
            use std::os::fd::AsRawFd;
            let (sock, _) = match packet_socket(iface.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    let msg = format!("{e:#}");
                    let _ = ready_tx.send(Err(e));
                    bail!("{msg}");
                }
            };
            let fd = sock.as_raw_fd();
            set_rcvtimeo(fd, Duration::from_millis(50));
            let on: libc::c_int = 1;
            // SAFETY: enabling kernel timestamps with an int option.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    std::ptr::addr_of!(on).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            let _ = ready_tx.send(Ok(()));
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            let end = std::time::Instant::now() + crate::LAB_LIMIT + Duration::from_secs(30);
            while !stop2.load(Ordering::Relaxed) && frames.len() < MAX_FRAMES && std::time::Instant::now() < end {
                // SAFETY: zeroed sockaddr_ll is valid; recvfrom fills it up to len.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buf is writable for buf.len() bytes; from/len describe a sockaddr_ll.
                let n = unsafe {
                    libc::recvfrom(
                        fd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        std::ptr::addr_of_mut!(from).cast(),
                        &mut len,
                    )
                };
                if n < 0 {
                    continue; // timeout (EAGAIN) or EINTR: look at the stop flag again
                }
                // Loopback: keep only the incoming copy.
                if from.sll_pkttype == libc::PACKET_OUTGOING && from.sll_hatype == libc::ARPHRD_LOOPBACK {
                    continue;
                }
                // SAFETY: zeroed timespec; the ioctl fills it.
                let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
                // SAFETY: SIOCGSTAMPNS writes a timespec.
                let rc = unsafe { libc::ioctl(fd, SIOCGSTAMPNS as _, std::ptr::addr_of_mut!(ts)) };
                let ts_ns = if rc == 0 { ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64 } else { now_ns() };
                let n = (n as usize).min(buf.len());
                frames.push(Frame { ts_ns, data: buf.get(..n).unwrap_or_default().to_vec() });
            }
            Ok(frames)
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Capture { stop, handle: Some(handle) }),
            Ok(Err(e)) => Err(e),
            Err(_) => bail!("capture in {ns} did not start"),
        }
    }

    /// Waits `grace` for the last packets, stops, and returns the frames in time order.
    pub fn stop(mut self, grace: Duration) -> Result<Vec<Frame>> {
        std::thread::sleep(grace);
        self.stop.store(true, Ordering::Relaxed);
        let Some(handle) = self.handle.take() else { return Ok(Vec::new()) };
        let mut frames = crate::ns::join(handle)?;
        frames.sort_by_key(|f| f.ts_ns);
        Ok(frames)
    }
}

/// Now, nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Writes frames as a classic pcap file with nanosecond timestamps (magic a1b23c4d).
pub fn write_pcap(path: &Path, frames: &[Frame]) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    w.write_all(&0xa1b2_3c4d_u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
    for fr in frames {
        let sec = (fr.ts_ns / 1_000_000_000) as u32;
        let nsec = (fr.ts_ns % 1_000_000_000) as u32;
        let len = fr.data.len() as u32;
        w.write_all(&sec.to_le_bytes())?;
        w.write_all(&nsec.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&fr.data)?;
    }
    w.flush()?;
    Ok(())
}
