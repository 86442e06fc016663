//! Event metadata and the policy that keeps secrets out of it.
//!
//! [`Metadata`] has typed standard fields (user id, session id, client IP, …) and up to
//! [`MAX_EXTRA_FIELDS`] extra fields. It borrows its strings, so building one allocates
//! nothing; a sink copies only what it keeps.
//!
//! # The policy
//! - **By type**: setters take `&str`, numbers and booleans. The `secrecy` crate's secret
//!   types convert into none of them, so a secret cannot be passed without an explicit
//!   `expose_secret()` in the caller's code:
//!
//!   ```compile_fail
//!   use authtel_core::metadata::Metadata;
//!   use secrecy::SecretString;
//!   let password = SecretString::from("hunter2");
//!   // error: `SecretString` is not a `&str` and does not convert into a `Value`
//!   let m = Metadata::new().with_extra("password", password);
//!   ```
//!
//!   ```compile_fail
//!   use authtel_core::metadata::Metadata;
//!   use secrecy::SecretString;
//!   let token = SecretString::from("tok");
//!   let m = Metadata::new().reason(&token);
//!   ```
//! - **At runtime**: an extra field whose key names a secret (`password`, `token`, `secret`,
//!   `otp`, `code`, `hash`, `cookie`, `authorization`, `api_key`, `private_key`, …) reads
//!   as `"[REDACTED]"`, and so does any text value that looks like a JWT or an HTTP
//!   `Bearer`/`Basic` credential. Every read goes through the screen — the fields are
//!   private and only the getters, [`Metadata::extra`] and [`Metadata::for_each_field`]
//!   expose them — so screening costs nothing when nobody listens. Each redaction is
//!   counted ([`redaction_count`]).
//! - **Identifiers are not emails**: [`Metadata::user_id`] and [`Metadata::caller`] refuse
//!   values containing `@`: like the screen, the check runs on every read, so the field
//!   reads as empty to every getter and sink and the refusal is counted when read;
//!   [`Metadata::try_user_id`] returns the typed error instead. There is no field for "the
//!   identifier that was typed" at a failed login: it may be a password typed into the
//!   wrong box, so it is never recorded.
//! - **Bounded**: text is cut at [`MAX_TEXT_LEN`] bytes (on a character boundary); extra
//!   fields beyond [`MAX_EXTRA_FIELDS`] and invalid keys are refused and counted.

use std::fmt;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::outcome::Outcome;

/// Longest text value kept, in bytes; longer values are truncated.
pub const MAX_TEXT_LEN: usize = 256;
/// How many extra fields one event may carry.
pub const MAX_EXTRA_FIELDS: usize = 8;
/// Longest extra-field key, in bytes.
pub const MAX_KEY_LEN: usize = 64;
/// What a redacted value reads as.
pub const REDACTED: &str = "[REDACTED]";

static REDACTIONS: AtomicU64 = AtomicU64::new(0);
static REFUSALS: AtomicU64 = AtomicU64::new(0);

/// How many values the policy has redacted in this process (secret-named keys, JWT- or
/// bearer-looking values).
///
/// ```
/// use authtel_core::metadata::{redaction_count, Metadata};
/// let before = redaction_count();
/// let m = Metadata::new().with_extra("otp", "123456");
/// let _ = m.extra().count(); // values are screened, and redactions counted, when read
/// assert!(redaction_count() > before);
/// ```
pub fn redaction_count() -> u64 {
    REDACTIONS.load(Ordering::Relaxed)
}

/// Adds redactions made outside [`Metadata`] (the audit record's nested metadata) to the
/// process-wide count.
pub(crate) fn note_redactions(n: u64) {
    REDACTIONS.fetch_add(n, Ordering::Relaxed);
}

/// How many values the policy has refused in this process (emails as identifiers, invalid
/// keys, extra fields over the limit). Extra fields are counted when added; an email in an
/// identifier field is counted each time it is read (it reads as absent), as redactions are.
pub fn refusal_count() -> u64 {
    REFUSALS.load(Ordering::Relaxed)
}

/// Why a metadata value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// An email address was given where an identifier belongs.
    #[error(
        "{field} looks like an email address; identifiers must be opaque ids (user id, not email): pass the account's id, or a keyed pseudonym of the email"
    )]
    EmailAsIdentifier {
        /// The field that refused it.
        field: &'static str,
    },
    /// An extra-field key is not `[a-z][a-z0-9_.]*` of at most [`MAX_KEY_LEN`] bytes.
    #[error(
        "metadata key {key:?} is invalid; keys are lowercase ASCII letters, digits, '_' and '.', starting with a letter, at most {MAX_KEY_LEN} bytes"
    )]
    InvalidKey {
        /// The refused key (truncated).
        key: String,
    },
    /// More than [`MAX_EXTRA_FIELDS`] extra fields.
    #[error(
        "metadata already holds {MAX_EXTRA_FIELDS} extra fields; field {key:?} was refused: move rarely used detail out of the event"
    )]
    TooManyFields {
        /// The refused key.
        key: String,
    },
}

/// An extra field's value. Converts from text, integers, floats and booleans — and from
/// nothing else, so secret wrapper types cannot become a value.
///
/// ```
/// use authtel_core::metadata::Value;
/// assert_eq!(Value::from("totp"), Value::Str("totp"));
/// assert_eq!(Value::from(3u32), Value::U64(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text (already screened and truncated when stored in [`Metadata`]).
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Str(v)
    }
}
macro_rules! value_from {
    ($variant:ident as $target:ty: $($t:ty),*) => {
        $(impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(v as $target)
            }
        })*
    };
}
value_from!(I64 as i64: i8, i16, i32, i64, isize);
value_from!(U64 as u64: u8, u16, u32, u64, usize);
value_from!(F64 as f64: f32, f64);
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// The metadata of one event: typed standard fields plus bounded extra fields.
///
/// ```
/// use authtel_core::metadata::Metadata;
/// use std::net::{IpAddr, Ipv4Addr};
///
/// let m = Metadata::new()
///     .user_id("u_42")
///     .client_ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
///     .method("password")
///     .with_extra("tenant", "acme");
/// assert_eq!(m.get_user_id(), Some("u_42"));
/// assert_eq!(m.extra().next(), Some(("tenant", authtel_core::metadata::Value::Str("acme"))));
/// ```
#[derive(Clone)]
pub struct Metadata<'a> {
    texts: TextSlots<'a>,
    client_ip: Option<IpAddr>,
    outcome: Option<Outcome>,
    attempts_remaining: Option<u32>,
    admin: Option<bool>,
    refused: u8,
    extra: ExtraSlots<'a>,
}

impl Default for Metadata<'_> {
    fn default() -> Self {
        Metadata::new()
    }
}

/// The standard text fields, in the order [`Metadata::for_each_field`] reports them.
#[derive(Clone, Copy)]
enum Text {
    UserId,
    SessionId,
    UserAgent,
    Provider,
    Method,
    Reason,
    Operation,
    Caller,
    Resource,
    RateLimitKey,
}

const TEXT_FIELDS: usize = 10;

/// Every standard text field with its key, in reporting order.
const TEXT_KEYS: [(Text, &str); TEXT_FIELDS] = [
    (Text::UserId, "user_id"),
    (Text::SessionId, "session_id"),
    (Text::UserAgent, "user_agent"),
    (Text::Provider, "provider"),
    (Text::Method, "method"),
    (Text::Reason, "reason"),
    (Text::Operation, "operation"),
    (Text::Caller, "caller"),
    (Text::Resource, "resource"),
    (Text::RateLimitKey, "rate_limit_key"),
];

/// The standard text fields: a bit per field says which slots hold a value.
///
/// Why not `[Option<&str>; 10]`: metadata is built by the caller whether or not anyone
/// listens, and ten `None`s are ten stores; an empty bitmask is one. The slots are
/// written only when set, so emitting with nothing attached touches almost nothing.
#[derive(Clone, Copy)]
struct TextSlots<'a> {
    set: u16,
    values: MaybeUninit<[&'a str; TEXT_FIELDS]>,
}

impl<'a> TextSlots<'a> {
    #[inline]
    fn set(&mut self, field: Text, value: &'a str) {
        // SAFETY: `field as usize` < TEXT_FIELDS, so the pointer stays inside the array,
        // and `write` does not read the (possibly uninitialised) old value.
        unsafe {
            self.values
                .as_mut_ptr()
                .cast::<&'a str>()
                .add(field as usize)
                .write(value);
        }
        self.set |= 1 << field as u16;
    }

    #[inline]
    fn get(&self, field: Text) -> Option<&'a str> {
        if self.set & (1 << field as u16) == 0 {
            return None;
        }
        // SAFETY: a field's bit is set only by `set`, right after it writes that slot, and
        // slots are never un-written.
        Some(unsafe {
            self.values
                .as_ptr()
                .cast::<&'a str>()
                .add(field as usize)
                .read()
        })
    }
}

/// The extra fields: the first `len` slots hold values (same reason as [`TextSlots`]).
#[derive(Clone, Copy)]
struct ExtraSlots<'a> {
    len: u8,
    values: MaybeUninit<[(&'a str, Value<'a>); MAX_EXTRA_FIELDS]>,
}

impl<'a> ExtraSlots<'a> {
    fn is_full(&self) -> bool {
        self.len as usize >= MAX_EXTRA_FIELDS
    }

    /// Appends a field; the caller checks [`is_full`](Self::is_full) first (a push onto a
    /// full set is ignored).
    fn push(&mut self, key: &'a str, value: Value<'a>) {
        let slot = self.len as usize;
        if slot >= MAX_EXTRA_FIELDS {
            return;
        }
        // SAFETY: `slot` < MAX_EXTRA_FIELDS (checked above), so the pointer stays in the
        // array, and `write` does not read the uninitialised slot.
        unsafe {
            self.values
                .as_mut_ptr()
                .cast::<(&'a str, Value<'a>)>()
                .add(slot)
                .write((key, value));
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[(&'a str, Value<'a>)] {
        // SAFETY: the first `len` slots were written by `push` (len only grows after a
        // write, and never beyond MAX_EXTRA_FIELDS), and they live as long as `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.values.as_ptr().cast::<(&'a str, Value<'a>)>(),
                self.len as usize,
            )
        }
    }
}

impl Default for Value<'_> {
    fn default() -> Self {
        Value::Bool(false)
    }
}

macro_rules! text_setters {
    ($( $(#[$doc:meta])* $field:ident, $getter:ident, $slot:ident; )*) => {
        $(
            $(#[$doc])*
            ///
            /// Screened when read (JWT/bearer-looking values read as redacted) and truncated to
            /// [`MAX_TEXT_LEN`] bytes.
            #[must_use]
            #[inline]
            pub fn $field(mut self, value: &'a str) -> Self {
                self.texts.set(Text::$slot, value);
                self
            }

            #[doc = concat!("The `", stringify!($field), "` field, if set (screened).")]
            #[inline]
            pub fn $getter(&self) -> Option<&'a str> {
                self.read_text(Text::$slot)
            }
        )*
    };
}

impl<'a> Metadata<'a> {
    /// Empty metadata.
    #[inline]
    pub const fn new() -> Metadata<'a> {
        // Written field by field so the compiler cannot fold the value into one constant:
        // it would then zero the unset slots too (a ~500-byte memset on every emit).
        let mut m = MaybeUninit::<Metadata<'a>>::uninit();
        let p = m.as_mut_ptr();
        // SAFETY: every field that is not a `MaybeUninit` is written before `assume_init`;
        // the slot arrays are `MaybeUninit` and may stay uninitialised.
        unsafe {
            std::ptr::addr_of_mut!((*p).texts.set).write(0);
            std::ptr::addr_of_mut!((*p).client_ip).write(None);
            std::ptr::addr_of_mut!((*p).outcome).write(None);
            std::ptr::addr_of_mut!((*p).attempts_remaining).write(None);
            std::ptr::addr_of_mut!((*p).admin).write(None);
            std::ptr::addr_of_mut!((*p).refused).write(0);
            std::ptr::addr_of_mut!((*p).extra.len).write(0);
            m.assume_init()
        }
    }

    /// The account's opaque id. An email is refused: the field reads as empty, and the
    /// refusal is counted when it is read (the check runs on read, so setting a field costs
    /// nothing when nobody listens); use [`Metadata::try_user_id`] to get the error instead.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// assert_eq!(Metadata::new().user_id("alice@example.com").get_user_id(), None);
    /// ```
    #[must_use]
    #[inline]
    pub fn user_id(mut self, id: &'a str) -> Self {
        self.texts.set(Text::UserId, id);
        self
    }

    /// Sets the user id, or says why it was refused.
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, MetadataError};
    /// let err = Metadata::new().try_user_id("alice@example.com").unwrap_err();
    /// assert_eq!(err, MetadataError::EmailAsIdentifier { field: "user_id" });
    /// ```
    #[inline]
    pub fn try_user_id(mut self, id: &'a str) -> Result<Self, MetadataError> {
        if refuses(Text::UserId, id) {
            return Err(MetadataError::EmailAsIdentifier { field: "user_id" });
        }
        self.texts.set(Text::UserId, id);
        Ok(self)
    }

    /// The user id, if set.
    #[inline]
    pub fn get_user_id(&self) -> Option<&'a str> {
        self.read_text(Text::UserId)
    }

    /// Who asked, in an authorization decision (a service or user id, never an email: an
    /// email is refused as for [`Metadata::user_id`]).
    #[must_use]
    #[inline]
    pub fn caller(mut self, caller: &'a str) -> Self {
        self.texts.set(Text::Caller, caller);
        self
    }

    /// The caller, if set.
    #[inline]
    pub fn get_caller(&self) -> Option<&'a str> {
        self.read_text(Text::Caller)
    }

    text_setters! {
        /// The session's id (an opaque id, never the session cookie itself).
        session_id, get_session_id, SessionId;
        /// The client's `User-Agent`.
        user_agent, get_user_agent, UserAgent;
        /// The identity provider (`github`, `google`, …).
        provider, get_provider, Provider;
        /// The method used (`password`, `totp`, `backup_code`, `webauthn`, …).
        method, get_method, Method;
        /// Why something failed or was denied (`invalid_password`, `expired`, …).
        reason, get_reason, Reason;
        /// The operation an authorization decision was about (`call`, `publish`, …).
        operation, get_operation, Operation;
        /// The resource an authorization decision was about.
        resource, get_resource, Resource;
        /// The key a rate limit counted on (`ip:203.0.113.7`).
        rate_limit_key, get_rate_limit_key, RateLimitKey;
    }

    /// The client's IP address.
    #[must_use]
    #[inline]
    pub fn client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// The client IP, if set.
    #[inline]
    pub fn get_client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// An explicit outcome (a span derives its own from the closure's result; this one
    /// wins when set).
    #[must_use]
    #[inline]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// The explicit outcome, if set.
    #[inline]
    pub fn get_outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Attempts left before a lockout.
    #[must_use]
    #[inline]
    pub fn attempts_remaining(mut self, n: u32) -> Self {
        self.attempts_remaining = Some(n);
        self
    }

    /// Attempts remaining, if set.
    #[inline]
    pub fn get_attempts_remaining(&self) -> Option<u32> {
        self.attempts_remaining
    }

    /// Whether an administrator performed the action.
    #[must_use]
    #[inline]
    pub fn admin(mut self, admin: bool) -> Self {
        self.admin = Some(admin);
        self
    }

    /// The admin flag, if set.
    #[inline]
    pub fn get_admin(&self) -> Option<bool> {
        self.admin
    }

    /// Adds an extra field. Secret-named keys and token-looking values are redacted; an
    /// invalid key or a field over [`MAX_EXTRA_FIELDS`] is refused and counted (use
    /// [`Metadata::try_extra`] for the error).
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, Value, REDACTED};
    /// let m = Metadata::new()
    ///     .with_extra("new_password", "hunter2")
    ///     .with_extra("note", "Bearer abc.def");
    /// let fields: Vec<_> = m.extra().collect();
    /// assert_eq!(fields, [("new_password", Value::Str(REDACTED)), ("note", Value::Str(REDACTED))]);
    /// assert_eq!(m.redacted(), 2);
    /// ```
    #[must_use]
    #[inline]
    pub fn with_extra(mut self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
        if self.push_extra(key, value.into()).is_err() {
            self.refuse();
        }
        self
    }

    /// Adds an extra field or says why it was refused.
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, MetadataError};
    /// let mut m = Metadata::new();
    /// assert!(matches!(m.try_extra("Bad Key", 1), Err(MetadataError::InvalidKey { .. })));
    /// ```
    #[inline]
    pub fn try_extra(
        &mut self,
        key: &'a str,
        value: impl Into<Value<'a>>,
    ) -> Result<(), MetadataError> {
        self.push_extra(key, value.into())
    }

    #[inline]
    fn push_extra(&mut self, key: &'a str, value: Value<'a>) -> Result<(), MetadataError> {
        if !valid_key(key) {
            let mut k = key.to_owned();
            truncate_in_place(&mut k, MAX_KEY_LEN);
            return Err(MetadataError::InvalidKey { key: k });
        }
        if self.extra.is_full() {
            return Err(MetadataError::TooManyFields {
                key: key.to_owned(),
            });
        }
        self.extra.push(key, value);
        Ok(())
    }

    /// The extra fields, in insertion order.
    /// Secret-named keys read as [`REDACTED`]; text values are screened and truncated.
    #[inline]
    pub fn extra(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + '_ {
        self.extra.as_slice().iter().map(|&(key, value)| {
            if key_names_secret(key) {
                REDACTIONS.fetch_add(1, Ordering::Relaxed);
                (key, Value::Str(REDACTED))
            } else if let Value::Str(s) = value {
                (key, Value::Str(screen(s)))
            } else {
                (key, value)
            }
        })
    }

    /// Whether any extra field is set (without reading, so without screening, them).
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// assert!(!Metadata::new().has_extra());
    /// assert!(Metadata::new().with_extra("tenant", "acme").has_extra());
    /// ```
    #[inline]
    pub fn has_extra(&self) -> bool {
        self.extra.len > 0
    }

    /// How many values of this metadata the policy redacts when they are read.
    #[inline]
    pub fn redacted(&self) -> u32 {
        let in_texts = TEXT_KEYS
            .iter()
            .filter_map(|&(field, _)| self.texts.get(field).filter(|v| !refuses(field, v)))
            .filter(|v| looks_like_credential(v))
            .count();
        let in_extra = self
            .extra
            .as_slice()
            .iter()
            .filter(|(k, v)| {
                key_names_secret(k) || matches!(v, Value::Str(s) if looks_like_credential(s))
            })
            .count();
        (in_texts + in_extra) as u32
    }

    /// How many values of this metadata the policy refused: extra fields refused when
    /// added, and identifier fields holding an email.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().user_id("alice@example.com").session_id("s_1");
    /// assert_eq!(m.refused(), 1);
    /// ```
    #[inline]
    pub fn refused(&self) -> u32 {
        let identifiers = TEXT_KEYS
            .iter()
            .filter(|&&(field, _)| self.texts.get(field).is_some_and(|v| refuses(field, v)))
            .count();
        u32::from(self.refused) + identifiers as u32
    }

    /// A standard text field as every reader sees it: an email in an identifier field is
    /// refused (reads as absent, counted), anything else is screened and truncated.
    #[inline]
    fn read_text(&self, field: Text) -> Option<&'a str> {
        let value = self.texts.get(field)?;
        if refuses(field, value) {
            REFUSALS.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(screen(value))
    }

    /// Every set field as `(key, value)`, standard fields first, for sinks that write
    /// generic key/value output. Keys of standard fields are their snake_case names.
    ///
    /// ```
    /// use authtel_core::metadata::{Metadata, Value};
    /// let m = Metadata::new().user_id("u1").attempts_remaining(2);
    /// let mut fields = Vec::new();
    /// m.for_each_field(|k, v| fields.push((k.to_owned(), v.to_string())));
    /// assert_eq!(fields, [("user_id".to_owned(), "u1".to_owned()), ("attempts_remaining".to_owned(), "2".to_owned())]);
    /// ```
    #[inline]
    pub fn for_each_field(&self, mut f: impl FnMut(&str, Value<'_>)) {
        for (field, key) in TEXT_KEYS {
            if let Some(v) = self.read_text(field) {
                f(key, Value::Str(v));
            }
        }
        if let Some(ip) = self.client_ip {
            // Passed as text from a stack buffer; sinks that want the address use
            // `get_client_ip`.
            f("client_ip", Value::Str(IpText::new(ip).as_str()));
        }
        if let Some(o) = self.outcome {
            f("outcome", Value::Str(o.as_str()));
        }
        if let Some(n) = self.attempts_remaining {
            f("attempts_remaining", Value::U64(u64::from(n)));
        }
        if let Some(a) = self.admin {
            f("admin", Value::Bool(a));
        }
        for (k, v) in self.extra() {
            f(k, v);
        }
    }

    #[cold]
    fn refuse(&mut self) {
        self.refused = self.refused.saturating_add(1);
        REFUSALS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether the policy refuses `value` in `field`: an email where an identifier belongs
/// (user id, caller). Checked when the field is read, not when it is set.
#[inline]
fn refuses(field: Text, value: &str) -> bool {
    matches!(field, Text::UserId | Text::Caller) && contains_at_sign(value.as_bytes())
}

/// Whether `bytes` contains `@`. Identifiers are short, and this runs on every emit that
/// sets one (even when nobody listens), so up to 16 bytes are checked as two overlapping
/// words (a few instructions) instead of through `memchr`'s setup or a byte loop.
#[inline]
fn contains_at_sign(bytes: &[u8]) -> bool {
    /// Whether any byte of `word` is `@` (the classic "has a zero byte" test on word ^ @@@@).
    #[inline]
    fn word_has_at(word: u64, ones: u64, highs: u64) -> bool {
        let x = word ^ (ones * u64::from(b'@'));
        x.wrapping_sub(ones) & !x & highs != 0
    }
    const ONES_64: u64 = 0x0101_0101_0101_0101;
    const HIGHS_64: u64 = 0x8080_8080_8080_8080;
    const ONES_32: u64 = 0x0101_0101;
    const HIGHS_32: u64 = 0x8080_8080;
    let n = bytes.len();
    if n >= 16 {
        return bytes.contains(&b'@');
    }
    if n >= 8 {
        let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) else {
            return bytes.contains(&b'@');
        };
        return word_has_at(u64::from_le_bytes(*head), ONES_64, HIGHS_64)
            || word_has_at(u64::from_le_bytes(*tail), ONES_64, HIGHS_64);
    }
    if n >= 4 {
        let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) else {
            return bytes.contains(&b'@');
        };
        return word_has_at(u64::from(u32::from_le_bytes(*head)), ONES_32, HIGHS_32)
            || word_has_at(u64::from(u32::from_le_bytes(*tail)), ONES_32, HIGHS_32);
    }
    // Fewer than four bytes.
    match *bytes {
        [a] => a == b'@',
        [a, b] => a == b'@' || b == b'@',
        [a, b, c] => a == b'@' || b == b'@' || c == b'@',
        _ => false,
    }
}

/// Screens a text value as it is read: credential-looking values become [`REDACTED`]
/// (counted), others are cut to [`MAX_TEXT_LEN`] bytes.
fn screen(value: &str) -> &str {
    if looks_like_credential(value) {
        REDACTIONS.fetch_add(1, Ordering::Relaxed);
        return REDACTED;
    }
    truncate(value, MAX_TEXT_LEN)
}

impl fmt::Debug for Metadata<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        self.for_each_field(|k, v| {
            map.entry(&k, &v);
        });
        map.finish()
    }
}

/// An IP address as text in a stack buffer, without allocating: for sinks that write the
/// client IP as a string (45 bytes hold the longest IPv6 form).
///
/// ```
/// use authtel_core::metadata::IpText;
/// use std::net::{IpAddr, Ipv4Addr};
/// let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
/// assert_eq!(IpText::new(ip).as_str(), "203.0.113.7");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    /// Formats `ip`.
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 48];
        let len = match ip {
            // By hand: `Display` for an address goes through the formatting machinery
            // twice, and this runs for every event a sink writes with a client IP.
            IpAddr::V4(v4) => {
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[n] = b'.';
                        n += 1;
                    }
                    if octet >= 100 {
                        buf[n] = b'0' + octet / 100;
                        n += 1;
                    }
                    if octet >= 10 {
                        buf[n] = b'0' + octet / 10 % 10;
                        n += 1;
                    }
                    buf[n] = b'0' + octet % 10;
                    n += 1;
                }
                n
            }
            IpAddr::V6(_) => {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut buf[..]);
                // Cannot fail: the buffer is longer than any address's text.
                let _ = write!(cursor, "{ip}");
                cursor.position() as usize
            }
        };
        IpText { buf, len }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots, colons and hex letters were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Whether a key names a secret: its words include password, token, secret, otp/totp,
/// code, hash, cookie, authorization, api key or private key (case-insensitive).
///
/// ```
/// use authtel_core::metadata::key_names_secret;
/// assert!(key_names_secret("refresh_token"));
/// assert!(key_names_secret("X-Api-Key"));
/// assert!(key_names_secret("totp"));
/// assert!(!key_names_secret("tenant"));
/// ```
pub fn key_names_secret(key: &str) -> bool {
    let key = key.as_bytes();
    // One pass over the key, comparing case-insensitively in place; at each byte only the
    // words starting with it are tried. This runs on every read of every extra field.
    (0..key.len()).any(|i| {
        let rest = &key[i..];
        let words: &[&[u8]] = match rest[0].to_ascii_lowercase() {
            b'p' => &[
                b"password",
                b"passwd",
                b"passphrase",
                b"private_key",
                b"privatekey",
                b"private-key",
            ],
            b't' => &[b"token"],
            b's' => &[b"secret"],
            b'o' => &[b"otp"],
            b'c' => &[b"code", b"cookie", b"credential"],
            b'h' => &[b"hash"],
            b'a' => &[b"authorization", b"api_key", b"apikey", b"api-key"],
            b'b' => &[b"bearer"],
            _ => return false,
        };
        words
            .iter()
            .any(|word| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word))
    })
}

/// Whether a text value looks like a credential: a JWT (`eyJ…` with three base64url parts)
/// or an HTTP `Bearer`/`Basic` authorization value.
///
/// ```
/// use authtel_core::metadata::looks_like_credential;
/// assert!(looks_like_credential("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"));
/// assert!(looks_like_credential("Bearer abc"));
/// assert!(!looks_like_credential("Mozilla/5.0"));
/// ```
pub fn looks_like_credential(value: &str) -> bool {
    let v = value.trim_start();
    let has_prefix =
        |p: &str| v.len() >= p.len() && v.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if has_prefix("bearer ") || has_prefix("basic ") {
        return true;
    }
    // Every JWT starts with `eyJ` (base64url of `{"`): values without it, nearly all of
    // them, are rejected without splitting into tokens.
    if !v.as_bytes().windows(3).any(|w| w[0] == b'e' && w == b"eyJ") {
        return false;
    }
    // A JWT anywhere in the value, e.g. "token=eyJ…".
    v.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(is_jwt)
}

fn is_jwt(s: &str) -> bool {
    if !s.starts_with("eyJ") || s.len() < 20 {
        return false;
    }
    let mut parts = 0;
    for part in s.split('.') {
        parts += 1;
        if part.is_empty() && parts < 3 {
            return false;
        }
    }
    parts == 3 || parts == 5
}

fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_KEY_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'.')
}

/// Cuts `s` to at most `max` bytes on a character boundary.
///
/// ```
/// assert_eq!(authtel_core::metadata::truncate("héllo", 2), "h");
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

fn truncate_in_place(s: &mut String, max: usize) {
    let keep = truncate(s, max).len();
    s.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time `@` check agrees with the plain one for every length up to 40,
    /// `@` at every position (or nowhere), and neighbours that differ from `@` by one bit
    /// (the kind of byte a wrong mask would mistake for it).
    #[test]
    fn at_sign_check_matches_the_plain_definition() {
        let fillers = [b'a', b'?', b'A', 0xC0, 0x00, 0x7F, 0xFF, b'`', 0x41, 0x3F];
        let mut checked = 0;
        for len in 0..=40 {
            for &filler in &fillers {
                for at in (0..len).map(Some).chain([None]) {
                    let mut bytes = vec![filler; len];
                    if let Some(i) = at {
                        bytes[i] = b'@';
                    }
                    assert_eq!(contains_at_sign(&bytes), bytes.contains(&b'@'), "{bytes:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 8_000);
        assert!(Metadata::new().user_id("x@y").get_user_id().is_none());
        assert_eq!(Metadata::new().user_id("u_42").get_user_id(), Some("u_42"));
    }

    /// The plain definition the fast [`key_names_secret`] must agree with.
    fn names_secret_reference(key: &str) -> bool {
        const WORDS: [&str; 18] = [
            "password",
            "passwd",
            "passphrase",
            "token",
            "secret",
            "otp",
            "code",
            "hash",
            "cookie",
            "authorization",
            "api_key",
            "apikey",
            "api-key",
            "private_key",
            "privatekey",
            "private-key",
            "credential",
            "bearer",
        ];
        let lower = key.to_ascii_lowercase();
        WORDS.iter().any(|w| lower.contains(w))
    }

    #[test]
    fn fast_secret_key_check_agrees_with_the_plain_definition() {
        let parts = [
            "",
            "x",
            "pass",
            "password",
            "Passwd",
            "PASSPHRASE",
            "tok",
            "token",
            "sec",
            "secret",
            "ot",
            "otp",
            "totp",
            "co",
            "code",
            "cookie",
            "cred",
            "credential",
            "ha",
            "hash",
            "auth",
            "authorization",
            "api",
            "api_key",
            "ApiKey",
            "api-key",
            "private",
            "private_key",
            "privatekey",
            "private-key",
            "bear",
            "bearer",
            "tenant",
            "_",
            ".",
            "-",
            "é",
            "ss",
        ];
        let mut checked = 0;
        for a in parts {
            for b in parts {
                for c in ["", "_", "p", "e"] {
                    let key = format!("{a}{c}{b}");
                    assert_eq!(
                        key_names_secret(&key),
                        names_secret_reference(&key),
                        "{key:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 5000);
    }

    #[test]
    fn jwt_fast_reject_keeps_embedded_tokens_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpM";
        assert!(looks_like_credential(jwt));
        assert!(looks_like_credential(&format!("token={jwt}; path=/")));
        assert!(looks_like_credential(&format!("  {jwt}")));
        assert!(!looks_like_credential("eyJ-but-not-a-token"));
        assert!(!looks_like_credential("plain text without the marker"));
        assert!(!looks_like_credential(""));
    }

    #[test]
    fn secret_keys_are_redacted_and_counted() {
        for key in [
            "password",
            "new_password",
            "session_token",
            "client_secret",
            "otp",
            "totp_code",
            "password_hash",
            "cookie",
            "authorization",
            "api_key",
            "private_key",
        ] {
            let m = Metadata::new().with_extra(key, "s3cr3t-value");
            assert_eq!(m.extra().next(), Some((key, Value::Str(REDACTED))), "{key}");
            assert_eq!(m.redacted(), 1);
        }
    }

    #[test]
    fn token_values_are_redacted_in_standard_fields() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpM";
        let m = Metadata::new().reason(jwt).user_agent("Bearer abcdef");
        assert_eq!(m.get_reason(), Some(REDACTED));
        assert_eq!(m.get_user_agent(), Some(REDACTED));
        assert_eq!(m.redacted(), 2);
    }

    #[test]
    fn emails_are_not_identifiers() {
        let m = Metadata::new().user_id("bob@example.com").caller("svc@x");
        assert_eq!(m.get_user_id(), None);
        assert_eq!(m.get_caller(), None);
        assert_eq!(m.refused(), 2);
    }

    #[test]
    fn long_values_are_truncated_on_char_boundaries() {
        let long = "é".repeat(300);
        let m = Metadata::new().reason(&long);
        let r = m.get_reason().unwrap();
        assert!(r.len() <= MAX_TEXT_LEN);
        assert!(r.chars().all(|c| c == 'é'));
    }

    #[test]
    fn extra_fields_are_bounded() {
        let mut m = Metadata::new();
        let keys = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
        for k in keys {
            m.try_extra(k, 1).unwrap();
        }
        assert!(matches!(
            m.try_extra("a9", 1),
            Err(MetadataError::TooManyFields { .. })
        ));
        assert_eq!(m.extra().count(), MAX_EXTRA_FIELDS);
        let huge_key = "k".repeat(500);
        assert!(matches!(
            m.try_extra(&huge_key, 1),
            Err(MetadataError::InvalidKey { key }) if key.len() == MAX_KEY_LEN
        ));
    }

    #[test]
    fn for_each_field_formats_ip() {
        let m = Metadata::new().client_ip("2001:db8::1".parse().unwrap());
        let mut seen = None;
        m.for_each_field(|k, v| {
            if k == "client_ip" {
                seen = Some(v.to_string());
            }
        });
        assert_eq!(seen.as_deref(), Some("2001:db8::1"));
    }
}
