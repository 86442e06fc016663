//! The library's own events, and the lists of them by category.

use super::event::{Category, Event, EventKind, Severity, SpanDef};

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
    all().iter().copied().find(|e| e.name() == name)
}

fn category_events(categories: &[Category]) -> Vec<&'static Event> {
    all()
        .iter()
        .copied()
        .filter(|e| categories.contains(&e.category()))
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
