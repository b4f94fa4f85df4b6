//! The subset of SASLprep (RFC 4013) that SCRAM user names and passwords go through.
//!
//! Done, in this order, one character at a time:
//!
//! * **mapping** (RFC 4013 section 2.1): the non-ASCII space characters (table C.1.2) become
//!   U+0020, and the "commonly mapped to nothing" characters (table B.1: soft hyphen, zero-width
//!   joiners, variation selectors, BOM, ...) are removed;
//! * **prohibition** (section 2.3): ASCII and non-ASCII control characters (C.2.1, C.2.2),
//!   private-use code points (C.3), non-characters (C.4), characters that change display
//!   properties or are deprecated (C.8) and tagging characters (C.9) are refused.
//!
//! Not done: Unicode normalisation form KC (it needs the Unicode tables, which this crate does
//! not carry) and the bidirectional checks. ASCII text is therefore prepared exactly as SASLprep
//! prepares it (it is left unchanged, controls refused); non-ASCII text is mapped and checked as
//! above but not normalised, so a password must be typed in the form the server stored it (in
//! practice NFC, which NFKC leaves alone except for compatibility characters).

use crate::secret::Secret;

/// Why a string was refused: the byte index of the first prohibited character, and whether it is
/// an ASCII control (C.2.1), which callers report as a forbidden byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prohibited {
    /// Byte index of the character in the input.
    pub(crate) index: usize,
    /// The byte itself, when the character is an ASCII control.
    pub(crate) ascii_control: Option<u8>,
}

/// Non-ASCII space characters (RFC 3454 table C.1.2): mapped to U+0020.
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// "Commonly mapped to nothing" (RFC 3454 table B.1): removed.
fn is_mapped_to_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200C}'
            | '\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// Prohibited output (RFC 4013 section 2.3), less the tables that cannot occur in a Rust `str`
/// (surrogates, C.5) or that NFKC would have removed (C.6, C.7, inappropriate for plain text or
/// canonical representation: they are refused anyway, C.6 and C.7 are listed below).
fn is_prohibited(c: char) -> bool {
    matches!(
        c,
        // C.2.1 ASCII control characters.
        '\u{0000}'..='\u{001F}' | '\u{007F}'
        // C.2.2 non-ASCII control characters.
        | '\u{0080}'..='\u{009F}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{180E}'
        | '\u{200C}'
        | '\u{200D}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{2060}'..='\u{2063}'
        | '\u{206A}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFC}'
        | '\u{1D173}'..='\u{1D17A}'
        // C.3 private use.
        | '\u{E000}'..='\u{F8FF}'
        | '\u{F0000}'..='\u{FFFFD}'
        | '\u{100000}'..='\u{10FFFD}'
        // C.4 non-character code points.
        | '\u{FDD0}'..='\u{FDEF}'
        // C.6 inappropriate for plain text, C.7 inappropriate for canonical representation.
        | '\u{FFF9}'..='\u{FFFD}'
        | '\u{2FF0}'..='\u{2FFB}'
        // C.8 change display properties or deprecated.
        | '\u{0340}'
        | '\u{0341}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        // C.9 tagging characters.
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}'
    ) || (c as u32 & 0xFFFE) == 0xFFFE // C.4: U+xFFFE and U+xFFFF in every plane.
}

/// Prepare `input`: map, then refuse prohibited characters. The result lives in a [`Secret`]
/// sized for the input (mapping never makes text longer: a mapped space is shorter than the
/// character it replaces), so the buffer never reallocates.
pub(crate) fn prepare(input: &str) -> Result<Secret, Prohibited> {
    let mut out = Secret::with_capacity(input.len());
    let mut utf8 = [0u8; 4];
    for (index, c) in input.char_indices() {
        let c = if is_non_ascii_space(c) {
            ' '
        } else if is_mapped_to_nothing(c) {
            continue;
        } else {
            c
        };
        if is_prohibited(c) {
            return Err(Prohibited {
                index,
                ascii_control: u8::try_from(c).ok().filter(u8::is_ascii),
            });
        }
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    utf8.fill(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        prepare(s).unwrap().expose_str().unwrap().to_owned()
    }

    #[test]
    fn rfc_4013_examples() {
        // RFC 4013 section 3, less the NFKC ones.
        assert_eq!(ok("I\u{00AD}X"), "IX");
        assert_eq!(ok("user"), "user");
        assert_eq!(ok("USER"), "USER");
        assert_eq!(
            prepare("\u{0007}").unwrap_err(),
            Prohibited {
                index: 0,
                ascii_control: Some(7)
            }
        );
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
