//! [`Secret`]: bytes that are never shown, and are overwritten when dropped.
//!
//! Passwords, OAuth tokens and the SASL payloads built from them live in a [`Secret`] for as long
//! as the AUTH exchange needs them:
//!
//! * `Debug` and `Display` print `[redacted]`, whatever the value, so a secret cannot end up in a
//!   log line, an error message or a transcript by accident;
//! * reading the value takes an explicit, easy to grep call: [`Secret::expose`] (or its alias
//!   [`Secret::as_bytes`]);
//! * on drop, every byte of the buffer (its whole capacity, not only its length) is overwritten with
//!   zeros.
//!
//! The zeroing is **best effort**. It is done in safe code (this crate forbids `unsafe`): a plain
//! loop of writes followed by [`core::hint::black_box`] and a compiler fence, which in practice keeps
//! the optimiser from removing the writes as dead stores, but is not a guarantee the language
//! makes. It also cannot reach copies made elsewhere: a `String` the caller still holds, a buffer
//! the allocator moved when it grew, the bytes already written to a socket buffer, swap, or core
//! dumps. It shortens the life of the secret in memory; it does not make memory safe to disclose.
//!
//! `Secret` deliberately implements neither `Clone` nor `PartialEq`: copies are made explicitly,
//! and comparing secrets is not something this crate needs (nor something to do in variable time).

use core::fmt;
use core::sync::atomic::{Ordering, compiler_fence};

/// Bytes whose `Debug` and `Display` print `[redacted]`, overwritten with zeros on drop.
///
/// ```
/// use smtp_proto::secret::Secret;
///
/// let s = Secret::from("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
/// assert_eq!(s.expose(), b"hunter2");
/// ```
#[derive(Default)]
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// An empty secret with room for `capacity` bytes, to be filled with
    /// [`extend_from_slice`](Secret::extend_from_slice). Sizing it right up front means the buffer
    /// never reallocates, so no stale, un-zeroed copy of a prefix is left behind.
    pub fn with_capacity(capacity: usize) -> Secret {
        Secret {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// The secret value. Named to stand out in review: every call site reveals the secret.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret value; the same as [`expose`](Secret::expose).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret value as text, when it is valid UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.bytes).ok()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when the secret holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Append bytes. If the capacity is too small the buffer grows, and the old allocation is freed
    /// without being zeroed: size the secret with [`with_capacity`](Secret::with_capacity) first.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Overwrite the whole buffer (its capacity, not only its length) with zeros and empty it.
    /// Best effort; see the [module documentation](self). Called on drop.
    pub fn clear(&mut self) {
        wipe(&mut self.bytes);
        self.bytes.clear();
    }
}

/// Overwrite every byte of `bytes`, up to its capacity, with zeros; leaves `len == capacity`.
fn wipe(bytes: &mut Vec<u8>) {
    // `resize` within the capacity never reallocates; it makes the spare capacity (which may hold
    // bytes left by an earlier, longer value) reachable from safe code.
    let capacity = bytes.capacity();
    bytes.resize(capacity, 0);
    for b in bytes.iter_mut() {
        *b = 0;
    }
    // Make the zeroed buffer "observed" so the stores are not removed as dead.
    core::hint::black_box(bytes.as_slice());
    compiler_fence(Ordering::SeqCst);
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.clear();
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::from(value.as_bytes())
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Secret {
        let mut s = Secret::with_capacity(value.len());
        s.extend_from_slice(value);
        s
    }
}

/// Takes the string's buffer over without copying it; it is zeroed when the secret is dropped.
impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret {
            bytes: value.into_bytes(),
        }
    }
}

/// Takes the vector's buffer over without copying it; it is zeroed when the secret is dropped.
impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Secret {
        Secret { bytes }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        for s in [
            Secret::from("hunter2"),
            Secret::from(String::from("hunter2")),
            Secret::from(&b"hunter2"[..]),
            Secret::from(b"hunter2".to_vec()),
        ] {
            assert_eq!(format!("{s:?}"), "[redacted]");
            assert_eq!(format!("{s:#?}"), "[redacted]");
            assert_eq!(format!("{s}"), "[redacted]");
            assert_eq!(format!("{s:>20}"), "[redacted]");
            assert_eq!(s.expose(), b"hunter2");
            assert_eq!(s.as_bytes(), b"hunter2");
            assert_eq!(s.expose_str(), Some("hunter2"));
            assert_eq!(s.len(), 7);
            assert!(!s.is_empty());
        }
    }

    #[test]
    fn redacted_inside_containers() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Creds {
            user: &'static str,
            password: Secret,
        }
        let c = Creds {
            user: "me",
            password: Secret::from("hunter2"),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("[redacted]"), "{d}");
        let o = Some(Secret::from("hunter2"));
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn empty_and_non_utf8() {
        let e = Secret::default();
        assert!(e.is_empty());
        assert_eq!(format!("{e:?}{e}"), "[redacted][redacted]");
        let b = Secret::from(vec![0xff, 0x00]);
        assert_eq!(b.expose_str(), None);
        assert_eq!(format!("{b:?}"), "[redacted]");
    }

    #[test]
    fn clear_zeroes_and_empties() {
        let mut s = Secret::with_capacity(16);
        s.extend_from_slice(b"abc");
        s.extend_from_slice(b"def");
        assert_eq!(s.expose(), b"abcdef");
        s.clear();
        assert!(s.is_empty());
        assert!(s.bytes.capacity() >= 16, "clear keeps the buffer");
    }

    #[test]
    fn wipe_reaches_spare_capacity() {
        let mut v = b"hunter2-and-more".to_vec();
        v.truncate(3);
        wipe(&mut v);
        assert_eq!(v.len(), v.capacity());
        assert!(v.len() >= 16);
        assert!(v.iter().all(|&b| b == 0));
    }
}
