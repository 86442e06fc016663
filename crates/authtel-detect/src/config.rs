//! Thresholds, windows and modes: in code, or from `AUTHTEL_DETECT_*` environment variables,
//! validated into typed errors.
//!
//! Every default names where it comes from (see `docs/detect.md`):
//! - brute force per address and account: Auth0's brute-force protection, 10 failures;
//! - per account: Keycloak's brute-force detector, a wait that grows by 1 minute every 30
//!   failures up to 15 minutes, forgotten after 12 hours without failures, and its quick
//!   login check (two failures within 1 s: wait 1 minute);
//! - per address: Rauthy's ladder, 7/10/15/20/25 failures block for 1 min/10 min/15 min/1 h/1 day.
//!
//! ```
//! use authtel_detect::{DetectConfig, Mode};
//! let config = DetectConfig::from_vars([
//!     ("AUTHTEL_DETECT_MODE", "monitor"),
//!     ("AUTHTEL_DETECT_BRUTE_FORCE_IP_IDENTIFIER_THRESHOLD", "5"),
//!     ("AUTHTEL_DETECT_SPRAYING_WINDOW", "30m"),
//! ]).unwrap();
//! assert_eq!(config.brute_force.mode, Mode::Monitor);
//! assert_eq!(config.brute_force.ip_identifier_threshold, 5);
//! assert_eq!(config.spraying.window, std::time::Duration::from_secs(1800));
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a detector does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Raise signals and let verdicts slow down or block.
    #[default]
    Enforce,
    /// Raise the same signals; verdicts always allow.
    Monitor,
    /// Not attached.
    Off,
}

impl Mode {
    /// `enforce`, `monitor` or `off`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(Mode::Enforce),
            "monitor" => Ok(Mode::Monitor),
            "off" => Ok(Mode::Off),
            _ => Err(()),
        }
    }
}

/// One step of a ladder: from `failures` failures on, block for `block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    /// Failures in the window that reach this step.
    pub failures: u32,
    /// How long the key is blocked once it reaches it.
    pub block: Duration,
}

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Brute force: failed logins per address and account, per address, per account.
#[derive(Clone, Debug, PartialEq)]
pub struct BruteForceConfig {
    /// Enforce, monitor or off.
    pub mode: Mode,
    /// Failures of one account from one address that block the pair (Auth0: 10).
    pub ip_identifier_threshold: u32,
    /// The window those failures are counted over.
    pub ip_identifier_window: Duration,
    /// How long the pair is blocked; each further failure starts it again.
    pub ip_identifier_block: Duration,
    /// The window an address's failures are counted over.
    pub ip_window: Duration,
    /// A success from the address clears its count (on by default, as shared addresses —
    /// office NATs, carrier-grade NAT — see failures of many people between successes).
    /// Off: a success only takes one failure back.
    pub ip_reset_on_success: bool,
    /// The per-address ladder (Rauthy: 7 → 1 min, 10 → 10 min, 15 → 15 min, 20 → 1 h, 25 → 1 day).
    pub ip_ladder: Vec<Rung>,
    /// Failures from one address that raise the signal (default 10, the ladder's second
    /// step): one person who mistypes the account name and then forgets the password reaches
    /// the first step (7) without any attack, and gets a one-minute block but no alert.
    pub ip_signal_threshold: u32,
    /// Every this many failures of one account add one wait increment (Keycloak: 30).
    pub identifier_failure_factor: u32,
    /// The wait per `identifier_failure_factor` failures (Keycloak: 1 minute).
    pub identifier_wait_increment: Duration,
    /// The longest wait (Keycloak: 15 minutes).
    pub identifier_max_wait: Duration,
    /// Failures are forgotten after this long without one (Keycloak: 12 hours).
    pub identifier_failure_reset: Duration,
    /// Two failures of one account closer than this… (Keycloak: 1000 ms; zero turns it off)
    pub quick_login_check: Duration,
    /// …make it wait at least this long (Keycloak: 1 minute).
    pub min_quick_login_wait: Duration,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        BruteForceConfig {
            mode: Mode::Enforce,
            ip_identifier_threshold: 10,
            ip_identifier_window: DAY,
            ip_identifier_block: HOUR,
            ip_window: DAY,
            ip_reset_on_success: true,
            ip_ladder: vec![
                Rung {
                    failures: 7,
                    block: MIN,
                },
                Rung {
                    failures: 10,
                    block: 10 * MIN,
                },
                Rung {
                    failures: 15,
                    block: 15 * MIN,
                },
                Rung {
                    failures: 20,
                    block: HOUR,
                },
                Rung {
                    failures: 25,
                    block: DAY,
                },
            ],
            ip_signal_threshold: 10,
            identifier_failure_factor: 30,
            identifier_wait_increment: MIN,
            identifier_max_wait: 15 * MIN,
            identifier_failure_reset: 12 * HOUR,
            quick_login_check: Duration::from_millis(1000),
            min_quick_login_wait: MIN,
        }
    }
}

/// Password spraying: distinct accounts failing from one address or network.
#[derive(Clone, Debug, PartialEq)]
pub struct SprayingConfig {
    /// Enforce, monitor or off.
    pub mode: Mode,
    /// Distinct accounts failing from one address in the window.
    pub ip_threshold: u32,
    /// Distinct accounts failing from one /24 (IPv4) or /48 (IPv6) in the window.
    pub prefix_threshold: u32,
    /// The window, counted from the key's first failure.
    pub window: Duration,
    /// How long the address or network is blocked.
    pub block: Duration,
}

impl Default for SprayingConfig {
    fn default() -> Self {
        SprayingConfig {
            mode: Mode::Enforce,
            ip_threshold: 20,
            prefix_threshold: 40,
            window: HOUR,
            block: HOUR,
        }
    }
}

/// Credential stuffing: the failure ratio of all logins, and unknown-account failures.
#[derive(Clone, Debug, PartialEq)]
pub struct StuffingConfig {
    /// Enforce (signals only: there is no single key to block) or monitor or off.
    pub mode: Mode,
    /// Logins are counted in windows of this length.
    pub window: Duration,
    /// A window needs this many login attempts before its ratio means anything.
    pub min_attempts: u32,
    /// The failure ratio must be at least this (percent)…
    pub min_failure_pct: u32,
    /// …and this many times the baseline (the running ratio of quiet windows).
    pub baseline_factor: u32,
    /// The baseline before any window has been seen (percent).
    pub initial_baseline_pct: u32,
    /// Failures must come from at least this many distinct accounts…
    pub min_distinct_identifiers: u32,
    /// …and this many distinct addresses.
    pub min_distinct_ips: u32,
    /// Unknown-account failures in one window that raise a signal on their own.
    pub unknown_user_threshold: u32,
}

impl Default for StuffingConfig {
    fn default() -> Self {
        StuffingConfig {
            mode: Mode::Enforce,
            window: 10 * MIN,
            min_attempts: 200,
            min_failure_pct: 50,
            baseline_factor: 3,
            initial_baseline_pct: 10,
            min_distinct_identifiers: 100,
            min_distinct_ips: 20,
            unknown_user_threshold: 100,
        }
    }
}

/// MFA fatigue (push bombing, deny then accept) and one-time-code guessing.
#[derive(Clone, Debug, PartialEq)]
pub struct MfaConfig {
    /// Enforce (signals only) or monitor or off.
    pub mode: Mode,
    /// `method` values that are push challenges.
    pub push_methods: Vec<String>,
    /// Push challenges to one user in the window.
    pub push_threshold: u32,
    /// The push window.
    pub push_window: Duration,
    /// Denials followed by an approval within the window.
    pub denials_before_accept: u32,
    /// The deny-then-accept window.
    pub deny_window: Duration,
    /// Failed code verifications (TOTP, backup code) of one user in the window.
    pub code_threshold: u32,
    /// The code window.
    pub code_window: Duration,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            mode: Mode::Enforce,
            push_methods: vec!["push".to_owned()],
            push_threshold: 5,
            push_window: 10 * MIN,
            denials_before_accept: 2,
            deny_window: 10 * MIN,
            code_threshold: 5,
            code_window: 15 * MIN,
        }
    }
}

/// A login from a new network and device (`security.suspicious_login`).
#[derive(Clone, Debug, PartialEq)]
pub struct NewLocationConfig {
    /// Enforce (signals only) or monitor or off.
    pub mode: Mode,
    /// Successful logins seen before a new network or device means anything.
    pub min_history: u32,
    /// Only a new network *and* a new device at once raises a signal.
    pub require_both: bool,
    /// One signal per account per this window.
    pub window: Duration,
}

impl Default for NewLocationConfig {
    fn default() -> Self {
        NewLocationConfig {
            mode: Mode::Enforce,
            min_history: 3,
            require_both: true,
            window: DAY,
        }
    }
}

/// Impossible travel between two successful logins of one account.
#[derive(Clone, Debug, PartialEq)]
pub struct TravelConfig {
    /// Enforce (signals only) or monitor or off.
    pub mode: Mode,
    /// Faster than this between two logins is impossible (an airliner cruises at ~900).
    pub max_speed_kmh: u32,
    /// Closer than this (after the lookups' accuracy) is never reported.
    pub min_distance_km: u32,
    /// One signal per account per this window.
    pub window: Duration,
}

impl Default for TravelConfig {
    fn default() -> Self {
        TravelConfig {
            mode: Mode::Enforce,
            max_speed_kmh: 1000,
            min_distance_km: 500,
            window: DAY,
        }
    }
}

/// Refresh-token reuse.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshReuseConfig {
    /// Enforce (signals only) or monitor or off.
    pub mode: Mode,
    /// How long a revoked session is remembered.
    pub remember: Duration,
    /// One signal per session per this window.
    pub window: Duration,
}

impl Default for RefreshReuseConfig {
    fn default() -> Self {
        RefreshReuseConfig {
            mode: Mode::Enforce,
            remember: 30 * DAY,
            window: HOUR,
        }
    }
}

/// The detectors' whole configuration. `Default` is what `docs/detect.md` documents.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectConfig {
    /// The bound on all detector state, in bytes (default 64 MiB).
    pub memory_bytes: usize,
    /// Brute force.
    pub brute_force: BruteForceConfig,
    /// Password spraying.
    pub spraying: SprayingConfig,
    /// Credential stuffing.
    pub stuffing: StuffingConfig,
    /// MFA fatigue and code guessing.
    pub mfa: MfaConfig,
    /// New network and device.
    pub new_location: NewLocationConfig,
    /// Impossible travel.
    pub travel: TravelConfig,
    /// Refresh-token reuse.
    pub refresh_reuse: RefreshReuseConfig,
}

/// The default memory bound: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// The most distinct accounts a spraying key remembers (its set is this long at most).
pub const MAX_SPRAYING_THRESHOLD: u32 = 1024;

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            brute_force: BruteForceConfig::default(),
            spraying: SprayingConfig::default(),
            stuffing: StuffingConfig::default(),
            mfa: MfaConfig::default(),
            new_location: NewLocationConfig::default(),
            travel: TravelConfig::default(),
            refresh_reuse: RefreshReuseConfig::default(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable under `AUTHTEL_DETECT_` that no setting has (a typo would otherwise be ignored).
    #[error(
        "{var} is not an authtel-detect setting; see docs/detect.md for the list (AUTHTEL_DETECT_MODE, AUTHTEL_DETECT_BRUTE_FORCE_IP_IDENTIFIER_THRESHOLD, …)"
    )]
    UnknownVariable {
        /// The variable's name.
        var: String,
    },
    /// A value that does not parse as its setting's type.
    #[error("{var}={value:?} is not {expected}")]
    InvalidValue {
        /// The variable's name.
        var: String,
        /// The value (cut to 64 characters).
        value: String,
        /// What was expected, e.g. `a whole number` or `a duration such as 90s, 15m, 1h, 1d`.
        expected: &'static str,
    },
    /// A threshold or window of zero, which would fire on everything or never reset.
    #[error("{field} is zero; give it a positive value, or set the detector's mode to off")]
    Zero {
        /// The setting, e.g. `brute_force.ip_identifier_threshold`.
        field: &'static str,
    },
    /// A value above its bound.
    #[error("{field} is {value}, above its limit of {max}")]
    TooLarge {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted.
        max: u64,
    },
    /// The per-address ladder is empty or its failures do not increase.
    #[error(
        "brute_force.ip_ladder step {step} does not have more failures than the one before it; list steps as increasing failures:duration pairs, e.g. 7:1m,10:10m"
    )]
    LadderNotIncreasing {
        /// The 0-based step.
        step: usize,
    },
    /// The memory bound cannot hold the enabled detectors' minimal tables.
    #[error(
        "memory_bytes is {bytes}, below the {min} bytes the enabled detectors need at the least; raise it (default 64 MiB) or turn detectors off"
    )]
    MemoryTooSmall {
        /// The bound given.
        bytes: usize,
        /// The smallest accepted for this configuration.
        min: usize,
    },
}

impl DetectConfig {
    /// Every detector in the given mode (a convenience for tests and dry runs).
    ///
    /// ```
    /// use authtel_detect::{DetectConfig, Mode};
    /// let c = DetectConfig::default().with_mode(Mode::Monitor);
    /// assert_eq!(c.travel.mode, Mode::Monitor);
    /// ```
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> DetectConfig {
        self.brute_force.mode = mode;
        self.spraying.mode = mode;
        self.stuffing.mode = mode;
        self.mfa.mode = mode;
        self.new_location.mode = mode;
        self.travel.mode = mode;
        self.refresh_reuse.mode = mode;
        self
    }
}
