//! Standard base64 (RFC 4648, padded) for the capture server's SASL exchanges: thin wrappers over
//! the `base64` crate.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;

/// Encode `input` as padded standard base64.
pub fn encode(input: &[u8]) -> String {
    STANDARD.encode(input)
}

/// Decode padded standard base64 (surrounding whitespace ignored); `None` when it is not valid.
pub fn decode(input: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    STANDARD.decode(input.as_ref().trim_ascii()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        assert_eq!(encode(b"\0user\0secret"), "AHVzZXIAc2VjcmV0");
        assert_eq!(
            decode("AHVzZXIAc2VjcmV0").as_deref(),
            Some(&b"\0user\0secret"[..])
        );
        assert_eq!(decode("not base64!"), None);
    }
}
