//! Impossible travel: two successful logins of one account farther apart than anyone could
//! travel in the time between them.
//!
//! Distances are great-circle distances between the lookups' points, less both points'
//! accuracy, so two imprecise lookups of one city are never a trip.

use std::sync::Arc;
use std::time::Duration;

use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{LoginDetector, Shared, dedupe, handle_alone, ms};
use crate::config::TravelConfig;
use crate::geo::GeoPoint;
use crate::keys::RecordKeys;
use crate::signal::{DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};

/// Per account: where and when it last logged in.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LastLogin {
    /// Time plus one (0: none yet).
    at: u64,
    lat: f32,
    lon: f32,
    accuracy_km: u32,
    last_signal: u64,
}

/// The impossible-travel detector. Hears successful `auth.login.stop`s; needs a
/// [`GeoLookup`](crate::geo::GeoLookup).
#[derive(Debug)]
pub struct ImpossibleTravel {
    shared: Arc<Shared>,
    config: TravelConfig,
    users: Table<LastLogin>,
}

impl ImpossibleTravel {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: TravelConfig,
        users: Table<LastLogin>,
    ) -> ImpossibleTravel {
        ImpossibleTravel {
            shared,
            config,
            users,
        }
    }

    pub(crate) fn tables(&self) -> [TableStats; 1] {
        [self.users.stats()]
    }

    fn success(&self, record: &EventRecord<'_>, keys: &mut RecordKeys<'_, '_>) {
        let c = &self.config;
        let (Some(geo), Some(ip)) = (&self.shared.geo, record.metadata.get_client_ip()) else {
            return;
        };
        let Some(user) = keys.user() else { return };
        let Some(here) = geo.lookup(ip) else { return };
        let now = keys.now();
        let window = ms(c.window);
        let trip = self.users.with(user, |last, _, _| {
            let mut trip = None;
            if last.at != 0 {
                let before = GeoPoint::new(f64::from(last.lat), f64::from(last.lon), 0);
                let km = (before.distance_km(&here)
                    - f64::from(last.accuracy_km)
                    - f64::from(here.accuracy_km))
                .max(0.0);
                let elapsed = now.saturating_sub(last.at - 1).max(1);
                let kmh = km / (elapsed as f64 / 3_600_000.0);
                if km >= f64::from(c.min_distance_km)
                    && kmh > f64::from(c.max_speed_kmh)
                    && dedupe(&mut last.last_signal, now, window)
                {
                    trip = Some((km, kmh, elapsed));
                }
            }
            last.at = now + 1;
            last.lat = here.lat as f32;
            last.lon = here.lon as f32;
            last.accuracy_km = here.accuracy_km;
            trip
        });
        if let Some((km, kmh, elapsed)) = trip {
            self.shared.count_signal(DetectorKind::ImpossibleTravel);
            Signal::new(
                event_of(DetectorKind::ImpossibleTravel, Rule::Speed),
                DetectorKind::ImpossibleTravel,
                Rule::Speed,
                SignalKey::new(KeyKind::Identifier)
                    .user(record.metadata.get_user_id())
                    .ip(Some(ip)),
                c.mode,
            )
            .counts(
                kmh.min(u64::MAX as f64) as u64,
                c.max_speed_kmh.into(),
                Duration::from_millis(elapsed),
            )
            .extra("distance_km", km as u64)
            .emit();
        }
    }
}

impl LoginDetector for ImpossibleTravel {
    fn hears(&self, outcome: Outcome) -> bool {
        outcome == Outcome::Success
    }

    fn login(&self, record: &EventRecord<'_>, _: Outcome, keys: &mut RecordKeys<'_, '_>) {
        self.success(record, keys);
    }
}

impl Handler for ImpossibleTravel {
    fn handle(&self, record: &EventRecord<'_>) {
        handle_alone(self, &self.shared, record);
    }
}
