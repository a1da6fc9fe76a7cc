//! Kernel text symbols from `/proc/kallsyms`, to name a drop's location (`nf_hook_slow+0x9a`).
//!
//! Sans-I/O: [`Kallsyms::parse`] takes the file's text. Only text symbols (`t`, `T`) are
//! kept; addresses are all zero when `kernel.kptr_restrict` hides them from the reader, which
//! [`Kallsyms::hidden`] reports.

/// A sorted table of kernel text symbols.
#[derive(Debug, Clone, Default)]
pub struct Kallsyms {
    /// (address, name, module), sorted by address.
    syms: Vec<(u64, Box<str>, Option<Box<str>>)>,
    hidden: bool,
}

/// A resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The function (`__udp4_lib_rcv`), or the hex address when unknown.
    pub symbol: String,
    /// Offset from the function's start.
    pub offset: u64,
    /// The module it belongs to, for module code.
    pub module: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{:#x}", self.symbol, self.offset)?;
        if let Some(m) = &self.module {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}

impl Kallsyms {
    /// Parses the text of `/proc/kallsyms`. Lines that do not parse are skipped.
    pub fn parse(text: &str) -> Self {
        let mut syms = Vec::new();
        let mut nonzero = false;
        let mut any = false;
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (it.next(), it.next(), it.next()) else { continue };
            if !matches!(kind, "t" | "T") {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
            any = true;
            nonzero |= addr != 0;
            let module = it.next().map(|m| m.trim_start_matches('[').trim_end_matches(']').into());
            syms.push((addr, name.into(), module));
        }
        syms.sort_by_key(|(a, _, _)| *a);
        Kallsyms { syms, hidden: any && !nonzero }
    }

    /// Whether the kernel hid the addresses (all zero): locations cannot be named.
    pub fn hidden(&self) -> bool {
        self.hidden
    }

    /// Number of text symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The function containing `addr` (the closest symbol at or below it).
    pub fn resolve(&self, addr: u64) -> Location {
        let i = self.syms.partition_point(|(a, _, _)| *a <= addr);
        match i.checked_sub(1).and_then(|i| self.syms.get(i)) {
            Some((a, name, module)) if !self.hidden && addr != 0 => {
                Location { symbol: name.to_string(), offset: addr - a, module: module.as_ref().map(|m| m.to_string()) }
            }
            _ => Location { symbol: format!("{addr:#x}"), offset: 0, module: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81f282d0 T nf_hook_slow
ffffffff81f28400 T nf_hook_slow_list
ffffffff82045f90 T __udp4_lib_rcv
ffffffff820449f0 t udp_queue_rcv_one_skb
ffffffff83000000 D some_data
ffffffffc0a01000 t nft_do_chain\t[nf_tables]
garbage line
";

    #[test]
    fn resolves_symbol_and_offset() {
        let k = Kallsyms::parse(TEXT);
        assert_eq!(k.len(), 5);
        let l = k.resolve(0xffff_ffff_81f2_836a);
        assert_eq!((l.symbol.as_str(), l.offset), ("nf_hook_slow", 0x9a));
        assert_eq!(l.to_string(), "nf_hook_slow+0x9a");
        let l = k.resolve(0xffff_ffff_8204_4a00);
        assert_eq!(l.symbol, "udp_queue_rcv_one_skb");
        let l = k.resolve(0xffff_ffff_c0a0_1010);
        assert_eq!(l.to_string(), "nft_do_chain+0x10 [nf_tables]");
        // Below every symbol: the bare address.
        assert_eq!(k.resolve(0x10).symbol, "0x10");
    }

    #[test]
    fn hidden_addresses_are_reported() {
        let k = Kallsyms::parse("0000000000000000 T a\n0000000000000000 T b\n");
        assert!(k.hidden());
        assert_eq!(k.resolve(0xffff_ffff_8100_0000).symbol, "0xffffffff81000000");
    }
}
