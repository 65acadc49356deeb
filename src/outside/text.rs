//! Text from a peer, made safe to show. A summary's strings and the details of a failed
//! pull can carry newlines and terminal escapes; written raw into a text log line or the
//! `peerscope status` table they forge lines or repaint the terminal. [`printable`] keeps
//! printable characters and writes every control character as an escape.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1, and the Unicode line and paragraph
/// separators) written as `\n`, `\t`, `\r` or `\u{…}`; borrowed when nothing needed escaping.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is written as an escape: control characters and the line separators.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_escapes() {
        assert!(matches!(printable("9f2c01"), Cow::Borrowed("9f2c01")));
        assert_eq!(
            printable("ab\n2026-12-01T00:00:00Z INFO forged\u{1b}[31m\u{9b}\u{2028}"),
            "ab\\n2026-12-01T00:00:00Z INFO forged\\u{1b}[31m\\u{9b}\\u{2028}"
        );
        assert_eq!(printable("naïve ✓"), "naïve ✓");
    }
}
