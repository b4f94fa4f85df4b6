//! Base64 for building expected SASL lines in tests: a thin wrapper over the `base64` crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Standard, padded base64 of `data`.
pub fn encode(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::encode(plain), encoded);
        }
    }
}
