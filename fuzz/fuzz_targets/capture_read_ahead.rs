//! Differential: any bytes read through the read-ahead thread give exactly the frames and the
//! damage of the plain reader over the same source, read in pieces of a size the input chooses.
//! Gzip input is only checked for no panic: where a corrupt deflate stream fails depends on
//! how much the decoder is asked for at a time, which differs between the two paths.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_capture::CaptureReader;
use std::io::Read;

/// Hands out at most `step` bytes per read.
struct Dribble(std::io::Cursor<Vec<u8>>, usize);

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read(buf.get_mut(..n).unwrap_or_default())
    }
}

type Seen = (Vec<(u64, i64, u32, Vec<u8>)>, Option<(u64, u64)>);

fn frames(r: Result<CaptureReader, netcase_capture::CaptureError>) -> Option<Seen> {
    let mut r = r.ok()?;
    let mut v = Vec::new();
    while let Some(f) = r.next_frame() {
        v.push((f.number, f.ts_ns, f.orig_len, f.data.to_vec()));
    }
    Some((v, r.damage().map(|d| (d.offset, d.frame))))
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, file)) = data.split_first() else { return };
    let step = [1usize, 7, 64, 1000, 4096, 65_536, 1 << 20, usize::MAX][usize::from(k % 8)];
    let src = || Box::new(Dribble(std::io::Cursor::new(file.to_vec()), step));
    let plain = frames(CaptureReader::from_reader(src()));
    let ahead = frames(CaptureReader::from_reader_ahead(src()));
    if file.get(..2) != Some(&[0x1f, 0x8b]) {
        assert_eq!(plain, ahead, "step {step}");
    }
});
