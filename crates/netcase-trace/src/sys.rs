//! Every `unsafe` of netcase-trace lives here: system calls and the shared ring memory.
//!
//! * `perf_event_open(2)` on a tracepoint id, one event per CPU, and the ioctls that enable it,
//!   disable it and point several events at one ring (`PERF_EVENT_IOC_SET_OUTPUT`).
//! * The ring buffer: `mmap` of one control page plus 2^n data pages per CPU, shared with the
//!   kernel. The kernel advances `data_head` (read with acquire ordering) and never overwrites
//!   bytes between `data_tail` and `data_head`, because the mapping is writable (the
//!   "no overwrite" mode); netcase copies each record out and then advances `data_tail` with
//!   release ordering. When the ring is full the kernel drops samples and later writes a
//!   `PERF_RECORD_LOST` with their number.
//! * `poll(2)` on the event descriptors, `mount(2)`/`umount2(2)` of tracefs, `setns(2)` into a
//!   named network namespace on a helper thread, and a SIGINT/SIGTERM handler that only sets a
//!   flag.
//!
//! Detaching is closing: every event is an `OwnedFd`, every ring unmaps in `Drop`, so the
//! tracer detaches on normal exit, on an early return, during a panic's unwinding, and — by
//! the kernel closing the descriptors — when the process is killed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_CPU: u64 = 1 << 7;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_WATERMARK: u64 = 1 << 14;
const ATTR_USE_CLOCKID: u64 = 1 << 25;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;
/// `PERF_ATTR_SIZE_VER5`: the layout below.
const ATTR_SIZE: u32 = 112;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (every kernel since 4.1 accepts it).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_watermark: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == ATTR_SIZE as usize);

/// Opens a tracepoint event on one CPU for all tasks, disabled, sampling every hit with
/// TIME | CPU | RAW on CLOCK_MONOTONIC. `wakeup_bytes` is the ring fill level that wakes
/// `poll`.
pub(crate) fn open_tracepoint(id: u16, cpu: u32, wakeup_bytes: u32) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: ATTR_SIZE,
        config: u64::from(id),
        sample_period: 1,
        sample_type: PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW,
        flags: ATTR_DISABLED | ATTR_WATERMARK | ATTR_USE_CLOCKID,
        wakeup_watermark: wakeup_bytes,
        clockid: libc::CLOCK_MONOTONIC,
        ..Default::default()
    };
    let cpu = libc::c_int::try_from(cpu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `attr` is a valid, fully initialised perf_event_attr of the size it declares and
    // outlives the call; the other arguments are plain integers (pid -1 = every task).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&attr),
            -1 as libc::pid_t,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(fd: &OwnedFd, req: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the perf ioctls used here take an integer argument (0 or a descriptor); `fd`
    // is a live perf event descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Starts counting/sampling.
pub(crate) fn enable(fd: &OwnedFd) -> io::Result<()> {
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
}

/// Stops sampling (the event stays attached until its descriptor closes).
pub(crate) fn disable(fd: &OwnedFd) -> io::Result<()> {
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
}

/// Sends `fd`'s samples into the ring of `target` (same CPU).
pub(crate) fn set_output(fd: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
    let t = libc::c_ulong::try_from(target.as_raw_fd()).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, t)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|p| *p > 0).unwrap_or(4096)
}

/// One CPU's perf ring buffer, mapped from the event descriptor that owns it.
pub(crate) struct PerfRing {
    fd: OwnedFd,
    base: *mut u8,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
}

// SAFETY: the mapping is owned by this value alone; the kernel side is synchronised through
// the head/tail protocol, not through Rust references.
unsafe impl Send for PerfRing {}

/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;
const DATA_OFFSET: usize = 1040;
const DATA_SIZE: usize = 1048;

/// What one drain saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Drained {
    /// Records handed to the callback.
    pub records: u64,
    /// Times the ring held a record header that made no sense; the rest was skipped.
    pub corrupt: u64,
}

impl PerfRing {
    /// Maps `data_pages` (a power of two) data pages for `fd`.
    pub(crate) fn map(fd: OwnedFd, data_pages: usize) -> io::Result<Self> {
        if !data_pages.is_power_of_two() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let page = page_size();
        let map_len = page.checked_mul(data_pages + 1).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh shared mapping of a perf descriptor; the kernel validates the size.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        let mut ring = PerfRing { fd, base, map_len, data_offset: page, data_size: page * data_pages };
        // Kernels since 4.1 say where the data area is; older ones leave zeros.
        let (off, size) =
            (ring.control(DATA_OFFSET).load(Ordering::Relaxed), ring.control(DATA_SIZE).load(Ordering::Relaxed));
        if off != 0 && size != 0 {
            if let (Ok(off), Ok(size)) = (usize::try_from(off), usize::try_from(size)) {
                if off.checked_add(size).is_some_and(|end| end <= map_len) && size.is_power_of_two() {
                    ring.data_offset = off;
                    ring.data_size = size;
                }
            }
        }
        Ok(ring)
    }

    /// The descriptor that owns this ring.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn control(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset + 8 <= self.map_len && offset & 7 == 0);
        // SAFETY: `offset` is one of the 8-byte-aligned u64 fields of the control page, inside
        // the mapping, which lives as long as `self`; the kernel updates it concurrently, so it
        // is only ever accessed atomically.
        unsafe { &*self.base.add(offset).cast::<AtomicU64>() }
    }

    /// Copies `len` bytes at ring position `pos` (wrapping) into `out`.
    fn copy_out(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(len);
        let size = self.data_size;
        // data_size is a power of two, so the mask is the modulo.
        let start = (pos as usize) & (size - 1);
        let first = len.min(size - start);
        // SAFETY: `start + first <= data_size` and `len - first <= data_size`, both inside the
        // data area of the mapping; the bytes lie between data_tail and data_head, which the
        // kernel finished writing (acquire on data_head) and will not touch until data_tail
        // moves past them. `out` has capacity for `len` bytes.
        unsafe {
            let data = self.base.add(self.data_offset);
            std::ptr::copy_nonoverlapping(data.add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), len - first);
            out.set_len(len);
        }
    }

    /// Hands every complete record in the ring to `f` (as one contiguous byte slice, header
    /// included) and frees the space.
    pub(crate) fn drain(&mut self, scratch: &mut Vec<u8>, mut f: impl FnMut(&[u8])) -> Drained {
        let mut d = Drained::default();
        let head = self.control(DATA_HEAD).load(Ordering::Acquire);
        let mut tail = self.control(DATA_TAIL).load(Ordering::Relaxed);
        while tail < head {
            let avail = head - tail;
            self.copy_out(tail, crate::perf_record::HEADER_LEN.min(avail as usize), scratch);
            let size = crate::perf_record::header(scratch).map_or(0, |(_, s)| s);
            if size < crate::perf_record::HEADER_LEN || size as u64 > avail || size > self.data_size {
                d.corrupt += 1;
                tail = head;
                break;
            }
            self.copy_out(tail, size, scratch);
            f(scratch);
            d.records += 1;
            tail += size as u64;
        }
        self.control(DATA_TAIL).store(tail, Ordering::Release);
        d
    }
}

impl Drop for PerfRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are exactly what mmap returned; nothing borrows the mapping
        // past `self`.
        unsafe {
            libc::munmap(self.base.cast(), self.map_len);
        }
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes. EINTR is not an error.
pub(crate) fn poll_readable(fds: &[&OwnedFd], timeout_ms: i32) -> io::Result<()> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let n = libc::nfds_t::try_from(pfds.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `pfds` is a valid array of `n` pollfd structures for the duration of the call.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), n, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Mounts a tracefs instance at `dir`.
pub(crate) fn mount_tracefs(dir: &Path) -> io::Result<()> {
    let target = cpath(dir)?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call; no data argument.
    let r = unsafe { libc::mount(c"nodev".as_ptr(), target.as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Lazily unmounts `dir`.
pub(crate) fn unmount(dir: &Path) -> io::Result<()> {
    let target = cpath(dir)?;
    // SAFETY: `target` is a valid NUL-terminated path.
    let r = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// While alive, SIGINT and SIGTERM set a flag instead of killing the process, so a trace can
/// stop, detach and print what it gathered. The previous handlers come back on drop.
pub struct StopOnSignals {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl StopOnSignals {
    /// Installs the handlers and clears the flag.
    pub fn install() -> io::Result<Self> {
        STOP.store(false, Ordering::SeqCst);
        let mut old = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: sigaction structures are plain data; zeroed is a valid empty mask/flags.
            let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SAFETY: as above.
            let mut prev: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are valid for the call; the handler only stores an atomic,
            // which is async-signal-safe.
            let r = unsafe { libc::sigaction(sig, &act, &mut prev) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            old.push((sig, prev));
        }
        Ok(StopOnSignals { old })
    }

    /// Whether a signal asked to stop.
    pub fn requested(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

impl Drop for StopOnSignals {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restores the action sigaction returned earlier.
            unsafe {
                libc::sigaction(*sig, prev, std::ptr::null_mut());
            }
        }
    }
}

/// Runs `f` on a helper thread that has joined the network namespace `netns` (a name under
/// `/run/netns`, or a path such as `/proc/PID/ns/net`). Inside `f`, sockets belong to that
/// namespace and `/proc/thread-self/net/*` shows its counters (`/proc/net` would show the
/// process's, since it follows the main thread).
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> crate::Result<T> {
    let path = if netns.contains('/') { std::path::PathBuf::from(netns) } else { Path::new("/run/netns").join(netns) };
    let err = |source| crate::Error::Netns { name: netns.to_owned(), source };
    let file = std::fs::File::open(&path).map_err(err)?;
    std::thread::scope(|s| {
        let h = s.spawn(move || -> io::Result<T> {
            // SAFETY: `file` is an open namespace descriptor; setns only changes this thread.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        });
        match h.join() {
            Ok(r) => r.map_err(err),
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// CLOCK_MONOTONIC now, in ns (the clock perf samples are stamped with).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if r < 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}
