//! Legitimate values that look a little like secrets, and where each sink keeps them.

use serde_json::Value as Json;

/// A legitimate value, typed as the application passes it.
#[derive(Clone, Copy, Debug)]
pub enum Legit {
    S(&'static str),
    I(i64),
    B(bool),
    F(f64),
}

impl Legit {
    /// The JSON the value must stay (value and type).
    pub fn json(self) -> Json {
        match self {
            Legit::S(s) => Json::from(s),
            Legit::I(n) => Json::from(n),
            Legit::B(b) => Json::from(b),
            Legit::F(f) => Json::from(f),
        }
    }

    /// As `authtel_core::metadata::Value`.
    pub fn value(self) -> authtel_core::metadata::Value<'static> {
        match self {
            Legit::S(s) => s.into(),
            Legit::I(n) => n.into(),
            Legit::B(b) => b.into(),
            Legit::F(f) => f.into(),
        }
    }
}

/// Standard text fields with legitimate values.
pub const FIELDS: &[(&str, &str)] = &[
    ("reason", "Basic plan quota exceeded"),
    ("reason", "password reset link expired"),
    ("reason", "invalid_password"),
    ("reason", "Bearer token missing"),
    ("reason", "MFA code expired"),
    ("reason", "account locked after 5 failed password attempts"),
    ("reason", "the refresh token was revoked"),
    ("resource", "/api/v1/users/42"),
    ("resource", "/oauth/authorize"),
    ("resource", "/api/v2/tenants/acme/keys"),
    ("method", "password"),
    ("method", "totp"),
    ("method", "webauthn"),
    ("method", "backup_code"),
    ("operation", "publish"),
    ("operation", "password.change"),
    ("provider", "github"),
    ("session_id", "sess_8fK2xQ9aB7mZ4pL1vN6cR3tYw"),
    ("session_id", "0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f"),
    ("user_id", "usr_01HZX3K9QW8E7R6T5Y4U3I2O1P"),
    // A keyed pseudonym (`authtel_core::pseudonym`) of an email.
    ("user_id", "psn_a682d7a8b1d03a542e8c00f080b32a94"),
    ("caller", "svc_billing"),
    ("rate_limit_key", "ip:203.0.113.7"),
    (
        "user_agent",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    (
        "user_agent",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    ),
    (
        "user_agent",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
];

/// Extra fields with legitimate values.
pub const EXTRAS: &[(&str, Legit)] = &[
    ("error_code", Legit::S("invalid_grant")),
    ("account", Legit::S("psn_a682d7a8b1d03a542e8c00f080b32a94")),
    ("country_code", Legit::S("DE")),
    ("token_type", Legit::S("Bearer")),
    ("hash_algorithm", Legit::S("argon2id")),
    ("password_age_days", Legit::I(42)),
    ("footprint", Legit::S("small")),
    ("otp_enabled", Legit::B(true)),
    ("otp_enabled", Legit::B(false)),
    ("key_id", Legit::S("kid_2024_09")),
    ("mfa_factor", Legit::S("totp")),
    (
        "request_id",
        Legit::S("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f"),
    ),
    ("trace_id", Legit::S("4bf92f3577b34da6a3ce929d0e0e4736")),
    ("session_ref", Legit::S("sess_q81Lw0Zr4Hn7Tc2Vb6Xm")),
    ("grant_type", Legit::S("authorization_code")),
    ("scope", Legit::S("openid profile email")),
    ("http_status_code", Legit::I(401)),
    ("status_code", Legit::I(429)),
    ("expires_in", Legit::I(3600)),
    ("password_changed", Legit::B(true)),
    ("pwned_count", Legit::I(0)),
    ("risk_score", Legit::F(0.75)),
    ("attempts", Legit::I(3)),
    ("locale", Legit::S("en-US")),
    ("tenant", Legit::S("acme")),
    ("client_id", Legit::S("web-app")),
    ("aal", Legit::S("aal2")),
    ("oauth_error", Legit::S("invalid_client")),
    (
        "error_description",
        Legit::S("The refresh token has expired"),
    ),
    ("token_revoked", Legit::B(true)),
    ("secret_rotated_at", Legit::S("2026-11-30T10:00:00Z")),
];

/// Extra fields redacted by design, and checked to be: a random opaque id under an extra
/// key is, to a free-text screen, exactly what a bearer token is (`authtel_core::policy`
/// redacts long random tokens anywhere in text). Put such ids in the typed identifier
/// fields (`session_id`, `user_id`), which do not apply the randomness rule.
pub const BY_DESIGN: &[&str] = &["session_ref"];

/// Where an `AuditEvent` keeps a standard text field, as a JSON pointer.
pub fn record_pointer(field: &str) -> String {
    match field {
        "user_id" | "caller" => "/actor/id".into(),
        "session_id" | "user_agent" | "resource" | "operation" | "reason" => format!("/{field}"),
        other => format!("/metadata/{other}"),
    }
}

/// The OTLP attribute a standard text field becomes.
pub fn otlp_attribute(field: &str) -> String {
    match field {
        "user_id" => "user.id".into(),
        "session_id" => "session.id".into(),
        "user_agent" => "user_agent.original".into(),
        other => format!("auth.{other}"),
    }
}
