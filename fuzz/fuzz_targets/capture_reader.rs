//! Any bytes as a capture file: the reader must return frames or report damage, never panic,
//! loop forever, or allocate by an absurd length.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = netcase_capture::CaptureReader::from_bytes(data) {
        let mut n = 0u64;
        while let Some(f) = r.next_frame() {
            // Decode every frame too: the whole read path.
            let _ = netcase_wire::decode(f.link, f.data);
            n += 1;
            assert!(n <= data.len() as u64, "more frames than bytes");
        }
        let _ = r.damage().map(|d| d.to_string());
    }
});
