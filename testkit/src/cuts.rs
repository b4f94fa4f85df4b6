//! Cutting bytes into pieces at arbitrary points: the property tests feed an encoder, a parser
//! or a hash its input in every such split, and expect what the whole input gives.

/// `body` cut at `cuts`, each taken modulo `body.len() + 1` and used in increasing order: the
/// pieces, empty ones included, joined back give `body` exactly.
///
/// ```
/// use smtp_testkit::cuts::split_at_cuts;
///
/// assert_eq!(split_at_cuts(b"abcd", &[3, 1, 9]), [&b"a"[..], b"bc", b"d", b""]);
/// assert_eq!(split_at_cuts(b"", &[7]).concat(), b"");
/// ```
pub fn split_at_cuts<'a>(body: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for p in points {
        pieces.push(&body[start..p]);
        start = p;
    }
    pieces.push(&body[start..]);
    pieces
}
