//! Everything secret: random tokens, their stored digests, password hashes and TOTP codes.
//!
//! Tokens handed to clients (session, refresh, reset, MFA challenge) are 32 random bytes,
//! hex-encoded; the database keeps only their SHA-256 digest, so a leaked table cannot be
//! replayed. None of these values ever goes into telemetry metadata or an audit row.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::HashCost;
use crate::error::ApiError;

/// A fresh random token (32 bytes from the OS, 64 hex digits).
pub(crate) fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("the OS random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A fresh public id (users, sessions): a hyphenated UUIDv7, not a secret. Plain UUIDs on
/// purpose: the metadata policy knows them, while a prefixed id (`u_<uuid>`) inside a
/// resource path such as `users/<id>/profile` reads as a random token and is redacted.
pub(crate) fn public_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// The digest the database stores for a token.
pub(crate) fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Argon2id with the configured cost.
#[derive(Clone, Debug)]
pub(crate) struct PasswordHashing {
    params: Params,
    /// A hash of a random password, verified against when the account does not exist, so
    /// an unknown email costs the same time as a wrong password.
    dummy: String,
}

impl PasswordHashing {
    pub(crate) fn new(cost: HashCost) -> Result<PasswordHashing, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| format!("argon2 parameters {cost:?} are invalid: {e}"))?;
        let mut hashing = PasswordHashing {
            params,
            dummy: String::new(),
        };
        let filler = random_token().map_err(|e| e.to_string())?;
        hashing.dummy = hashing.hash(&filler).map_err(|e| e.to_string())?;
        Ok(hashing)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string (`$argon2id$v=19$m=…`) for `password`, with a fresh 16-byte salt.
    pub(crate) fn hash(&self, password: &str) -> Result<String, ApiError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| ApiError::internal(format!("the OS random source failed: {e}")))?;
        self.argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing a password failed: {e}")))
    }

    /// [`PasswordHashing::hash`] on a blocking thread: at production cost a hash takes tens
    /// of milliseconds of CPU, which must not stall the runtime's workers.
    pub(crate) async fn hash_blocking(&self, password: &str) -> Result<String, ApiError> {
        let (hashing, password) = (self.clone(), password.to_owned());
        tokio::task::spawn_blocking(move || hashing.hash(&password))
            .await
            .map_err(|e| ApiError::internal(format!("the hashing task failed: {e}")))?
    }

    /// [`PasswordHashing::verify`] on a blocking thread.
    pub(crate) async fn verify_blocking(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, ApiError> {
        let (hashing, password) = (self.clone(), password.to_owned());
        let stored = stored.map(str::to_owned);
        tokio::task::spawn_blocking(move || hashing.verify(&password, stored.as_deref()))
            .await
            .map_err(|e| ApiError::internal(format!("the password check failed: {e}")))
    }

    /// Whether `password` matches `stored` (a PHC string); `None` checks against the dummy
    /// hash and is always false.
    pub(crate) fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let phc = stored.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let matched = self
            .argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matched && stored.is_some()
    }
}

/// RFC 6238 TOTP: HMAC-SHA1, 30-second steps, 6 digits (what authenticator apps use).
pub mod totp {
    use super::*;

    /// Seconds per step.
    pub const STEP: u64 = 30;

    /// The code for `secret` at unix time `now`.
    ///
    /// ```
    /// // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → 287082 (6 digits).
    /// let code = authtel_axum_service::totp::code(b"12345678901234567890", 59);
    /// assert_eq!(code, "287082");
    /// ```
    pub fn code(secret: &[u8], now: u64) -> String {
        hotp(secret, now / STEP)
    }

    fn hotp(secret: &[u8], counter: u64) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret) else {
            return String::new();
        };
        mac.update(&counter.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[digest.len() - 1] & 0x0f);
        let value = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        format!("{:06}", value % 1_000_000)
    }

    /// Whether `code` is valid for `secret` at `now`, allowing one step of clock skew either
    /// way. Compares in constant time.
    pub fn verify(secret: &[u8], code: &str, now: u64) -> bool {
        let step = now / STEP;
        let mut ok = false;
        for counter in [step.saturating_sub(1), step, step + 1] {
            ok |= constant_time_eq(hotp(secret, counter).as_bytes(), code.as_bytes());
        }
        ok
    }

    fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// RFC 4648 base32 without padding, as `otpauth://` URIs carry secrets.
    ///
    /// ```
    /// assert_eq!(authtel_axum_service::totp::base32(b"foobar"), "MZXW6YTBOI");
    /// ```
    pub fn base32(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for &b in bytes {
            buffer = (buffer << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
        }
        out
    }

    /// Decodes [`base32`] text (upper case, no padding); `None` on any other character.
    ///
    /// ```
    /// use authtel_axum_service::totp;
    /// assert_eq!(totp::from_base32("MZXW6YTBOI").unwrap(), b"foobar");
    /// assert!(totp::from_base32("not base32!").is_none());
    /// ```
    pub fn from_base32(text: &str) -> Option<Vec<u8>> {
        let (mut buffer, mut bits) = (0u32, 0u32);
        let mut out = Vec::with_capacity(text.len() * 5 / 8);
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        Some(out)
    }
}
