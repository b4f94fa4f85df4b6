//! Reading the client's lines with a bound, whatever it sends.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// CRLF, as RFC 5321 requires.
    Crlf,
    /// A bare LF: taken as a line's end, but never as part of the end of DATA (the pattern of
    /// SMTP smuggling).
    BareLf,
}

/// One line from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line without its CRLF (or bare LF), and how it ended.
    Text(Vec<u8>, Ending),
    /// Longer than the limit; the whole line was consumed and dropped.
    TooLong,
    /// End of stream (a trailing partial line is dropped).
    Eof,
}

/// Read one line of at most `max` bytes (without the line ending), holding at most `max + 2`
/// bytes plus one buffer of the reader whatever the client sends.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            line.extend_from_slice(buf.get(..take).unwrap_or_default());
        }
        reader.consume(take);
        if line.len() > max.saturating_add(2) {
            too_long = true;
            line = Vec::new();
        }
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Line::TooLong);
    }
    line.pop(); // the LF
    let ending = if line.last() == Some(&b'\r') {
        line.pop();
        Ending::Crlf
    } else {
        Ending::BareLf
    };
    if line.len() > max {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(line, ending))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, max).await.unwrap();
            let eof = line == Line::Eof;
            out.push(line);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let got = lines(
            b"EHLO a\r\nNOOP\n0123456789ABC\r\nok\r\n0123456789\r\npartial",
            10,
        )
        .await;
        assert_eq!(
            got,
            vec![
                Line::Text(b"EHLO a".to_vec(), Ending::Crlf),
                Line::Text(b"NOOP".to_vec(), Ending::BareLf),
                Line::TooLong,
                Line::Text(b"ok".to_vec(), Ending::Crlf),
                Line::Text(b"0123456789".to_vec(), Ending::Crlf),
                Line::Eof,
            ]
        );
    }

    /// A line that never ends holds no more than the bound (it is dropped as it comes).
    #[tokio::test]
    async fn an_endless_line_is_dropped_as_it_comes() {
        let mut input = vec![b'x'; 1 << 20];
        input.extend_from_slice(b"\r\nQUIT\r\n");
        assert_eq!(
            lines(&input, 100).await,
            vec![
                Line::TooLong,
                Line::Text(b"QUIT".to_vec(), Ending::Crlf),
                Line::Eof
            ]
        );
    }
}
