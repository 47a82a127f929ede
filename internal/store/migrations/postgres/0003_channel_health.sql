-- Channel health: when the channel last received, last sent and last failed.
-- Updated by the pipeline without change rows (health is read on demand).
ALTER TABLE channels ADD COLUMN last_inbound_at BIGINT;
ALTER TABLE channels ADD COLUMN last_outbound_at BIGINT;
ALTER TABLE channels ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN last_error_at BIGINT;
