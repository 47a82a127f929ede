-- Fewer index entries to move per inbound message. Every new message bumps
-- its conversation's last_activity_at, which moves the conversation inside
-- each activity-ordered index, and adds the message to each message index;
-- each of those is a random page written to the WAL and checkpointed.
--
-- Assignee and team orderings: "assigned to X" and "team X" (an equality,
-- which implies NOT NULL) need no entry for unassigned or team-less
-- conversations. The unassigned queue has its own, so a conversation is in
-- one of the two assignee indexes, never both.
DROP INDEX conversations_assignee;
CREATE INDEX conversations_assignee ON conversations(workspace_id, assignee_id, last_activity_at, id) WHERE assignee_id IS NOT NULL;
CREATE INDEX conversations_unassigned ON conversations(workspace_id, last_activity_at, id) WHERE assignee_id IS NULL;
-- Team and channel orderings end with the id, as the queue's ORDER BY does:
-- without it the planner walks the workspace's activity index instead.
DROP INDEX conversations_team;
CREATE INDEX conversations_team ON conversations(workspace_id, team_id, last_activity_at, id) WHERE team_id IS NOT NULL;
DROP INDEX conversations_channel;
CREATE INDEX conversations_channel ON conversations(workspace_id, channel_id, last_activity_at, id);
-- Messages by sender served only contact merges, which now find a contact's
-- messages through its conversations and group memberships
-- (messages_history).
DROP INDEX messages_sender;
