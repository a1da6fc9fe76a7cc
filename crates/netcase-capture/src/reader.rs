//! The record reader: one buffer, refilled from the source, frames lent from it.

use netcase_wire::LinkType;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

/// The largest packet a record may carry (as Wireshark: 256 KiB). A larger length is damage.
pub const MAX_CAPLEN: u32 = 262_144;
/// The largest pcapng block netcase buffers (non-packet blocks such as name resolution can be
/// large, but not this large). A larger length is damage.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// How much is read from the source at a time.
const READ_CHUNK: usize = 4 * 1024 * 1024;
/// Read-ahead: bytes per chunk the reading thread fills.
const AHEAD_CHUNK: usize = 1024 * 1024;
/// Read-ahead: room kept in front of each chunk, where the unconsumed end of the previous
/// chunk (at most one partial record, usually) is moved so a record is never split.
const AHEAD_HEAD: usize = 128 * 1024;
/// Read-ahead: chunks in flight between the reading thread and the parser.
const AHEAD_CHUNKS: usize = 3;
/// How many skipped blocks are kept with their offsets (all are counted).
const MAX_SKIPPED_KEPT: usize = 32;

const PCAP_MAGIC_US: u32 = 0xA1B2_C3D4;
const PCAP_MAGIC_NS: u32 = 0xA1B2_3C4D;
const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

/// The container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::Pcapng => "pcapng",
        })
    }
}

/// One capture interface (pcap files have exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// Its link type.
    pub link: LinkType,
    /// Its snapshot length (0 = unlimited).
    pub snaplen: u32,
    /// Timestamp units per second (1e6 for microseconds, 1e9 for nanoseconds, ...).
    tsresol: TsResol,
    /// Offset added to every timestamp, seconds.
    tsoffset: i64,
}

impl Interface {
    /// Timestamp resolution as a decimal digit count when it is a power of ten, e.g. 6 for µs.
    pub fn ts_decimals(&self) -> Option<u8> {
        match self.tsresol {
            TsResol::Pow10(n) => Some(n),
            TsResol::Pow2(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsResol {
    Pow10(u8),
    Pow2(u8),
}

impl TsResol {
    /// Ticks to nanoseconds, saturating.
    fn to_ns(self, ticks: u64) -> i64 {
        let ns: u128 = match self {
            TsResol::Pow10(n) if n <= 9 => u128::from(ticks) * 10u128.pow(u32::from(9 - n)),
            TsResol::Pow10(n) => u128::from(ticks) / 10u128.pow(u32::from(n.min(38) - 9)),
            TsResol::Pow2(n) => (u128::from(ticks) * 1_000_000_000u128) >> n.min(127),
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

/// Facts about the capture, filled in while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureInfo {
    /// pcap or pcapng.
    pub format: CaptureFormat,
    /// The file was gzip-compressed.
    pub gzip: bool,
    /// Interfaces in order of description (pcapng: across sections).
    pub interfaces: Vec<Interface>,
    /// Frames returned so far.
    pub frames: u64,
    /// Captured bytes returned so far.
    pub captured_bytes: u64,
    /// Original (on the wire) bytes of the frames returned so far.
    pub wire_bytes: u64,
    /// Timestamp of the first frame, ns since the epoch.
    pub first_ts_ns: Option<i64>,
    /// Timestamp of the last frame, ns since the epoch.
    pub last_ts_ns: Option<i64>,
    /// Blocks skipped (unknown types, interface statistics, ...), counted.
    pub skipped_blocks: u64,
    /// Frames whose captured length was shorter than their original length.
    pub sliced_frames: u64,
}

/// A frame lent by the reader.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Frame number, 1-based, counting every packet record in file order (as tshark does).
    pub number: u64,
    /// Timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured length (`data.len()`).
    pub caplen: u32,
    /// Link type of the interface it was captured on.
    pub link: LinkType,
    /// Interface index (pcapng), 0 for pcap.
    pub interface: u32,
    /// File offset of the record (of the decompressed stream when gzip).
    pub offset: u64,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// What kind of damage stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The file header is shorter than its fixed size.
    TruncatedFileHeader,
    /// A record header (pcap) is cut short.
    TruncatedRecordHeader,
    /// A record's data (pcap) or a block (pcapng) is cut short.
    TruncatedRecord,
    /// A length field is impossible (above the maximum, below the minimum, not aligned).
    BadLength,
    /// pcapng leading and trailing block lengths differ.
    LengthMismatch,
    /// A block refers to an interface that was not described.
    UnknownInterface,
    /// A block's contents contradict its length.
    Malformed,
    /// The source failed to read (I/O or decompression error).
    Io,
}

impl DamageKind {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::TruncatedFileHeader => "truncated_file_header",
            DamageKind::TruncatedRecordHeader => "truncated_record_header",
            DamageKind::TruncatedRecord => "truncated_record",
            DamageKind::BadLength => "bad_length",
            DamageKind::LengthMismatch => "length_mismatch",
            DamageKind::UnknownInterface => "unknown_interface",
            DamageKind::Malformed => "malformed_block",
            DamageKind::Io => "read_error",
        }
    }
}

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// What.
    pub kind: DamageKind,
    /// File offset of the record or block that could not be read.
    pub offset: u64,
    /// The frame number that record would have had.
    pub frame: u64,
    /// A message with the numbers (lower case, no trailing period).
    pub message: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {} (frame {}): {}", self.kind.as_str(), self.offset, self.frame, self.message)
    }
}

/// A block passed over without being read (unknown type, statistics...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// File offset of the block.
    pub offset: u64,
    /// Its block type.
    pub block_type: u32,
    /// Its length.
    pub len: u32,
}

/// Why a capture could not be opened at all.
#[derive(Debug)]
pub enum CaptureError {
    /// The file could not be opened or read.
    Io(io::Error),
    /// The file is empty.
    Empty,
    /// The file is not pcap or pcapng (the first four bytes).
    NotACapture {
        /// The magic found.
        magic: u32,
    },
    /// The file header itself is damaged.
    Header(Damage),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io(e) => write!(f, "cannot read: {e}"),
            CaptureError::Empty => write!(f, "empty file: no capture header at offset 0"),
            CaptureError::NotACapture { magic } => {
                write!(f, "not a pcap or pcapng file: magic 0x{magic:08x} at offset 0")
            }
            CaptureError::Header(d) => write!(f, "damaged file header: {d}"),
        }
    }
}

impl std::error::Error for CaptureError {}

impl From<io::Error> for CaptureError {
    fn from(e: io::Error) -> Self {
        CaptureError::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    #[inline]
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    #[inline]
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
}

#[inline]
fn arr4(s: &[u8], at: usize) -> [u8; 4] {
    s.get(at..at + 4).and_then(|x| x.try_into().ok()).unwrap_or([0; 4])
}

#[inline]
fn arr2(s: &[u8], at: usize) -> [u8; 2] {
    s.get(at..at + 2).and_then(|x| x.try_into().ok()).unwrap_or([0; 2])
}

/// Marks the calling thread SCHED_BATCH, so that waking up with data ready it does not preempt
/// the parser (the critical path); it still gets its share of the CPU. The read-ahead thread
/// uses it, and so can the helper threads of a pipeline built on the reader.
pub fn background_thread() {
    #[cfg(target_os = "linux")]
    {
        let p = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets the scheduling policy of the calling thread (pid 0) with a valid param.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &p);
        }
    }
}

/// A source that fails once with the error it holds, then reads as empty.
struct FailedRead(Option<io::Error>);

impl Read for FailedRead {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

/// A streaming capture reader. See the crate docs.
pub struct CaptureReader {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    endian: Endian,
    info: CaptureInfo,
    /// pcapng: index of the first interface of the current section.
    section_base: usize,
    damage: Option<Damage>,
    skipped: Vec<Skipped>,
    done: bool,
    /// The source read on its own thread, when enabled.
    ahead: Option<ReadAhead>,
    /// `buf` is one of the read-ahead thread's chunks (it goes back when replaced, whatever its
    /// size: a chunk that is not returned is one less in the pool, and with none left the
    /// reading thread and the parser would wait for each other).
    buf_pooled: bool,
    /// A pcap file's link type and nanoseconds per timestamp fraction (from its header).
    pcap_iface: Option<(LinkType, i64)>,
}

/// The source read ahead on a thread of its own: the copy out of the page cache (and gzip
/// inflation) run on the other core while this one parses. Chunks carry their bytes at
/// `AHEAD_HEAD..AHEAD_HEAD + len`; emptied chunks go back for reuse, so nothing is allocated
/// per chunk after the first few.
struct ReadAhead {
    /// Both `Some` until dropped; taken first in `drop` so the thread sees them close.
    chunks: Option<std::sync::mpsc::Receiver<ChunkMsg>>,
    spent: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Set by the thread when it has let go of everything (source, buffers).
    exited: Arc<(Mutex<bool>, Condvar)>,
    /// Joined once the flag is up (all that is left of the thread is its runtime's teardown).
    handle: Option<std::thread::JoinHandle<()>>,
}

/// A filled chunk (bytes at `AHEAD_HEAD..AHEAD_HEAD + len`) or the read error that ended the
/// source.
type ChunkMsg = io::Result<(Vec<u8>, usize)>;

/// How long dropping a reader waits for its reading thread to finish its current read.
const AHEAD_EXIT_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Raises the reading thread's exit flag when dropped (also when the thread panics).
struct ExitFlag(Arc<(Mutex<bool>, Condvar)>);

impl Drop for ExitFlag {
    fn drop(&mut self) {
        let (m, c) = &*self.0;
        if let Ok(mut g) = m.lock() {
            *g = true;
        }
        c.notify_all();
    }
}

impl Drop for ReadAhead {
    /// Closes both channels, then waits (briefly) for the thread to free its buffers and the
    /// source: a file read ends at once; a read blocked on a pipe is left to end with the
    /// process.
    fn drop(&mut self) {
        drop(self.chunks.take());
        drop(self.spent.take());
        let (m, c) = &*self.exited;
        let done = match m.lock() {
            Ok(g) => c.wait_timeout_while(g, AHEAD_EXIT_WAIT, |done| !*done).map(|(g, _)| *g).unwrap_or(false),
            Err(_) => false,
        };
        if done {
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }
}

impl ReadAhead {
    fn spawn(src: Box<dyn Read + Send>) -> io::Result<Self> {
        let (tx, chunks) = std::sync::mpsc::sync_channel::<ChunkMsg>(AHEAD_CHUNKS);
        let (spent, spent_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(AHEAD_CHUNKS + 2);
        let exited = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = ExitFlag(Arc::clone(&exited));
        // When the reader is dropped the channels close and the thread ends after its current
        // read (see `Drop for ReadAhead`).
        let handle = std::thread::Builder::new().name("netcase-read".into()).spawn(move || {
            // Declared first, dropped last: the flag rises after the source and buffers go.
            let _flag = flag;
            let (mut src, tx, spent_rx) = (src, tx, spent_rx);
            background_thread();
            let mut made = 0usize;
            loop {
                let mut buf = match spent_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if made < AHEAD_CHUNKS => {
                        made += 1;
                        vec![0u8; AHEAD_HEAD + AHEAD_CHUNK]
                    }
                    Err(_) => match spent_rx.recv() {
                        Ok(b) => b,
                        Err(_) => return,
                    },
                };
                buf.resize(AHEAD_HEAD + AHEAD_CHUNK, 0);
                let mut len = 0usize;
                let mut failed = None;
                while len < AHEAD_CHUNK {
                    let Some(dst) = buf.get_mut(AHEAD_HEAD + len..) else { break };
                    match src.read(dst) {
                        Ok(0) => break,
                        Ok(k) => len += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let last = len < AHEAD_CHUNK || failed.is_some();
                if len > 0 && tx.send(Ok((buf, len))).is_err() {
                    return;
                }
                if let Some(e) = failed {
                    let _ = tx.send(Err(e));
                    return;
                }
                if last {
                    // End of the source: the closed channel says so.
                    return;
                }
            }
        })?;
        Ok(ReadAhead { chunks: Some(chunks), spent: Some(spent), exited, handle: Some(handle) })
    }
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader").field("info", &self.info).field("offset", &self.offset).finish()
    }
}

impl CaptureReader {
    /// Opens a capture file; `-` reads stdin. Gzip compression is detected by its magic.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        if path.as_os_str() == "-" {
            return Self::from_reader_ahead(Box::new(io::stdin()));
        }
        let f = File::open(path)?;
        Self::from_reader_ahead(Box::new(f))
    }

    /// Like [`from_reader`](Self::from_reader), but the source is read (and inflated, when
    /// gzip) on a thread of its own, ahead of the parser.
    pub fn from_reader_ahead(src: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let mut r = Self::from_reader(src)?;
        r.read_ahead();
        Ok(r)
    }

    /// Reads a capture held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CaptureError> {
        Self::from_reader(Box::new(io::Cursor::new(bytes.to_vec())))
    }

    /// Reads a capture from any byte source.
    pub fn from_reader(src: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let mut r = CaptureReader {
            src,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            endian: Endian::Little,
            info: CaptureInfo {
                format: CaptureFormat::Pcap,
                gzip: false,
                interfaces: Vec::new(),
                frames: 0,
                captured_bytes: 0,
                wire_bytes: 0,
                first_ts_ns: None,
                last_ts_ns: None,
                skipped_blocks: 0,
                sliced_frames: 0,
            },
            section_base: 0,
            damage: None,
            skipped: Vec::new(),
            done: false,
            ahead: None,
            buf_pooled: false,
            pcap_iface: None,
        };
        r.fill(4)?;
        if r.avail() == 0 {
            return Err(CaptureError::Empty);
        }
        if r.bytes().get(..2) == Some(&[0x1f, 0x8b]) {
            // gzip: re-read everything through a decoder, starting with what we already have.
            let have = r.bytes().to_vec();
            let src = std::mem::replace(&mut r.src, Box::new(io::empty()));
            let chained = io::Cursor::new(have).chain(src);
            r.src = Box::new(flate2::read::MultiGzDecoder::new(chained));
            r.start = 0;
            r.end = 0;
            r.eof = false;
            r.info.gzip = true;
            r.fill(4)?;
            if r.avail() == 0 {
                return Err(CaptureError::Empty);
            }
        }
        let magic_le = u32::from_le_bytes(arr4(r.bytes(), 0));
        match magic_le {
            PCAPNG_SHB => {
                r.info.format = CaptureFormat::Pcapng;
                // The first block must be a section header; read it now so errors are early.
                match r.pcapng_block() {
                    Ok(None) if r.info.interfaces.is_empty() && r.damage.is_some() => {
                        let d = r
                            .damage
                            .take()
                            .unwrap_or_else(|| r.make_damage(DamageKind::Malformed, "bad section header".into()));
                        return Err(CaptureError::Header(d));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(CaptureError::Io(e)),
                }
            }
            _ => {
                r.pcap_header()?;
            }
        }
        Ok(r)
    }

    /// Facts about the capture so far.
    pub fn info(&self) -> &CaptureInfo {
        &self.info
    }

    /// Why reading stopped early, once [`next_frame`](Self::next_frame) has returned `None`.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// The first skipped blocks with their offsets (all are counted in
    /// [`CaptureInfo::skipped_blocks`]).
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// File offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    #[inline]
    fn avail(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Makes at least `n` bytes available unless the source ends first.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.avail() >= n {
            return Ok(());
        }
        if self.ahead.is_some() {
            return self.fill_ahead(n);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.max(READ_CHUNK), 0);
        }
        while self.end < n && !self.eof {
            let Some(dst) = self.buf.get_mut(self.end..) else { break };
            match self.src.read(dst) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`fill`](Self::fill) from the read-ahead thread's chunks.
    fn fill_ahead(&mut self, n: usize) -> io::Result<()> {
        while self.avail() < n && !self.eof {
            let Some(ahead) = self.ahead.as_ref() else { break };
            let Some(chunks) = ahead.chunks.as_ref() else { break };
            let (mut chunk, len) = match chunks.recv() {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    self.eof = true;
                    return Err(e);
                }
                Err(_) => {
                    self.eof = true;
                    break;
                }
            };
            let left = self.avail();
            let data_end = (AHEAD_HEAD + len).min(chunk.len());
            if left <= AHEAD_HEAD {
                // Move the unconsumed tail in front of the new bytes and make the chunk the
                // buffer; the old buffer goes back to the reading thread.
                let at = AHEAD_HEAD - left;
                if let (Some(dst), Some(src)) = (chunk.get_mut(at..AHEAD_HEAD), self.buf.get(self.start..self.end)) {
                    dst.copy_from_slice(src);
                }
                let mut old = std::mem::replace(&mut self.buf, chunk);
                self.start = at;
                self.end = data_end;
                if std::mem::replace(&mut self.buf_pooled, true) {
                    if old.len() != AHEAD_HEAD + AHEAD_CHUNK {
                        // A chunk grown for a large record goes back at its usual size.
                        old.clear();
                        old.shrink_to(AHEAD_HEAD + AHEAD_CHUNK);
                    }
                    if let Some(spent) = ahead.spent.as_ref() {
                        let _ = spent.try_send(old);
                    }
                }
            } else {
                // A record larger than the room in front of a chunk: grow the buffer.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                self.buf.truncate(self.end);
                self.buf.extend_from_slice(chunk.get(AHEAD_HEAD..data_end).unwrap_or(&[]));
                self.end = self.buf.len();
                if let Some(spent) = ahead.spent.as_ref() {
                    let _ = spent.try_send(chunk);
                }
            }
        }
        Ok(())
    }

    /// From here on, read the source on a thread of its own (see [`ReadAhead`]).
    fn read_ahead(&mut self) {
        let src = std::mem::replace(&mut self.src, Box::new(io::empty()));
        match ReadAhead::spawn(src) {
            Ok(a) => self.ahead = Some(a),
            // No thread: the source is gone with the failed spawn; say so as a read error at
            // the next fill rather than pretend the file ended.
            Err(e) => self.src = Box::new(FailedRead(Some(e))),
        }
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        let n = n.min(self.avail());
        self.start += n;
        self.offset += n as u64;
    }

    fn make_damage(&self, kind: DamageKind, message: String) -> Damage {
        Damage { kind, offset: self.offset, frame: self.info.frames + 1, message }
    }

    fn stop(&mut self, kind: DamageKind, message: String) {
        self.damage = Some(self.make_damage(kind, message));
        self.done = true;
    }

    fn pcap_header(&mut self) -> Result<(), CaptureError> {
        self.fill(24)?;
        let b = self.bytes();
        let m = arr4(b, 0);
        let (endian, ns) = match (u32::from_le_bytes(m), u32::from_be_bytes(m)) {
            (PCAP_MAGIC_US, _) => (Endian::Little, false),
            (PCAP_MAGIC_NS, _) => (Endian::Little, true),
            (_, PCAP_MAGIC_US) => (Endian::Big, false),
            (_, PCAP_MAGIC_NS) => (Endian::Big, true),
            (le, _) => {
                if b.len() < 4 {
                    return Err(CaptureError::Header(Damage {
                        kind: DamageKind::TruncatedFileHeader,
                        offset: 0,
                        frame: 1,
                        message: format!("file header cut short: {} of 24 bytes", b.len()),
                    }));
                }
                return Err(CaptureError::NotACapture { magic: le });
            }
        };
        if b.len() < 24 {
            return Err(CaptureError::Header(Damage {
                kind: DamageKind::TruncatedFileHeader,
                offset: 0,
                frame: 1,
                message: format!("pcap file header cut short: {} of 24 bytes", b.len()),
            }));
        }
        let snaplen = endian.u32(arr4(b, 16));
        // The upper bits of the link-type field may carry FCS information.
        let link = LinkType::from_u32(endian.u32(arr4(b, 20)) & 0x03FF_FFFF);
        self.endian = endian;
        self.pcap_iface = Some((link, if ns { 1 } else { 1000 }));
        self.info.interfaces.push(Interface {
            link,
            snaplen,
            tsresol: if ns { TsResol::Pow10(9) } else { TsResol::Pow10(6) },
            tsoffset: 0,
        });
        self.consume(24);
        Ok(())
    }

    /// Returns the next frame, or `None` at the end of the capture or at damage (see
    /// [`damage`](Self::damage)).
    #[inline]
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        if self.done {
            return None;
        }
        let res = match self.info.format {
            CaptureFormat::Pcap => self.pcap_record(),
            CaptureFormat::Pcapng => loop {
                match self.pcapng_block() {
                    Ok(Some(loc)) => break Ok(Some(loc)),
                    Ok(None) if self.done => break Ok(None),
                    Ok(None) => continue,
                    Err(e) => break Err(e),
                }
            },
        };
        let loc = match res {
            Ok(Some(loc)) => loc,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.stop(DamageKind::Io, format!("read error: {e}"));
                return None;
            }
        };
        self.info.frames += 1;
        self.info.captured_bytes += u64::from(loc.caplen);
        self.info.wire_bytes += u64::from(loc.orig_len);
        if loc.caplen < loc.orig_len {
            self.info.sliced_frames += 1;
        }
        if self.info.first_ts_ns.is_none() {
            self.info.first_ts_ns = Some(loc.ts_ns);
        }
        self.info.last_ts_ns = Some(loc.ts_ns);
        let data = self.buf.get(loc.data_start..loc.data_start + loc.caplen as usize).unwrap_or(&[]);
        Some(Frame {
            number: self.info.frames,
            ts_ns: loc.ts_ns,
            orig_len: loc.orig_len,
            caplen: loc.caplen,
            link: loc.link,
            interface: loc.interface,
            offset: loc.offset,
            data,
        })
    }

    /// Reads one pcap record; on success the data stays in the buffer at `data_start`.
    #[inline]
    fn pcap_record(&mut self) -> io::Result<Option<Loc>> {
        // The common case first: a whole, plausible record already in the buffer. One copy of
        // its 16-byte header, the interface's link type and time unit from the cache, no
        // refill. Anything else (a record across the buffer's end, a bad length, the end of
        // the file) takes the checked path below.
        if let (Some(h), Some((link, ns_per_frac))) =
            (self.buf.get(self.start..self.end).and_then(|b| b.first_chunk::<16>()), self.pcap_iface)
        {
            let [s0, s1, s2, s3, f0, f1, f2, f3, i0, i1, i2, i3, o0, o1, o2, o3] = *h;
            let e = self.endian;
            let incl = e.u32([i0, i1, i2, i3]);
            let need = 16 + incl as usize;
            if incl <= MAX_CAPLEN && self.avail() >= need {
                let sec = e.u32([s0, s1, s2, s3]);
                let frac = e.u32([f0, f1, f2, f3]);
                let loc = Loc {
                    data_start: self.start + 16,
                    caplen: incl,
                    orig_len: e.u32([o0, o1, o2, o3]),
                    ts_ns: i64::from(sec) * 1_000_000_000 + i64::from(frac) * ns_per_frac,
                    link,
                    interface: 0,
                    offset: self.offset,
                };
                self.start += need;
                self.offset += need as u64;
                return Ok(Some(loc));
            }
        }
        self.pcap_record_slow()
    }

    /// [`pcap_record`](Self::pcap_record) when the record is not wholly in the buffer or its
    /// header is implausible: refills, and reports damage.
    #[inline(never)]
    fn pcap_record_slow(&mut self) -> io::Result<Option<Loc>> {
        self.fill(16)?;
        let avail = self.avail();
        if avail == 0 {
            return Ok(None);
        }
        if avail < 16 {
            self.stop(DamageKind::TruncatedRecordHeader, format!("record header cut short: {avail} of 16 bytes"));
            return Ok(None);
        }
        let b = self.bytes();
        let e = self.endian;
        let sec = e.u32(arr4(b, 0));
        let frac = e.u32(arr4(b, 4));
        let incl = e.u32(arr4(b, 8));
        let orig = e.u32(arr4(b, 12));
        if incl > MAX_CAPLEN {
            self.stop(
                DamageKind::BadLength,
                format!("record claims {incl} captured bytes, more than the maximum of {MAX_CAPLEN}"),
            );
            return Ok(None);
        }
        let need = 16 + incl as usize;
        self.fill(need)?;
        if self.avail() < need {
            let have = self.avail() - 16;
            self.stop(
                DamageKind::TruncatedRecord,
                format!("record cut short: header says {incl} bytes, only {have} remain"),
            );
            return Ok(None);
        }
        let iface = self.info.interfaces.first().copied();
        let (link, tsresol) = iface.map_or((LinkType::Other(0), TsResol::Pow10(6)), |i| (i.link, i.tsresol));
        let ns_per_frac = if tsresol == TsResol::Pow10(9) { 1 } else { 1000 };
        let ts_ns = i64::from(sec) * 1_000_000_000 + i64::from(frac) * ns_per_frac;
        let loc = Loc {
            data_start: self.start + 16,
            caplen: incl,
            orig_len: orig,
            ts_ns,
            link,
            interface: 0,
            offset: self.offset,
        };
        self.consume(need);
        Ok(Some(loc))
    }

    /// Reads one pcapng block. Returns a frame location for packet blocks, `None` for other
    /// blocks (or at the end / at damage, with `done` set).
    fn pcapng_block(&mut self) -> io::Result<Option<Loc>> {
        self.fill(12)?;
        let avail = self.avail();
        if avail == 0 {
            self.done = true;
            return Ok(None);
        }
        if avail < 12 {
            self.stop(DamageKind::TruncatedRecord, format!("block header cut short: {avail} of 12 bytes"));
            return Ok(None);
        }
        let btype_raw = arr4(self.bytes(), 0);
        if u32::from_le_bytes(btype_raw) == PCAPNG_SHB {
            // A new section: its byte-order magic decides how to read everything in it.
            let bom = arr4(self.bytes(), 8);
            self.endian = match (u32::from_le_bytes(bom), u32::from_be_bytes(bom)) {
                (PCAPNG_BOM, _) => Endian::Little,
                (_, PCAPNG_BOM) => Endian::Big,
                _ => {
                    self.stop(DamageKind::Malformed, "section header with an unknown byte-order magic".into());
                    return Ok(None);
                }
            };
            self.section_base = self.info.interfaces.len();
        }
        let e = self.endian;
        let btype = e.u32(btype_raw);
        let len = e.u32(arr4(self.bytes(), 4));
        if len < 12 || !len.is_multiple_of(4) {
            self.stop(
                DamageKind::BadLength,
                format!("block of type 0x{btype:08x} has an invalid total length {len} (minimum 12, multiple of 4)"),
            );
            return Ok(None);
        }
        if len > MAX_BLOCK_LEN {
            self.stop(
                DamageKind::BadLength,
                format!("block of type 0x{btype:08x} claims {len} bytes, more than the maximum of {MAX_BLOCK_LEN}"),
            );
            return Ok(None);
        }
        let n = len as usize;
        self.fill(n)?;
        if self.avail() < n {
            let have = self.avail();
            self.stop(
                DamageKind::TruncatedRecord,
                format!("block of type 0x{btype:08x} cut short: length {len}, only {have} bytes remain"),
            );
            return Ok(None);
        }
        let b = self.bytes();
        let trailing = e.u32(arr4(b, n - 4));
        if trailing != len {
            self.stop(
                DamageKind::LengthMismatch,
                format!("block total lengths differ: leading {len}, trailing {trailing}"),
            );
            return Ok(None);
        }
        let body_start = self.start + 8;
        let body_len = n - 12;
        let block_offset = self.offset;
        let result = match btype {
            PCAPNG_SHB => None,
            1 => {
                self.read_idb(body_start, body_len);
                None
            }
            6 | 2 => match self.read_epb(btype, body_start, body_len, block_offset) {
                Ok(loc) => Some(loc),
                Err((kind, msg)) => {
                    self.stop(kind, msg);
                    return Ok(None);
                }
            },
            3 => match self.read_spb(body_start, body_len, block_offset) {
                Ok(loc) => Some(loc),
                Err((kind, msg)) => {
                    self.stop(kind, msg);
                    return Ok(None);
                }
            },
            _ => {
                self.info.skipped_blocks += 1;
                if self.skipped.len() < MAX_SKIPPED_KEPT {
                    self.skipped.push(Skipped { offset: block_offset, block_type: btype, len });
                }
                None
            }
        };
        self.consume(n);
        Ok(result)
    }

    fn read_idb(&mut self, start: usize, len: usize) {
        let e = self.endian;
        let body = self.buf.get(start..start + len).unwrap_or(&[]);
        let link = LinkType::from_u32(u32::from(e.u16(arr2(body, 0))));
        let snaplen = e.u32(arr4(body, 4));
        let mut tsresol = TsResol::Pow10(6);
        let mut tsoffset = 0i64;
        let mut at = 8usize;
        while at + 4 <= body.len() {
            let code = e.u16(arr2(body, at));
            let olen = usize::from(e.u16(arr2(body, at + 2)));
            let val = body.get(at + 4..at + 4 + olen).unwrap_or(&[]);
            match code {
                0 => break,
                9 if olen == 1 => {
                    if let Some(&v) = val.first() {
                        tsresol = if v & 0x80 != 0 { TsResol::Pow2(v & 0x7F) } else { TsResol::Pow10(v) };
                    }
                }
                14 if olen == 8 => {
                    let hi = e.u32(arr4(val, 0));
                    let lo = e.u32(arr4(val, 4));
                    let v = match e {
                        Endian::Little => u64::from(lo) << 32 | u64::from(hi),
                        Endian::Big => u64::from(hi) << 32 | u64::from(lo),
                    };
                    tsoffset = i64::try_from(v).unwrap_or(0);
                }
                _ => {}
            }
            at += 4 + olen.div_ceil(4) * 4;
        }
        self.info.interfaces.push(Interface { link, snaplen, tsresol, tsoffset });
    }

    fn interface(&self, id: u32) -> Option<Interface> {
        self.info.interfaces.get(self.section_base + id as usize).copied()
    }

    fn read_epb(&mut self, btype: u32, start: usize, len: usize, offset: u64) -> Result<Loc, (DamageKind, String)> {
        let e = self.endian;
        let body = self.buf.get(start..start + len).unwrap_or(&[]);
        if len < 20 {
            return Err((
                DamageKind::BadLength,
                format!("packet block body of {len} bytes is below the minimum of 20"),
            ));
        }
        let (iface_id, ts_hi, ts_lo) = if btype == 6 {
            (e.u32(arr4(body, 0)), e.u32(arr4(body, 4)), e.u32(arr4(body, 8)))
        } else {
            (u32::from(e.u16(arr2(body, 0))), e.u32(arr4(body, 4)), e.u32(arr4(body, 8)))
        };
        let caplen = e.u32(arr4(body, 12));
        let orig = e.u32(arr4(body, 16));
        if caplen > MAX_CAPLEN {
            return Err((
                DamageKind::BadLength,
                format!("packet block claims {caplen} captured bytes, more than the maximum of {MAX_CAPLEN}"),
            ));
        }
        if caplen as usize > len - 20 {
            return Err((
                DamageKind::Malformed,
                format!("packet block claims {caplen} captured bytes but holds only {}", len - 20),
            ));
        }
        let Some(iface) = self.interface(iface_id) else {
            return Err((
                DamageKind::UnknownInterface,
                format!("packet block names interface {iface_id}, which was not described"),
            ));
        };
        let ticks = u64::from(ts_hi) << 32 | u64::from(ts_lo);
        let ts_ns = iface.tsresol.to_ns(ticks).saturating_add(iface.tsoffset.saturating_mul(1_000_000_000));
        Ok(Loc { data_start: start + 20, caplen, orig_len: orig, ts_ns, link: iface.link, interface: iface_id, offset })
    }

    fn read_spb(&mut self, start: usize, len: usize, offset: u64) -> Result<Loc, (DamageKind, String)> {
        let e = self.endian;
        let body = self.buf.get(start..start + len).unwrap_or(&[]);
        if len < 4 {
            return Err((DamageKind::BadLength, "simple packet block without its length field".into()));
        }
        let orig = e.u32(arr4(body, 0));
        let Some(iface) = self.interface(0) else {
            return Err((DamageKind::UnknownInterface, "simple packet block before any interface".into()));
        };
        let mut caplen = orig.min((len - 4) as u32);
        if iface.snaplen > 0 {
            caplen = caplen.min(iface.snaplen);
        }
        caplen = caplen.min(MAX_CAPLEN);
        Ok(Loc { data_start: start + 4, caplen, orig_len: orig, ts_ns: 0, link: iface.link, interface: 0, offset })
    }
}

/// Where a frame's bytes sit in the buffer, and its header facts.
#[derive(Debug, Clone, Copy)]
struct Loc {
    data_start: usize,
    caplen: u32,
    orig_len: u32,
    ts_ns: i64,
    link: LinkType,
    interface: u32,
    offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(records: &[&[u8]], be: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| {
            if be {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        };
        w32(&mut v, PCAP_MAGIC_US);
        v.extend_from_slice(if be { &[0, 2, 0, 4] } else { &[2, 0, 4, 0] });
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, 1);
        for (i, r) in records.iter().enumerate() {
            w32(&mut v, 100 + i as u32);
            w32(&mut v, 5);
            w32(&mut v, r.len() as u32);
            w32(&mut v, r.len() as u32 + 10);
            v.extend_from_slice(r);
        }
        v
    }

    /// A source that hands out at most `step` bytes per read, so chunk edges fall anywhere.
    struct Dribble(io::Cursor<Vec<u8>>, usize);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    type Frames = Vec<(u64, i64, Vec<u8>)>;

    fn frames_of(mut r: CaptureReader) -> (Frames, Option<Damage>) {
        let mut out = Vec::new();
        while let Some(f) = r.next_frame() {
            out.push((f.number, f.ts_ns, f.data.to_vec()));
        }
        (out, r.damage().cloned())
    }

    #[test]
    fn read_ahead_gives_the_same_frames_across_chunk_edges() {
        // Records of every size up to the largest allowed, so the unconsumed tail moved in
        // front of a new chunk ranges from nothing to a whole 256 KiB record.
        let sizes: Vec<usize> =
            (0..40).map(|i| [60, 1514, 9000, 65_535, 200_001, MAX_CAPLEN as usize][i % 6]).collect();
        let recs: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
        let mut bytes = pcap(&refs, false);
        // Patch the snaplen so the big records are legal, and cut the last record short.
        bytes[16..20].copy_from_slice(&MAX_CAPLEN.to_le_bytes());
        bytes.truncate(bytes.len() - 1000);
        let want = frames_of(CaptureReader::from_bytes(&bytes).unwrap());
        assert_eq!(want.0.len(), 39);
        assert!(want.1.is_some());
        for step in [usize::MAX, 4096, 777_777] {
            let got = frames_of(
                CaptureReader::from_reader_ahead(Box::new(Dribble(io::Cursor::new(bytes.clone()), step))).unwrap(),
            );
            assert_eq!(got.0, want.0, "step {step}");
            assert_eq!(got.1.map(|d| (d.offset, d.frame)), want.1.as_ref().map(|d| (d.offset, d.frame)), "step {step}");
        }
    }

    #[test]
    fn read_ahead_survives_many_records_larger_than_the_room_before_a_chunk() {
        // Every chunk edge inside a record of more than AHEAD_HEAD bytes takes the path that
        // grows the buffer; many of them in a row must not drain the pool of chunks (the
        // reading thread would wait for a chunk back while the parser waits for data).
        let recs: Vec<Vec<u8>> = (0..80).map(|i| vec![i as u8; 200_000 + (i * 7919) % 62_000]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
        let mut bytes = pcap(&refs, false);
        bytes[16..20].copy_from_slice(&MAX_CAPLEN.to_le_bytes());
        let want = frames_of(CaptureReader::from_bytes(&bytes).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let got = frames_of(CaptureReader::from_reader_ahead(Box::new(io::Cursor::new(bytes))).unwrap());
            let _ = tx.send(got);
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("read-ahead stalled");
        assert_eq!(got.0.len(), 80);
        assert_eq!(got.0, want.0);
    }

    #[test]
    fn read_ahead_handles_a_block_larger_than_a_chunk() {
        // pcapng: section header, interface, a 3 MiB block of an unknown type, a packet.
        let mut v = Vec::new();
        let block = |v: &mut Vec<u8>, t: u32, body: &[u8]| {
            let len = 12 + body.len() as u32;
            v.extend_from_slice(&t.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(body);
            v.extend_from_slice(&len.to_le_bytes());
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&PCAPNG_BOM.to_le_bytes());
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        block(&mut v, PCAPNG_SHB, &shb);
        block(&mut v, 1, &[1, 0, 0, 0, 0, 0, 4, 0]);
        block(&mut v, 0x0bad, &vec![7u8; 3 << 20]);
        let mut epb = Vec::new();
        epb.extend_from_slice(&[0; 12]);
        epb.extend_from_slice(&4u32.to_le_bytes());
        epb.extend_from_slice(&4u32.to_le_bytes());
        epb.extend_from_slice(b"abcd");
        block(&mut v, 6, &epb);
        let want = frames_of(CaptureReader::from_bytes(&v).unwrap());
        let got = frames_of(
            CaptureReader::from_reader_ahead(Box::new(Dribble(io::Cursor::new(v.clone()), 100_000))).unwrap(),
        );
        assert_eq!(want.0.len(), 1);
        assert_eq!(got.0, want.0);
        assert!(got.1.is_none());
    }

    #[test]
    fn reads_both_byte_orders() {
        for be in [false, true] {
            let bytes = pcap(&[b"abc", b"defgh"], be);
            let mut r = CaptureReader::from_bytes(&bytes).unwrap();
            let f = r.next_frame().unwrap();
            assert_eq!((f.number, f.data, f.orig_len, f.ts_ns), (1, &b"abc"[..], 13, 100_000_005_000));
            let f = r.next_frame().unwrap();
            assert_eq!(f.data, b"defgh");
            assert!(r.next_frame().is_none());
            assert!(r.damage().is_none());
        }
    }

    #[test]
    fn every_truncation_is_reported_not_panicked() {
        let bytes = pcap(&[b"abc", b"defgh", b"ij"], false);
        for n in 0..bytes.len() {
            let Ok(mut r) = CaptureReader::from_bytes(bytes.get(..n).unwrap()) else { continue };
            let mut k = 0;
            while r.next_frame().is_some() {
                k += 1;
            }
            assert!(k <= 3);
            if n < bytes.len() && ![24, 43, 64].contains(&n) {
                assert!(r.damage().is_some(), "cut at {n} not reported");
            }
        }
    }

    #[test]
    fn gzip_is_transparent() {
        use std::io::Write;
        let bytes = pcap(&[b"abc"], false);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        let mut r = CaptureReader::from_bytes(&gz).unwrap();
        assert!(r.info().gzip);
        assert_eq!(r.next_frame().unwrap().data, b"abc");
    }

    #[test]
    fn gzip_read_ahead_gives_the_same_frames() {
        use std::io::Write;
        let recs: Vec<Vec<u8>> = (0..3000).map(|i| vec![(i % 251) as u8; 40 + (i * 37) % 1500]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
        let bytes = pcap(&refs, false);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        let want = frames_of(CaptureReader::from_bytes(&bytes).unwrap());
        let r = CaptureReader::from_reader_ahead(Box::new(Dribble(io::Cursor::new(gz), 3000))).unwrap();
        assert!(r.info().gzip);
        let got = frames_of(r);
        assert_eq!(got.0.len(), 3000);
        assert_eq!(got.0, want.0);
        assert!(got.1.is_none());
    }

    #[test]
    fn tsresol_conversions() {
        assert_eq!(TsResol::Pow10(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsResol::Pow10(9).to_ns(7), 7);
        assert_eq!(TsResol::Pow2(10).to_ns(1024), 1_000_000_000);
        assert_eq!(TsResol::Pow10(12).to_ns(5_000), 5);
    }
}
