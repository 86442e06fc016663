//! [`DetectorsBuilder`]: the configuration validated, the tables carved out of the memory
//! bound, each enabled detector built on the shared clock, hasher and penalty box.

use std::sync::Arc;

use crate::budget::{self, TableId};
use crate::clock::{Clock, SystemClock};
use crate::detectors::Shared;
use crate::detectors::login::LoginHandler;
use crate::geo::GeoLookup;
use crate::table::Table;
use crate::verdict::PenaltyBox;
use crate::{
    BruteForce, ConfigError, CredentialStuffing, DetectConfig, Detectors, ImpossibleTravel, Inner,
    MfaFatigue, Mode, NewLocation, PasswordSpraying, RefreshReuse,
};

/// Builds [`Detectors`]: configuration, clock, geo lookup.
///
/// ```
/// use authtel_detect::{clock::ManualClock, DetectConfig, Detectors, FixedGeo};
/// let clock = ManualClock::new();
/// let detectors = Detectors::builder()
///     .with_config(DetectConfig::default())
///     .with_clock(clock.clone())
///     .with_geo(FixedGeo::new())
///     .build()
///     .unwrap();
/// // Attached as three handlers (the five login detectors as one), offered as seven.
/// assert_eq!(
///     detectors.handler_ids(),
///     ["authtel-detect.login", "authtel-detect.mfa", "authtel-detect.refresh_reuse"]
/// );
/// assert_eq!(detectors.handlers().len(), 7);
/// ```
#[derive(Debug, Default)]
pub struct DetectorsBuilder {
    config: DetectConfig,
    clock: Option<Arc<dyn Clock>>,
    geo: Option<Arc<dyn GeoLookup>>,
}

impl DetectorsBuilder {
    /// The configuration (default: [`DetectConfig::default`]).
    #[must_use]
    pub fn with_config(mut self, config: DetectConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock windows and penalties are measured on (default: [`SystemClock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The geo lookup impossible travel and the new-network check use (default: none; the
    /// travel detector then raises nothing).
    #[must_use]
    pub fn with_geo(mut self, geo: impl GeoLookup) -> Self {
        self.geo = Some(Arc::new(geo));
        self
    }

    /// The geo lookup, shared.
    #[must_use]
    pub fn with_shared_geo(mut self, geo: Arc<dyn GeoLookup>) -> Self {
        self.geo = Some(geo);
        self
    }

    /// Validates the configuration and builds the detectors (nothing attached yet).
    pub fn build(self) -> Result<Detectors, ConfigError> {
        let c = self.config;
        c.validate()?;
        fn table<V: Copy + Default>(
            c: &DetectConfig,
            id: TableId,
            name: &'static str,
        ) -> Result<Table<V>, ConfigError> {
            Table::new(name, budget::share(c, id), id.stride(c)).ok_or(
                ConfigError::MemoryTooSmall {
                    bytes: c.memory_bytes,
                    min: budget::min_bytes(c),
                },
            )
        }
        let on = |m: Mode| m != Mode::Off;
        let penalties = if on(c.brute_force.mode) || on(c.spraying.mode) {
            Some(table(&c, TableId::Penalties, "penalties")?)
        } else {
            None
        };
        let shared = Arc::new(Shared::new(
            self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
            PenaltyBox::new(penalties),
            self.geo,
        ));
        let address = if on(c.brute_force.mode) || on(c.spraying.mode) {
            Some(Arc::new(table(&c, TableId::Address, "address")?))
        } else {
            None
        };
        let brute_force = if let Some(address) = address.clone().filter(|_| on(c.brute_force.mode))
        {
            Some(Arc::new(BruteForce::new(
                shared.clone(),
                c.brute_force.clone(),
                address,
                table(&c, TableId::BruteForceIdentifier, "brute_force.identifier")?,
            )))
        } else {
            None
        };
        let spraying = if let Some(address) = address.clone().filter(|_| on(c.spraying.mode)) {
            Some(Arc::new(PasswordSpraying::new(
                shared.clone(),
                c.spraying.clone(),
                address,
                table(&c, TableId::SprayingPrefix, "password_spraying.ip_prefix")?,
            )))
        } else {
            None
        };
        let stuffing = on(c.stuffing.mode)
            .then(|| Arc::new(CredentialStuffing::new(shared.clone(), c.stuffing.clone())));
        let mfa = if on(c.mfa.mode) {
            Some(Arc::new(MfaFatigue::new(
                shared.clone(),
                c.mfa.clone(),
                table(&c, TableId::Mfa, "mfa.identifier")?,
            )))
        } else {
            None
        };
        let new_location = if on(c.new_location.mode) {
            Some(Arc::new(NewLocation::new(
                shared.clone(),
                c.new_location.clone(),
                table(&c, TableId::NewLocation, "new_location.identifier")?,
            )))
        } else {
            None
        };
        let travel = if on(c.travel.mode) {
            Some(Arc::new(ImpossibleTravel::new(
                shared.clone(),
                c.travel.clone(),
                table(&c, TableId::Travel, "impossible_travel.identifier")?,
            )))
        } else {
            None
        };
        let refresh = if on(c.refresh_reuse.mode) {
            Some(Arc::new(RefreshReuse::new(
                shared.clone(),
                c.refresh_reuse.clone(),
                table(&c, TableId::RefreshReuse, "refresh_reuse.session")?,
            )))
        } else {
            None
        };
        let login = Arc::new(LoginHandler {
            shared: shared.clone(),
            address: address.clone(),
            brute_force: brute_force.clone(),
            spraying: spraying.clone(),
            stuffing: stuffing.clone(),
            new_location: new_location.clone(),
            travel: travel.clone(),
        });
        Ok(Detectors {
            inner: Arc::new(Inner {
                shared,
                config: c,
                login,
                address,
                brute_force,
                spraying,
                stuffing,
                mfa,
                new_location,
                travel,
                refresh,
            }),
        })
    }
}
