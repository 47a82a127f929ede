-- Fewer index entries to move per inbound message. Every new message bumps
-- its conversation's last_activity_at, which moves the conversation inside
-- each activity-ordered index, and adds the message to each message index;
-- each of those is a random page written to the WAL and checkpointed.
--
-- Assignee and team orderings only serve "assigned to X" and "team X"
-- (an equality, which implies NOT NULL): unassigned and team-less
-- conversations need no entry. The unassigned queue is served by
-- conversations_status.
DROP INDEX conversations_assignee;
CREATE INDEX conversations_assignee ON conversations(workspace_id, assignee_id, last_activity_at, id) WHERE assignee_id IS NOT NULL;
DROP INDEX conversations_team;
CREATE INDEX conversations_team ON conversations(workspace_id, team_id, last_activity_at) WHERE team_id IS NOT NULL;
-- Messages by sender served only contact merges, which now find a contact's
-- messages through its conversations and group memberships
-- (messages_history).
DROP INDEX messages_sender;
