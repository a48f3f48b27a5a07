//! Inference keys: `llamactl-<64 hex>`, 256 random bits. The first 16 hex digits are the
//! key's public lookup id (indexed in the database); only the SHA-256 of the whole key is
//! stored. SHA-256 suits random tokens (Argon2 is for low-entropy passwords and would cost
//! ~64 MiB and tens of milliseconds per request).

use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every inference key (the Go llamactl's format).
pub const KEY_PREFIX: &str = "llamactl-";
const SECRET_HEX: usize = 64;
const LOOKUP_HEX: usize = 16;

/// A newly generated key: shown once, then only its hash and lookup id are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The key itself.
    pub secret: String,
    /// Its public lookup id.
    pub lookup_id: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
}

/// Generates a new key from the operating system's random source.
pub fn generate() -> GeneratedKey {
    let bytes: [u8; 32] = rand::rng().random();
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let lookup_id = secret[KEY_PREFIX.len()..KEY_PREFIX.len() + LOOKUP_HEX].to_owned();
    let sha256 = sha256_hex(&secret);
    GeneratedKey { secret, lookup_id, sha256 }
}

/// Hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// SHA-256 of `text`.
pub fn sha256(text: &str) -> [u8; 32] {
    sha256_bytes(text.as_bytes())
}

/// SHA-256 of `bytes`.
pub fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The digest a stored hex SHA-256 stands for, if it is one as [`sha256_hex`] writes it (64
/// lowercase hex digits); anything else is `None`, which no presented key matches.
pub fn parse_sha256_hex(stored: &str) -> Option<[u8; 32]> {
    let lowercase = stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut digest = [0u8; 32];
    (lowercase && hex::decode_to_slice(stored, &mut digest).is_ok()).then_some(digest)
}

/// The lookup id of a well-formed key, `None` for anything else.
pub fn lookup_id(secret: &str) -> Option<&str> {
    let hex_part = secret.strip_prefix(KEY_PREFIX)?;
    (hex_part.len() == SECRET_HEX && hex_part.bytes().all(|b| b.is_ascii_hexdigit())).then(|| &hex_part[..LOOKUP_HEX])
}

/// Compares two hex digests in constant time.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_go_format_and_verify() {
        let key = generate();
        assert!(key.secret.starts_with("llamactl-"));
        assert_eq!(key.secret.len(), KEY_PREFIX.len() + 64);
        assert_eq!(lookup_id(&key.secret), Some(key.lookup_id.as_str()));
        assert!(digests_equal(&sha256_hex(&key.secret), &key.sha256));
        assert_ne!(generate().secret, key.secret);
    }

    #[test]
    fn malformed_keys_have_no_lookup_id() {
        for bad in [
            "",
            "llamactl-",
            "llamactl-xyz",
            &format!("other-{}", "a".repeat(64)),
            &format!("llamactl-{}", "g".repeat(64)),
        ] {
            assert_eq!(lookup_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_digests_are_read_only_as_sha256_hex_writes_them() {
        let key = generate();
        assert_eq!(parse_sha256_hex(&key.sha256), Some(sha256(&key.secret)));
        assert_eq!(parse_sha256_hex(&key.sha256.to_uppercase()), None, "never equal to a computed digest");
        assert_eq!(parse_sha256_hex(&key.sha256[1..]), None);
        assert_eq!(parse_sha256_hex(""), None);
        assert_eq!(parse_sha256_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn digest_comparison() {
        assert!(digests_equal("abc", "abc"));
        assert!(!digests_equal("abc", "abd"));
        assert!(!digests_equal("abc", "abcd"));
    }
}
