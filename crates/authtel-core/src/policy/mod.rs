//! The one policy that keeps secrets out of every output, and the one limits table.
//!
//! Everything a sink writes passes through here, once, in core: the [`Metadata`] getters
//! (so every handler sees screened values), [`AuditEvent`] construction and decoding, and
//! exception and panic messages. Sink crates call nothing else; there is no second screen.
//!
//! # What is guaranteed by type
//! - Secret wrapper types (`secrecy::SecretString`) convert into no metadata value.
//! - Records are only reachable through getters and serialisers that apply this policy.
//!
//! # What is guaranteed by screening
//! - A **key** that names a secret ([`classify_key`]) hides its value, whatever the value
//!   looks like: `password`, `pw`, `pin`, `otp`, `mfa`, `key`, `auth`, `sid`, `jwt`,
//!   `cookie`, `email`, `newPassword`, `refreshtoken`, … — unless its last segment says the
//!   value is about the secret (`token_type`, `otp_enabled`, `password_age_days`,
//!   `error_code`). Booleans are never hidden (`otp_enabled: true` stays `true`); numbers
//!   under a secret key are (a PIN is a number).
//! - A **text value** in which [`find_credential`] finds anything is replaced whole by
//!   [`REDACTED`]: see [`Finding`] for every shape recognised (JWTs anywhere, `Bearer`/`Basic`
//!   after any whitespace, `key=value` pairs naming a secret including URL query strings and
//!   cookies, a secret named in prose then given, one-time codes next to their name, URL
//!   credentials, password hashes, vendor token prefixes, long random tokens, emails).
//! - An **identifier** (user id, caller, session id, rate-limit key, a record's actor and
//!   target) holding an email or a credential is refused: it reads as absent.
//! - **Exception and panic messages** are not exported unless the application opts in
//!   ([`set_exception_messages`]); then they are screened like text.
//! - Everything is **bounded** by the one table [`LIMITS`].
//!
//! # What screening cannot catch
//! A secret with no recognisable shape, under an innocent key, in a field the application
//! chose to fill with it: `with_extra("note", "hunter2")`. Use typed fields and keys that
//! say what the value is; never put user input in free-text fields.
//!
//! [`Metadata`]: crate::metadata::Metadata
//! [`AuditEvent`]: crate::audit::AuditEvent

mod json;
mod keys;
mod text;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use json::{json_is_screened, key_is_a_value, screen_json};
pub use keys::{KeyClass, classify_key, key_names_secret};
pub use text::{Finding, SCREENED_PREFIX, find_credential};

/// What a redacted value reads as.
pub const REDACTED: &str = "[REDACTED]";

/// Longest text value kept, in bytes; longer values are cut on a character boundary.
pub const MAX_TEXT_LEN: usize = LIMITS.text_bytes;

/// The bounds every record is held to, in one place. Sinks read them from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest text value, in bytes.
    pub text_bytes: usize,
    /// Longest identifier (user id, caller, session id, party id), in bytes.
    pub id_bytes: usize,
    /// Longest key, in bytes.
    pub key_bytes: usize,
    /// Most extra fields on one event.
    pub extra_fields: usize,
    /// Largest serialised (compact JSON) record metadata, in bytes.
    pub metadata_bytes: usize,
    /// Deepest record metadata nesting (a top-level value is at depth 1).
    pub metadata_depth: usize,
    /// Most entries in a record's metadata, counted at every depth.
    pub metadata_entries: usize,
    /// Most authentication factors one event reports.
    pub factors: usize,
}

/// The limits in force.
///
/// ```
/// assert_eq!(authtel_core::policy::LIMITS.text_bytes, 256);
/// ```
pub const LIMITS: Limits = Limits {
    text_bytes: 256,
    id_bytes: 128,
    key_bytes: 64,
    extra_fields: 8,
    metadata_bytes: 8 * 1024,
    metadata_depth: 4,
    metadata_entries: 256,
    factors: 8,
};

static REDACTIONS: AtomicU64 = AtomicU64::new(0);
static REFUSALS: AtomicU64 = AtomicU64::new(0);
static EXCEPTION_MESSAGES: AtomicBool = AtomicBool::new(false);

/// How many values the policy has redacted in this process, counted once per record (not
/// once per sink that reads it).
///
/// ```
/// use authtel_core::{metadata::Metadata, policy};
/// let before = policy::redaction_count();
/// let m = Metadata::new().with_extra("otp", "123456");
/// let _ = m.extra().count();
/// let _ = m.extra().count(); // a second reader does not count again
/// assert_eq!(policy::redaction_count(), before + 1);
/// ```
pub fn redaction_count() -> u64 {
    REDACTIONS.load(Ordering::Relaxed)
}

/// How many values the policy has refused in this process (emails or credentials as
/// identifiers, invalid keys, fields over a limit), counted once per record.
pub fn refusal_count() -> u64 {
    REFUSALS.load(Ordering::Relaxed)
}

pub(crate) fn note(redacted: u64, refused: u64) {
    if redacted > 0 {
        REDACTIONS.fetch_add(redacted, Ordering::Relaxed);
    }
    if refused > 0 {
        REFUSALS.fetch_add(refused, Ordering::Relaxed);
    }
}

/// Whether exception and panic messages reach sinks (screened). Off by default: sinks get
/// the exception's kind and type name only.
///
/// ```
/// use authtel_core::policy;
/// assert!(!policy::exception_messages());
/// ```
pub fn exception_messages() -> bool {
    EXCEPTION_MESSAGES.load(Ordering::Relaxed)
}

/// Opts in (or out again) to exporting exception and panic messages, screened like any
/// text. Messages often quote the input that failed, so leave this off unless every
/// message your code and its dependencies can produce is known to be safe.
///
/// ```
/// use authtel_core::policy;
/// policy::set_exception_messages(true);
/// assert!(policy::exception_messages());
/// policy::set_exception_messages(false);
/// ```
pub fn set_exception_messages(export: bool) {
    EXCEPTION_MESSAGES.store(export, Ordering::Relaxed);
}

/// What sinks may see of an exception or panic message: nothing unless the application
/// opted in ([`set_exception_messages`]), else the screened text.
pub(crate) fn exception_message(message: &str) -> Option<&str> {
    exception_messages().then(|| screen_text(message))
}

/// A text value as sinks may see it: [`REDACTED`] when [`find_credential`] finds anything,
/// else the value cut to [`MAX_TEXT_LEN`] bytes. The result always passes the screen.
///
/// ```
/// use authtel_core::policy::{screen_text, REDACTED};
/// assert_eq!(screen_text("password=hunter2"), REDACTED);
/// assert_eq!(screen_text("invalid_password"), "invalid_password");
/// ```
pub fn screen_text(value: &str) -> &str {
    screen(value).unwrap_or(REDACTED)
}

/// The one text rule: `None` when the value must be redacted, else the part kept.
pub(crate) fn screen(value: &str) -> Option<&str> {
    if find_credential(value).is_some() {
        return None;
    }
    let kept = truncate(value, MAX_TEXT_LEN);
    // Cutting can end a match that more text would have ruled out (six digits of a
    // seven-digit number): the kept part must pass on its own too.
    if kept.len() < value.len() && find_credential(kept).is_some() {
        return None;
    }
    Some(kept)
}

/// Whether a text value passes the policy as it is (what [`screen_text`] leaves unchanged).
pub fn text_is_screened(value: &str) -> bool {
    value.len() <= MAX_TEXT_LEN && find_credential(value).is_none()
}

/// Why an identifier is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifierProblem {
    /// It is, or contains, an email address.
    Email,
    /// It contains a credential.
    Credential,
    /// It is longer than [`Limits::id_bytes`].
    TooLong,
    /// It is empty or contains control characters.
    Malformed,
}

/// Checks an identifier (user id, caller, session id, rate-limit key, a party's id).
///
/// ```
/// use authtel_core::policy::{check_identifier, IdentifierProblem};
/// assert_eq!(check_identifier("u_42"), Ok(()));
/// assert_eq!(check_identifier("alice@example.com"), Err(IdentifierProblem::Email));
/// assert_eq!(check_identifier("email:bob@example.org"), Err(IdentifierProblem::Email));
/// ```
pub fn check_identifier(id: &str) -> Result<(), IdentifierProblem> {
    // One pass over the bytes answers the control-character and `@` checks and feeds the
    // screen (every reader of a user id pays this, so it reads the id once).
    let bytes = id.as_bytes();
    let shape = text::Shape::of(bytes);
    if id.is_empty() || shape.has(text::CONTROL) {
        return Err(IdentifierProblem::Malformed);
    }
    if id.len() > LIMITS.id_bytes {
        return Err(IdentifierProblem::TooLong);
    }
    if shape.has(text::AT) {
        // Any `@` in an identifier: a bare `alice@corp` is as personal as a full address.
        return Err(IdentifierProblem::Email);
    }
    // Opaque ids are random by design (`sess_8fK2xQ9aB7…`) and namespaced with colons
    // (`did:key:z6Mk…`): neither alone is a reason to refuse one. At most `id_bytes` long
    // here, so within the screened prefix: the shape is the screen's own.
    const _: () = assert!(LIMITS.id_bytes <= text::SCREENED_PREFIX);
    match text::find_shaped(bytes, &shape, text::Scan::IDENTIFIER) {
        None => Ok(()),
        Some(Finding::Email) => Err(IdentifierProblem::Email),
        Some(_) => Err(IdentifierProblem::Credential),
    }
}

/// Whether a key is acceptable: `[a-z][a-z0-9_.]*`, at most [`Limits::key_bytes`] bytes,
/// and not itself a value (a key that the screen would redact, or with a run of four
/// digits, is a value passed in the key's place).
///
/// ```
/// use authtel_core::policy::valid_key;
/// assert!(valid_key("tenant"));
/// assert!(!valid_key("Bad Key"));
/// assert!(!valid_key("s3cr3t4567"));
/// ```
pub fn valid_key(key: &str) -> bool {
    key_charset_ok(key)
        && !key
            .as_bytes()
            .windows(4)
            .any(|w| w.iter().all(u8::is_ascii_digit))
        && find_credential(key).is_none()
}

/// The cheap part of [`valid_key`]: `[a-z][a-z0-9_.]*`, at most [`Limits::key_bytes`]
/// bytes. `Metadata` checks this when a field is added (even when nobody listens) and the
/// rest of [`valid_key`] when it is read.
#[inline]
pub(crate) fn key_charset_ok(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= LIMITS.key_bytes
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'.')
}

/// Whether a field's key and value look swapped, so that the key is the secret:
/// `with_extra("hunter2", "password")`. The value is a secret's name (`"password"`,
/// `"refresh_token"`) and the key is not a word (it has a digit or a capital letter).
/// Legitimate values that name a secret (`method: "password"`, `factor: "totp"`) sit under
/// word keys and are kept.
pub(crate) fn swapped(key: &str, value: &str) -> bool {
    key.bytes()
        .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && value.len() <= LIMITS.key_bytes
        && !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        && key_names_secret(value)
}

/// Cuts `s` to at most `max` bytes on a character boundary.
///
/// ```
/// assert_eq!(authtel_core::policy::truncate("héllo", 2), "h");
/// ```
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
