//! What a relay tells other processes about itself: per forwarder, its circuit breaker's
//! state, since when, the last delivery failure and a heartbeat, in the
//! `audit_relay_status` table. `authtel doctor` and the console's outbox page read it; the
//! breaker itself lives in the relay's process, so without this table nobody else could
//! see it.
//!
//! A relay writes a forwarder's row when the breaker changes state and otherwise at most once
//! per heartbeat interval ([`RelayConfig::with_heartbeat`](crate::RelayConfig)), never per
//! record. A failed write is logged and counted in [`RelayStats::status_errors`]
//! (crate::RelayStats) and never holds up delivery. A relay that shuts down cleanly deletes
//! its rows; one that died leaves them to go stale.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use authtel_core::audit::Timestamp;
use authtel_pipeline::BreakerState;

/// One relay's view of one forwarder, as [`AuditStore::relay_status`](crate::AuditStore)
/// reads it back.
///
/// ```
/// use std::time::Duration;
/// use authtel_core::audit::Timestamp;
/// use authtel_sql::{BreakerState, RelayStatus};
/// let s = RelayStatus {
///     relay: "pid 7/3f2a9c1e".into(),
///     forwarder: "siem".into(),
///     breaker: BreakerState::Open,
///     since: Timestamp::from_unix_micros(0),
///     last_error: Some("connection refused".into()),
///     last_error_at: None,
///     heartbeat_at: Timestamp::from_unix_micros(1_000_000),
///     stale_after: Duration::from_secs(20),
/// };
/// assert!(!s.is_stale(Timestamp::from_unix_micros(20_000_000)));
/// assert!(s.is_stale(Timestamp::from_unix_micros(22_000_000)));
/// assert_eq!(s.last_seen(Timestamp::from_unix_micros(4_000_000)), Duration::from_secs(3));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayStatus {
    /// Which relay wrote it: `pid <process id>/<random tag>`, new for every relay built.
    pub relay: String,
    /// The forwarder id.
    pub forwarder: String,
    /// The breaker's state when last written.
    pub breaker: BreakerState,
    /// When the relay first saw the breaker in this state (for a new relay: when it started).
    pub since: Timestamp,
    /// The last delivery failure's reason, screened as the outbox's `last_error` is.
    pub last_error: Option<String>,
    /// When that failure happened.
    pub last_error_at: Option<Timestamp>,
    /// The relay's last write: how recently it was alive.
    pub heartbeat_at: Timestamp,
    /// How long after `heartbeat_at` the relay promised its next write; later than that, the
    /// relay is gone or cannot reach the database and the row is stale.
    pub stale_after: Duration,
}

impl RelayStatus {
    /// How long before `now` the relay last wrote.
    pub fn last_seen(&self, now: Timestamp) -> Duration {
        Duration::from_micros(
            now.unix_micros()
                .saturating_sub(self.heartbeat_at.unix_micros())
                .max(0) as u64,
        )
    }

    /// Whether the relay missed its promised next write.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        self.last_seen(now) > self.stale_after
    }
}

/// What the running relays say about one forwarder, from every relay's
/// [`RelayStatus`] rows: the one reading `authtel doctor` and the console's outbox page show.
///
/// ```
/// use std::time::Duration;
/// use authtel_core::audit::Timestamp;
/// use authtel_sql::{BreakerState, RelayReading, RelayStatus};
/// let now = Timestamp::from_unix_micros(100_000_000);
/// let row = |relay: &str, breaker, seen_s: i64| RelayStatus {
///     relay: relay.into(),
///     forwarder: "siem".into(),
///     breaker,
///     since: Timestamp::from_unix_micros(0),
///     last_error: None,
///     last_error_at: None,
///     heartbeat_at: Timestamp::from_unix_micros(100_000_000 - seen_s * 1_000_000),
///     stale_after: Duration::from_secs(30),
/// };
/// // Two relays write on time, one of them with its breaker open: open wins.
/// let rows = [row("a", BreakerState::Closed, 1), row("b", BreakerState::Open, 2)];
/// assert!(matches!(
///     RelayReading::of("siem", &rows, now),
///     RelayReading::Reporting { breaker: BreakerState::Open, relays: 2, .. }
/// ));
/// // A relay that missed its next write is not reachable; no row at all is no relay.
/// assert!(matches!(
///     RelayReading::of("siem", &[row("c", BreakerState::Closed, 300)], now),
///     RelayReading::Stale { .. }
/// ));
/// assert_eq!(RelayReading::of("kafka", &rows, now), RelayReading::NoRelay);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum RelayReading {
    /// At least one relay wrote within its promised interval.
    Reporting {
        /// The worst breaker among them (open over half-open over closed).
        breaker: BreakerState,
        /// Since when that relay has seen it so.
        since: Timestamp,
        /// The most recent write among them.
        last_seen: Duration,
        /// How many relays report.
        relays: usize,
        /// That relay's last failure.
        last_error: Option<String>,
    },
    /// Rows exist but every relay missed its next write.
    Stale {
        /// The most recent write.
        last_seen: Duration,
        /// The longest the relay promised to stay quiet.
        stale_after: Duration,
        /// The breaker as last reported.
        breaker: BreakerState,
    },
    /// No relay has written a row for this forwarder.
    NoRelay,
}

fn severity(b: BreakerState) -> u8 {
    match b {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

impl RelayReading {
    /// The reading for `forwarder`: the worst breaker (open over half-open over closed)
    /// among the relays still writing within their promised interval; else the newest
    /// stale row; else no relay.
    pub fn of(forwarder: &str, rows: &[RelayStatus], now: Timestamp) -> RelayReading {
        let mine: Vec<&RelayStatus> = rows.iter().filter(|r| r.forwarder == forwarder).collect();
        let fresh: Vec<&&RelayStatus> = mine.iter().filter(|r| !r.is_stale(now)).collect();
        if let Some(worst) = fresh.iter().max_by_key(|r| severity(r.breaker)) {
            return RelayReading::Reporting {
                breaker: worst.breaker,
                since: worst.since,
                last_seen: fresh
                    .iter()
                    .map(|r| r.last_seen(now))
                    .min()
                    .unwrap_or_default(),
                relays: fresh.len(),
                last_error: worst.last_error.clone(),
            };
        }
        match mine.iter().min_by_key(|r| r.last_seen(now)) {
            Some(newest) => RelayReading::Stale {
                last_seen: newest.last_seen(now),
                stale_after: newest.stale_after,
                breaker: newest.breaker,
            },
            None => RelayReading::NoRelay,
        }
    }
}

/// The breaker state's name as stored in `audit_relay_status` and printed by `authtel
/// doctor` (`closed`, `open`, `half_open`).
///
/// ```
/// assert_eq!(authtel_sql::breaker_name(authtel_sql::BreakerState::HalfOpen), "half_open");
/// ```
pub fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

/// The stored text back as a state; unknown text reads as open (the cautious answer).
pub(crate) fn breaker_of(text: &str) -> BreakerState {
    match text {
        "closed" => BreakerState::Closed,
        "half_open" => BreakerState::HalfOpen,
        _ => BreakerState::Open,
    }
}

/// A row to write.
#[derive(Debug, Clone)]
pub(crate) struct StatusRow {
    pub(crate) forwarder: String,
    pub(crate) breaker: BreakerState,
    pub(crate) since: i64,
    pub(crate) last_error: Option<(String, i64)>,
}

/// What the relay last wrote per forwarder, to decide when to write again.
#[derive(Debug)]
pub(crate) struct StatusBook {
    pub(crate) relay: String,
    pub(crate) heartbeat: Duration,
    pub(crate) stale_after: Duration,
    entries: Mutex<Vec<Memo>>,
}

#[derive(Debug)]
struct Memo {
    row: StatusRow,
    written: Option<Instant>,
    /// Changed since the last successful write.
    dirty: bool,
}

impl StatusBook {
    pub(crate) fn new(heartbeat: Duration, stale_after: Duration) -> StatusBook {
        // The tail of a UUIDv7 is random.
        let tag = uuid::Uuid::now_v7().simple().to_string();
        StatusBook {
            relay: format!("pid {}/{}", std::process::id(), &tag[24..]),
            heartbeat,
            stale_after,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Notes what one pass saw of `forwarder`; returns the row to write when the breaker
    /// changed or the heartbeat is due (the caller writes it, then calls [`Self::written`]).
    pub(crate) fn observe(
        &self,
        forwarder: &str,
        breaker: BreakerState,
        failure: Option<String>,
        now: Timestamp,
    ) -> Option<StatusRow> {
        let now_micros = now.unix_micros();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let i = match entries.iter().position(|m| m.row.forwarder == forwarder) {
            Some(i) => i,
            None => {
                entries.push(Memo {
                    row: StatusRow {
                        forwarder: forwarder.to_owned(),
                        breaker,
                        since: now_micros,
                        last_error: None,
                    },
                    written: None,
                    dirty: true,
                });
                entries.len() - 1
            }
        };
        let memo = &mut entries[i];
        let changed = memo.row.breaker != breaker;
        if changed {
            memo.row.breaker = breaker;
            memo.row.since = now_micros;
            memo.dirty = true;
        }
        if let Some(reason) = failure {
            memo.row.last_error = Some((reason, now_micros));
        }
        let due = memo.written.is_none_or(|t| t.elapsed() >= self.heartbeat);
        (memo.dirty || due).then(|| memo.row.clone())
    }

    /// Marks `forwarder`'s row as written now (a failed write is retried at the next pass).
    pub(crate) fn written(&self, forwarder: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = entries.iter_mut().find(|m| m.row.forwarder == forwarder) {
            m.written = Some(Instant::now());
            m.dirty = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_written_on_a_change_or_when_the_heartbeat_is_due_never_per_pass() {
        let book = StatusBook::new(Duration::from_secs(3600), Duration::from_secs(7200));
        let now = Timestamp::now();
        let first = book.observe("siem", BreakerState::Closed, None, now);
        assert!(first.is_some(), "the first pass reports");
        book.written("siem");
        for _ in 0..100 {
            assert!(
                book.observe("siem", BreakerState::Closed, None, now)
                    .is_none()
            );
        }
        let failed = book.observe("siem", BreakerState::Closed, Some("refused".into()), now);
        assert!(failed.is_none(), "a failure alone waits for the heartbeat");
        let opened = book
            .observe("siem", BreakerState::Open, None, now)
            .expect("a breaker change is written at once");
        assert_eq!(opened.breaker, BreakerState::Open);
        assert_eq!(opened.last_error.as_ref().unwrap().0, "refused");
        // Not marked written: the next pass tries again.
        assert!(
            book.observe("siem", BreakerState::Open, None, now)
                .is_some()
        );
        assert!(
            book.relay
                .starts_with(&format!("pid {}/", std::process::id()))
        );
    }

    #[test]
    fn breaker_states_round_trip_through_their_stored_text() {
        for s in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            assert_eq!(breaker_of(breaker_name(s)), s);
        }
        assert_eq!(breaker_of("garbage"), BreakerState::Open);
    }
}
