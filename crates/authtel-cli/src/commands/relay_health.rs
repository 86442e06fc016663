//! The parts of `authtel doctor` that come from other processes: what the running relays
//! report per forwarder (`audit_relay_status`: breaker state, since when, heartbeat) and the
//! newest purge in the trail.

use std::time::Duration;

use authtel_core::audit::Timestamp;
use authtel_sql::{BreakerState, LastPurge, breaker_name};

/// The relays' reading of one forwarder (one rule, in authtel-sql).
pub(crate) use authtel_sql::RelayReading as RelayView;
use serde_json::{Value, json};

use crate::time::human;

/// How the doctor prints a relay reading.
pub(crate) trait RelayCells {
    fn breaker_cell(&self, now: Timestamp) -> String;
    fn relay_cell(&self) -> String;
    fn advice(&self, forwarder: &str) -> Option<String>;
    fn json_fields(&self, map: &mut serde_json::Map<String, Value>);
}

impl RelayCells for RelayView {
    /// The breaker cell of the doctor's table.
    fn breaker_cell(&self, now: Timestamp) -> String {
        match self {
            RelayView::Reporting { breaker, since, .. } => {
                let age =
                    Duration::from_micros((now.unix_micros() - since.unix_micros()).max(0) as u64);
                match breaker {
                    BreakerState::Closed => format!("closed for {}", human(age)),
                    b => format!(
                        "{} for {} (since {since})",
                        breaker_name(*b).to_uppercase(),
                        human(age)
                    ),
                }
            }
            RelayView::Stale { .. } | RelayView::NoRelay => "unknown".to_owned(),
        }
    }

    /// The relay cell of the doctor's table.
    fn relay_cell(&self) -> String {
        match self {
            RelayView::Reporting {
                last_seen, relays, ..
            } => match relays {
                1 => format!("seen {} ago", human(*last_seen)),
                n => format!("{n} relays, seen {} ago", human(*last_seen)),
            },
            RelayView::Stale { last_seen, .. } => {
                format!("not reachable: last seen {} ago", human(*last_seen))
            }
            RelayView::NoRelay => "no relay has reported".to_owned(),
        }
    }

    /// A line under the table saying what to check, when there is something to check.
    fn advice(&self, forwarder: &str) -> Option<String> {
        match self {
            RelayView::Reporting {
                breaker: BreakerState::Closed,
                ..
            } => None,
            RelayView::Reporting { last_error, .. } => Some(format!(
                "{forwarder}: the relay's circuit breaker is open: its destination is failing{}; \
                 nothing is lost (entries wait in the outbox), fix the destination",
                last_error
                    .as_deref()
                    .map(|e| format!(" (last failure: {})", crate::output::clean(e)))
                    .unwrap_or_default()
            )),
            RelayView::Stale {
                last_seen,
                stale_after,
                breaker,
            } => Some(format!(
                "{forwarder}: no relay reachable: the last one wrote {} ago and promised to \
                 write again within {} (breaker then: {}); check that the application running \
                 the relay is up and can write to this database",
                human(*last_seen),
                human(*stale_after),
                breaker_name(*breaker)
            )),
            RelayView::NoRelay => Some(format!(
                "{forwarder}: no relay has reported: check that the application runs an \
                 authtel_sql::Relay with a forwarder for {forwarder:?} (relays report here \
                 from schema migration 3 on PostgreSQL, 2 on SQLite)"
            )),
        }
    }

    /// The fields the NDJSON report adds to a forwarder.
    fn json_fields(&self, map: &mut serde_json::Map<String, Value>) {
        let (relay, breaker, since, seen, relays, error) = match self {
            RelayView::Reporting {
                breaker,
                since,
                last_seen,
                relays,
                last_error,
            } => (
                "reporting",
                Some(breaker_name(*breaker)),
                Some(since.to_string()),
                Some(last_seen.as_secs_f64()),
                *relays,
                last_error.clone(),
            ),
            RelayView::Stale {
                last_seen, breaker, ..
            } => (
                "stale",
                Some(breaker_name(*breaker)),
                None,
                Some(last_seen.as_secs_f64()),
                0,
                None,
            ),
            RelayView::NoRelay => ("none", None, None, None, 0, None),
        };
        map.insert("relay".into(), json!(relay));
        map.insert("breaker".into(), json!(breaker));
        map.insert("breaker_since".into(), json!(since));
        map.insert("relay_last_seen_seconds".into(), json!(seen));
        map.insert("relays_reporting".into(), json!(relays));
        map.insert("last_error".into(), json!(error));
    }
}

/// The doctor's `last purge:` line.
pub(crate) fn purge_line(last: Option<&LastPurge>, now: Timestamp) -> String {
    let Some(p) = last else {
        return "never purged (no audit.purge record that deleted is in the trail)".to_owned();
    };
    let ago = Duration::from_micros((now.unix_micros() - p.at.unix_micros()).max(0) as u64);
    let who = p
        .actor
        .as_ref()
        .map(|a| {
            format!(
                "{} ({})",
                crate::output::clean(&a.id),
                crate::output::clean(&a.kind)
            )
        })
        .unwrap_or_else(|| "an unknown actor".to_owned());
    let what = match (p.outcome, p.audit_rows) {
        (authtel_core::outcome::Outcome::Success, Some(rows)) => format!(
            "{rows} audit rows, {} outbox entries, {} partitions dropped",
            p.outbox_entries.unwrap_or(0),
            p.partitions_dropped.unwrap_or(0)
        ),
        _ => {
            crate::output::clean(p.reason.as_deref().unwrap_or("(no reason recorded)")).into_owned()
        }
    };
    format!("{} ({} ago) by {who}: {what}", p.at, human(ago))
}

/// The NDJSON report's `last_purge`.
pub(crate) fn purge_json(last: Option<&LastPurge>) -> Value {
    match last {
        None => Value::Null,
        Some(p) => json!({
            "at": p.at.to_string(),
            "actor": p.actor.as_ref().map(|a| a.id.as_str()),
            "actor_type": p.actor.as_ref().map(|a| a.kind.as_str()),
            "outcome": p.outcome.as_str(),
            "audit_rows": p.audit_rows,
            "outbox_entries": p.outbox_entries,
            "partitions_dropped": p.partitions_dropped,
            "reason": p.reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_sql::RelayStatus;

    fn row(relay: &str, breaker: BreakerState, seen_s: i64, now: Timestamp) -> RelayStatus {
        RelayStatus {
            relay: relay.into(),
            forwarder: "siem".into(),
            breaker,
            since: Timestamp::from_unix_micros(now.unix_micros() - 60_000_000),
            last_error: Some("refused".into()),
            last_error_at: None,
            heartbeat_at: Timestamp::from_unix_micros(now.unix_micros() - seen_s * 1_000_000),
            stale_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_worst_fresh_relay_decides_and_stale_rows_do_not_count() {
        let now = Timestamp::now();
        let rows = [
            row("a", BreakerState::Closed, 1, now),
            row("b", BreakerState::Open, 2, now),
            row("c", BreakerState::Closed, 300, now),
        ];
        match RelayView::of("siem", &rows, now) {
            RelayView::Reporting {
                breaker,
                relays,
                last_seen,
                ..
            } => {
                assert_eq!(breaker, BreakerState::Open);
                assert_eq!(relays, 2);
                assert_eq!(last_seen.as_secs(), 1);
            }
            v => panic!("{v:?}"),
        }
        let stale = RelayView::of("siem", &rows[2..], now);
        assert!(matches!(stale, RelayView::Stale { .. }), "{stale:?}");
        assert!(
            stale
                .relay_cell()
                .starts_with("not reachable: last seen 5m"),
            "{}",
            stale.relay_cell()
        );
        assert_eq!(RelayView::of("kafka", &rows, now), RelayView::NoRelay);
    }
}
