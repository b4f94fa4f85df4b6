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
//!   zeros, with the [`zeroize`] crate (volatile writes and a compiler fence, which the optimiser
//!   may not remove as dead stores); [`Secret`] implements [`Zeroize`] and [`ZeroizeOnDrop`];
//! * when [`extend_from_slice`](Secret::extend_from_slice) must grow the buffer, the old one is
//!   zeroed before it is freed.
//!
//! The zeroing cannot reach copies made elsewhere: a `String` the caller still holds, intermediate
//! buffers of a computation that produced the value, the bytes already written to a socket buffer,
//! swap, or core dumps. It shortens the life of the secret in memory; it does not make memory safe
//! to disclose.
//!
//! `Secret` deliberately implements neither `Clone` nor `PartialEq`: copies are made explicitly,
//! and comparing secrets is not something this crate needs (nor something to do in variable time).

#[allow(unused_imports)]
use crate::alloc_prelude::*;
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes whose `Debug` and `Display` print `[redacted]`, overwritten with zeros on drop (a clone
/// too: it is a secret of its own).
///
/// ```
/// use smtp_proto::secret::Secret;
///
/// let s = Secret::from("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
/// assert_eq!(s.expose(), b"hunter2");
/// ```
#[derive(Default, Clone)]
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

    /// Append bytes. When the capacity is too small the value moves to a larger buffer and the old
    /// one is zeroed before it is freed, so no stale copy of a prefix is left behind; sizing the
    /// secret with [`with_capacity`](Secret::with_capacity) first still saves the copy.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let needed = self.bytes.len().saturating_add(bytes.len());
        if needed > self.bytes.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.bytes.capacity().saturating_mul(2)));
            grown.extend_from_slice(&self.bytes);
            self.bytes.zeroize();
            // The old, now zeroed, buffer is freed here.
            self.bytes = grown;
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// Overwrite the whole buffer (its capacity, not only its length) with zeros and empty it; the
    /// same as [`Zeroize::zeroize`]. Called on drop.
    pub fn clear(&mut self) {
        self.bytes.zeroize();
    }
}

/// Zeroes the whole buffer (its capacity) and empties the secret.
impl Zeroize for Secret {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// [`Secret`]'s `Drop` zeroes it.
impl ZeroizeOnDrop for Secret {}

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

    /// `Secret` is wiped by `zeroize` on drop (the type says so), and an explicit `zeroize()`
    /// empties it and keeps the buffer, whose spare capacity `zeroize` also overwrites.
    #[test]
    fn secret_is_zeroize_on_drop() {
        fn zeroize_on_drop<T: Zeroize + ZeroizeOnDrop>(_: &T) {}
        let mut s = Secret::from("hunter2");
        zeroize_on_drop(&s);
        s.zeroize();
        assert!(s.is_empty());
        assert!(s.bytes.capacity() >= 7);
        s.extend_from_slice(b"again");
        assert_eq!(s.expose(), b"again");
    }

    /// Growing keeps the value, in a larger buffer (the old one was zeroed, which only the code
    /// shows: its memory is freed).
    #[test]
    fn extend_grows_and_keeps_the_value() {
        let mut s = Secret::with_capacity(2);
        s.extend_from_slice(b"ab");
        s.extend_from_slice(b"cdefgh");
        s.extend_from_slice(b"");
        s.extend_from_slice(b"i");
        assert_eq!(s.expose(), b"abcdefghi");
        assert!(s.bytes.capacity() >= 9);
        let mut e = Secret::default();
        e.extend_from_slice(b"x");
        assert_eq!(e.expose(), b"x");
    }
}
