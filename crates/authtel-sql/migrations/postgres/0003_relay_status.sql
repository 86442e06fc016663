-- What each running relay last saw of each forwarder (AuditStore::relay_status): its circuit
-- breaker, since when, the last delivery failure (screened text, as the outbox's last_error)
-- and a heartbeat. A relay writes its rows when the breaker changes and at most once per
-- heartbeat interval otherwise, never per record; it deletes them when it shuts down.
-- Times are unix microseconds; stale_after is how long after heartbeat_at the relay
-- promises its next write.
CREATE TABLE IF NOT EXISTS audit_relay_status (
    relay         text    NOT NULL,
    forwarder     text    NOT NULL,
    breaker       text    NOT NULL CHECK (breaker IN ('closed', 'open', 'half_open')),
    breaker_since bigint  NOT NULL,
    last_error    text,
    last_error_at bigint,
    heartbeat_at  bigint  NOT NULL,
    stale_after   bigint  NOT NULL,
    PRIMARY KEY (relay, forwarder)
);
