-- Inbound log indexes that a state change touches as little as possible:
-- marking an entry done removes it from the partial "due" index and adds it
-- at the end of the "done" one, instead of moving it inside three indexes.
DROP INDEX inbound_log_pending;
DROP INDEX inbound_log_chat;
DROP INDEX inbound_log_channel_pending;
-- A channel's entries waiting to be applied, in order (claims, workers).
CREATE INDEX inbound_log_due ON inbound_log(channel_id, id) WHERE state = 'pending';
-- Applied entries by age (pruning).
CREATE INDEX inbound_log_done ON inbound_log(received_at) WHERE state = 'done';
-- Entries given up on (counts, reprocess).
CREATE INDEX inbound_log_failed ON inbound_log(channel_id, id) WHERE state = 'failed';
-- (A reprocess reads the log in id order, which is append order.)
