//! Result types of the detection queries operators run on the audit trail.

use std::net::IpAddr;

use authtel_core::audit::Timestamp;

/// The actions a failed-login burst counts: failed login spans and invalid-credential
/// signals. A login that emits both is counted twice, so choose the threshold accordingly.
pub const FAILED_LOGIN_ACTIONS: [&str; 2] = ["auth.login.stop", "security.invalid_credentials"];

/// The lockout signals [`lockouts`](crate::AuditStore) returns.
pub const LOCKOUT_ACTIONS: [&str; 2] = ["security.lockout", "mfa.lockout"];

/// The action of a finished MFA disable.
pub const MFA_DISABLE_ACTION: &str = "mfa.disable.stop";

/// The action of a finished login.
pub const LOGIN_ACTION: &str = "auth.login.stop";

/// A client IP with many failed logins inside the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedLoginBurst {
    /// The client IP.
    pub client_ip: IpAddr,
    /// Failed logins from it in the window.
    pub failures: u64,
    /// The first failure in the window.
    pub first_at: Timestamp,
    /// The last failure in the window.
    pub last_at: Timestamp,
}

/// A successful login of a user from an IP never seen for that user before `since`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstSeenIp {
    /// The user (actor id).
    pub actor_id: String,
    /// The new IP.
    pub client_ip: IpAddr,
    /// When the user first logged in from it.
    pub first_seen: Timestamp,
}
