-- The live feed's positions (AuditStore::feed_after). A row's position is stamped after its
-- transaction has finished: feed_xid is the inserting transaction's id, and a reader stamps
-- rows whose feed_xid is below the oldest transaction still running
-- (pg_snapshot_xmin(pg_current_snapshot())), so no row can later appear below a position a
-- reader has already passed. Existing rows get the migration's transaction id and are
-- stamped by the first reader.
CREATE SEQUENCE IF NOT EXISTS audit_feed_seq;
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS feed_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS feed_pos bigint;
CREATE INDEX IF NOT EXISTS audit_events_feed_pos ON audit_events (feed_pos) WHERE feed_pos IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_events_feed_unstamped ON audit_events (feed_xid) WHERE feed_pos IS NULL;
