//! [`BodySizing`]: how a streamed body is read and what is known of its size, shared by every
//! adapter's body type so they all follow the same rules.

#[cfg(feature = "std")]
use core::future::Future;
#[cfg(feature = "std")]
use std::fs::File;
#[cfg(feature = "std")]
use std::io;

/// How much [`BodySizing::count_from_position`] reads at a time.
#[cfg(feature = "std")]
const COUNT_CHUNK: usize = 256 * 1024;

/// The two settings every adapter's streamed body type shares, written once: invoked inside
/// `impl Body { .. }` with the name of its [`BodySizing`] field, it adds `with_chunk_size` and
/// `with_size_hint`, which forward to [`BodySizing::set_chunk_size`] and
/// [`BodySizing::set_size_hint`]. The docs below are the ones every adapter shows.
///
/// ```
/// use smtp_proto::body::BodySizing;
///
/// struct Body {
///     sizing: BodySizing,
/// }
///
/// impl Body {
///     smtp_proto::body_sizing_methods!(sizing);
/// }
///
/// let body = Body { sizing: BodySizing::new(8192) }.with_chunk_size(0).with_size_hint(42);
/// assert_eq!(body.sizing.chunk_size(), 1);
/// assert_eq!(body.sizing.size_hint(), Some(42));
/// ```
#[macro_export]
macro_rules! body_sizing_methods {
    ($field:ident) => {
        /// Read at most `bytes` at a time (at least 1); a larger piece from the source is
        /// handed out in parts.
        pub fn with_chunk_size(mut self, bytes: usize) -> Self {
            self.$field.set_chunk_size(bytes);
            self
        }

        /// Declare the body's size as sent: CRLF line endings (a bare LF counts two bytes) and
        /// a final CRLF, without dot-stuffing (RFC 1870). It is sent as `SIZE=`, checked
        /// against the server's limit before any command, and enforced: a body that yields
        /// more is abandoned before its end of data.
        pub fn with_size_hint(mut self, bytes: u64) -> Self {
            self.$field.set_size_hint(bytes);
            self
        }
    };
}

/// The chunk size and the size of a streamed body, apart from where its bytes come from (the
/// part an adapter's [`MessageBody`](crate::body::MessageBody) keeps besides its reader).
///
/// It guarantees:
/// - the chunk size is at least 1, whatever is asked for;
/// - a declared size (the size hint) wins: with one, nothing is counted and there is no bound;
/// - with `std`, a file given to [`count_on_demand`](Self::count_on_demand) of `n` bytes is
///   bounded by `2n + 2` as sent ([`max_size`](Self::max_size)) and counted only when
///   [`exact_size`](Self::exact_size) is asked for: once, from where the file stands, which it
///   is put back to; the count is declared from then on. Once the body is read
///   ([`begin_reading`](Self::begin_reading)) the file is no longer counted or bounded, and its
///   second handle is closed.
///
/// ```
/// use smtp_proto::body::BodySizing;
///
/// let mut sizing = BodySizing::new(0);
/// assert_eq!(sizing.chunk_size(), 1);
/// sizing.set_size_hint(42);
/// assert_eq!(sizing.size_hint(), Some(42));
/// ```
#[derive(Debug)]
pub struct BodySizing {
    chunk_size: usize,
    size_hint: Option<u64>,
    /// For a file not yet read: its most bytes as sent, and a second handle on it to count
    /// them exactly on demand.
    #[cfg(feature = "std")]
    file: Option<(u64, File)>,
}

impl BodySizing {
    /// Read `chunk_size` bytes at a time (at least 1), of unknown size.
    pub fn new(chunk_size: usize) -> BodySizing {
        BodySizing {
            chunk_size: chunk_size.max(1),
            size_hint: None,
            #[cfg(feature = "std")]
            file: None,
        }
    }

    /// Read `bytes` at a time instead (at least 1).
    pub fn set_chunk_size(&mut self, bytes: usize) {
        self.chunk_size = bytes.max(1);
    }

    /// Declare the body's size as sent (CRLF line endings and a final CRLF, no dot-stuffing).
    pub fn set_size_hint(&mut self, bytes: u64) {
        self.size_hint = Some(bytes);
    }

    /// How many bytes are read at a time.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The declared size as sent, if any.
    pub fn size_hint(&self) -> Option<u64> {
        self.size_hint
    }
}

#[cfg(feature = "std")]
impl BodySizing {
    /// Count `file` (the body, not yet read) only on demand: bound it by twice its length plus
    /// two, and keep a second handle on it (which shares its position) to count it with.
    pub fn count_on_demand(&mut self, file: &File) -> io::Result<()> {
        let most = file.metadata()?.len().saturating_mul(2).saturating_add(2);
        self.file = Some((most, file.try_clone()?));
        Ok(())
    }

    /// The body is being read: a file is no longer counted, and its second handle is closed.
    pub fn begin_reading(&mut self) {
        self.file = None;
    }

    /// The most bytes the body can take as sent: the bound of a file to count on demand, when
    /// no size is declared.
    pub fn max_size(&self) -> Option<u64> {
        match (self.size_hint, &self.file) {
            (None, Some((most, _))) => Some(*most),
            _ => None,
        }
    }

    /// The file to count: there is one, and no size is declared.
    fn uncounted(&self) -> Option<&File> {
        match (self.size_hint, &self.file) {
            (None, Some((_, file))) => Some(file),
            _ => None,
        }
    }

    /// The exact size as sent: the declared size, or else the file counted here (a blocking
    /// pass, see [`count_from_position`](Self::count_from_position)) and declared from then
    /// on; `None` for a body of unknown size.
    pub fn exact_size(&mut self) -> io::Result<Option<u64>> {
        let Some(file) = self.uncounted() else {
            return Ok(self.size_hint);
        };
        let size = BodySizing::count_from_position(file)?;
        self.size_hint = Some(size);
        Ok(Some(size))
    }

    /// [`exact_size`](Self::exact_size), the file being counted by `count`, given its own
    /// handle (for example to count it on a runtime's blocking pool).
    pub async fn exact_size_with<F, C>(&mut self, count: C) -> io::Result<Option<u64>>
    where
        C: FnOnce(File) -> F,
        F: Future<Output = io::Result<u64>>,
    {
        let Some(file) = self.uncounted() else {
            return Ok(self.size_hint);
        };
        let size = count(file.try_clone()?).await?;
        self.size_hint = Some(size);
        Ok(Some(size))
    }

    /// The size as sent of what `file` holds from its position on (see
    /// [`SizeCounter::count`](crate::body::SizeCounter::count)), read 256 KiB at a time; the
    /// file is put back where it stood (also when the count fails).
    pub fn count_from_position(mut file: impl io::Read + io::Seek) -> io::Result<u64> {
        let start = file.stream_position()?;
        let size = crate::body::SizeCounter::count(&mut file, COUNT_CHUNK);
        // Back where it stood even when the count failed part-way.
        file.seek(io::SeekFrom::Start(start))?;
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunk size is never 0, and a declared size stays declared.
    #[test]
    fn the_chunk_size_is_at_least_one() {
        let mut sizing = BodySizing::new(0);
        assert_eq!(sizing.chunk_size(), 1);
        assert_eq!(sizing.size_hint(), None);
        sizing.set_chunk_size(4096);
        assert_eq!(sizing.chunk_size(), 4096);
        sizing.set_chunk_size(0);
        assert_eq!(sizing.chunk_size(), 1);
        sizing.set_size_hint(7);
        assert_eq!(sizing.size_hint(), Some(7));
        assert_eq!(BodySizing::new(8 * 1024).chunk_size(), 8 * 1024);
    }

    #[cfg(feature = "std")]
    mod files {
        use super::*;
        use crate::alloc_prelude::*;
        use crate::body::normalized_len;
        use std::io::{Read, Seek};

        fn body_bytes() -> Vec<u8> {
            let mut bytes = b"Subject: sizes\n\r\nbare LF\nbare CR\rCRLF\r\n".to_vec();
            for n in 0..70_000u32 {
                bytes.extend_from_slice(if n % 7 == 0 { b"line\n" } else { b"line\r\n" });
            }
            bytes
        }

        /// A file of its own for each test, removed when dropped.
        struct TempFile(std::path::PathBuf);

        impl TempFile {
            fn new(name: &str, bytes: &[u8]) -> TempFile {
                let path =
                    std::env::temp_dir().join(format!("body-sizing-{name}-{}", std::process::id()));
                std::fs::write(&path, bytes).unwrap();
                TempFile(path)
            }

            /// The file opened, and sizing that counts it on demand.
            fn open_on_demand(&self) -> (std::fs::File, BodySizing) {
                let file = std::fs::File::open(&self.0).unwrap();
                let mut sizing = BodySizing::new(1024);
                sizing.count_on_demand(&file).unwrap();
                (file, sizing)
            }
        }

        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }

        /// The count starts where the reader stands (across many chunks) and puts it back.
        #[test]
        fn the_count_is_from_the_position_and_leaves_it() {
            let bytes = body_bytes();
            let mut cursor = std::io::Cursor::new(&bytes);
            cursor.seek(std::io::SeekFrom::Start(9)).unwrap();
            let size = BodySizing::count_from_position(&mut cursor).unwrap();
            assert_eq!(size, normalized_len(&bytes[9..]));
            assert_eq!(cursor.position(), 9);
        }

        /// A reader whose reads fail from `fail_at` on.
        struct FailsPast {
            inner: std::io::Cursor<Vec<u8>>,
            fail_at: u64,
        }

        impl Read for FailsPast {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.inner.position() >= self.fail_at {
                    return Err(std::io::Error::other("disk gone"));
                }
                self.inner.read(buf)
            }
        }

        impl Seek for FailsPast {
            fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
                self.inner.seek(to)
            }
        }

        /// A count that fails part-way says so, and still puts the reader back.
        #[test]
        fn a_failed_count_leaves_the_position_too() {
            let mut reader = FailsPast {
                inner: std::io::Cursor::new(body_bytes()),
                fail_at: 300 * 1024,
            };
            reader.seek(std::io::SeekFrom::Start(5)).unwrap();
            let error = BodySizing::count_from_position(&mut reader).unwrap_err();
            assert_eq!(error.to_string(), "disk gone");
            assert_eq!(reader.inner.position(), 5);
        }

        /// A file is bounded until asked, then counted once and declared; it still reads
        /// from its start.
        #[test]
        fn a_file_is_counted_on_demand_and_declared() {
            let bytes = body_bytes();
            let temp = TempFile::new("demand", &bytes);
            let (mut file, mut sizing) = temp.open_on_demand();
            assert_eq!(sizing.size_hint(), None);
            assert_eq!(sizing.max_size(), Some(2 * bytes.len() as u64 + 2));
            let exact = sizing.exact_size().unwrap();
            assert_eq!(exact, Some(normalized_len(&bytes)));
            assert_eq!(sizing.size_hint(), exact);
            // Declared now: no bound any more.
            assert_eq!(sizing.max_size(), None);
            let mut whole = Vec::new();
            file.read_to_end(&mut whole).unwrap();
            assert_eq!(whole, bytes);
        }

        /// A declared size wins over the file: no bound, and nothing counted.
        #[test]
        fn a_declared_size_is_never_recounted() {
            let temp = TempFile::new("declared", b"Subject: x\n\nhi\n");
            let (_file, mut sizing) = temp.open_on_demand();
            sizing.set_size_hint(7);
            assert_eq!(sizing.max_size(), None);
            assert_eq!(sizing.exact_size().unwrap(), Some(7));
        }

        /// Once the body is read, the file is neither bounded nor counted.
        #[test]
        fn reading_ends_counting() {
            let temp = TempFile::new("reading", b"Subject: x\n\nhi\n");
            let (_file, mut sizing) = temp.open_on_demand();
            sizing.begin_reading();
            assert_eq!(sizing.max_size(), None);
            assert_eq!(sizing.exact_size().unwrap(), None);
            // A body of unknown size has neither.
            assert_eq!(BodySizing::new(1).max_size(), None);
        }

        /// The count can be done elsewhere: it gets its own handle, and its answer is
        /// declared; with a declared size it is never called.
        #[cfg(feature = "client")]
        #[test]
        fn a_count_done_elsewhere_is_declared() {
            use crate::future::block_on;
            let bytes = b"Subject: x\n\nhi\n";
            let temp = TempFile::new("elsewhere", bytes);
            let (_file, mut sizing) = temp.open_on_demand();
            let exact = block_on(sizing.exact_size_with(|mut copy| {
                core::future::ready(BodySizing::count_from_position(&mut copy))
            }))
            .unwrap();
            assert_eq!(exact, Some(normalized_len(bytes)));
            assert_eq!(sizing.size_hint(), exact);
            let again = block_on(sizing.exact_size_with(
                |_| -> core::future::Ready<io::Result<u64>> {
                    panic!("a declared size was counted again")
                },
            ));
            assert_eq!(again.unwrap(), exact);
        }
    }
}
