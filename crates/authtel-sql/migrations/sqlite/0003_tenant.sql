-- The tenant a record belongs to (AuditEvent::tenant_id): an opaque id, screened as an
-- identifier by core's policy. Queries for one tenant (AuditQuery::tenant) use the index.
ALTER TABLE audit_events ADD COLUMN tenant_id TEXT;
CREATE INDEX IF NOT EXISTS audit_events_tenant_time ON audit_events (tenant_id, occurred_at);
