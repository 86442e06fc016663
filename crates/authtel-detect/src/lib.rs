//! authtel-detect: real-time attack detectors as authtel handlers.
//!
//! Detection usually happens after the fact, in SQL over the audit trail. These detectors
//! run inline instead: each is an ordinary [`Handler`] attached to the registry, watching
//! the auth events the application already emits (`auth.login.stop`, `mfa.verify.*`,
//! `jwt.refresh.stop`, …), and raising typed `security.*` signals that every sink then
//! carries — logs, SQL, Kafka, OTLP, Prometheus and its alert rules:
//!
//! | detector | raises | counts on |
//! |---|---|---|
//! | [`BruteForce`] | `security.brute_force` | address and account (Auth0's 10), account (Keycloak's wait), address (Rauthy's ladder) |
//! | [`PasswordSpraying`] | `security.password_spraying` | distinct accounts failing per address and per /24 (/48) |
//! | [`CredentialStuffing`] | `security.credential_stuffing` | the failure ratio over all logins; unknown-account bursts |
//! | [`MfaFatigue`] | `security.mfa_fatigue`, `security.mfa_guessing` | push challenges, deny-then-accept, failed codes per user |
//! | [`NewLocation`] | `security.suspicious_login` | a new network and a new device for an account |
//! | [`ImpossibleTravel`] | `security.impossible_travel` | speed between two logins, through a [`GeoLookup`] |
//! | [`RefreshReuse`] | `security.refresh_token_reuse` | refreshes of revoked sessions, reported reuse |
//!
//! Detection also drives throttling: [`Detectors::verdict`] says, for an address and an
//! account about to try, [`Verdict::Allow`], [`Verdict::SlowDown`] or [`Verdict::Block`].
//!
//! Memory is bounded (default 64 MiB, [`DetectConfig::memory_bytes`]): every key kind lives
//! in a fixed-budget LRU table keyed by keyed SipHash digests, so attacker-chosen keys can
//! neither grow it nor flood its hashing (`docs/detect.md` explains how).
//!
//! # In libraries
//! Don't depend on this crate: emit the auth events with `authtel-core`. Set `reason`
//! to [`reasons::UNKNOWN_USER`] on a failed login for an account that does not exist, and
//! see [`reasons`] for the other values the detectors read.
//!
//! # In applications
//! Build the detectors once, attach them, ask for verdicts on the login path:
//!
//! ```
//! use authtel_core::{catalogue, metadata::Metadata, registry::Registry, telemetry};
//! use authtel_detect::{clock::ManualClock, DetectConfig, Detectors, Verdict};
//! use std::time::Duration;
//!
//! let registry = Registry::new(); // in an application: Registry::global()
//! let clock = ManualClock::new(); // in an application: leave the default system clock
//! let detectors = Detectors::builder()
//!     .with_config(DetectConfig::from_env()?)
//!     .with_clock(clock.clone())
//!     .build()?;
//! detectors.attach(&registry)?;
//! let _scope = registry.enter();
//!
//! let ip = "198.51.100.23".parse()?;
//! let mut refused = None;
//! for _ in 0..10 {
//!     clock.advance(Duration::from_secs(3));
//!     let verdict = detectors.verdict(Some(ip), Some("u_42"));
//!     if !verdict.is_allow() {
//!         refused = Some(verdict); // refuse the attempt: HTTP 429, Retry-After
//!         break;
//!     }
//!     let meta = Metadata::new().user_id("u_42").client_ip(ip).method("password");
//!     let _ = telemetry::span(&catalogue::AUTH_LOGIN, meta, || Err::<(), _>("wrong password"));
//! }
//! // Rauthy's first step: 7 failures from one address block it for a minute.
//! assert_eq!(refused, Some(Verdict::Block(Duration::from_secs(57))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Signals are emitted from inside the detector's handler, after its locks are released:
//! the registry delivers nested emits (a handler that emits) to the same registry, so the
//! signal reaches every other sink attached there.
//!
//! # Feature flags
//! None.
//!
//! # Supported Rust versions
//! 1.94 and newer.

mod budget;
mod builder;
pub mod clock;
mod config;
mod detectors;
pub mod geo;
mod keys;
mod load;
mod signal;
mod table;
mod verdict;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use authtel_core::catalogue::{
    AUTH_LOGIN, AUTH_LOGOUT, Event, JWT_REFRESH, MFA_VERIFY, SESSION_DELETE,
};
use authtel_core::registry::{AttachError, DetachError, Handler, Registry, Selection};

pub use builder::DetectorsBuilder;
pub use config::{
    BruteForceConfig, ConfigError, DEFAULT_MEMORY_BYTES, DetectConfig, MAX_SPRAYING_THRESHOLD,
    MfaConfig, Mode, NewLocationConfig, RefreshReuseConfig, Rung, SprayingConfig, StuffingConfig,
    TravelConfig,
};
pub use detectors::brute_force::BruteForce;
pub use detectors::mfa::MfaFatigue;
pub use detectors::new_location::NewLocation;
pub use detectors::refresh::RefreshReuse;
pub use detectors::spraying::PasswordSpraying;
pub use detectors::stuffing::CredentialStuffing;
pub use detectors::travel::ImpossibleTravel;
pub use geo::{FixedGeo, GeoLookup, GeoPoint};
pub use load::ENV_PREFIX;
pub use signal::{Action, DetectorKind, KeyKind, Rule, UnknownValue, signal_events};
pub use table::TableStats;
pub use verdict::Verdict;

use detectors::login::LoginHandler;
use detectors::{AddressState, Shared};
use keys::KeyHasher;
use table::Table;
use verdict::PenaltyKey;

/// The `reason` values the detectors read. Emit them from your auth code.
pub mod reasons {
    /// A failed login for an account that does not exist (a failed login with no
    /// `user_id` counts as one too): `Metadata::new().client_ip(ip).reason(UNKNOWN_USER)`.
    pub const UNKNOWN_USER: &str = "unknown_user";
    /// Reasons of an MFA stop that mean the user denied the push (outcome `denied` does too).
    pub const DENIED: &[&str] = &["denied", "user_denied", "rejected"];
    /// Reasons of a failed `jwt.refresh.stop` that mean a revoked, rotated or reused token.
    pub const REFRESH_REUSE: &[&str] = &["revoked", "reused", "rotated", "reuse_detected"];
}

/// A set of detectors sharing one configuration, clock, keyed hasher, penalty box and
/// memory bound. Cheap to clone (clones share everything).
#[derive(Clone)]
pub struct Detectors {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    config: DetectConfig,
    /// The login detectors below as one handler (what [`Detectors::attach`] attaches).
    login: Arc<LoginHandler>,
    /// Brute force's and spraying's per-address state, one entry for both.
    address: Option<Arc<Table<AddressState>>>,
    brute_force: Option<Arc<BruteForce>>,
    spraying: Option<Arc<PasswordSpraying>>,
    stuffing: Option<Arc<CredentialStuffing>>,
    mfa: Option<Arc<MfaFatigue>>,
    new_location: Option<Arc<NewLocation>>,
    travel: Option<Arc<ImpossibleTravel>>,
    refresh: Option<Arc<RefreshReuse>>,
}

impl fmt::Debug for Detectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detectors")
            .field("handlers", &self.handler_ids())
            .field("memory_bytes", &self.inner.config.memory_bytes)
            .finish_non_exhaustive()
    }
}

/// The id [`Detectors::attach`] attaches the enabled login detectors under, as one handler
/// of `auth.login.stop` (brute force, password spraying, credential stuffing, new location,
/// impossible travel, run in turn on one pass over the record).
pub const LOGIN_HANDLER_ID: &str = "authtel-detect.login";

/// One detector as a handler, with the id and the events it is attached under.
#[derive(Clone, Debug)]
pub struct DetectorHandler {
    /// Which detector.
    pub detector: DetectorKind,
    /// The handler id to attach it under alone (`authtel-detect.brute_force`, …).
    pub id: &'static str,
    /// The events it hears.
    pub events: Vec<&'static Event>,
    /// The handler.
    pub handler: Arc<dyn Handler>,
}

/// What a detector set holds: memory by its own accounting, and signals raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectStats {
    /// Bytes allocated for detector state now.
    pub memory_bytes: usize,
    /// The configured bound ([`DetectConfig::memory_bytes`]).
    pub bound_bytes: usize,
    /// The most the tables can allocate together (never above the bound).
    pub budget_bytes: usize,
    /// Each table.
    pub tables: Vec<TableStats>,
    /// Signals raised by each detector since it was built.
    pub signals: Vec<(DetectorKind, u64)>,
}

impl Detectors {
    /// Detectors with this configuration, the system clock and no geo lookup.
    pub fn new(config: DetectConfig) -> Result<Detectors, ConfigError> {
        Detectors::builder().with_config(config).build()
    }

    /// A builder, for a clock or a geo lookup.
    pub fn builder() -> DetectorsBuilder {
        DetectorsBuilder::default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetectConfig {
        &self.inner.config
    }

    /// Every enabled detector as a handler of its own, with the events it needs, to attach
    /// yourself (e.g. with a failure policy).
    ///
    /// [`Detectors::attach`] attaches the login detectors differently: as one handler
    /// ([`LOGIN_HANDLER_ID`]) that hashes each login's keys and reads the clock once for all
    /// of them. Attached one by one, each login detector does that for itself.
    pub fn handlers(&self) -> Vec<DetectorHandler> {
        let i = &self.inner;
        let login = || vec![AUTH_LOGIN.stop()];
        let mut out = Vec::new();
        let mut push = |detector, id, events, handler: Option<Arc<dyn Handler>>| {
            if let Some(handler) = handler {
                out.push(DetectorHandler {
                    detector,
                    id,
                    events,
                    handler,
                });
            }
        };
        fn dyn_handler<H: Handler>(h: &Option<Arc<H>>) -> Option<Arc<dyn Handler>> {
            h.clone().map(|h| h as Arc<dyn Handler>)
        }
        push(
            DetectorKind::BruteForce,
            "authtel-detect.brute_force",
            login(),
            dyn_handler(&i.brute_force),
        );
        push(
            DetectorKind::PasswordSpraying,
            "authtel-detect.password_spraying",
            login(),
            dyn_handler(&i.spraying),
        );
        push(
            DetectorKind::CredentialStuffing,
            "authtel-detect.credential_stuffing",
            login(),
            dyn_handler(&i.stuffing),
        );
        push(
            DetectorKind::Mfa,
            "authtel-detect.mfa",
            vec![MFA_VERIFY.start(), MFA_VERIFY.stop()],
            dyn_handler(&i.mfa),
        );
        push(
            DetectorKind::NewLocation,
            "authtel-detect.new_location",
            login(),
            dyn_handler(&i.new_location),
        );
        push(
            DetectorKind::ImpossibleTravel,
            "authtel-detect.impossible_travel",
            login(),
            dyn_handler(&i.travel),
        );
        push(
            DetectorKind::RefreshReuse,
            "authtel-detect.refresh_reuse",
            vec![
                JWT_REFRESH.stop(),
                SESSION_DELETE.stop(),
                AUTH_LOGOUT.stop(),
            ],
            dyn_handler(&i.refresh),
        );
        out
    }

    /// What [`Detectors::attach`] attaches: the login detectors as one handler, MFA and
    /// refresh reuse each as its own.
    fn attached(&self) -> Vec<(&'static str, Vec<&'static Event>, Arc<dyn Handler>)> {
        let mut out: Vec<(&'static str, Vec<&'static Event>, Arc<dyn Handler>)> = Vec::new();
        if !self.inner.login.is_empty() {
            let login: Arc<dyn Handler> = self.inner.login.clone();
            out.push((LOGIN_HANDLER_ID, vec![AUTH_LOGIN.stop()], login));
        }
        for h in self.handlers() {
            if matches!(h.detector, DetectorKind::Mfa | DetectorKind::RefreshReuse) {
                out.push((h.id, h.events, h.handler));
            }
        }
        out
    }

    /// The ids [`Detectors::attach`] uses: [`LOGIN_HANDLER_ID`] for the login detectors,
    /// `authtel-detect.mfa` and `authtel-detect.refresh_reuse` (each if enabled).
    pub fn handler_ids(&self) -> Vec<&'static str> {
        self.attached().into_iter().map(|(id, _, _)| id).collect()
    }

    /// Attaches every enabled detector to `registry`, hearing only the events they need:
    /// the login detectors (brute force, spraying, stuffing, new location, travel) as one
    /// handler under [`LOGIN_HANDLER_ID`] that runs them in turn on each `auth.login.stop`,
    /// MFA and refresh reuse each as its own. On error nothing stays attached.
    pub fn attach(&self, registry: &Registry) -> Result<(), AttachError> {
        let mut done: Vec<&'static str> = Vec::new();
        for (id, events, handler) in self.attached() {
            let selection = Selection::Events(events);
            if let Err(e) = registry.attach(id, selection, handler) {
                for id in done {
                    let _ = registry.detach(id);
                }
                return Err(e);
            }
            done.push(id);
        }
        Ok(())
    }

    /// Attaches to the global registry (see [`Detectors::attach`]).
    pub fn attach_global(&self) -> Result<(), AttachError> {
        self.attach(Registry::global())
    }

    /// Detaches every detector from `registry`; the first error is returned after trying all.
    pub fn detach(&self, registry: &Registry) -> Result<(), DetachError> {
        let mut first = Ok(());
        for id in self.handler_ids() {
            if let Err(e) = registry.detach(id)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// What to do with the next attempt from `ip` on `user` (either may be unknown): the
    /// strongest penalty running on the address, its network, the account, or the pair.
    ///
    /// Before any penalty was imposed this is one atomic load; with none running, a few
    /// more; otherwise it hashes the keys of the kinds that may have a penalty running
    /// (address, account, their pair, network), and reads the clock and looks a key up only
    /// when its hint slot says it may have one. In monitor mode it is always
    /// [`Verdict::Allow`].
    #[inline]
    pub fn verdict(&self, ip: Option<IpAddr>, user: Option<&str>) -> Verdict {
        let shared = &self.inner.shared;
        let penalties = &shared.penalties;
        if !penalties.ever_imposed() {
            return Verdict::Allow;
        }
        // A time no later than now (the latest clock reading of any detector or verdict):
        // what ended before it needs no clock read, and keys that no running penalty can be
        // on are not hashed (during a brute-force attack nobody's network is).
        let seen = shared.seen_ms();
        let on = |key| penalties.may_run_on(key, seen);
        let (ip_on, user_on, pair_on, prefix_on) = (
            on(PenaltyKey::Ip),
            on(PenaltyKey::Identifier),
            on(PenaltyKey::Pair),
            on(PenaltyKey::Prefix),
        );
        if !(ip_on || user_on || pair_on || prefix_on) {
            return Verdict::Allow;
        }
        let h = &shared.hasher;
        let ip_fp = ip.filter(|_| ip_on || pair_on).map(|ip| h.ip(ip));
        let user_fp = user.filter(|_| user_on || pair_on).map(|u| h.user(u));
        let pair = ip_fp
            .zip(user_fp)
            .filter(|_| pair_on)
            .map(|(i, u)| KeyHasher::pair(i, u));
        let prefix = ip.filter(|_| prefix_on).map(|ip| h.prefix(ip));
        penalties.check_since(
            seen,
            || shared.now(),
            &[
                (PenaltyKey::Pair, pair),
                (PenaltyKey::Ip, ip_fp.filter(|_| ip_on)),
                (PenaltyKey::Identifier, user_fp.filter(|_| user_on)),
                (PenaltyKey::Prefix, prefix),
            ],
        )
    }

    /// Memory by the detectors' own accounting, and signals raised.
    pub fn stats(&self) -> DetectStats {
        let i = &self.inner;
        let mut tables = Vec::new();
        if let Some(t) = &i.address {
            tables.push(t.stats());
        }
        if let Some(d) = &i.brute_force {
            tables.extend(d.tables());
        }
        if let Some(d) = &i.spraying {
            tables.extend(d.tables());
        }
        if let Some(d) = &i.mfa {
            tables.extend(d.tables());
        }
        if let Some(d) = &i.new_location {
            tables.extend(d.tables());
        }
        if let Some(d) = &i.travel {
            tables.extend(d.tables());
        }
        if let Some(d) = &i.refresh {
            tables.extend(d.tables());
        }
        tables.extend(i.shared.penalties.stats());
        let fixed = budget::fixed_bytes(&i.config);
        DetectStats {
            memory_bytes: tables.iter().map(|t| t.bytes).sum::<usize>() + fixed,
            bound_bytes: i.config.memory_bytes,
            budget_bytes: tables.iter().map(|t| t.budget_bytes).sum::<usize>() + fixed,
            signals: DetectorKind::ALL
                .iter()
                .map(|d| (*d, i.shared.raised(*d)))
                .collect(),
            tables,
        }
    }

    /// The credential-stuffing baseline failure ratio in percent, if that detector is on.
    pub fn stuffing_baseline_pct(&self) -> Option<f64> {
        self.inner.stuffing.as_ref().map(|s| s.baseline_pct())
    }

    /// The brute-force detector, to call as a handler directly (benches, replays).
    pub fn brute_force(&self) -> Option<&BruteForce> {
        self.inner.brute_force.as_deref()
    }
}
