//! What an operator can see of the outbox: per-forwarder delivery state and dead letters.

use std::time::Duration;

use authtel_core::audit::Timestamp;
use uuid::Uuid;

/// Delivery state of one forwarder, as [`AuditStore::delivery_state`](crate::AuditStore)
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwarderState {
    /// The forwarder id.
    pub forwarder: String,
    /// Entries still to deliver (including ones waiting for a retry).
    pub pending: u64,
    /// Entries dead-lettered after their last attempt or a permanent error.
    pub dead: u64,
    /// Entries delivered and not yet purged.
    pub done: u64,
    /// Age of the oldest pending entry: how far this forwarder lags behind.
    pub lag: Duration,
}

/// One dead-lettered entry and why it died.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The audit record it carried.
    pub event_id: Uuid,
    /// The forwarder that failed.
    pub forwarder: String,
    /// How many deliveries were attempted.
    pub attempts: u32,
    /// The last error, as text.
    pub reason: String,
    /// When it was dead-lettered.
    pub at: Timestamp,
}

/// What one relay pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Entries claimed.
    pub claimed: u64,
    /// Entries delivered and marked done.
    pub delivered: u64,
    /// Entries that failed and were rescheduled.
    pub retried: u64,
    /// Entries dead-lettered.
    pub dead: u64,
}

impl RelayPass {
    pub(crate) fn add(&mut self, other: RelayPass) {
        self.claimed += other.claimed;
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.dead += other.dead;
    }
}

/// Result of a retention purge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Audit rows deleted (or, on a dry run, that would be).
    pub events: u64,
    /// Finished outbox entries deleted (or that would be).
    pub outbox: u64,
}

/// The answer of [`AuditStore::health`](crate::AuditStore).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The largest lag over all forwarders.
    pub max_lag: Duration,
    /// Dead-lettered entries over all forwarders.
    pub dead: u64,
    /// Whether the lag is under the threshold.
    pub ok: bool,
}
