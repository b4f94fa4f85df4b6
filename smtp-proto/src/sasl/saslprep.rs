//! SASLprep (RFC 4013), which SCRAM user names and passwords go through, done by the `stringprep`
//! crate: mapping (non-ASCII spaces to U+0020, "commonly mapped to nothing" characters removed),
//! Unicode normalisation form KC, the prohibited-output tables, the bidirectional rules and the
//! refusal of code points unassigned in Unicode 3.2 (strings are treated as "stored strings").
//!
//! This module only adapts it: the result goes into a [`Secret`], and a refusal is located in the
//! input (a byte index, never the character itself) for the caller's error.
//!
//! Zeroing is best effort: the prepared value is a [`Secret`], but the normalisation's own
//! intermediate buffers are not wiped.

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use std::borrow::Cow;

use stringprep::tables;
use zeroize::Zeroize;

use crate::secret::Secret;

/// Why a string was refused: the byte index of the first prohibited character, and whether it is
/// an ASCII control (C.2.1), which callers report as a forbidden byte.
///
/// For text that breaks the bidirectional rules (RFC 3454 section 6) the index is that of the
/// first left-to-right character in text holding right-to-left ones, or else of the first or last
/// character when it is not right-to-left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prohibited {
    /// Byte index of the character in the input.
    pub(crate) index: usize,
    /// The byte itself, when the character is an ASCII control.
    pub(crate) ascii_control: Option<u8>,
}

/// Prepare `input` with SASLprep. The result lives in a [`Secret`].
pub(crate) fn prepare(input: &str) -> Result<Secret, Prohibited> {
    match stringprep::saslprep(input) {
        Ok(Cow::Borrowed(same)) => Ok(Secret::from(same)),
        // Takes the buffer over: it is zeroed when the secret is dropped.
        Ok(Cow::Owned(prepared)) => Ok(Secret::from(prepared)),
        Err(_) => Err(locate(input)),
    }
}

/// Where in `input` SASLprep failed: the first ASCII control, else the first character refused on
/// its own (prohibited or unassigned once mapped and normalised), else where the bidirectional
/// rules break.
fn locate(input: &str) -> Prohibited {
    let at = |index| Prohibited {
        index,
        ascii_control: None,
    };
    if let Some(index) = input.find(|c: char| c.is_ascii_control()) {
        return Prohibited {
            index,
            ascii_control: Some(input.as_bytes()[index]),
        };
    }
    for (index, c) in input.char_indices() {
        match stringprep::saslprep(&input[index..index + c.len_utf8()]) {
            Err(_) => return at(index),
            Ok(Cow::Owned(mut one)) => one.zeroize(),
            Ok(Cow::Borrowed(_)) => {}
        }
    }
    // Only the bidirectional rules are left: text with a right-to-left character may hold no
    // left-to-right one, and must start and end with a right-to-left one.
    let mut chars = input.char_indices();
    if let Some((index, _)) = input.char_indices().find(|&(_, c)| tables::bidi_l(c)) {
        return at(index);
    }
    match (chars.next(), chars.next_back()) {
        (Some((first, c)), _) if !tables::bidi_r_or_al(c) => at(first),
        (_, Some((last, _))) => at(last),
        _ => at(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        prepare(s).unwrap().expose_str().unwrap().to_owned()
    }

    fn refused_at(s: &str, index: usize) {
        assert_eq!(
            prepare(s).unwrap_err(),
            Prohibited {
                index,
                ascii_control: None
            },
            "{s:?}"
        );
    }

    /// RFC 4013 section 3, every example.
    #[test]
    fn rfc_4013_examples() {
        assert_eq!(ok("I\u{00AD}X"), "IX", "SOFT HYPHEN mapped to nothing");
        assert_eq!(ok("user"), "user", "no transformation");
        assert_eq!(ok("USER"), "USER", "case preserved, will not match #2");
        assert_eq!(ok("\u{00AA}"), "a", "output is NFKC, input in ISO 8859-1");
        assert_eq!(ok("\u{2168}"), "IX", "output is NFKC, will match #1");
        assert_eq!(
            prepare("\u{0007}").unwrap_err(),
            Prohibited {
                index: 0,
                ascii_control: Some(7)
            },
            "error - prohibited character"
        );
        refused_at("\u{0627}\u{0031}", 2); // error - bidirectional check
    }

    /// Passwords typed in a compatibility form are normalised to the form the server stored
    /// (NFKC), so they derive the same SCRAM keys; the hand-written subset left them unchanged.
    #[test]
    fn compatibility_forms_are_normalised() {
        assert_eq!(
            ok("\u{FF50}\u{FF45}\u{FF4E}\u{FF43}\u{FF49}\u{FF4C}"),
            "pencil"
        ); // full width
        assert_eq!(ok("\u{FB01}le"), "file"); // the "fi" ligature
        assert_eq!(ok("x\u{00B2}"), "x2"); // superscript two
        assert_eq!(ok("cafe\u{0301}"), "caf\u{00E9}"); // combining acute, composed
        assert_eq!(ok("\u{212B}ngstr\u{00F6}m"), "\u{00C5}ngstr\u{00F6}m"); // ANGSTROM SIGN
    }

    #[test]
    fn bidirectional_rules() {
        // Right-to-left text alone, or with digits and spaces inside, is fine.
        assert_eq!(ok("\u{0627}\u{0644}\u{0639}"), "\u{0627}\u{0644}\u{0639}");
        assert_eq!(ok("\u{05D0}1 2\u{05D1}"), "\u{05D0}1 2\u{05D1}");
        // Mixed with a left-to-right letter: refused at the first such letter.
        refused_at("\u{05D0}ab\u{05D1}", 2);
        // Not starting with a right-to-left character.
        refused_at("1\u{05D0}", 0);
    }

    #[test]
    fn spaces_are_mapped_and_invisible_characters_removed() {
        assert_eq!(ok("a\u{00A0}b\u{3000}c"), "a b c");
        assert_eq!(ok("\u{FEFF}pass\u{200D}word\u{FE0F}"), "password");
        assert_eq!(ok("pässwörd €"), "pässwörd €");
        assert_eq!(ok(""), "");
    }

    #[test]
    fn prohibited_characters_are_reported_with_their_byte_index() {
        for (input, index, ascii) in [
            ("ab\rc", 2, Some(b'\r')),
            ("x\u{7f}", 1, Some(0x7f)),
            ("é\u{0085}", 2, None),
            ("a\u{E000}", 1, None),
            ("a\u{FFFF}", 1, None),
            ("a\u{1FFFE}", 1, None),
            ("\u{202E}evil", 0, None),
            ("tag\u{E0041}", 3, None),
            ("\u{2028}", 0, None),
            // Unassigned in Unicode 3.2 (the version SASLprep is defined on).
            ("pw\u{1F600}", 2, None),
        ] {
            assert_eq!(
                prepare(input).unwrap_err(),
                Prohibited {
                    index,
                    ascii_control: ascii
                },
                "{input:?}"
            );
        }
    }
}
