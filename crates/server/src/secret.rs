//! How secrets are kept: only their digest is stored.
//!
//! Session ids, emailed tokens and guest secrets are 128-bit random values, so a fast
//! hash is right for them (passwords, which people choose, use argon2id in
//! [`crate::accounts::password`]). Accounts and connections both need it, so it lives
//! apart from either.

use sha2::{Digest, Sha256};

/// SHA-256 as hex: what is stored of session ids, tokens and guest secrets.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
