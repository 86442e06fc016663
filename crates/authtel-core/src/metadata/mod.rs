//! Event metadata, read only through the secret policy.
//!
//! [`Metadata`] has typed standard fields (user id, session id, client IP, …) and up to
//! [`MAX_EXTRA_FIELDS`] extra fields. It borrows its strings, so building one allocates
//! nothing; a sink copies only what it keeps.
//!
//! # The policy
//! - **By type**: the code fields (`method`, `reason`, `operation`) take the
//!   [`crate::vocabulary`] types or `&'static str` literals, so nothing formatted at run time
//!   (an error message, a request value) can land in them. The other setters take `&str`,
//!   numbers and booleans. The `secrecy` crate's secret
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
//!   let m = Metadata::new().resource(&token);
//!   ```
//! - **At runtime**, through [`crate::policy`], the one screen every sink relies on: the
//!   fields are private and only the getters, [`Metadata::extra`] and
//!   [`Metadata::for_each_field`] expose them, and every read applies the policy, so
//!   screening costs nothing when nobody listens. A text value with a credential or an
//!   email anywhere in it reads as [`REDACTED`]; an extra field under a key that names a
//!   secret reads as [`REDACTED`] (booleans excepted); an identifier field (user id,
//!   caller, session id, rate-limit key, tenant id, client id) holding an email or a credential reads as absent;
//!   an extra field whose key is a value (a credential, or key and value swapped) is
//!   dropped. Redactions and refusals are counted once per metadata value
//!   ([`crate::policy::redaction_count`], [`crate::policy::refusal_count`]), not once per
//!   sink that reads it. [`Metadata::try_user_id`] returns the typed error instead. There
//!   is no field for "the identifier that was typed" at a failed login: it may be a
//!   password typed into the wrong box, so it is never recorded.
//! - **Bounded** by [`crate::policy::LIMITS`]: text is cut at [`MAX_TEXT_LEN`] bytes (on a
//!   character boundary); extra fields beyond [`MAX_EXTRA_FIELDS`] and invalid keys are
//!   refused and counted.

mod ip_text;
mod slots;
mod value;

use std::fmt;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::outcome::Outcome;
use crate::policy::{self, KeyClass, LIMITS};
use crate::trace_parent::TraceParent;
use crate::vocabulary::{Aal, AuthMethod, GrantType, Operation, Reason};
use slots::{ExtraSlots, TEXT_KEYS, Text, TextSlots};

pub use crate::policy::{MAX_TEXT_LEN, REDACTED, key_names_secret, truncate};
pub use ip_text::IpText;
pub use value::{ExtraValue, Value};

/// How many extra fields one event may carry.
pub const MAX_EXTRA_FIELDS: usize = LIMITS.extra_fields;
/// Longest extra-field key, in bytes.
pub const MAX_KEY_LEN: usize = LIMITS.key_bytes;

/// Whether a text value holds a credential or an email anywhere
/// ([`policy::find_credential`] finds something).
///
/// ```
/// use authtel_core::metadata::looks_like_credential;
/// assert!(looks_like_credential("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"));
/// assert!(looks_like_credential("Authorization: Bearer abc123"));
/// assert!(!looks_like_credential("Mozilla/5.0"));
/// ```
pub fn looks_like_credential(value: &str) -> bool {
    policy::find_credential(value).is_some()
}

/// How many values the policy has redacted in this process ([`policy::redaction_count`]).
pub fn redaction_count() -> u64 {
    policy::redaction_count()
}

/// How many values the policy has refused in this process ([`policy::refusal_count`]).
pub fn refusal_count() -> u64 {
    policy::refusal_count()
}

/// Why a metadata value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// An email address was given where an identifier belongs.
    #[error(
        "{field} looks like an email address; identifiers must be opaque ids (user id, not email): pass the account's id, or a keyed pseudonym of the email (authtel_core::pseudonym::PseudonymKey::for_email)"
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
    /// An identifier holds a credential, is too long, or is malformed.
    #[error(
        "{field} was refused ({problem:?}): identifiers are opaque ids of at most 128 bytes without control characters, never a token, password or code"
    )]
    RefusedIdentifier {
        /// The field that refused it.
        field: &'static str,
        /// What is wrong with it.
        problem: policy::IdentifierProblem,
    },
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
pub struct Metadata<'a> {
    texts: TextSlots<'a>,
    client_ip: Option<IpAddr>,
    /// Borrowed: one pointer (one store when unset), not the 32 bytes of the value.
    trace_parent: Option<&'a TraceParent>,
    outcome: Option<Outcome>,
    attempts_remaining: Option<u32>,
    admin: Option<bool>,
    mfa: Option<bool>,
    refused: u8,
    /// Whether this value's redactions and refusals were added to the process counters
    /// (once, by the first read that found any, however many sinks read it).
    counted: AtomicBool,
    extra: ExtraSlots<'a>,
}

impl Clone for Metadata<'_> {
    fn clone(&self) -> Self {
        Metadata {
            texts: self.texts,
            client_ip: self.client_ip,
            trace_parent: self.trace_parent,
            outcome: self.outcome,
            attempts_remaining: self.attempts_remaining,
            admin: self.admin,
            mfa: self.mfa,
            refused: self.refused,
            // A clone is another record: its reads count again.
            counted: AtomicBool::new(false),
            extra: self.extra,
        }
    }
}

impl Default for Metadata<'_> {
    fn default() -> Self {
        Metadata::new()
    }
}

macro_rules! text_setters {
    ($( $(#[$doc:meta])* $field:ident, $getter:ident, $slot:ident; )*) => {
        $(
            $(#[$doc])*
            ///
            /// Screened when read by [`crate::policy`] (a value with a credential or an email
            /// anywhere in it reads as [`REDACTED`]) and truncated to [`MAX_TEXT_LEN`] bytes.
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

/// Setters and getters of the fields whose values are codes from [`crate::vocabulary`]: the
/// setter takes the vocabulary type (or a `&'static str` literal, which converts), so a
/// string formatted at run time cannot be passed.
macro_rules! code_setters {
    ($( $(#[$doc:meta])* $field:ident: $ty:ty, $getter:ident, $slot:ident; )*) => {
        $(
            $(#[$doc])*
            ///
            /// Safe by construction: the code is fixed at compile time. Still screened when
            /// read by [`crate::policy`], like every text field.
            #[must_use]
            #[inline]
            pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                self.texts.set(Text::$slot, value.into().as_str());
                self
            }

            #[doc = concat!("The `", stringify!($field), "` field's code, if set (screened).")]
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
            std::ptr::addr_of_mut!((*p).trace_parent).write(None);
            std::ptr::addr_of_mut!((*p).outcome).write(None);
            std::ptr::addr_of_mut!((*p).attempts_remaining).write(None);
            std::ptr::addr_of_mut!((*p).admin).write(None);
            std::ptr::addr_of_mut!((*p).mfa).write(None);
            std::ptr::addr_of_mut!((*p).refused).write(0);
            std::ptr::addr_of_mut!((*p).counted).write(AtomicBool::new(false));
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
        match policy::check_identifier(id) {
            Ok(()) => {}
            Err(policy::IdentifierProblem::Email) => {
                return Err(MetadataError::EmailAsIdentifier { field: "user_id" });
            }
            Err(problem) => {
                return Err(MetadataError::RefusedIdentifier {
                    field: "user_id",
                    problem,
                });
            }
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
        /// The resource an authorization decision was about.
        resource, get_resource, Resource;
        /// The key a rate limit counted on (`ip:203.0.113.7`).
        rate_limit_key, get_rate_limit_key, RateLimitKey;
        /// The tenant (organisation, realm) the event belongs to: an opaque id, refused like
        /// [`Metadata::user_id`] when it is an email or a credential. Audit records carry it
        /// as their own field (a SQL column, part of the Kafka key); inside a
        /// [request context](crate::context) with a tenant, that tenant is the default.
        tenant_id, get_tenant_id, TenantId;
        /// The OAuth client (relying party) the event is about: an opaque client id, never
        /// the client secret (refused like [`Metadata::user_id`]).
        client_id, get_client_id, ClientId;
    }

    code_setters! {
        /// How the user proved who they are ([`AuthMethod`]: `password`, `totp`, `webauthn`, …).
        method: AuthMethod, get_method, Method;
        /// Why something failed or was denied ([`Reason`]: `invalid_password`, `expired`, …).
        reason: Reason, get_reason, Reason;
        /// The operation an authorization decision was about ([`Operation`]: `call`, `read`, …).
        operation: Operation, get_operation, Operation;
        /// The OAuth grant type of a token request ([`GrantType`]: `authorization_code`, …).
        grant_type: GrantType, get_grant_type, GrantType;
        /// The authentication assurance level reached ([`Aal`]: `aal1`, `aal2`, `aal3`).
        aal: Aal, get_aal, Aal;
    }

    /// Sets a standard free-text field by its key (one of [`Metadata::TEXT_FIELDS`] that is
    /// not a [code field](Metadata::CODE_FIELDS)), for code that fills fields generically
    /// (tests that plant a value in every field, adapters); `None` when `key` names no
    /// standard text field or names a code field (use [`Metadata::with_code_field`]).
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().with_text_field("resource", "/api/v1/users/42").unwrap();
    /// assert_eq!(m.get_resource(), Some("/api/v1/users/42"));
    /// assert!(Metadata::new().with_text_field("nope", "x").is_none());
    /// assert!(Metadata::new().with_text_field("reason", "expired").is_none());
    /// ```
    #[must_use]
    pub fn with_text_field(mut self, key: &str, value: &'a str) -> Option<Self> {
        let (field, _) = TEXT_KEYS.iter().find(|(f, k)| *k == key && !f.is_code())?;
        self.texts.set(*field, value);
        Some(self)
    }

    /// Sets a code field (one of [`Metadata::CODE_FIELDS`]: `method`, `reason`, …) by its
    /// key, for generic code; the value is a `'static` code as with the typed setters.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().with_code_field("reason", "expired").unwrap();
    /// assert_eq!(m.get_reason(), Some("expired"));
    /// assert!(Metadata::new().with_code_field("resource", "x").is_none());
    /// ```
    #[must_use]
    pub fn with_code_field(mut self, key: &str, code: &'static str) -> Option<Self> {
        let (field, _) = TEXT_KEYS.iter().find(|(f, k)| *k == key && f.is_code())?;
        self.texts.set(*field, code);
        Some(self)
    }

    /// The keys of the text fields that hold identifiers: opaque ids, checked by
    /// [`policy::check_identifier`] (an email, a credential, control characters or more than
    /// 128 bytes read as absent) rather than screened as free text, so a random id is kept.
    pub const IDENTIFIER_FIELDS: [&'static str; 6] = [
        "user_id",
        "session_id",
        "caller",
        "rate_limit_key",
        "tenant_id",
        "client_id",
    ];

    /// The keys of the text fields whose values are codes from [`crate::vocabulary`].
    pub const CODE_FIELDS: [&'static str; 5] =
        ["method", "reason", "operation", "grant_type", "aal"];

    /// The keys of every standard text field, in reporting order.
    pub const TEXT_FIELDS: [&'static str; slots::TEXT_FIELDS] = {
        let mut keys = [""; slots::TEXT_FIELDS];
        let mut i = 0;
        while i < slots::TEXT_FIELDS {
            keys[i] = TEXT_KEYS[i].1;
            i += 1;
        }
        keys
    };

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

    /// The distributed trace the event belongs to (a W3C `traceparent`, usually inherited
    /// from the [request context](crate::context)): audit records take its trace id.
    ///
    /// ```
    /// use authtel_core::{context::TraceParent, metadata::Metadata};
    /// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
    /// let m = Metadata::new().trace_parent(&tp);
    /// assert_eq!(m.get_trace_parent(), Some(&tp));
    /// # Ok::<(), authtel_core::context::TraceParentError>(())
    /// ```
    #[must_use]
    #[inline]
    pub fn trace_parent(mut self, trace_parent: &'a TraceParent) -> Self {
        self.trace_parent = Some(trace_parent);
        self
    }

    /// The trace parent, if set.
    #[inline]
    pub fn get_trace_parent(&self) -> Option<&'a TraceParent> {
        self.trace_parent
    }

    /// This metadata with a request context's fields filled in where it left them unset
    /// (the call site wins): client IP, user agent, tenant, trace parent, and one extra
    /// field (the request id) when its key is not already held and there is room.
    #[inline]
    pub(crate) fn inherit(
        &mut self,
        client_ip: Option<IpAddr>,
        user_agent: Option<&'a str>,
        tenant_id: Option<&'a str>,
        trace_parent: Option<&'a TraceParent>,
        (key, value): (&'static str, Option<&'a str>),
    ) {
        if self.client_ip.is_none() {
            self.client_ip = client_ip;
        }
        self.fill_text(Text::UserAgent, user_agent);
        self.fill_text(Text::TenantId, tenant_id);
        if self.trace_parent.is_none() {
            self.trace_parent = trace_parent;
        }
        if let Some(value) = value {
            let taken = self.extra.as_slice().iter().any(|&(k, _)| k == key);
            if !taken && !self.extra.is_full() {
                self.extra.push(key, Value::Str(value));
            }
        }
    }

    /// Sets `field` to `value` when the call site left it unset.
    #[inline]
    fn fill_text(&mut self, field: Text, value: Option<&'a str>) {
        if let Some(value) = value
            && self.texts.get(field).is_none()
        {
            self.texts.set(field, value);
        }
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

    /// Whether the authentication used more than one factor (reported as `is_mfa`).
    /// Independent of [`Metadata::aal`]: say both when both are known.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// use authtel_core::vocabulary::{Aal, AuthMethod};
    /// let m = Metadata::new().method(AuthMethod::WebAuthn).aal(Aal::Aal2).is_mfa(true);
    /// assert_eq!(m.get_is_mfa(), Some(true));
    /// assert_eq!(m.get_aal(), Some("aal2"));
    /// ```
    #[must_use]
    #[inline]
    pub fn is_mfa(mut self, mfa: bool) -> Self {
        self.mfa = Some(mfa);
        self
    }

    /// The multi-factor flag, if set.
    #[inline]
    pub fn get_is_mfa(&self) -> Option<bool> {
        self.mfa
    }

    /// Adds an extra field. Secret-named keys and token-looking values are redacted; an
    /// invalid key or a field over [`MAX_EXTRA_FIELDS`] is refused and counted (use
    /// [`Metadata::try_extra`] for the error). The value is text, a number, a boolean or an
    /// `Option` of one ([`ExtraValue`]): `None` adds nothing. Text is borrowed, so a
    /// `format!` written inside the emitting call lives long enough:
    /// `telemetry::event(.., Metadata::new().with_extra("step", &format!("{n}")))`.
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
    pub fn with_extra(mut self, key: &'a str, value: impl ExtraValue<'a>) -> Self {
        if let Some(value) = value.into_extra()
            && self.push_extra(key, value).is_err()
        {
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
        value: impl ExtraValue<'a>,
    ) -> Result<(), MetadataError> {
        match value.into_extra() {
            Some(value) => self.push_extra(key, value),
            None => Ok(()),
        }
    }

    #[inline]
    fn push_extra(&mut self, key: &'a str, value: Value<'a>) -> Result<(), MetadataError> {
        if !policy::key_charset_ok(key) {
            return Err(MetadataError::InvalidKey {
                key: truncate(key, MAX_KEY_LEN).to_owned(),
            });
        }
        if self.extra.is_full() {
            return Err(MetadataError::TooManyFields {
                key: key.to_owned(),
            });
        }
        self.extra.push(key, value);
        Ok(())
    }

    /// The extra fields, in insertion order, as the policy lets them out: a field under a
    /// key that names a secret reads as [`REDACTED`] (booleans stay), text values are
    /// screened and truncated, and a field whose key is a value (a credential, or key and
    /// value swapped: `with_extra("hunter2", "password")`) is left out.
    #[inline]
    pub fn extra(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + '_ {
        if self.refused > 0 {
            self.count_once();
        }
        self.extra
            .as_slice()
            .iter()
            .filter_map(|&(key, value)| match screen_extra(key, value) {
                Screened::Kept(v) => Some((key, v)),
                Screened::Redacted => {
                    self.count_once();
                    Some((key, Value::Str(REDACTED)))
                }
                Screened::Dropped => {
                    self.count_once();
                    None
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
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().reason("password=hunter2").with_extra("pin", 1234).with_extra("tenant", "acme");
    /// assert_eq!(m.redacted(), 2);
    /// ```
    pub fn redacted(&self) -> u32 {
        let in_texts = TEXT_KEYS
            .iter()
            .filter(|&&(field, _)| !field.is_identifier())
            .filter_map(|&(field, _)| self.texts.get(field))
            .filter(|v| policy::screen(v).is_none())
            .count();
        let in_extra = self
            .extra
            .as_slice()
            .iter()
            .filter(|&&(k, v)| matches!(screen_extra(k, v), Screened::Redacted))
            .count();
        (in_texts + in_extra) as u32
    }

    /// How many values of this metadata the policy refused: extra fields refused when
    /// added or left out when read, and identifier fields holding an email or a credential.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// let m = Metadata::new().user_id("alice@example.com").session_id("s_1");
    /// assert_eq!(m.refused(), 1);
    /// ```
    pub fn refused(&self) -> u32 {
        let identifiers = TEXT_KEYS
            .iter()
            .filter(|&&(field, _)| field.is_identifier())
            .filter(|&&(field, _)| {
                self.texts
                    .get(field)
                    .is_some_and(|v| policy::check_identifier(v).is_err())
            })
            .count();
        let dropped = self
            .extra
            .as_slice()
            .iter()
            .filter(|&&(k, v)| matches!(screen_extra(k, v), Screened::Dropped))
            .count();
        u32::from(self.refused) + (identifiers + dropped) as u32
    }

    /// A standard text field as every reader sees it: an identifier holding an email or a
    /// credential is refused (reads as absent), any other text is screened and truncated.
    #[inline]
    fn read_text(&self, field: Text) -> Option<&'a str> {
        let value = self.texts.get(field)?;
        if field.is_identifier() {
            if policy::check_identifier(value).is_err() {
                self.count_once();
                return None;
            }
            return Some(value);
        }
        match policy::screen(value) {
            Some(kept) => Some(kept),
            None => {
                self.count_once();
                Some(REDACTED)
            }
        }
    }

    /// Adds this value's redactions and refusals to the process counters, the first time
    /// a read finds any.
    #[cold]
    fn count_once(&self) {
        if !self.counted.swap(true, Ordering::Relaxed) {
            policy::note(u64::from(self.redacted()), u64::from(self.refused()));
        }
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
        if let Some(tp) = self.trace_parent {
            f("trace_id", Value::Str(tp.trace_id_hex().as_str()));
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
        if let Some(m) = self.mfa {
            f("is_mfa", Value::Bool(m));
        }
        for (k, v) in self.extra() {
            f(k, v);
        }
    }

    #[cold]
    fn refuse(&mut self) {
        self.refused = self.refused.saturating_add(1);
    }
}

/// What the policy makes of one extra field.
enum Screened<'a> {
    Kept(Value<'a>),
    Redacted,
    Dropped,
}

fn screen_extra<'a>(key: &'a str, value: Value<'a>) -> Screened<'a> {
    if !policy::valid_key(key) || matches!(value, Value::Str(s) if policy::swapped(key, s)) {
        return Screened::Dropped;
    }
    if policy::classify_key(key) == KeyClass::Secret {
        return match value {
            Value::Bool(_) => Screened::Kept(value),
            _ => Screened::Redacted,
        };
    }
    match value {
        Value::Str(s) => match policy::screen(s) {
            Some(kept) => Screened::Kept(Value::Str(kept)),
            None => Screened::Redacted,
        },
        other => Screened::Kept(other),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_extras_add_a_field_only_when_present() {
        let owned = String::from("web");
        let absent: Option<&String> = None;
        let mut m = Metadata::new()
            .with_extra("client", Some(&owned))
            .with_extra("device", absent)
            // An absent value under an invalid key adds nothing, so nothing is refused.
            .with_extra("Bad Key", None::<u32>)
            .with_extra("admin_ui", Some(true));
        assert_eq!(m.try_extra("step", None::<i64>), Ok(()));
        assert!(matches!(
            m.try_extra("Bad Key", Some(1)),
            Err(MetadataError::InvalidKey { .. })
        ));
        let fields: Vec<_> = m.extra().collect();
        assert_eq!(
            fields,
            [
                ("client", Value::Str("web")),
                ("admin_ui", Value::Bool(true))
            ]
        );
        assert_eq!(m.refused(), 0);
    }

    #[test]
    fn secret_keys_are_redacted_but_booleans_and_descriptive_keys_survive() {
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
            "pw",
            "pin",
            "mfa",
            "key",
            "auth",
            "sid",
            "jwt",
        ] {
            let m = Metadata::new().with_extra(key, "s3cr3t-value");
            assert_eq!(m.extra().next(), Some((key, Value::Str(REDACTED))), "{key}");
            assert_eq!(m.redacted(), 1, "{key}");
        }
        let m = Metadata::new()
            .with_extra("otp_enabled", true)
            .with_extra("pin", 1234)
            .with_extra("token_type", "bearer")
            .with_extra("password_age_days", 31)
            .with_extra("error_code", "E1042");
        let fields: Vec<_> = m.extra().collect();
        assert_eq!(
            fields,
            [
                ("otp_enabled", Value::Bool(true)),
                ("pin", Value::Str(REDACTED)),
                ("token_type", Value::Str("bearer")),
                ("password_age_days", Value::I64(31)),
                ("error_code", Value::Str("E1042")),
            ]
        );
    }

    #[test]
    fn credentials_anywhere_in_standard_text_fields_are_redacted() {
        let m = Metadata::new()
            // Codes are `'static`, so only a literal gets here; the screen still reads them.
            .reason("password=hunter2-in-reason")
            .operation("Authorization: Bearer x")
            .method("totp 123456 was wrong")
            .resource("/reset?token=abc123")
            .user_agent("curl https://svc:s3cret@host/")
            .provider("github");
        assert_eq!(m.get_reason(), Some(REDACTED));
        assert_eq!(m.get_operation(), Some(REDACTED));
        assert_eq!(m.get_method(), Some(REDACTED));
        assert_eq!(m.get_resource(), Some(REDACTED));
        assert_eq!(m.get_user_agent(), Some(REDACTED));
        assert_eq!(m.get_provider(), Some("github"));
        assert_eq!(m.redacted(), 5);
    }

    #[test]
    fn identifiers_refuse_emails_and_credentials() {
        let m = Metadata::new()
            .user_id("bob@example.com")
            .caller("svc@x")
            .session_id("password=hunter2")
            .rate_limit_key("email:alice@example.com");
        assert_eq!(m.get_user_id(), None);
        assert_eq!(m.get_caller(), None);
        assert_eq!(m.get_session_id(), None);
        assert_eq!(m.get_rate_limit_key(), None);
        assert_eq!(m.refused(), 4);
        let ok = Metadata::new()
            .session_id("sess_8fK2xQ9aB7LmZ3pQ4rT6")
            .rate_limit_key("ip:203.0.113.7");
        assert_eq!(ok.get_session_id(), Some("sess_8fK2xQ9aB7LmZ3pQ4rT6"));
        assert_eq!(ok.get_rate_limit_key(), Some("ip:203.0.113.7"));
        assert!(matches!(
            Metadata::new().try_user_id("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"),
            Err(MetadataError::RefusedIdentifier {
                field: "user_id",
                ..
            })
        ));
    }

    #[test]
    fn a_key_that_is_a_value_is_dropped() {
        // Arguments swapped: the secret became the key.
        let m = Metadata::new()
            .with_extra("hunter2", "password")
            .with_extra("abcd1234efgh", "x")
            .with_extra("method", "password");
        let fields: Vec<_> = m.extra().collect();
        assert_eq!(fields, [("method", Value::Str("password"))]);
        assert_eq!(m.refused(), 2);
    }

    #[test]
    fn redactions_are_counted_once_per_metadata_whatever_the_number_of_readers() {
        let m = Metadata::new().reason("password=x1").with_extra("pw", "y");
        let before = policy::redaction_count();
        for _ in 0..8 {
            let _ = m.get_reason();
            let _ = m.extra().count();
        }
        // Other tests run in parallel and count too: this value added exactly two.
        let after = policy::redaction_count();
        assert!(after >= before + 2);
        assert!(m.counted.load(Ordering::Relaxed));
        let again = m.clone();
        assert!(!again.counted.load(Ordering::Relaxed));
    }

    #[test]
    fn the_published_field_lists_agree_with_the_slots() {
        for (field, key) in TEXT_KEYS {
            assert_eq!(
                Metadata::IDENTIFIER_FIELDS.contains(&key),
                field.is_identifier(),
                "{key}"
            );
            assert_eq!(
                Metadata::CODE_FIELDS.contains(&key),
                field.is_code(),
                "{key}"
            );
        }
    }

    #[test]
    fn long_values_are_truncated_on_char_boundaries() {
        let long = "é".repeat(300);
        let m = Metadata::new().resource(&long);
        let r = m.get_resource().unwrap();
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
