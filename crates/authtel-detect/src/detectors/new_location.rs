//! A login from a new network and a new device (`security.suspicious_login`).
//!
//! Per account it remembers the last few networks (the address's /24 or /48, and with a
//! geo lookup its autonomous system), and the last few devices (the `user_agent`'s digest).
//! A network is known when its prefix *or* its AS was seen: a phone's carrier hands out a
//! different address at every login, but from the same AS.

use std::sync::Arc;

use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use super::{LoginDetector, Shared, dedupe, handle_alone, ms};
use crate::config::NewLocationConfig;
use crate::keys::{RecordKeys, piece};
use crate::signal::{DetectorKind, KeyKind, Rule, Signal, SignalKey, event_of};
use crate::table::{Table, TableStats};

const NETWORKS: usize = 6;
const DEVICES: usize = 4;

/// Per account: what it logged in from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct History {
    logins: u32,
    prefixes: [u32; NETWORKS],
    asns: [u32; NETWORKS],
    devices: [u32; DEVICES],
    next_prefix: u8,
    next_asn: u8,
    next_device: u8,
    last_signal: u64,
}

fn remember<const N: usize>(slots: &mut [u32; N], next: &mut u8, value: u32) {
    if !slots.contains(&value) {
        slots[*next as usize % N] = value;
        *next = ((*next as usize + 1) % N) as u8;
    }
}

/// The new-network-and-device detector. Hears successful `auth.login.stop`s.
#[derive(Debug)]
pub struct NewLocation {
    shared: Arc<Shared>,
    config: NewLocationConfig,
    users: Table<History>,
}

impl NewLocation {
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: NewLocationConfig,
        users: Table<History>,
    ) -> NewLocation {
        NewLocation {
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
        let Some(user) = keys.user() else { return };
        let prefix = keys.prefix().map(piece);
        let device = keys.device().map(piece);
        let asn = match (&self.shared.geo, record.metadata.get_client_ip()) {
            (Some(geo), Some(ip)) => geo
                .lookup(ip)
                .and_then(|p| p.asn)
                .map(|a| piece(self.shared.hasher.network(a))),
            _ => None,
        };
        let now = keys.now();
        let window = ms(c.window);
        let fired = self.users.with(user, |h, _, _| {
            let known_network = prefix.is_none_or(|p| h.prefixes.contains(&p))
                || asn.is_some_and(|a| h.asns.contains(&a));
            let known_device = device.is_none_or(|d| h.devices.contains(&d));
            let rule = match (known_network, known_device) {
                (false, false) => Some(Rule::NewNetworkAndDevice),
                (false, true) if !c.require_both => Some(Rule::NewNetwork),
                (true, false) if !c.require_both => Some(Rule::NewDevice),
                _ => None,
            };
            let history = h.logins;
            let fire = rule
                .filter(|_| history >= c.min_history && dedupe(&mut h.last_signal, now, window));
            if let Some(p) = prefix {
                remember(&mut h.prefixes, &mut h.next_prefix, p);
            }
            if let Some(a) = asn {
                remember(&mut h.asns, &mut h.next_asn, a);
            }
            if let Some(d) = device {
                remember(&mut h.devices, &mut h.next_device, d);
            }
            h.logins = h.logins.saturating_add(1);
            fire.map(|rule| (rule, history))
        });
        if let Some((rule, history)) = fired {
            self.shared.count_signal(DetectorKind::NewLocation);
            Signal::new(
                event_of(DetectorKind::NewLocation, rule),
                DetectorKind::NewLocation,
                rule,
                SignalKey::new(KeyKind::Identifier)
                    .user(record.metadata.get_user_id())
                    .ip(record.metadata.get_client_ip()),
                c.mode,
            )
            .counts(history.into(), c.min_history.into(), c.window)
            .emit();
        }
    }
}

impl LoginDetector for NewLocation {
    fn hears(&self, outcome: Outcome) -> bool {
        outcome == Outcome::Success
    }

    fn login(&self, record: &EventRecord<'_>, _: Outcome, keys: &mut RecordKeys<'_, '_>) {
        self.success(record, keys);
    }
}

impl Handler for NewLocation {
    fn handle(&self, record: &EventRecord<'_>) {
        handle_alone(self, &self.shared, record);
    }
}
