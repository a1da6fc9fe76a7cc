//! Records of a perf ring buffer, as copied out of the ring (sans-I/O).
//!
//! Each record starts with `struct perf_event_header { u32 type; u16 misc; u16 size; }`.
//! netcase opens its events with `sample_type = TIME | CPU | RAW`, so a sample
//! (`PERF_RECORD_SAMPLE`) carries, in this order: `u64 time`, `u32 cpu, u32 reserved`,
//! `u32 raw_size`, then `raw_size` bytes of tracepoint record. `PERF_RECORD_LOST` says how many
//! samples the kernel could not write because the ring was full.

/// `PERF_RECORD_LOST`.
pub const PERF_RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`.
pub const PERF_RECORD_SAMPLE: u32 = 9;
/// Size of `struct perf_event_header`.
pub const HEADER_LEN: usize = 8;

/// One record of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerfRecord<'a> {
    /// A tracepoint hit.
    Sample {
        /// Time of the event, ns (CLOCK_MONOTONIC as netcase configures the event).
        time_ns: u64,
        /// CPU it fired on.
        cpu: u32,
        /// The tracepoint record.
        raw: &'a [u8],
    },
    /// Samples lost because the ring was full.
    Lost {
        /// How many.
        lost: u64,
    },
    /// Any other record type (ignored).
    Other(u32),
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// Bytes needed.
    pub need: usize,
    /// Bytes present.
    pub have: usize,
}

/// The (type, size) of the header at the start of `buf`.
pub fn header(buf: &[u8]) -> Option<(u32, usize)> {
    let ty = u32::from_ne_bytes(buf.get(0..4)?.try_into().ok()?);
    let size = u16::from_ne_bytes(buf.get(6..8)?.try_into().ok()?);
    Some((ty, usize::from(size)))
}

/// Decodes one whole record (header included).
pub fn parse(rec: &[u8]) -> Result<PerfRecord<'_>, Truncated> {
    let short = |need: usize| Truncated { need, have: rec.len() };
    let (ty, _) = header(rec).ok_or(short(HEADER_LEN))?;
    let u64_at = |o: usize| -> Result<u64, Truncated> {
        rec.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes).ok_or(short(o + 8))
    };
    let u32_at = |o: usize| -> Result<u32, Truncated> {
        rec.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes).ok_or(short(o + 4))
    };
    match ty {
        PERF_RECORD_SAMPLE => {
            let time_ns = u64_at(8)?;
            let cpu = u32_at(16)?;
            let raw_size = u32_at(24)? as usize;
            let raw = rec.get(28..28 + raw_size).ok_or(short(28 + raw_size))?;
            Ok(PerfRecord::Sample { time_ns, cpu, raw })
        }
        // struct { header; u64 id; u64 lost; }
        PERF_RECORD_LOST => Ok(PerfRecord::Lost { lost: u64_at(16)? }),
        other => Ok(PerfRecord::Other(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(time: u64, cpu: u32, raw: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let size = (28 + raw.len()).div_ceil(8) * 8;
        v.extend_from_slice(&PERF_RECORD_SAMPLE.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&(size as u16).to_ne_bytes());
        v.extend_from_slice(&time.to_ne_bytes());
        v.extend_from_slice(&cpu.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&(raw.len() as u32).to_ne_bytes());
        v.extend_from_slice(raw);
        v.resize(size, 0);
        v
    }

    #[test]
    fn sample_round_trip() {
        let rec = sample(123, 1, &[6, 9, 0, 0, 1, 2, 3, 4]);
        assert_eq!(header(&rec), Some((PERF_RECORD_SAMPLE, 40)));
        assert_eq!(parse(&rec), Ok(PerfRecord::Sample { time_ns: 123, cpu: 1, raw: &[6, 9, 0, 0, 1, 2, 3, 4] }));
    }

    #[test]
    fn lost_and_other() {
        let mut rec = Vec::new();
        rec.extend_from_slice(&PERF_RECORD_LOST.to_ne_bytes());
        rec.extend_from_slice(&0u16.to_ne_bytes());
        rec.extend_from_slice(&24u16.to_ne_bytes());
        rec.extend_from_slice(&7u64.to_ne_bytes());
        rec.extend_from_slice(&42u64.to_ne_bytes());
        assert_eq!(parse(&rec), Ok(PerfRecord::Lost { lost: 42 }));
        rec[0] = 99;
        assert_eq!(parse(&rec), Ok(PerfRecord::Other(99)));
    }

    #[test]
    fn truncated_is_an_error() {
        let rec = sample(1, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        for cut in 0..36 {
            assert!(parse(&rec[..cut]).is_err(), "cut {cut}");
        }
        // A raw size larger than the record.
        let mut bad = rec.clone();
        bad[24..28].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(parse(&bad), Err(Truncated { need: 1028, have: 40 }));
    }
}
