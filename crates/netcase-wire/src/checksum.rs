//! The Internet checksum (RFC 1071): a ones'-complement sum of big-endian 16-bit words.

/// Adds `b` to a running sum. Four bytes at a time: the two 16-bit halves of each word are
/// folded back by [`fold`], and a `u64` cannot overflow for any packet.
pub fn ones_sum(mut acc: u64, b: &[u8]) -> u64 {
    let mut it = b.chunks_exact(4);
    for w in &mut it {
        if let &[a, b, c, d] = w {
            acc += u64::from(u32::from_be_bytes([a, b, c, d]));
        }
    }
    let mut rest = it.remainder().chunks_exact(2);
    for w in &mut rest {
        if let &[a, b] = w {
            acc += u64::from(u16::from_be_bytes([a, b]));
        }
    }
    if let [last] = rest.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds the carries of a running sum into 16 bits (0xFFFF when a checksummed block verifies;
/// its complement is the checksum to write).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2 (with carries folded).
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(ones_sum(0, &b)), 0xddf2);
        // Odd length: the last byte is the high half of a word.
        assert_eq!(fold(ones_sum(0, &[0x12])), 0x1200);
    }
}
