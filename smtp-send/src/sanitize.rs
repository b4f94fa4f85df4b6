//! Text from the server made safe to print on a terminal.
//!
//! Reply text is kept as the server sent it, and may hold ESC, BEL, a bare CR or any other control
//! character: printed raw, it could move the cursor, rewrite earlier lines, change the window title
//! or worse. Everything `smtp-send` prints that may hold server text (the success line, warnings,
//! error messages, the `-v` transcript, the capture report) goes through [`visible`] or
//! [`one_line`] first, which spell control characters out instead: ESC as `\x1b`, BEL as `\x07`,
//! CR as `\r`, a C1 control as `\u{9b}`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that must not reach the terminal as is: the C0 controls but tab, DEL, the
/// C1 controls (U+0080 to U+009F), and the bidirectional formatting characters, which can make
/// the text shown read differently from the text sent (U+061C, U+200E, U+200F, U+202A to U+202E,
/// U+2066 to U+2069).
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character but tab written out as an escape (`\x1b`, `\x07`, `\r`,
/// `\n`, `\u{85}`); borrowed when there is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`visible`], for a one-line message: line feeds and tabs become spaces (a multi-line server
/// reply reads as one line), every other control character is written out.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, one_line: bool) -> Cow<'_, str> {
    let keep = |c: char| if c == '\t' { !one_line } else { !is_unsafe(c) };
    if text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            _ if keep(c) => out.push(c),
            '\n' | '\t' if one_line => out.push(' '),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\u{0}'..='\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_spelled_out() {
        assert_eq!(
            visible("250 ok\x1b[2J\x07 id\rX\x7f\u{9b}31m\0"),
            "250 ok\\x1b[2J\\x07 id\\rX\\x7f\\u{9b}31m\\x00"
        );
        assert_eq!(visible("a\nb"), "a\\nb");
        assert_eq!(visible("id \u{202e}gpj.exe"), "id \\u{202e}gpj.exe");
        assert_eq!(one_line("a\nb\tc\x1bd\r"), "a b c\\x1bd\\r");
    }

    #[test]
    fn plain_text_and_tabs_are_kept_as_they_are() {
        for s in [
            "",
            "250 2.0.0 Ok: queued as 4Xk2",
            "tab\there",
            "héllo wörld €",
        ] {
            assert!(matches!(visible(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
        assert!(matches!(one_line("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn output_never_holds_a_control_but_tab() {
        let all: String = (0u32..0x2000).filter_map(char::from_u32).collect();
        assert!(visible(&all).chars().all(|c| !is_unsafe(c)));
        assert!(one_line(&all).chars().all(|c| !c.is_control()));
    }
}
