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

mod error;
mod extra;
mod factors;
mod ip_text;
mod read;
mod slots;
#[cfg(test)]
mod tests;
mod value;

use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;

use crate::outcome::Outcome;
use crate::policy::{self, LIMITS};
use crate::trace_parent::TraceParent;
use crate::vocabulary::{Aal, AuthMethod, GrantType, Operation, Reason};
use slots::{ExtraSlots, TEXT_KEYS, Text, TextSlots};

pub use crate::policy::{MAX_TEXT_LEN, REDACTED, key_names_secret, truncate};
pub use error::MetadataError;
pub use factors::{Factors, FactorsText, MAX_FACTORS};
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
    factors: Option<&'a [AuthMethod]>,
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
            factors: self.factors,
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
            std::ptr::addr_of_mut!((*p).factors).write(None);
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

    /// The authentication factors used, in order (reported as `factors`: a list where the
    /// sink has lists, `password,totp` where it writes text). Typed like
    /// [`Metadata::method`], so every code is fixed at compile time; at most
    /// [`MAX_FACTORS`] are kept.
    ///
    /// ```
    /// use authtel_core::metadata::Metadata;
    /// use authtel_core::vocabulary::{Aal, AuthMethod};
    /// let used = [AuthMethod::Password, AuthMethod::WebAuthn];
    /// let m = Metadata::new().factors(&used).aal(Aal::Aal2).is_mfa(true);
    /// assert_eq!(m.get_factors().unwrap().text().as_str(), "password,webauthn");
    /// ```
    #[must_use]
    #[inline]
    pub fn factors(mut self, factors: &'a [AuthMethod]) -> Self {
        self.factors = Some(factors);
        self
    }

    /// The factors, if set (each code screened).
    #[inline]
    pub fn get_factors(&self) -> Option<Factors> {
        let factors = Factors::new(self.factors?);
        if factors.redacted() > 0 {
            self.count_once();
        }
        Some(factors)
    }

    #[cold]
    fn refuse(&mut self) {
        self.refused = self.refused.saturating_add(1);
    }
}
