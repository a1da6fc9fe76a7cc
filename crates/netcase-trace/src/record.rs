//! Bounds-checked reads of tracepoint records (the RAW part of a perf sample).
//!
//! A record is the kernel's bytes laid out as its format file says, in host byte order. Every
//! read goes through [`Slot`], which knows the field's offset and size and returns `None` when
//! the record is too short: a truncated record is data, not a crash.

use crate::format::{EventFormat, Field};
use crate::Error;

/// Where one field sits in the record; resolved once from the format file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Byte offset.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

impl From<&Field> for Slot {
    fn from(f: &Field) -> Self {
        Slot { offset: f.offset, size: f.size }
    }
}

impl Slot {
    /// Resolves a field that must exist.
    pub fn required(fmt: &EventFormat, event: &str, name: &str) -> crate::Result<Slot> {
        fmt.field(name).map(Slot::from).ok_or_else(|| Error::format(event, format!("no field '{name}'")))
    }

    /// Resolves a field that may be missing on older kernels.
    pub fn optional(fmt: &EventFormat, name: &str) -> Option<Slot> {
        fmt.field(name).map(Slot::from)
    }

    /// The field's bytes.
    pub fn bytes<'a>(&self, rec: &'a [u8]) -> Option<&'a [u8]> {
        rec.get(self.offset..self.offset.checked_add(self.size)?)
    }

    /// The field as an unsigned integer of its own size (1, 2, 4 or 8 bytes, host order).
    pub fn uint(&self, rec: &[u8]) -> Option<u64> {
        let b = self.bytes(rec)?;
        Some(match self.size {
            1 => u64::from(*b.first()?),
            2 => u64::from(u16::from_ne_bytes(b.try_into().ok()?)),
            4 => u64::from(u32::from_ne_bytes(b.try_into().ok()?)),
            8 => u64::from_ne_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// The field as a signed integer (sign-extended from its size).
    pub fn int(&self, rec: &[u8]) -> Option<i64> {
        let b = self.bytes(rec)?;
        Some(match self.size {
            1 => i64::from(i8::from_ne_bytes(b.try_into().ok()?)),
            2 => i64::from(i16::from_ne_bytes(b.try_into().ok()?)),
            4 => i64::from(i32::from_ne_bytes(b.try_into().ok()?)),
            8 => i64::from_ne_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// A fixed-size array field (`__u8 saddr[4]`).
    pub fn array<const N: usize>(&self, rec: &[u8]) -> Option<[u8; N]> {
        if self.size != N {
            return None;
        }
        self.bytes(rec)?.try_into().ok()
    }
}

/// The tracepoint id a record starts with (`common_type`, always at offset 0, 2 bytes).
pub fn common_type(rec: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(rec.get(0..2)?.try_into().ok()?))
}

/// The pid of the task that was running when the event fired (`common_pid`, offset 4).
pub fn common_pid(rec: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(rec.get(4..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let rec = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(common_type(&rec), Some(1));
        assert_eq!(common_pid(&rec), Some(-1));
        assert_eq!(common_type(&rec[..1]), None);
        let s = Slot { offset: 4, size: 4 };
        assert_eq!(s.uint(&rec), Some(0xffff_ffff));
        assert_eq!(s.int(&rec), Some(-1));
        assert_eq!(s.uint(&rec[..7]), None);
        let far = Slot { offset: usize::MAX, size: 2 };
        assert_eq!(far.uint(&rec), None);
        let odd = Slot { offset: 0, size: 3 };
        assert_eq!(odd.uint(&rec), None);
        assert_eq!(Slot { offset: 0, size: 4 }.array::<4>(&rec), Some([1, 0, 0, 0]));
        assert_eq!(Slot { offset: 0, size: 4 }.array::<16>(&rec), None);
    }
}
