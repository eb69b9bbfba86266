//! Password hashing: argon2id at OWASP's parameters (the `argon2` crate's default:
//! m = 19456 KiB, t = 2, p = 1), stored as PHC strings.
//!
//! Each hash needs 19 MiB of working memory and tens of milliseconds of one core, so:
//! - it runs on a blocking thread, never on the async workers that carry the chat;
//! - at most `--hash-concurrency` run at once (a semaphore); a burst of sign-ins
//!   queues here instead of taking every core;
//! - each running hash borrows one of at most that many working buffers, allocated
//!   once and reused. (Allocating 19 MiB per hash let the allocator keep a copy per
//!   blocking thread: measured, a server's RSS went from 12 MB to 190 MB after 20
//!   sign-ins. With the pool it stays at 12 MB + concurrency × 19 MiB.)

use std::sync::Mutex;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// The hasher could not run (its pool closed, a blocking task panicked, or argon2
/// refused its parameters): an internal failure, never the caller's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashFailed;

/// Salt length in bytes (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// Hashes and checks passwords off the async workers, a few at a time, in reused memory.
pub struct PasswordHasher {
    /// One permit per hash computed at once.
    permits: Semaphore,
    /// Working memory of finished hashes, for the next ones (at most one per permit).
    buffers: Mutex<Vec<Vec<Block>>>,
    /// A hash of a random password, checked against when the email is unknown so
    /// that answer takes as long as a wrong password.
    decoy: OnceCell<String>,
}

impl PasswordHasher {
    /// A hasher computing at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        PasswordHasher {
            permits: Semaphore::new(concurrency.max(1)),
            buffers: Mutex::new(Vec::new()),
            decoy: OnceCell::new(),
        }
    }

    /// The argon2id PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, HashFailed> {
        let password = password.to_string();
        self.with_memory(move |memory| {
            let mut salt = [0u8; SALT_BYTES];
            OsRng.fill_bytes(&mut salt);
            let params = Params::default();
            let output = compute(
                memory,
                password.as_bytes(),
                &salt,
                params.clone(),
                Params::DEFAULT_OUTPUT_LEN,
            )?;
            let salt = SaltString::encode_b64(&salt).map_err(internal)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: (&params).try_into().map_err(internal)?,
                salt: Some(Salt::from(&salt)),
                hash: Some(Output::new(&output).map_err(internal)?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `password` matches the stored hash (`None`: the account does not exist,
    /// checked against a decoy so it costs the same; always false).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, HashFailed> {
        let (phc, real) = match stored {
            Some(phc) => (phc.to_string(), true),
            None => {
                let decoy = self
                    .decoy
                    .get_or_try_init(|| async {
                        self.hash(&hex::encode(rand::random::<[u8; 16]>())).await
                    })
                    .await?;
                (decoy.clone(), false)
            }
        };
        let password = password.to_string();
        let matches = self
            .with_memory(move |memory| Ok(matches(memory, &password, &phc)))
            .await?;
        Ok(real && matches)
    }

    /// Runs `work` on a blocking thread once a permit is free, with a working buffer.
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashFailed> + Send + 'static,
    ) -> Result<T, HashFailed> {
        let _permit = self.permits.acquire().await.map_err(|_| HashFailed)?;
        let mut memory = self.lock_buffers().pop().unwrap_or_default();
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            (result, memory)
        })
        .await
        .map_err(|_| HashFailed)?;
        self.lock_buffers().push(memory);
        result
    }

    fn lock_buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// argon2id of `password` into `output_len` bytes, in `memory` (grown if the
/// parameters need more).
fn compute(
    memory: &mut Vec<Block>,
    password: &[u8],
    salt: &[u8],
    params: Params,
    output_len: usize,
) -> Result<Vec<u8>, HashFailed> {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut output = vec![0u8; output_len];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password, salt, &mut output, &mut memory[..])
        .map_err(internal)?;
    Ok(output)
}

/// Whether `password` hashes to the stored PHC string (an unreadable one never
/// matches). The comparison of the outputs is constant-time (`Output`'s `==`).
fn matches(memory: &mut Vec<Block>, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    compute(memory, password.as_bytes(), salt, params, expected.len())
        .ok()
        .and_then(|output| Output::new(&output).ok())
        .is_some_and(|output| output == expected)
}

fn internal(err: impl std::fmt::Display) -> HashFailed {
    tracing::error!(%err, "password hashing failed");
    HashFailed
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_and_the_decoy_never_matches() {
        let hasher = PasswordHasher::new(1);
        let hash = hasher.hash("correct horse").await.expect("hashes");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let verify = |password: &'static str, stored: Option<String>| {
            let hasher = &hasher;
            async move {
                hasher
                    .verify(password, stored.as_deref())
                    .await
                    .expect("verifies")
            }
        };
        assert!(verify("correct horse", Some(hash.clone())).await);
        assert!(!verify("wrong horse", Some(hash.clone())).await);
        assert!(!verify("correct horse", None).await);
        assert!(!verify("x", Some("not a phc string".into())).await);
        assert_eq!(hasher.lock_buffers().len(), 1, "one buffer, reused");
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        // Made here, checked by the argon2 crate's own verifier — and the other way.
        let hasher = PasswordHasher::new(2);
        let ours = hasher.hash("pässwörd").await.expect("hashes");
        let parsed = PasswordHash::new(&ours).expect("parses");
        assert!(Argon2::default()
            .verify_password("pässwörd".as_bytes(), &parsed)
            .is_ok());
        let theirs = {
            use argon2::password_hash::PasswordHasher as _;
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"open sesame", &salt)
                .expect("hashes")
                .to_string()
        };
        assert!(hasher
            .verify("open sesame", Some(&theirs))
            .await
            .expect("verifies"));
        assert!(!hasher
            .verify("open sesam", Some(&theirs))
            .await
            .expect("verifies"));
    }
}
