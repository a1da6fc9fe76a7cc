//! Tracepoint format files (`events/<system>/<name>/format` in tracefs).
//!
//! The kernel describes every tracepoint's record there: one line per field with its C
//! declaration, offset, size and signedness, and a `print fmt` that names enum values with
//! `__print_symbolic(REC->field, { value, "NAME" }, ...)`. netcase takes both from the running
//! kernel: offsets differ between versions, and drop-reason numbers move whenever a reason is
//! added, while the names stay.
//!
//! Sans-I/O: [`EventFormat::parse`] takes the file's text.

use crate::error::{Error, Result};

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name (`reason`, `saddr`), without any array suffix.
    pub name: String,
    /// Its C type as declared (`enum skb_drop_reason`, `__u8`), without the name.
    pub c_type: String,
    /// Number of elements when declared as an array (`saddr[4]` → 4).
    pub array_len: Option<usize>,
    /// Byte offset in the raw record.
    pub offset: usize,
    /// Size in bytes (the whole array for arrays).
    pub size: usize,
    /// Whether the C type is signed.
    pub signed: bool,
}

/// A parsed tracepoint format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// The event name (`kfree_skb`).
    pub name: String,
    /// The tracepoint id (the `common_type` of its records, the perf `config`).
    pub id: u16,
    /// All fields, common ones first, in file order.
    pub fields: Vec<Field>,
    /// The `print fmt` line, after `print fmt: `.
    pub print_fmt: String,
}

impl EventFormat {
    /// Parses a format file. `event` names it in errors (`skb/kfree_skb`).
    pub fn parse(event: &str, text: &str) -> Result<Self> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        let mut print_fmt = String::new();
        for line in text.lines() {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("name:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = t.strip_prefix("ID:") {
                let v = v.trim();
                id = Some(v.parse::<u16>().map_err(|_| Error::format(event, format!("bad ID '{v}'")))?);
            } else if t.starts_with("field:") {
                fields.push(parse_field(event, t)?);
            } else if let Some(v) = t.strip_prefix("print fmt:") {
                v.trim().clone_into(&mut print_fmt);
            }
        }
        let name = name.ok_or_else(|| Error::format(event, "no 'name:' line"))?;
        let id = id.ok_or_else(|| Error::format(event, "no 'ID:' line"))?;
        if fields.is_empty() {
            return Err(Error::format(event, "no fields"));
        }
        Ok(EventFormat { name, id, fields, print_fmt })
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The value → name table of the first `__print_symbolic(REC-><field>, ...)` in the print
    /// format. Entries whose value is not a number (`{ TCP_ESTABLISHED, "..." }`, a macro the
    /// format file leaves unexpanded) are skipped and counted in [`SymbolTable::unresolved`].
    pub fn symbols(&self, field: &str) -> SymbolTable {
        symbolic_table(&self.print_fmt, field)
    }
}

fn parse_field(event: &str, line: &str) -> Result<Field> {
    // field:unsigned short common_type;	offset:0;	size:2;	signed:0;
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("field:") {
            decl = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse::<usize>().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let bad = |what: &str| Error::format(event, format!("{what} in '{line}'"));
    let decl = decl.ok_or_else(|| bad("no declaration"))?;
    let offset = offset.ok_or_else(|| bad("no offset"))?;
    let size = size.ok_or_else(|| bad("no size"))?;
    // The name is the last word; an array suffix may follow it (`saddr[4]`, `__data_loc char[] x`).
    let (ty, last) = decl.rsplit_once(char::is_whitespace).ok_or_else(|| bad("no field name"))?;
    let (fname, array_len) = match last.split_once('[') {
        Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (last, None),
    };
    if fname.is_empty() {
        return Err(bad("empty field name"));
    }
    Ok(Field { name: fname.to_owned(), c_type: ty.trim().to_owned(), array_len, offset, size, signed })
}

/// Names of an enum's values, read from a tracepoint's print format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolTable {
    /// (value, name), sorted by value.
    pub entries: Vec<(u64, String)>,
    /// Entries whose value the format file did not spell as a number.
    pub unresolved: usize,
}

impl SymbolTable {
    /// The name of `value`.
    pub fn name(&self, value: u64) -> Option<&str> {
        self.entries
            .binary_search_by_key(&value, |(v, _)| *v)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, n)| n.as_str())
    }

    /// The value called `name`.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.entries.iter().find(|(_, n)| n == name).map(|(v, _)| *v)
    }

    /// Whether no value could be named.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn symbolic_table(print_fmt: &str, field: &str) -> SymbolTable {
    let mut table = SymbolTable::default();
    let needle = "__print_symbolic(";
    let mut rest = print_fmt;
    while let Some(pos) = rest.find(needle) {
        let after = rest.get(pos + needle.len()..).unwrap_or("");
        // First argument: the field expression, up to the first comma.
        let Some((expr, entries)) = after.split_once(',') else { break };
        if expr.trim() != format!("REC->{field}") {
            rest = entries;
            continue;
        }
        parse_entries(entries, &mut table);
        break;
    }
    table.entries.sort_by_key(|(v, _)| *v);
    table.entries.dedup_by_key(|(v, _)| *v);
    table
}

/// Parses `{ 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" } ... )` up to the closing parenthesis.
fn parse_entries(mut s: &str, table: &mut SymbolTable) {
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let Some(body) = s.strip_prefix('{') else { return };
        let Some(end) = body.find('}') else { return };
        let (entry, after) = (body.get(..end).unwrap_or(""), body.get(end + 1..).unwrap_or(""));
        s = after;
        let Some((value, name)) = entry.split_once(',') else { continue };
        let name = name.trim().trim_matches('"');
        match parse_number(value.trim()) {
            Some(v) if !name.is_empty() => table.entries.push((v, name.to_owned())),
            _ => table.unresolved += 1,
        }
    }
}

fn parse_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse::<u64>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KFREE: &str = include_str!("../tests/data/6.18/kfree_skb.format");
    const RETRANS: &str = include_str!("../tests/data/6.18/tcp_retransmit_skb.format");
    const SET_STATE: &str = include_str!("../tests/data/6.18/inet_sock_set_state.format");
    const SEND_RESET: &str = include_str!("../tests/data/6.18/tcp_send_reset.format");

    #[test]
    fn kfree_skb_fields_and_id() {
        let f = EventFormat::parse("skb/kfree_skb", KFREE).unwrap();
        assert_eq!(f.name, "kfree_skb");
        assert_eq!(f.id, 2310);
        let reason = f.field("reason").unwrap();
        assert_eq!((reason.offset, reason.size, reason.signed), (36, 4, false));
        assert_eq!(reason.c_type, "enum skb_drop_reason");
        assert_eq!(f.field("location").unwrap().offset, 16);
        assert_eq!(f.field("protocol").unwrap().size, 2);
        assert_eq!(f.field("common_type").unwrap().offset, 0);
    }

    #[test]
    fn drop_reason_names_come_from_print_fmt() {
        let f = EventFormat::parse("skb/kfree_skb", KFREE).unwrap();
        let t = f.symbols("reason");
        assert_eq!(t.name(2), Some("NOT_SPECIFIED"));
        assert_eq!(t.name(6), Some("SOCKET_RCVBUFF"));
        assert_eq!(t.name(12), Some("NETFILTER_DROP"));
        assert_eq!(t.name(40), Some("TCP_LISTEN_OVERFLOW"));
        assert_eq!(t.value("NO_SOCKET"), Some(3));
        assert_eq!(t.name(1), None);
        assert_eq!(t.unresolved, 0);
        assert!(t.entries.len() > 100);
    }

    #[test]
    fn arrays_and_unexpanded_symbols() {
        let f = EventFormat::parse("tcp/tcp_retransmit_skb", RETRANS).unwrap();
        let s = f.field("saddr_v6").unwrap();
        assert_eq!((s.array_len, s.size, s.offset), (Some(16), 16, 42));
        // The state table is spelled with macros here: nothing resolves.
        let t = f.symbols("state");
        assert!(t.is_empty());
        assert_eq!(t.unresolved, 12);
        assert_eq!(f.symbols("family").name(10), Some("AF_INET6"));
    }

    #[test]
    fn state_names_from_inet_sock_set_state() {
        let f = EventFormat::parse("sock/inet_sock_set_state", SET_STATE).unwrap();
        let t = f.symbols("newstate");
        assert_eq!(t.name(1), Some("TCP_ESTABLISHED"));
        assert_eq!(t.name(12), Some("TCP_NEW_SYN_RECV"));
        assert_eq!(f.symbols("oldstate").name(8), Some("TCP_CLOSE_WAIT"));
    }

    #[test]
    fn conditional_symbolic_is_found() {
        let f = EventFormat::parse("tcp/tcp_send_reset", SEND_RESET).unwrap();
        assert_eq!(f.symbols("reason").name(12), Some("TCP_ABORT_ON_LINGER"));
        assert_eq!(f.field("saddr").unwrap().array_len, Some(28));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(EventFormat::parse("x/y", "").is_err());
        assert!(EventFormat::parse("x/y", "name: a\nID: 99999999\n").is_err());
        assert!(EventFormat::parse("x/y", "name: a\nID: 1\nfield:int;offset:0;size:4;").is_err());
        let t = symbolic_table("__print_symbolic(REC->r, { 1, \"A\" }, { x", "r");
        assert_eq!(t.name(1), Some("A"));
        let t = symbolic_table("__print_symbolic(", "r");
        assert!(t.is_empty());
    }
}
