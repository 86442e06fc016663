//! The descriptors: [`Event`], [`SpanDef`], their [`Category`], kind and severity, and the
//! dense ids the registry indexes by.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::names::{
    NameError, check_application_name, check_name, phase_names_match, validate_application_name,
};

/// The group an event belongs to. It selects the logger target (`authtel::mfa`), the default
/// log level and the category list functions such as [`mfa_events`](crate::catalogue::mfa_events).
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
    pub(super) const fn library(
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
    pub(super) const fn library(
        name: &'static str,
        category: Category,
        start: &'static str,
        stop: &'static str,
        exception: &'static str,
    ) -> SpanDef {
        SpanDef::with_phases(name, Some(category), [start, stop, exception])
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
        SpanDef::with_phases(name, None, [start, stop, exception])
    }

    /// The one place a span's phases are made: the names checked against the span's, then
    /// three library events of `category` or, with `None`, three application events.
    const fn with_phases(
        name: &'static str,
        category: Option<Category>,
        [start, stop, exception]: [&'static str; 3],
    ) -> SpanDef {
        assert!(
            phase_names_match(name, start, stop, exception),
            "span phase names must be the span name plus .start/.stop/.exception"
        );
        const fn phase(
            name: &'static str,
            category: Option<Category>,
            kind: EventKind,
            severity: Severity,
        ) -> Event {
            match category {
                Some(category) => Event::library(name, category, kind, severity),
                None => Event::custom(name, kind, severity),
            }
        }
        SpanDef {
            name,
            start: phase(start, category, EventKind::SpanStart, Severity::Info),
            stop: phase(stop, category, EventKind::SpanStop, Severity::Info),
            exception: phase(
                exception,
                category,
                EventKind::SpanException,
                Severity::Error,
            ),
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
