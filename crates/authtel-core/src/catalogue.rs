//! The typed event catalogue.
//!
//! Every event authtel knows is a `static` [`Event`] descriptor: a stable dotted name
//! (`auth.login.stop`), its segments (`["auth", "login", "stop"]`), a [`Category`] and an
//! [`EventKind`]. Spans are [`SpanDef`]s that own their three phase events. Handlers are
//! attached to descriptors, never to strings, so a typo is a compile error and the hot path
//! indexes a table by a dense id instead of hashing a name.
//!
//! Names are API: once published they never change. Applications declare their own events
//! with the same types ([`Event::signal`], [`SpanDef::new`] in a `static`, or
//! [`Event::declare`] at runtime); the library's category prefixes are reserved.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// The group an event belongs to. It selects the logger target (`authtel::mfa`), the default
/// log level and the category list functions such as [`mfa_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Category {
    /// Login, logout, registration.
    Auth,
    /// Generation and verification of one-time tokens (confirmation, reset, magic link).
    Token,
    /// Delivery of emails.
    Email,
    /// Email/account confirmation.
    Confirmation,
    /// Session lifecycle.
    Session,
    /// OAuth / social login.
    OAuth,
    /// Multi-factor authentication.
    Mfa,
    /// Long-lived API tokens.
    ApiToken,
    /// JSON Web Tokens.
    Jwt,
    /// Account lifecycle: email change, password change, deletion.
    Account,
    /// Application hooks run by the auth flow.
    Hook,
    /// Security signals: rate limiting, lockouts, suspicious logins.
    Security,
    /// Password reset.
    Reset,
    /// Authorization decisions.
    Authorization,
    /// authtel's own operational signals (handler failures, forwarding errors).
    Pipeline,
    /// An event declared by the application.
    Custom,
}

impl Category {
    /// Every library category, in catalogue order (without [`Category::Custom`]).
    pub const LIBRARY: [Category; 15] = [
        Category::Auth,
        Category::Token,
        Category::Email,
        Category::Confirmation,
        Category::Session,
        Category::OAuth,
        Category::Mfa,
        Category::ApiToken,
        Category::Jwt,
        Category::Account,
        Category::Hook,
        Category::Security,
        Category::Reset,
        Category::Authorization,
        Category::Pipeline,
    ];

    /// The first name segment of this category's events (`"mfa"`), also its reserved prefix.
    ///
    /// ```
    /// use authtel_core::catalogue::Category;
    /// assert_eq!(Category::ApiToken.as_str(), "api_token");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Auth => "auth",
            Category::Token => "token",
            Category::Email => "email",
            Category::Confirmation => "confirmation",
            Category::Session => "session",
            Category::OAuth => "oauth",
            Category::Mfa => "mfa",
            Category::ApiToken => "api_token",
            Category::Jwt => "jwt",
            Category::Account => "account",
            Category::Hook => "hook",
            Category::Security => "security",
            Category::Reset => "reset",
            Category::Authorization => "authorization",
            Category::Pipeline => "pipeline",
            Category::Custom => "custom",
        }
    }

    /// The `tracing` target the default logger uses for this category, so that
    /// `RUST_LOG=authtel::security=warn` selects it.
    ///
    /// ```
    /// use authtel_core::catalogue::Category;
    /// assert_eq!(Category::Security.log_target(), "authtel::security");
    /// ```
    pub const fn log_target(self) -> &'static str {
        match self {
            Category::Auth => "authtel::auth",
            Category::Token => "authtel::token",
            Category::Email => "authtel::email",
            Category::Confirmation => "authtel::confirmation",
            Category::Session => "authtel::session",
            Category::OAuth => "authtel::oauth",
            Category::Mfa => "authtel::mfa",
            Category::ApiToken => "authtel::api_token",
            Category::Jwt => "authtel::jwt",
            Category::Account => "authtel::account",
            Category::Hook => "authtel::hook",
            Category::Security => "authtel::security",
            Category::Reset => "authtel::reset",
            Category::Authorization => "authtel::authorization",
            Category::Pipeline => "authtel::pipeline",
            Category::Custom => "authtel::app",
        }
    }

    /// Finds the library category whose prefix is `prefix`.
    ///
    /// ```
    /// use authtel_core::catalogue::Category;
    /// assert_eq!(Category::from_prefix("oauth"), Some(Category::OAuth));
    /// assert_eq!(Category::from_prefix("billing"), None);
    /// ```
    pub fn from_prefix(prefix: &str) -> Option<Category> {
        Category::LIBRARY.into_iter().find(|c| c.as_str() == prefix)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A span began.
    SpanStart,
    /// A span ended with an outcome.
    SpanStop,
    /// A span ended by a panic or by being dropped unfinished.
    SpanException,
    /// A one-shot signal.
    Signal,
}

impl EventKind {
    /// The name's last segment for span phases; `None` for signals.
    pub const fn phase_suffix(self) -> Option<&'static str> {
        match self {
            EventKind::SpanStart => Some("start"),
            EventKind::SpanStop => Some("stop"),
            EventKind::SpanException => Some("exception"),
            EventKind::Signal => None,
        }
    }
}

/// How loud an event is by nature; loggers map it to a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Routine: a login, a token issued.
    Info,
    /// Worth a look: a lockout, a rate limit, a denied authorization.
    Warn,
    /// Something broke: an exception, a handler failure.
    Error,
}

const UNASSIGNED: u32 = 0;
/// Event by dense id; slot 0 is never used.
static ID_TABLE: Mutex<Vec<Option<&'static Event>>> = Mutex::new(Vec::new());

/// Every event that has an id, indexed by id (slot 0 empty).
pub(crate) fn events_by_id() -> Vec<Option<&'static Event>> {
    ID_TABLE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A descriptor of one event. Declare it as a `static` and pass `&STATIC` around.
///
/// ```
/// use authtel_core::catalogue::{Category, Event, EventKind};
/// static INVOICE_VIEWED: Event = Event::signal("billing.invoice.viewed");
/// assert_eq!(INVOICE_VIEWED.name(), "billing.invoice.viewed");
/// assert_eq!(INVOICE_VIEWED.segments().collect::<Vec<_>>(), ["billing", "invoice", "viewed"]);
/// assert_eq!(INVOICE_VIEWED.category(), Category::Custom);
/// assert_eq!(INVOICE_VIEWED.kind(), EventKind::Signal);
/// ```
pub struct Event {
    name: &'static str,
    category: Category,
    kind: EventKind,
    severity: Severity,
    /// Dense id, assigned on first attach; `0` until then.
    id: AtomicU32,
}

impl Event {
    /// A library event; used by the catalogue below.
    const fn library(
        name: &'static str,
        category: Category,
        kind: EventKind,
        severity: Severity,
    ) -> Event {
        assert!(check_name(name).is_none(), "invalid catalogue name");
        Event {
            name,
            category,
            kind,
            severity,
            id: AtomicU32::new(UNASSIGNED),
        }
    }

    /// Declares an application signal in a `static`. The name is checked at compile time:
    /// lowercase `[a-z][a-z0-9_]*` segments joined by dots, 2 to 6 segments, at most
    /// 128 bytes, and not under a library prefix.
    ///
    /// ```compile_fail
    /// use authtel_core::catalogue::Event;
    /// // `mfa.` is reserved for the library: this does not compile.
    /// static BAD: Event = Event::signal("mfa.my_thing");
    /// ```
    pub const fn signal(name: &'static str) -> Event {
        Event::custom(name, EventKind::Signal, Severity::Info)
    }

    /// Declares an application signal with a severity other than info.
    ///
    /// ```
    /// use authtel_core::catalogue::{Event, Severity};
    /// static FRAUD: Event = Event::signal_with_severity("fraud.score.high", Severity::Warn);
    /// assert_eq!(FRAUD.severity(), Severity::Warn);
    /// ```
    pub const fn signal_with_severity(name: &'static str, severity: Severity) -> Event {
        Event::custom(name, EventKind::Signal, severity)
    }

    const fn custom(name: &'static str, kind: EventKind, severity: Severity) -> Event {
        assert!(
            check_application_name(name).is_none(),
            "invalid application event name: see catalogue::validate_application_name"
        );
        Event {
            name,
            category: Category::Custom,
            kind,
            severity,
            id: AtomicU32::new(UNASSIGNED),
        }
    }

    /// Declares an application signal at runtime, for names read from configuration.
    /// The descriptor is leaked on purpose (it must live as long as handlers may see it);
    /// declaring the same name twice returns the first descriptor.
    ///
    /// ```
    /// use authtel_core::catalogue::{Event, NameError};
    /// let e = Event::declare("billing.refund.issued").unwrap();
    /// assert!(std::ptr::eq(e, Event::declare("billing.refund.issued").unwrap()));
    /// assert!(matches!(Event::declare("auth.login.stop"), Err(NameError::Reserved { .. })));
    /// assert!(matches!(Event::declare("Bad Name"), Err(NameError::InvalidCharacter { .. })));
    /// ```
    pub fn declare(name: &str) -> Result<&'static Event, NameError> {
        validate_application_name(name)?;
        static DECLARED: Mutex<Vec<&'static Event>> = Mutex::new(Vec::new());
        let mut declared = DECLARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = declared.iter().find(|e| e.name == name) {
            return Ok(found);
        }
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let event: &'static Event = Box::leak(Box::new(Event {
            name,
            category: Category::Custom,
            kind: EventKind::Signal,
            severity: Severity::Info,
            id: AtomicU32::new(UNASSIGNED),
        }));
        declared.push(event);
        Ok(event)
    }

    /// The stable dotted name, e.g. `"auth.login.stop"`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The name split into its segments: `auth`, `login`, `stop`.
    ///
    /// ```
    /// use authtel_core::catalogue::MFA_TRUST_GRANTED;
    /// assert_eq!(MFA_TRUST_GRANTED.segments().collect::<Vec<_>>(), ["mfa", "trust", "granted"]);
    /// ```
    pub fn segments(&self) -> std::str::Split<'static, char> {
        self.name.split('.')
    }

    /// The category (the first segment for library events).
    pub const fn category(&self) -> Category {
        self.category
    }

    /// What the event marks.
    pub const fn kind(&self) -> EventKind {
        self.kind
    }

    /// How loud the event is by nature.
    pub const fn severity(&self) -> Severity {
        self.severity
    }

    /// Whether this is a security signal (never sampled, never silently dropped).
    ///
    /// ```
    /// use authtel_core::catalogue::{AUTH_LOGIN, SECURITY_LOCKOUT, MFA_LOCKOUT};
    /// assert!(SECURITY_LOCKOUT.is_security_signal());
    /// assert!(MFA_LOCKOUT.is_security_signal());
    /// assert!(!AUTH_LOGIN.stop().is_security_signal());
    /// ```
    pub fn is_security_signal(&self) -> bool {
        self.kind == EventKind::Signal
            && (self.category == Category::Security
                || self.category == Category::Authorization
                || self.severity >= Severity::Warn)
    }

    /// The dense id the registry indexes by, assigning one on first use.
    pub fn id(&'static self) -> u32 {
        let id = self.id.load(Ordering::Acquire);
        if id != UNASSIGNED {
            return id;
        }
        let mut table = ID_TABLE.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.id.load(Ordering::Acquire);
        if id != UNASSIGNED {
            return id;
        }
        if table.is_empty() {
            table.push(None);
        }
        let fresh = table.len() as u32;
        table.push(Some(self));
        self.id.store(fresh, Ordering::Release);
        fresh
    }

    /// The id if one was assigned, without assigning (the emit path's lookup).
    #[inline]
    pub(crate) fn assigned_id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("category", &self.category)
            .field("kind", &self.kind)
            .finish()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || self.name == other.name
    }
}
impl Eq for Event {}

/// A span: an operation with a start, and either a stop or an exception.
///
/// ```
/// use authtel_core::catalogue::{SpanDef, AUTH_LOGIN};
/// assert_eq!(AUTH_LOGIN.name(), "auth.login");
/// assert_eq!(AUTH_LOGIN.stop().name(), "auth.login.stop");
///
/// // An application span; the names of its phases are derived at compile time.
/// static EXPORT: SpanDef = SpanDef::new("reports.export", "reports.export.start",
///     "reports.export.stop", "reports.export.exception");
/// assert_eq!(EXPORT.exception().name(), "reports.export.exception");
/// ```
pub struct SpanDef {
    name: &'static str,
    start: Event,
    stop: Event,
    exception: Event,
}

impl SpanDef {
    const fn library(
        name: &'static str,
        category: Category,
        start: &'static str,
        stop: &'static str,
        exception: &'static str,
    ) -> SpanDef {
        assert!(
            phase_names_match(name, start, stop, exception),
            "span phase names must be the span name plus .start/.stop/.exception"
        );
        SpanDef {
            name,
            start: Event::library(start, category, EventKind::SpanStart, Severity::Info),
            stop: Event::library(stop, category, EventKind::SpanStop, Severity::Info),
            exception: Event::library(
                exception,
                category,
                EventKind::SpanException,
                Severity::Error,
            ),
        }
    }

    /// Declares an application span in a `static`. Rust's `const fn` cannot concatenate
    /// strings, so the three phase names are spelled out; they are checked at compile time
    /// to be `name` plus `.start`, `.stop` and `.exception`.
    ///
    /// ```compile_fail
    /// use authtel_core::catalogue::SpanDef;
    /// static WRONG: SpanDef = SpanDef::new("reports.export", "reports.export.begin",
    ///     "reports.export.stop", "reports.export.exception");
    /// ```
    pub const fn new(
        name: &'static str,
        start: &'static str,
        stop: &'static str,
        exception: &'static str,
    ) -> SpanDef {
        assert!(
            phase_names_match(name, start, stop, exception),
            "span phase names must be the span name plus .start/.stop/.exception"
        );
        SpanDef {
            name,
            start: Event::custom(start, EventKind::SpanStart, Severity::Info),
            stop: Event::custom(stop, EventKind::SpanStop, Severity::Info),
            exception: Event::custom(exception, EventKind::SpanException, Severity::Error),
        }
    }

    /// The span's dotted name without phase, e.g. `"auth.login"`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The span's category.
    pub const fn category(&self) -> Category {
        self.start.category
    }

    /// The `…start` event.
    pub const fn start(&self) -> &Event {
        &self.start
    }

    /// The `…stop` event.
    pub const fn stop(&self) -> &Event {
        &self.stop
    }

    /// The `…exception` event.
    pub const fn exception(&self) -> &Event {
        &self.exception
    }

    /// The three phase events, in order start, stop, exception.
    pub const fn events(&self) -> [&Event; 3] {
        [&self.start, &self.stop, &self.exception]
    }
}

impl fmt::Debug for SpanDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanDef").field("name", &self.name).finish()
    }
}

/// Why an event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty name or empty segment (`"auth..stop"`).
    #[error(
        "event name {name:?} has an empty segment; use lowercase segments joined by single dots, e.g. \"billing.invoice.viewed\""
    )]
    EmptySegment {
        /// The refused name.
        name: String,
    },
    /// A character outside `[a-z0-9_.]`, or a segment starting with a digit or underscore.
    #[error(
        "event name {name:?} has an invalid character at byte {position}; segments are lowercase ASCII letters, digits and underscores, starting with a letter"
    )]
    InvalidCharacter {
        /// The refused name.
        name: String,
        /// Byte offset of the first offending character.
        position: usize,
    },
    /// Fewer than 2 or more than 6 segments.
    #[error(
        "event name {name:?} has {segments} segments; use 2 to 6, e.g. \"billing.invoice.viewed\""
    )]
    SegmentCount {
        /// The refused name.
        name: String,
        /// How many segments it had.
        segments: usize,
    },
    /// Longer than [`MAX_NAME_LEN`].
    #[error("event name {name:?} is longer than {MAX_NAME_LEN} bytes; shorten it")]
    TooLong {
        /// The refused name.
        name: String,
    },
    /// The first segment is one of the library's category prefixes.
    #[error(
        "event name {name:?} starts with {prefix:?}, which is reserved for authtel's own catalogue; use your application's own prefix, e.g. \"myapp.{prefix}...\""
    )]
    Reserved {
        /// The refused name.
        name: String,
        /// The reserved prefix it used.
        prefix: &'static str,
    },
}

/// Longest accepted event name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks the name grammar shared by library and application events: 2 to 6 lowercase
/// segments `[a-z][a-z0-9_]*` joined by dots, at most [`MAX_NAME_LEN`] bytes.
///
/// ```
/// use authtel_core::catalogue::validate_name;
/// assert!(validate_name("auth.login.stop").is_ok());
/// assert!(validate_name("auth").is_err());
/// assert!(validate_name("Auth.Login").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), NameError> {
    match check_name(name) {
        None => Ok(()),
        Some(fault) => Err(fault.into_error(name)),
    }
}

/// [`validate_name`], plus: the first segment must not be a library prefix
/// (`auth`, `mfa`, `security`, … and `authtel`).
///
/// ```
/// use authtel_core::catalogue::validate_application_name;
/// assert!(validate_application_name("billing.invoice.viewed").is_ok());
/// assert!(validate_application_name("security.custom").is_err());
/// ```
pub fn validate_application_name(name: &str) -> Result<(), NameError> {
    match check_application_name(name) {
        None => Ok(()),
        Some(fault) => Err(fault.into_error(name)),
    }
}

/// A name fault without the name, so that checks can run in `const` context
/// (a `String` cannot be dropped there).
#[derive(Clone, Copy)]
enum Fault {
    Empty,
    Char(usize),
    Count(usize),
    Long,
    Reserved(&'static str),
}

impl Fault {
    fn into_error(self, name: &str) -> NameError {
        let name = name.to_owned();
        match self {
            Fault::Empty => NameError::EmptySegment { name },
            Fault::Char(position) => NameError::InvalidCharacter { name, position },
            Fault::Count(segments) => NameError::SegmentCount { name, segments },
            Fault::Long => NameError::TooLong { name },
            Fault::Reserved(prefix) => NameError::Reserved { name, prefix },
        }
    }
}

const fn check_name(name: &str) -> Option<Fault> {
    let bytes = name.as_bytes();
    if bytes.len() > MAX_NAME_LEN {
        return Some(Fault::Long);
    }
    let mut segments = 1;
    let mut at_segment_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'.' {
            if at_segment_start {
                return Some(Fault::Empty);
            }
            segments += 1;
            at_segment_start = true;
        } else {
            let ok = if at_segment_start {
                b.is_ascii_lowercase()
            } else {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
            };
            if !ok {
                return Some(Fault::Char(i));
            }
            at_segment_start = false;
        }
        i += 1;
    }
    if at_segment_start {
        return Some(Fault::Empty);
    }
    if segments < 2 || segments > 6 {
        return Some(Fault::Count(segments));
    }
    None
}

const fn check_application_name(name: &str) -> Option<Fault> {
    if let Some(fault) = check_name(name) {
        return Some(fault);
    }
    let mut k = 0;
    while k < RESERVED_PREFIXES.len() {
        if first_segment_is(name, RESERVED_PREFIXES[k]) {
            return Some(Fault::Reserved(RESERVED_PREFIXES[k]));
        }
        k += 1;
    }
    None
}

/// First segments reserved for the library.
pub const RESERVED_PREFIXES: [&str; 17] = [
    "auth",
    "token",
    "email",
    "confirmation",
    "session",
    "oauth",
    "mfa",
    "api_token",
    "jwt",
    "account",
    "hook",
    "security",
    "reset",
    "authorization",
    "pipeline",
    "authtel",
    "custom",
];

const fn first_segment_is(name: &str, prefix: &str) -> bool {
    let n = name.as_bytes();
    let p = prefix.as_bytes();
    if n.len() <= p.len() || n[p.len()] != b'.' {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if n[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn phase_names_match(name: &str, start: &str, stop: &str, exception: &str) -> bool {
    is_name_with_suffix(start, name, "start")
        && is_name_with_suffix(stop, name, "stop")
        && is_name_with_suffix(exception, name, "exception")
}

const fn is_name_with_suffix(full: &str, name: &str, suffix: &str) -> bool {
    let f = full.as_bytes();
    let n = name.as_bytes();
    let s = suffix.as_bytes();
    if f.len() != n.len() + 1 + s.len() || f[n.len()] != b'.' {
        return false;
    }
    let mut i = 0;
    while i < n.len() {
        if f[i] != n[i] {
            return false;
        }
        i += 1;
    }
    let mut j = 0;
    while j < s.len() {
        if f[n.len() + 1 + j] != s[j] {
            return false;
        }
        j += 1;
    }
    true
}

macro_rules! spans {
    ($( $(#[$doc:meta])* $ident:ident = $cat:ident, $name:literal; )*) => {
        $(
            $(#[$doc])*
            pub static $ident: SpanDef = SpanDef::library(
                $name,
                Category::$cat,
                concat!($name, ".start"),
                concat!($name, ".stop"),
                concat!($name, ".exception"),
            );
        )*
        /// Every span of the library catalogue.
        pub static ALL_SPANS: &[&SpanDef] = &[$(&$ident),*];
    };
}

macro_rules! signals {
    ($( $(#[$doc:meta])* $ident:ident = $cat:ident, $sev:ident, $name:literal; )*) => {
        $(
            $(#[$doc])*
            pub static $ident: Event =
                Event::library($name, Category::$cat, EventKind::Signal, Severity::$sev);
        )*
        /// Every one-shot signal of the library catalogue.
        pub static ALL_SIGNALS: &[&Event] = &[$(&$ident),*];
    };
}

spans! {
    /// A login attempt (password or other first factor).
    AUTH_LOGIN = Auth, "auth.login";
    /// A logout.
    AUTH_LOGOUT = Auth, "auth.logout";
    /// A user registration.
    AUTH_REGISTER = Auth, "auth.register";
    /// Generation of a one-time token (confirmation, reset, magic link).
    TOKEN_GENERATE = Token, "token.generate";
    /// Verification of a one-time token.
    TOKEN_VERIFY = Token, "token.verify";
    /// Delivery of an email.
    EMAIL_DELIVER = Email, "email.deliver";
    /// Verification of a confirmation.
    CONFIRMATION_VERIFY = Confirmation, "confirmation.verify";
    /// Creation of a session.
    SESSION_CREATE = Session, "session.create";
    /// Deletion of a session.
    SESSION_DELETE = Session, "session.delete";
    /// Confirmation of sudo mode (re-authentication for a sensitive action).
    SESSION_SUDO = Session, "session.sudo";
    /// Generation of an OAuth authorize URL.
    OAUTH_AUTHORIZE = OAuth, "oauth.authorize";
    /// Processing of an OAuth callback.
    OAUTH_CALLBACK = OAuth, "oauth.callback";
    /// TOTP enrollment.
    MFA_ENROLL = Mfa, "mfa.enroll";
    /// MFA verification (TOTP or backup code).
    MFA_VERIFY = Mfa, "mfa.verify";
    /// Disabling MFA.
    MFA_DISABLE = Mfa, "mfa.disable";
    /// Regeneration of backup codes.
    MFA_BACKUP_CODES_REGENERATE = Mfa, "mfa.backup_codes.regenerate";
    /// Creation of an API token.
    API_TOKEN_CREATE = ApiToken, "api_token.create";
    /// Use (authentication) of an API token.
    API_TOKEN_USE = ApiToken, "api_token.use";
    /// Revocation of an API token.
    API_TOKEN_REVOKE = ApiToken, "api_token.revoke";
    /// Issuing a JWT.
    JWT_ISSUE = Jwt, "jwt.issue";
    /// Verifying a JWT.
    JWT_VERIFY = Jwt, "jwt.verify";
    /// Refreshing a JWT.
    JWT_REFRESH = Jwt, "jwt.refresh";
    /// Changing an account's email.
    ACCOUNT_EMAIL_CHANGE = Account, "account.email_change";
    /// Changing an account's password.
    ACCOUNT_PASSWORD_CHANGE = Account, "account.password_change";
    /// Deleting an account.
    ACCOUNT_DELETE = Account, "account.delete";
    /// Running an application hook.
    HOOK_EXECUTE = Hook, "hook.execute";
}

signals! {
    /// All sessions of a user were revoked.
    SESSION_REVOKE_ALL = Session, Warn, "session.revoke_all";
    /// An OAuth provider was linked to an account.
    OAUTH_LINK = OAuth, Info, "oauth.link";
    /// An OAuth provider was unlinked from an account.
    OAUTH_UNLINK = OAuth, Info, "oauth.unlink";
    /// An OAuth token was refreshed.
    OAUTH_REFRESH = OAuth, Info, "oauth.refresh";
    /// A new user registered through OAuth.
    OAUTH_REGISTER = OAuth, Info, "oauth.register";
    /// An existing user logged in through OAuth.
    OAUTH_LOGIN = OAuth, Info, "oauth.login";
    /// MFA lockout after too many failed verifications.
    MFA_LOCKOUT = Mfa, Warn, "mfa.lockout";
    /// A pending MFA session expired before verification.
    MFA_PENDING_EXPIRED = Mfa, Warn, "mfa.pending_expired";
    /// A device was trusted (trust cookie granted).
    MFA_TRUST_GRANTED = Mfa, Info, "mfa.trust.granted";
    /// All trusted devices of a user were revoked.
    MFA_TRUST_REVOKED_ALL = Mfa, Info, "mfa.trust.revoked_all";
    /// A rate limit was exceeded.
    SECURITY_RATE_LIMITED = Security, Warn, "security.rate_limited";
    /// An account was locked after failed attempts.
    SECURITY_LOCKOUT = Security, Warn, "security.lockout";
    /// A login from a new IP or device.
    SECURITY_SUSPICIOUS_LOGIN = Security, Warn, "security.suspicious_login";
    /// Invalid credentials were submitted.
    SECURITY_INVALID_CREDENTIALS = Security, Warn, "security.invalid_credentials";
    /// A confirmation email was dispatched.
    CONFIRMATION_SENT = Confirmation, Info, "confirmation.sent";
    /// A password reset was requested.
    RESET_REQUESTED = Reset, Info, "reset.requested";
    /// A password reset was completed.
    RESET_COMPLETED = Reset, Info, "reset.completed";
    /// A token had expired when it was verified.
    TOKEN_EXPIRED = Token, Info, "token.expired";
    /// An authorization check allowed the operation.
    AUTHORIZATION_ALLOWED = Authorization, Info, "authorization.allowed";
    /// An authorization check denied the operation.
    AUTHORIZATION_DENIED = Authorization, Warn, "authorization.denied";
    /// An authorization check failed with an error.
    AUTHORIZATION_ERROR = Authorization, Error, "authorization.error";
    /// A handler panicked; it stays attached unless its failure policy detaches it.
    PIPELINE_HANDLER_FAILURE = Pipeline, Error, "pipeline.handler.failure";
    /// A handler was detached by its failure policy after consecutive failures.
    PIPELINE_HANDLER_DETACHED = Pipeline, Error, "pipeline.handler.detached";
    /// A forwarder gave up on a batch after its last attempt (dead-lettered).
    PIPELINE_FORWARD_ERROR = Pipeline, Error, "pipeline.forward.error";
    /// Records were dropped by a configured drop policy (counted, never silent).
    PIPELINE_RECORDS_DROPPED = Pipeline, Warn, "pipeline.records.dropped";
    /// Repeated failed logins against one account, from one address, or both (raised by
    /// `authtel-detect`).
    SECURITY_BRUTE_FORCE = Security, Warn, "security.brute_force";
    /// One address or network failing logins against many distinct accounts.
    SECURITY_PASSWORD_SPRAYING = Security, Warn, "security.password_spraying";
    /// A login failure ratio, or a burst of unknown-account failures, far above the baseline.
    SECURITY_CREDENTIAL_STUFFING = Security, Warn, "security.credential_stuffing";
    /// Many MFA push challenges for one user, or denials followed by an approval.
    SECURITY_MFA_FATIGUE = Security, Warn, "security.mfa_fatigue";
    /// Many failed one-time-code (TOTP, backup code) verifications for one user.
    SECURITY_MFA_GUESSING = Security, Warn, "security.mfa_guessing";
    /// Two successful logins of one user farther apart than anyone could travel in between.
    SECURITY_IMPOSSIBLE_TRAVEL = Security, Warn, "security.impossible_travel";
    /// A revoked or rotated refresh token (or its session) was presented again.
    SECURITY_REFRESH_TOKEN_REUSE = Security, Warn, "security.refresh_token_reuse";
}

/// Every library event: each span's three phases, then every signal.
///
/// ```
/// let all = authtel_core::catalogue::all();
/// assert!(all.iter().any(|e| e.name() == "auth.login.stop"));
/// assert!(all.iter().any(|e| e.name() == "security.lockout"));
/// ```
pub fn all() -> &'static [&'static Event] {
    static ALL: std::sync::OnceLock<Vec<&'static Event>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<&'static Event> = Vec::new();
        for span in ALL_SPANS {
            v.extend(span.events());
        }
        v.extend(ALL_SIGNALS.iter().copied());
        v
    })
}

/// Looks an event up by its dotted name (library catalogue and [`Event::declare`]d names
/// are not mixed: this searches the library catalogue).
///
/// ```
/// use authtel_core::catalogue::{by_name, SECURITY_LOCKOUT};
/// assert_eq!(by_name("security.lockout"), Some(&SECURITY_LOCKOUT));
/// assert_eq!(by_name("nope.nope"), None);
/// ```
pub fn by_name(name: &str) -> Option<&'static Event> {
    all().iter().copied().find(|e| e.name == name)
}

fn category_events(categories: &[Category]) -> Vec<&'static Event> {
    all()
        .iter()
        .copied()
        .filter(|e| categories.contains(&e.category))
        .collect()
}

macro_rules! category_lists {
    ($( $(#[$doc:meta])* $fn_name:ident => [$($cat:ident),+]; )*) => {
        $(
            $(#[$doc])*
            pub fn $fn_name() -> &'static [&'static Event] {
                static LIST: std::sync::OnceLock<Vec<&'static Event>> = std::sync::OnceLock::new();
                LIST.get_or_init(|| category_events(&[$(Category::$cat),+]))
            }
        )*
    };
}

category_lists! {
    /// Login, logout and registration events.
    ///
    /// ```
    /// assert!(authtel_core::catalogue::auth_events().iter().all(|e| e.name().starts_with("auth.")));
    /// ```
    auth_events => [Auth];
    /// One-time token events (generate, verify, expired).
    token_events => [Token];
    /// Email delivery events.
    email_events => [Email];
    /// Confirmation events.
    confirmation_events => [Confirmation];
    /// Session lifecycle events and the revoke-all signal.
    session_events => [Session];
    /// OAuth spans and signals.
    ///
    /// ```
    /// assert_eq!(authtel_core::catalogue::oauth_events().len(), 2 * 3 + 5);
    /// ```
    oauth_events => [OAuth];
    /// MFA spans and signals.
    mfa_events => [Mfa];
    /// API token events.
    api_token_events => [ApiToken];
    /// JWT events.
    jwt_events => [Jwt];
    /// Account lifecycle events (email change, password change, deletion).
    account_events => [Account];
    /// Hook execution events.
    hook_events => [Hook];
    /// Security signals.
    security_events => [Security];
    /// Password reset signals.
    reset_events => [Reset];
    /// Authorization decisions.
    authorization_events => [Authorization];
    /// authtel's own operational signals.
    pipeline_events => [Pipeline];
}

/// The events of one category.
///
/// ```
/// use authtel_core::catalogue::{events_in, Category};
/// assert_eq!(events_in(Category::Jwt).len(), 9);
/// ```
pub fn events_in(category: Category) -> Vec<&'static Event> {
    category_events(&[category])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_name_is_unique_and_valid() {
        let mut seen = HashSet::new();
        for e in all() {
            assert!(seen.insert(e.name()), "duplicate {}", e.name());
            assert!(validate_name(e.name()).is_ok(), "{}", e.name());
            assert_eq!(
                e.segments().next(),
                Some(e.category().as_str()),
                "{} is not under its category prefix",
                e.name()
            );
            if let Some(suffix) = e.kind().phase_suffix() {
                assert_eq!(e.segments().next_back(), Some(suffix));
            }
        }
    }

    #[test]
    fn catalogue_has_the_documented_size() {
        assert_eq!(ALL_SPANS.len(), 26);
        assert_eq!(ALL_SIGNALS.len(), 32);
        assert_eq!(all().len(), 26 * 3 + 32);
    }

    #[test]
    fn names_are_stable() {
        // A change here breaks every stored audit row and dashboard: names are API.
        let expected = [
            "auth.login.start",
            "mfa.backup_codes.regenerate.exception",
            "api_token.use.stop",
            "account.password_change.stop",
            "session.revoke_all",
            "mfa.trust.revoked_all",
            "security.invalid_credentials",
            "authorization.denied",
            "pipeline.handler.failure",
            "pipeline.forward.error",
        ];
        for name in expected {
            assert!(by_name(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn category_lists_partition_the_catalogue() {
        let lists = [
            auth_events(),
            token_events(),
            email_events(),
            confirmation_events(),
            session_events(),
            oauth_events(),
            mfa_events(),
            api_token_events(),
            jwt_events(),
            account_events(),
            hook_events(),
            security_events(),
            reset_events(),
            authorization_events(),
            pipeline_events(),
        ];
        let total: usize = lists.iter().map(|l| l.len()).sum();
        assert_eq!(total, all().len());
        assert_eq!(mfa_events().len(), 4 * 3 + 4);
    }

    #[test]
    fn application_names_are_checked() {
        assert!(matches!(
            validate_application_name("auth.custom"),
            Err(NameError::Reserved { prefix: "auth", .. })
        ));
        assert!(validate_application_name("authx.custom").is_ok());
        assert!(matches!(
            validate_name("a.b.c.d.e.f.g"),
            Err(NameError::SegmentCount { segments: 7, .. })
        ));
        assert!(matches!(
            validate_name("a.1b"),
            Err(NameError::InvalidCharacter { position: 2, .. })
        ));
        assert!(matches!(
            validate_name("a..b"),
            Err(NameError::EmptySegment { .. })
        ));
        assert!(matches!(
            validate_name("a.b."),
            Err(NameError::EmptySegment { .. })
        ));
        let long = format!("a.{}", "b".repeat(200));
        assert!(matches!(
            validate_name(&long),
            Err(NameError::TooLong { .. })
        ));
        let err = Event::declare("Billing.x").unwrap_err();
        assert!(err.to_string().contains("Billing.x"), "{err}");
    }

    #[test]
    fn ids_are_dense_and_stable() {
        let a = AUTH_LOGIN.stop().id();
        assert_ne!(a, 0);
        assert_eq!(AUTH_LOGIN.stop().id(), a);
        assert_ne!(AUTH_LOGIN.start().id(), a);
    }
}
