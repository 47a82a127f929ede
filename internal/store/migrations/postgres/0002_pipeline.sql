-- Pipeline additions (ingest, outbound, media cache). Keep in step with ../sqlite/0002_pipeline.sql.

-- One worker at a time processes a channel's inbound entries (in id order).
CREATE TABLE inbound_leases (
    channel_id   TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    locked_until BIGINT NOT NULL
);
CREATE INDEX inbound_log_channel_pending ON inbound_log(channel_id, state, id);

-- Events whose target message is not known yet (reaction, edit, delete,
-- status before the message); applied when the target arrives.
CREATE TABLE pending_events (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL,
    channel_id         TEXT NOT NULL,
    target_external_id TEXT NOT NULL,
    event              JSONB NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX pending_events_target ON pending_events(channel_id, target_external_id);

-- Further provider ids of one message (a long text sent as several messages).
CREATE TABLE message_external_ids (
    workspace_id TEXT NOT NULL,
    channel_id   TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    message_id   TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, channel_id, external_id)
);

ALTER TABLE outbox ADD COLUMN attempt_started_at BIGINT;
ALTER TABLE attachments ADD COLUMN cached_at BIGINT;
ALTER TABLE attachments ADD COLUMN accessed_at BIGINT;
CREATE INDEX attachments_cached ON attachments(accessed_at) WHERE storage_key <> '';
