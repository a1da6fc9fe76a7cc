//! Escaping for HTML text, attribute values and SVG text (one function: the five characters
//! that can end a text node or an attribute).

use std::fmt;

/// `s` with `& < > " '` replaced by entities; every string that came from a capture (names,
/// URLs, header values) goes through this before it reaches the page.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// Appends `s` escaped to `out`. Control characters other than tab and newline become
/// U+FFFD, so a hostile byte cannot confuse the parser either.
pub fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// A `Display` wrapper that escapes as it formats.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(self.0.len());
        push_escaped(&mut s, self.0);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_strings_are_inert() {
        let s = "<script>alert('x')</script>\"&\u{0}";
        let e = escape(s);
        assert_eq!(e, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;\u{FFFD}");
        assert!(!e.contains('<') && !e.contains('"'));
    }
}
