-- An outbox row is a job for the outbound workers: sending its message
-- (kind 'message'), or setting our account's reaction on its message at the
-- provider (kind 'reaction', payload {"target_id","emoji"}; emoji "" removes).
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE outbox ADD COLUMN payload TEXT NOT NULL DEFAULT '';
