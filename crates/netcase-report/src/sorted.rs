//! Records that arrive nearly in order, written out in order with bounded memory.
//!
//! DNS and HTTP transactions finish in the order their last packet came, but are listed in the
//! order they started. [`SortedSpill`] takes each record's bytes with its key as it finishes,
//! keeps a bounded heap in memory and writes records out of it by *replacement selection*
//! (Knuth, TAOCP vol. 3, 5.4.1): the smallest record goes to the current sorted run of an
//! unlinked temporary file; a record smaller than the last one written waits for the next run.
//! Records that finish less than a heap's worth out of order (the usual case) make one run;
//! [`SortedSpill::write_to`] then copies it, or merges the runs when there are several.
//! Memory is the heap's budget, however many records: the file holds the rest (page cache, not
//! the process's memory). Without a file (none could be created) the records stay in memory:
//! the same output, only the memory differs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// A record's place in the output: (time, frame), then arrival order.
pub type Key = (i64, u64);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    run: u32,
    key: Key,
    seq: u64,
    bytes: Vec<u8>,
}

/// Bytes of a record's header in the file: key (16), arrival number (8), length (4).
const HEAD: usize = 28;

/// See the module documentation.
#[derive(Debug)]
pub struct SortedSpill {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Bytes of the records in the heap.
    held: usize,
    budget: usize,
    seq: u64,
    /// The current run and the last key written to it.
    run: u32,
    last: Option<(Key, u64)>,
    file: Option<File>,
    /// The file could not be made or written: everything stays in memory.
    no_file: bool,
    buf: Vec<u8>,
    /// Bytes in the file (written or in `buf`).
    file_len: u64,
    /// (start, end) of each finished run in the file.
    runs: Vec<(u64, u64)>,
    run_start: u64,
}

/// Bytes buffered before a write to the file.
const FLUSH_AT: usize = 256 << 10;

impl SortedSpill {
    /// A spill that keeps at most about `budget` bytes of records in memory.
    pub fn new(budget: usize) -> Self {
        SortedSpill {
            heap: BinaryHeap::new(),
            held: 0,
            budget,
            seq: 0,
            run: 0,
            last: None,
            file: None,
            no_file: false,
            buf: Vec::new(),
            file_len: 0,
            runs: Vec::new(),
            run_start: 0,
        }
    }

    /// Runs written to the file so far (for tests: 0 while all fits in memory).
    pub fn runs(&self) -> usize {
        self.runs.len() + usize::from(self.file_len > self.run_start)
    }

    /// Takes one record.
    pub fn push(&mut self, key: Key, bytes: Vec<u8>) {
        let seq = self.seq;
        self.seq += 1;
        // Smaller than what the current run already holds: it waits for the next run.
        let run = if self.last.is_some_and(|l| (key, seq) < l) { self.run + 1 } else { self.run };
        self.held += bytes.len() + HEAD;
        self.heap.push(Reverse(Entry { run, key, seq, bytes }));
        while self.held > self.budget && !self.no_file {
            let Some(Reverse(e)) = self.heap.pop() else { break };
            self.held -= e.bytes.len() + HEAD;
            if !self.spill(e) {
                break;
            }
        }
    }

    /// Writes `e` to the file (starting a new run when its run is a later one). On an I/O
    /// error the record goes back to the heap and spilling stops.
    fn spill(&mut self, e: Entry) -> bool {
        if self.file.is_none() {
            match netcase_model::tempfile::unlinked() {
                Ok(f) => self.file = Some(f),
                Err(_) => return self.give_up(e),
            }
        }
        if e.run > self.run {
            self.runs.push((self.run_start, self.file_len));
            self.run_start = self.file_len;
            self.run = e.run;
        }
        self.last = Some((e.key, e.seq));
        self.buf.extend_from_slice(&e.key.0.to_le_bytes());
        self.buf.extend_from_slice(&e.key.1.to_le_bytes());
        self.buf.extend_from_slice(&e.seq.to_le_bytes());
        self.buf.extend_from_slice(&(e.bytes.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&e.bytes);
        self.file_len += (HEAD + e.bytes.len()) as u64;
        if self.buf.len() >= FLUSH_AT {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        let at = self.file_len - self.buf.len() as u64;
        let ok = self.file.as_ref().is_some_and(|f| f.write_all_at(&self.buf, at).is_ok());
        self.buf.clear();
        if !ok {
            // What was written is lost to the output: keep nothing half-done, say so loudly.
            self.no_file = true;
        }
        ok
    }

    fn give_up(&mut self, e: Entry) -> bool {
        self.no_file = true;
        self.held += e.bytes.len() + HEAD;
        self.heap.push(Reverse(e));
        false
    }

    /// Writes every record, in key order, separated by `sep`, to `out`.
    pub fn write_to(mut self, out: &mut dyn Write, sep: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            // All in memory: the heap holds one run.
            let mut first = true;
            while let Some(Reverse(e)) = self.heap.pop() {
                if !first {
                    out.write_all(sep)?;
                }
                first = false;
                out.write_all(&e.bytes)?;
            }
            return Ok(());
        }
        if self.no_file {
            return Err(io::Error::other("the temporary file for sorting transactions failed"));
        }
        // The rest of the heap goes to the file, in order, as the last runs.
        while let Some(Reverse(e)) = self.heap.pop() {
            if !self.spill(e) {
                return Err(io::Error::other("the temporary file for sorting transactions failed"));
            }
        }
        if !self.buf.is_empty() && !self.flush() {
            return Err(io::Error::other("the temporary file for sorting transactions failed"));
        }
        if self.file_len > self.run_start {
            self.runs.push((self.run_start, self.file_len));
        }
        let Some(file) = self.file.as_ref() else { return Ok(()) };
        let mut readers: Vec<RunReader<'_>> =
            self.runs.iter().map(|&(s, e)| RunReader { file, pos: s, end: e, buf: Vec::new(), off: 0 }).collect();
        let mut heads: BinaryHeap<Reverse<(Key, u64, usize)>> = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some((k, s)) = r.peek()? {
                heads.push(Reverse((k, s, i)));
            }
        }
        let mut first = true;
        while let Some(Reverse((_, _, i))) = heads.pop() {
            let Some(r) = readers.get_mut(i) else { break };
            if !first {
                out.write_all(sep)?;
            }
            first = false;
            r.copy_record(out)?;
            if let Some((k, s)) = r.peek()? {
                heads.push(Reverse((k, s, i)));
            }
        }
        Ok(())
    }
}

/// Reads one run of the file through a buffer.
struct RunReader<'a> {
    file: &'a File,
    /// File offset of `buf[0]`'s successor: the next byte to read from the file.
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    off: usize,
}

impl RunReader<'_> {
    /// Makes `n` bytes available at `off` (fewer at the end of the run).
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.buf.len() - self.off >= n {
            return Ok(true);
        }
        self.buf.drain(..self.off);
        self.off = 0;
        let want = (n - self.buf.len()).max(64 << 10) as u64;
        let take = want.min(self.end - self.pos) as usize;
        let at = self.buf.len();
        self.buf.resize(at + take, 0);
        let dst = self.buf.get_mut(at..).unwrap_or_default();
        self.file.read_exact_at(dst, self.pos)?;
        self.pos += take as u64;
        Ok(self.buf.len() >= n)
    }

    fn peek(&mut self) -> io::Result<Option<(Key, u64)>> {
        if !self.fill(HEAD)? {
            return Ok(None);
        }
        let h = self.buf.get(self.off..self.off + HEAD).unwrap_or_default();
        let num = |r: std::ops::Range<usize>| -> u64 {
            let mut b = [0u8; 8];
            b.copy_from_slice(h.get(r).unwrap_or(&[0; 8]));
            u64::from_le_bytes(b)
        };
        Ok(Some(((num(0..8) as i64, num(8..16)), num(16..24))))
    }

    fn copy_record(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut l = [0u8; 4];
        l.copy_from_slice(self.buf.get(self.off + 24..self.off + HEAD).unwrap_or(&[0; 4]));
        let n = u32::from_le_bytes(l) as usize;
        self.off += HEAD;
        if !self.fill(n)? {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a sorted run ends inside a record"));
        }
        out.write_all(self.buf.get(self.off..self.off + n).unwrap_or_default())?;
        self.off += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(keys: &[i64], budget: usize) -> (Vec<i64>, usize) {
        let mut s = SortedSpill::new(budget);
        for (i, &k) in keys.iter().enumerate() {
            s.push((k, i as u64), k.to_string().into_bytes());
        }
        let runs = s.runs();
        let mut out = Vec::new();
        s.write_to(&mut out, b",").unwrap();
        let got = String::from_utf8(out).unwrap();
        let got = if got.is_empty() { vec![] } else { got.split(',').map(|x| x.parse().unwrap()).collect() };
        (got, runs)
    }

    #[test]
    fn in_memory_nearly_sorted_and_reversed_input_all_come_out_sorted() {
        // Nearly sorted: each record at most 5 places late.
        let near: Vec<i64> = (0..5000).map(|i| i + (i * 7919 % 11) - 5).collect();
        let mut want = near.clone();
        want.sort();
        // Everything in memory.
        assert_eq!(run(&near, usize::MAX).0, want);
        // A small heap: one run, since the disorder is smaller than the heap.
        let (got, runs) = run(&near, 64 * 40);
        assert_eq!(got, want);
        assert_eq!(runs, 1, "nearly sorted input makes one run");
        // Reversed input: a run per heap's worth, merged.
        let rev: Vec<i64> = (0..3000).rev().collect();
        let (got, runs) = run(&rev, 32 * 40);
        assert!(runs > 10, "{runs} runs");
        assert_eq!(got, (0..3000).collect::<Vec<_>>());
        assert_eq!(run(&[], 10).0, Vec::<i64>::new());
    }

    #[test]
    fn equal_keys_keep_arrival_order() {
        let mut s = SortedSpill::new(100);
        for i in 0..200u64 {
            s.push((5, 1), i.to_string().into_bytes());
        }
        let mut out = Vec::new();
        s.write_to(&mut out, b" ").unwrap();
        let want: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        assert_eq!(String::from_utf8(out).unwrap(), want.join(" "));
    }
}
