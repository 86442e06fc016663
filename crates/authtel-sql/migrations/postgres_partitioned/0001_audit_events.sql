-- authtel-sql schema for PostgreSQL with monthly range partitions on occurred_at.
-- A partitioned table's unique keys must include the partition key, so the key is
-- (event_id, occurred_at): redelivered records (same id, same time) are still deduplicated.
-- Rows outside every monthly partition land in audit_events_default; create partitions ahead
-- of time with AuditStore::create_partitions.
CREATE TABLE IF NOT EXISTS audit_events (
    event_id       uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    action         text        NOT NULL,
    outcome        text        NOT NULL,
    actor_id       text,
    actor_type     text,
    target_id      text,
    target_type    text,
    session_id     text,
    client_ip      text,
    user_agent     text,
    resource       text,
    operation      text,
    reason         text,
    span_id        text,
    trace_id       text,
    metadata       text        NOT NULL DEFAULT '{}',
    schema_version integer     NOT NULL,
    PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE IF NOT EXISTS audit_events_default PARTITION OF audit_events DEFAULT;
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (occurred_at, event_id);
CREATE INDEX IF NOT EXISTS audit_events_actor_time ON audit_events (actor_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_events_ip_time ON audit_events (client_ip, occurred_at);
CREATE INDEX IF NOT EXISTS audit_events_action_time ON audit_events (action, occurred_at);

CREATE TABLE IF NOT EXISTS audit_outbox (
    id              bigserial PRIMARY KEY,
    event_id        uuid   NOT NULL,
    forwarder       text   NOT NULL,
    status          text   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    last_error      text,
    UNIQUE (event_id, forwarder)
);
CREATE INDEX IF NOT EXISTS audit_outbox_due ON audit_outbox (forwarder, next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS audit_outbox_finished ON audit_outbox (updated_at)
    WHERE status <> 'pending';
