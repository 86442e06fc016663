//! The login handler: every enabled login detector on one `auth.login.stop`, in one pass.
//!
//! Attached alone, each login detector is its own handler: the registry calls five handlers
//! per login, and each hashes the record's account, address and network and reads the clock
//! for itself. [`LoginHandler`] is one handler that runs them in turn (in the order they were
//! attached before: brute force, spraying, stuffing, new location, travel) on one set of
//! [`RecordKeys`], so a login is hashed and timed once. Each detector still releases its
//! locks before it emits its signals, and emits them before the next detector runs.

use std::sync::Arc;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::brute_force::BruteForce;
use super::new_location::NewLocation;
use super::spraying::PasswordSpraying;
use super::stuffing::CredentialStuffing;
use super::travel::ImpossibleTravel;
use super::{AddressState, LoginDetector, Shared};
use crate::keys::{RecordKeys, piece};
use crate::table::Table;

/// The enabled login detectors as one handler of `auth.login.stop`.
#[derive(Debug)]
pub(crate) struct LoginHandler {
    pub(crate) shared: Arc<Shared>,
    /// The table brute force and spraying share (when either is on).
    pub(crate) address: Option<Arc<Table<AddressState>>>,
    pub(crate) brute_force: Option<Arc<BruteForce>>,
    pub(crate) spraying: Option<Arc<PasswordSpraying>>,
    pub(crate) stuffing: Option<Arc<CredentialStuffing>>,
    pub(crate) new_location: Option<Arc<NewLocation>>,
    pub(crate) travel: Option<Arc<ImpossibleTravel>>,
}

impl LoginHandler {
    /// Whether any login detector is enabled (else there is nothing to attach).
    pub(crate) fn is_empty(&self) -> bool {
        self.brute_force.is_none()
            && self.spraying.is_none()
            && self.stuffing.is_none()
            && self.new_location.is_none()
            && self.travel.is_none()
    }
}

fn run(
    d: &Option<Arc<impl LoginDetector>>,
    record: &EventRecord<'_>,
    outcome: Outcome,
    keys: &mut RecordKeys<'_, '_>,
) {
    if let Some(d) = d
        && d.hears(outcome)
    {
        d.login(record, outcome, keys);
    }
}

impl Handler for LoginHandler {
    fn handle(&self, record: &EventRecord<'_>) {
        if !std::ptr::eq(record.event, AUTH_LOGIN.stop()) {
            return;
        }
        // Every login detector reads failures, successes or both; nothing else.
        let Some(outcome) = record
            .outcome
            .filter(|o| matches!(o, Outcome::Failure | Outcome::Success))
        else {
            return;
        };
        let keys = &mut self.shared.keys(record);
        if outcome == Outcome::Failure
            && let (Some(bf), Some(sp), Some(address), Some(ip)) =
                (&self.brute_force, &self.spraying, &self.address, keys.ip())
        {
            // A failure probes three tables (the address, the account with its pairs, the
            // network): ask for the three index slots first, so the cache misses overlap the
            // hashing and each other instead of coming one after another.
            address.prefetch(ip);
            bf.prefetch(keys);
            sp.prefetch(keys);
            // One lookup of the address for both: brute force's count, and (when the login
            // names an account) spraying's set. Each then does the rest of its work, in the
            // same order as alone.
            let now = keys.now();
            let piece = keys.user().map(piece);
            let (bf_step, sp_step) = address.with(ip, |a, rest, _| {
                (
                    bf.ip_step(&mut a.brute_force, now),
                    piece.map(|p| sp.ip_step(&mut a.spraying, rest, p, now)),
                )
            });
            bf.failure(record, keys, Some(bf_step));
            sp.failure(record, keys, sp_step);
        } else {
            run(&self.brute_force, record, outcome, keys);
            run(&self.spraying, record, outcome, keys);
        }
        run(&self.stuffing, record, outcome, keys);
        run(&self.new_location, record, outcome, keys);
        run(&self.travel, record, outcome, keys);
    }
}
