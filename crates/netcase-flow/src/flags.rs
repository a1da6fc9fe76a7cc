//! The per-frame analysis flags, named and ordered as tshark's `tcp.analysis.*` fields.

use serde::{Serialize, Serializer};

/// A set of `tcp.analysis.*` flags for one frame. Bit `i` is [`AnalysisFlags::NAMES`]`[i]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AnalysisFlags(pub u16);

impl AnalysisFlags {
    /// The segment repeats data already sent (also set on fast and spurious retransmissions,
    /// as tshark reports them).
    pub const RETRANSMISSION: Self = Self(1 << 0);
    /// A retransmission at the sequence number that ≥ 2 duplicate ACKs asked for, within 20 ms.
    pub const FAST_RETRANSMISSION: Self = Self(1 << 1);
    /// A retransmission of data the receiver had already acknowledged.
    pub const SPURIOUS_RETRANSMISSION: Self = Self(1 << 2);
    /// Old data that arrived shortly after newer data (within the initial RTT, or 3 ms).
    pub const OUT_OF_ORDER: Self = Self(1 << 3);
    /// The segment starts beyond the next expected sequence number: something was not captured.
    pub const LOST_SEGMENT: Self = Self(1 << 4);
    /// The segment acknowledges data that was never seen.
    pub const ACK_LOST_SEGMENT: Self = Self(1 << 5);
    /// A repeated ACK (same seq, ack and window, no data).
    pub const DUPLICATE_ACK: Self = Self(1 << 6);
    /// The sender advertises a zero receive window.
    pub const ZERO_WINDOW: Self = Self(1 << 7);
    /// A one-byte probe at the next sequence number while the peer's window is zero.
    pub const ZERO_WINDOW_PROBE: Self = Self(1 << 8);
    /// The answer to a zero-window probe, still advertising zero.
    pub const ZERO_WINDOW_PROBE_ACK: Self = Self(1 << 9);
    /// The segment fills the receiver's advertised window exactly.
    pub const WINDOW_FULL: Self = Self(1 << 10);
    /// A pure ACK whose only news is a changed window.
    pub const WINDOW_UPDATE: Self = Self(1 << 11);
    /// A keep-alive: 0 or 1 byte at one before the next expected sequence number.
    pub const KEEP_ALIVE: Self = Self(1 << 12);
    /// The answer to a keep-alive.
    pub const KEEP_ALIVE_ACK: Self = Self(1 << 13);
    /// A SYN (or SYN-ACK) with a new initial sequence number on a 4-tuple already seen.
    pub const REUSED_PORTS: Self = Self(1 << 14);

    /// Names in bit order: tshark's field names without the `tcp.analysis.` prefix.
    pub const NAMES: [&'static str; 15] = [
        "retransmission",
        "fast_retransmission",
        "spurious_retransmission",
        "out_of_order",
        "lost_segment",
        "ack_lost_segment",
        "duplicate_ack",
        "zero_window",
        "zero_window_probe",
        "zero_window_probe_ack",
        "window_full",
        "window_update",
        "keep_alive",
        "keep_alive_ack",
        "reused_ports",
    ];

    /// The empty set.
    pub const fn empty() -> Self {
        Self(0)
    }
    /// No flag set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    /// Any flag of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }
    /// Number of flags set.
    pub const fn count(self) -> u32 {
        self.0.count_ones()
    }
    /// The names of the set flags, in tshark's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.iter().enumerate().filter(move |(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n)
    }
    /// The index (bit number) of each set flag, in order.
    pub fn indices(self) -> impl Iterator<Item = usize> {
        (0..Self::NAMES.len()).filter(move |i| self.0 & (1 << i) != 0)
    }
    /// Looks a flag up by its tshark name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| Self(1 << i))
    }
}

impl std::ops::BitOr for AnalysisFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for AnalysisFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl Serialize for AnalysisFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// Per-flag frame counts, indexed like [`AnalysisFlags::NAMES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagCounts(pub [u32; 15]);

impl FlagCounts {
    /// Counts each flag of `f` once.
    pub fn add(&mut self, f: AnalysisFlags) {
        for i in f.indices() {
            if let Some(c) = self.0.get_mut(i) {
                *c = c.saturating_add(1);
            }
        }
    }
    /// The count for one flag (the first set bit of `f`).
    pub fn get(&self, f: AnalysisFlags) -> u32 {
        f.indices().next().and_then(|i| self.0.get(i).copied()).unwrap_or(0)
    }
    /// `(name, count)` for every non-zero count, in tshark's order.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        AnalysisFlags::NAMES.iter().zip(self.0.iter()).filter(|(_, c)| **c > 0).map(|(n, c)| (*n, *c))
    }
}

impl Serialize for FlagCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.nonzero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_bit_order() {
        let f = AnalysisFlags::REUSED_PORTS | AnalysisFlags::RETRANSMISSION | AnalysisFlags::DUPLICATE_ACK;
        assert_eq!(f.names().collect::<Vec<_>>(), ["retransmission", "duplicate_ack", "reused_ports"]);
        assert_eq!(AnalysisFlags::from_name("window_full"), Some(AnalysisFlags::WINDOW_FULL));
        assert_eq!(AnalysisFlags::from_name("nope"), None);
    }

    #[test]
    fn counts() {
        let mut c = FlagCounts::default();
        c.add(AnalysisFlags::KEEP_ALIVE | AnalysisFlags::ZERO_WINDOW);
        c.add(AnalysisFlags::KEEP_ALIVE);
        assert_eq!(c.get(AnalysisFlags::KEEP_ALIVE), 2);
        assert_eq!(c.nonzero().collect::<Vec<_>>(), [("zero_window", 1), ("keep_alive", 2)]);
    }
}
