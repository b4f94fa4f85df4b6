//! Reference answers, written the obvious slow way, that tests hold the fast code to.

/// What SMTP delivers for the message `sent`: every bare CR and every bare LF becomes CRLF, a
/// CRLF stays as it is, and a message that does not end with CRLF gets one (an empty message
/// stays empty). The engine's `LineNormalizer` and `DotStuffer` are checked against it, and the
/// interop tests compare what real servers stored with it.
pub fn crlf_normalized(sent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.len() + 16);
    let mut i = 0;
    while i < sent.len() {
        match sent[i] {
            b'\r' if sent.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_ends_become_crlf_and_the_end_gets_one() {
        assert_eq!(crlf_normalized(b""), b"");
        assert_eq!(crlf_normalized(b"a"), b"a\r\n");
        assert_eq!(crlf_normalized(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(crlf_normalized(b"\r\r\n\n"), b"\r\n\r\n\r\n");
    }
}
