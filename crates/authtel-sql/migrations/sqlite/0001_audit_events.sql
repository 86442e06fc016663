-- authtel-sql schema for SQLite.
-- occurred_at: INTEGER microseconds since the Unix epoch, UTC (sortable, exact, cheap to compare).
-- event_id: the UUIDv7 as lowercase hyphenated TEXT (sorts in time order).
CREATE TABLE IF NOT EXISTS audit_events (
    event_id       TEXT    NOT NULL PRIMARY KEY,
    occurred_at    INTEGER NOT NULL,
    action         TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    actor_id       TEXT,
    actor_type     TEXT,
    target_id      TEXT,
    target_type    TEXT,
    session_id     TEXT,
    client_ip      TEXT,
    user_agent     TEXT,
    resource       TEXT,
    operation      TEXT,
    reason         TEXT,
    span_id        TEXT,
    trace_id       TEXT,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    schema_version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (occurred_at, event_id);
CREATE INDEX IF NOT EXISTS audit_events_actor_time ON audit_events (actor_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_events_ip_time ON audit_events (client_ip, occurred_at);
CREATE INDEX IF NOT EXISTS audit_events_action_time ON audit_events (action, occurred_at);

-- One row per (event, forwarder): the transactional outbox. Times are unix microseconds.
CREATE TABLE IF NOT EXISTS audit_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL,
    forwarder       TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_error      TEXT,
    UNIQUE (event_id, forwarder)
);
CREATE INDEX IF NOT EXISTS audit_outbox_due ON audit_outbox (forwarder, next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS audit_outbox_finished ON audit_outbox (updated_at)
    WHERE status <> 'pending';
