//! The service's settings: password hashing cost, lifetimes, lockout, detectors.

use std::time::Duration;

use authtel::detect::DetectConfig;

/// Argon2id cost parameters (RFC 9106 names).
///
/// [`HashCost::production`] is the OWASP recommendation (19 MiB, 2 passes, 1 lane).
/// [`HashCost::for_tests`] is the smallest cost argon2 accepts (8 KiB, 1 pass): a hash then
/// takes microseconds instead of tens of milliseconds, so the HTTP tests stay fast on a
/// two-core machine. Never deploy it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Passes (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's Argon2id minimum: m = 19 MiB, t = 2, p = 1.
    pub const fn production() -> HashCost {
        HashCost {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }

    /// The cheapest valid cost (m = 8 KiB, t = 1, p = 1), for tests only.
    pub const fn for_tests() -> HashCost {
        HashCost {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }
}

/// Switches that break the service on purpose, so a test can prove the completeness kit
/// notices (the kit's mutation check). All off by default; nothing in the service reads
/// the environment for them — only a test can turn them on, through [`Config`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Logout ends the session without emitting its `auth.logout` span.
    pub skip_logout_event: bool,
    /// The request-context layer is left out of the router: no event or row of a request
    /// gets the client's address, user agent or request id.
    pub drop_request_context: bool,
}

/// Everything the service needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the application tables and the audit trail live (one SQLite database, so an
    /// audit row commits in the same transaction as the change it describes).
    pub database_url: String,
    /// Argon2id cost for new password hashes.
    pub hash_cost: HashCost,
    /// How long a session (and its bearer token) lives.
    pub session_ttl: Duration,
    /// How long a refresh token lives.
    pub refresh_ttl: Duration,
    /// How long a password-reset token lives.
    pub reset_ttl: Duration,
    /// How long the MFA step of a login may take.
    pub mfa_ttl: Duration,
    /// Wrong passwords in a row before the account locks.
    pub lockout_threshold: u32,
    /// How long a locked account stays locked.
    pub lockout_duration: Duration,
    /// Wrong codes on one MFA challenge before it is burnt.
    pub mfa_max_failures: u32,
    /// Return the reset token in the `/password/reset` response instead of mailing it.
    /// For local demos only: a real service mails it (see [`crate::Mailbox`]).
    pub dev_return_reset_token: bool,
    /// Networks of the reverse proxies whose `X-Forwarded-For` is believed (CIDRs such as
    /// `10.0.0.0/8`, or addresses). Empty by default: the TCP peer is the client, and a
    /// forwarded header is ignored, so a client cannot choose the address recorded for it.
    pub trusted_proxies: Vec<String>,
    /// The attack detectors' settings.
    pub detect: DetectConfig,
    /// Write the audit rows (default). Off only for the overhead benchmark's baseline, the
    /// same service with nothing of authtel attached.
    pub audit_trail: bool,
    /// Deliberate breakage for the kit's mutation check; all off by default.
    pub mutations: Mutations,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://axum-service.db".to_owned(),
            hash_cost: HashCost::production(),
            session_ttl: Duration::from_secs(8 * 3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            reset_ttl: Duration::from_secs(30 * 60),
            mfa_ttl: Duration::from_secs(5 * 60),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            mfa_max_failures: 5,
            dev_return_reset_token: false,
            trusted_proxies: Vec::new(),
            detect: DetectConfig::default(),
            audit_trail: true,
            mutations: Mutations::default(),
        }
    }
}

impl Config {
    /// Settings for tests: the given database, the cheapest password hash
    /// ([`HashCost::for_tests`]), everything else as in production.
    pub fn for_tests(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            hash_cost: HashCost::for_tests(),
            ..Config::default()
        }
    }
}
