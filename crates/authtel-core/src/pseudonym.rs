//! Keyed pseudonyms: a stable, opaque identifier for a value that must not be stored as it
//! is — an email address used as a login name, a phone number.
//!
//! Every identifier position refuses an email ([`crate::policy::check_identifier`]). When an
//! application has no opaque account id to give (an unknown-user failure, a sign-up that
//! did not finish), it asks for a pseudonym instead: HMAC-SHA-256 of the value under the
//! application's secret key, cut to 128 bits, written as `psn_` and 32 hex digits. The same
//! value under the same key always gives the same pseudonym, so failures can be counted per
//! account and joined across sinks; without the key nobody can test a guessed address
//! against it (a plain hash of an email is reversed by hashing a list of addresses).
//!
//! ```
//! use authtel_core::metadata::Metadata;
//! use authtel_core::pseudonym::PseudonymKey;
//! let key = PseudonymKey::new(b"a secret of at least thirty-two bytes!")?;
//! let who = key.for_email(" Alice@Example.com ");
//! assert_eq!(who, key.for_email("alice@example.com"));
//! assert!(who.as_str().starts_with("psn_") && who.as_str().len() == 36);
//! // An email is refused as a user id; its pseudonym is kept.
//! assert_eq!(Metadata::new().user_id("alice@example.com").get_user_id(), None);
//! assert_eq!(Metadata::new().user_id(&who).get_user_id(), Some(who.as_str()));
//! # Ok::<(), authtel_core::pseudonym::PseudonymKeyError>(())
//! ```

use std::fmt;
use std::ops::Deref;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The environment variable [`PseudonymKey::from_env`] reads: the key as hex digits.
pub const PSEUDONYM_KEY_ENV: &str = "AUTHTEL_PSEUDONYM_KEY";

/// The shortest key accepted, in bytes (the output size of SHA-256).
pub const MIN_KEY_BYTES: usize = 32;

const PREFIX: &str = "psn_";
const HEX_DIGITS: usize = 32;
const LEN: usize = PREFIX.len() + HEX_DIGITS;

/// Why a pseudonym key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PseudonymKeyError {
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error(
        "the pseudonym key has {bytes} bytes, fewer than the {MIN_KEY_BYTES} required: generate one with `openssl rand -hex 32`"
    )]
    TooShort {
        /// The key's length in bytes.
        bytes: usize,
    },
    /// The environment variable is set but is not an even number of hex digits.
    #[error(
        "{PSEUDONYM_KEY_ENV} is not hex (character {position} of {len}): set it to 64 hex digits, e.g. the output of `openssl rand -hex 32`"
    )]
    NotHex {
        /// The 1-based position of the first character that is not a hex digit (or the
        /// length, when the count of digits is odd).
        position: usize,
        /// The variable's length in characters.
        len: usize,
    },
    /// The environment variable is set but is not valid Unicode.
    #[error("{PSEUDONYM_KEY_ENV} is not valid Unicode: set it to 64 hex digits")]
    NotUnicode,
}

/// An application's secret key for pseudonyms. Cheap to clone; its `Debug` never shows
/// the key.
#[derive(Clone)]
pub struct PseudonymKey {
    /// The HMAC state after absorbing the key: each pseudonym clones it.
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey { .. }")
    }
}

impl PseudonymKey {
    /// A key from the application's secret (at least [`MIN_KEY_BYTES`] bytes; keep it with
    /// the application's other secrets, and keep it stable: a new key gives every account
    /// a new pseudonym).
    ///
    /// ```
    /// use authtel_core::pseudonym::{PseudonymKey, PseudonymKeyError};
    /// assert_eq!(PseudonymKey::new(b"short").unwrap_err(), PseudonymKeyError::TooShort { bytes: 5 });
    /// ```
    pub fn new(secret: &[u8]) -> Result<PseudonymKey, PseudonymKeyError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(PseudonymKeyError::TooShort {
                bytes: secret.len(),
            });
        }
        let keyed =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        Ok(PseudonymKey { keyed })
    }

    /// The key from [`PSEUDONYM_KEY_ENV`] (hex digits), `Ok(None)` when it is unset.
    ///
    /// ```
    /// use authtel_core::pseudonym::PseudonymKey;
    /// match PseudonymKey::from_env()? {
    ///     Some(key) => println!("pseudonyms on: {}", key.for_email("alice@example.com")),
    ///     None => println!("AUTHTEL_PSEUDONYM_KEY unset: unknown users are not named"),
    /// }
    /// # Ok::<(), authtel_core::pseudonym::PseudonymKeyError>(())
    /// ```
    pub fn from_env() -> Result<Option<PseudonymKey>, PseudonymKeyError> {
        match std::env::var(PSEUDONYM_KEY_ENV) {
            Ok(hex) => PseudonymKey::from_hex(&hex).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(PseudonymKeyError::NotUnicode),
        }
    }

    /// A key written as hex digits (surrounding whitespace ignored).
    ///
    /// ```
    /// use authtel_core::pseudonym::{PseudonymKey, PseudonymKeyError};
    /// assert!(PseudonymKey::from_hex(&"ab".repeat(32)).is_ok());
    /// assert_eq!(
    ///     PseudonymKey::from_hex("zz").unwrap_err(),
    ///     PseudonymKeyError::NotHex { position: 1, len: 2 }
    /// );
    /// ```
    pub fn from_hex(hex: &str) -> Result<PseudonymKey, PseudonymKeyError> {
        let hex = hex.trim();
        let len = hex.chars().count();
        if let Some(position) = hex.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(PseudonymKeyError::NotHex {
                position: position + 1,
                len,
            });
        }
        if !hex.len().is_multiple_of(2) {
            return Err(PseudonymKeyError::NotHex { position: len, len });
        }
        let bytes: Vec<u8> = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
            .collect();
        PseudonymKey::new(&bytes)
    }

    /// The pseudonym of an email address, compared as addresses are in practice: surrounding
    /// whitespace removed and letters lower-cased, so `Alice@Example.com` and
    /// `alice@example.com` are one account.
    pub fn for_email(&self, email: &str) -> Pseudonym {
        self.derive(b"email", email.trim().to_lowercase().as_bytes())
    }

    /// The pseudonym of any other value, byte for byte (a phone number, an external id).
    ///
    /// ```
    /// use authtel_core::pseudonym::PseudonymKey;
    /// let key = PseudonymKey::new(&[7; 32])?;
    /// assert_ne!(key.for_value("+49 30 1234"), key.for_value("+49301234"));
    /// // Emails and other values are domain-separated.
    /// assert_ne!(key.for_value("a@b.c"), key.for_email("a@b.c"));
    /// # Ok::<(), authtel_core::pseudonym::PseudonymKeyError>(())
    /// ```
    pub fn for_value(&self, value: &str) -> Pseudonym {
        self.derive(b"value", value.as_bytes())
    }

    fn derive(&self, kind: &[u8], value: &[u8]) -> Pseudonym {
        let mut mac = self.keyed.clone();
        // Versioned and domain-separated: a later scheme, or another kind of value, never
        // collides with this one.
        mac.update(b"authtel.pseudonym.v1\0");
        mac.update(kind);
        mac.update(b"\0");
        mac.update(value);
        let code = mac.finalize().into_bytes();
        let mut text = [0u8; LEN];
        text[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        for (i, byte) in code[..HEX_DIGITS / 2].iter().enumerate() {
            text[PREFIX.len() + 2 * i] = HEX[usize::from(byte >> 4)];
            text[PREFIX.len() + 2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        Pseudonym(text)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// A keyed pseudonym: `psn_` and 32 lower-case hex digits. Use it wherever an opaque id
/// goes (`Metadata::user_id(&pseudonym)`, `Party::new(pseudonym.as_str(), "user")`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym([u8; LEN]);

impl Pseudonym {
    /// The pseudonym as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a pseudonym is ASCII")
    }
}

impl Deref for Pseudonym {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Pseudonym {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::check_identifier;

    fn key() -> PseudonymKey {
        PseudonymKey::new(&[0x5a; 32]).unwrap()
    }

    #[test]
    fn the_same_email_under_the_same_key_is_one_pseudonym() {
        let k = key();
        assert_eq!(
            k.for_email("Bob@Example.ORG"),
            k.for_email("\tbob@example.org\n")
        );
        assert_ne!(
            k.for_email("bob@example.org"),
            k.for_email("rob@example.org")
        );
        let other = PseudonymKey::new(&[0x5b; 32]).unwrap();
        assert_ne!(
            k.for_email("bob@example.org"),
            other.for_email("bob@example.org")
        );
    }

    #[test]
    fn a_pseudonym_is_a_valid_identifier_and_hides_the_value() {
        let k = key();
        for email in ["alice@example.com", "a@b", "ALICE@EXAMPLE.COM", "x"] {
            let p = k.for_email(email);
            assert_eq!(check_identifier(&p), Ok(()), "{p}");
            assert_eq!(p.len(), LEN);
            assert!(p[PREFIX.len()..].bytes().all(|b| HEX.contains(&b)));
            assert!(!p.contains(&email.to_lowercase()));
        }
    }

    #[test]
    fn a_pseudonym_survives_every_position_that_keeps_opaque_text() {
        use crate::audit::{AuditEvent, Party};
        use crate::metadata::Metadata;
        use crate::outcome::Outcome;
        let p = key().for_email("carol@example.net");
        // Free text, an extra field's value and an audit record's identifier positions.
        assert_eq!(crate::policy::screen_text(&p), p.as_str());
        // The shape is not a way round the screen: a word and 40 hex digits is a key, and
        // a non-hex token after the word is judged as it was.
        let key_like = format!("key_{}", "a1".repeat(20));
        assert_eq!(
            crate::policy::screen_text(&key_like),
            crate::metadata::REDACTED
        );
        let base62 = "psn_Zx9Qw8Er7Ty6Ui5Op4As3Df2";
        assert_eq!(
            crate::policy::screen_text(base62),
            crate::metadata::REDACTED
        );
        let m = Metadata::new()
            .user_id(&p)
            .with_extra("account", p.as_str());
        assert_eq!(m.get_user_id(), Some(p.as_str()));
        assert_eq!(m.redacted() + m.refused(), 0);
        let e = AuditEvent::new("auth.login.stop", Outcome::Failure)
            .unwrap()
            .with_actor(Party::new(p.as_str(), "user"))
            .with_session_id(p.as_str())
            .with_metadata("account", p.as_str())
            .unwrap();
        assert_eq!(e.actor().unwrap().id, p.as_str());
        assert_eq!(e.session_id(), Some(p.as_str()));
        assert_eq!(e.metadata()["account"], p.as_str());
    }

    #[test]
    fn known_answer_pins_the_scheme() {
        // HMAC-SHA-256(key = 32 × 0x00, "authtel.pseudonym.v1\0email\0alice@example.com"),
        // first 16 bytes: a change of scheme changes every stored pseudonym, so it fails here.
        let k = PseudonymKey::new(&[0; 32]).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0; 32]).unwrap();
        mac.update(b"authtel.pseudonym.v1\0email\0alice@example.com");
        let code = mac.finalize().into_bytes();
        let hex: String = code[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            k.for_email("alice@example.com").as_str(),
            format!("psn_{hex}")
        );
    }

    #[test]
    fn keys_are_validated_with_advice() {
        assert_eq!(
            PseudonymKey::new(&[1; 31]).unwrap_err(),
            PseudonymKeyError::TooShort { bytes: 31 }
        );
        assert_eq!(
            PseudonymKey::from_hex(&"a".repeat(63)).unwrap_err(),
            PseudonymKeyError::NotHex {
                position: 63,
                len: 63
            }
        );
        assert_eq!(
            PseudonymKey::from_hex("00112g").unwrap_err(),
            PseudonymKeyError::NotHex {
                position: 6,
                len: 6
            }
        );
        let e = PseudonymKey::from_hex("0011").unwrap_err();
        assert_eq!(e, PseudonymKeyError::TooShort { bytes: 2 });
        assert!(e.to_string().contains("openssl rand -hex 32"));
        assert_eq!(
            PseudonymKey::from_hex(&format!(" {} ", "Ab".repeat(32)))
                .unwrap()
                .for_value("v"),
            PseudonymKey::new(&[0xab; 32]).unwrap().for_value("v")
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = PseudonymKey::new(b"hunter2-hunter2-hunter2-hunter2-hunter2").unwrap();
        assert_eq!(format!("{k:?}"), "PseudonymKey { .. }");
    }
}
