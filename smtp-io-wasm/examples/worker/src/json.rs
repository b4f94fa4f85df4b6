//! A small JSON writer for the Worker's answers, and the cleaning of untrusted text put in them.

use std::fmt::Write;

/// A JSON object being written.
pub struct Object(String);

impl Object {
    pub fn new() -> Object {
        Object(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        quote_into(&mut self.0, key);
        self.0.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        quote_into(&mut self.0, value);
        self
    }

    pub fn opt_str(self, key: &str, value: Option<&str>) -> Object {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    pub fn num(mut self, key: &str, value: u64) -> Object {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    pub fn bool(self, key: &str, value: bool) -> Object {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// `value` must already be JSON (an [`Object::finish`] or an [`array`]).
    pub fn raw(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        self.0.push_str(value);
        self
    }

    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

impl Default for Object {
    fn default() -> Object {
        Object::new()
    }
}

/// A JSON array of already-written values.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// A JSON string: quotes, backslashes and every control or line-separator character escaped.
fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters that change how text displays without being visible: bidirectional overrides and
/// isolates, zero-width characters, line and paragraph separators, the BOM.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Untrusted text (a server's reply, a runtime's message, a caller's parameter name) made safe
/// to show: a multi-line text's lines are joined with ` | `, every control or invisible
/// formatting character becomes a visible `\uXXXX` escape, and the result is cut at `max_chars`
/// characters (then ends with `...`).
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str(" | ");
            count += 3;
        }
        for c in line.chars() {
            if count >= max_chars {
                out.push_str("...");
                return out;
            }
            if c.is_control() || is_invisible(c) {
                let _ = write!(out, "\\u{:04x}", c as u32);
            } else {
                out.push(c);
            }
            count += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects() {
        let inner = Object::new().num("code", 550).finish();
        let json = Object::new()
            .bool("ok", false)
            .str("error", "a \"quoted\" \\ \u{1b}\n")
            .opt_str("none", None)
            .raw("inner", &inner)
            .raw("list", &array(["1".to_owned(), "2".to_owned()]))
            .finish();
        assert_eq!(
            json,
            r#"{"ok":false,"error":"a \"quoted\" \\ \u001b\u000a","none":null,"inner":{"code":550},"list":[1,2]}"#
        );
        assert_eq!(Object::new().finish(), "{}");
        assert_eq!(array([]), "[]");
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("plain text", 100), "plain text");
        assert_eq!(clean("two\nlines", 100), "two | lines");
        assert_eq!(
            clean("red \u{1b}[31m bell \u{7} cr \r del \u{7f} c1 \u{85}", 100),
            "red \\u001b[31m bell \\u0007 cr \\u000d del \\u007f c1 \\u0085"
        );
        assert_eq!(clean("rtl \u{202e}gnp.exe", 100), "rtl \\u202egnp.exe");
        assert_eq!(clean("héllo ✓", 100), "héllo ✓");
        assert_eq!(clean("abcdef", 3), "abc...");
        assert_eq!(clean("abc", 3), "abc");
        assert!(
            !clean("a\u{0}b\u{2028}c", 100)
                .chars()
                .any(|c| c.is_control())
        );
    }
}
