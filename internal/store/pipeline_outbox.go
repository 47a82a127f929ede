package store

// Outbound pipeline: claiming due outbox rows, recording send results,
// retries and the operator's manual retry. An outbox row is a job: sending
// its message (kind message) or setting our account's reaction on its
// message at the provider (kind reaction, see queueReaction).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Outbox states.
const (
	OutboxPending = "pending"
	OutboxSending = "sending" // an attempt is in flight (recorded before calling the provider)
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// Outbox job kinds.
const (
	OutboxMessage  = "message"  // send the message
	OutboxReaction = "reaction" // set our reaction on the message (payload: ReactionPayload)
)

// UncertainReason is the error of a message whose send was interrupted by a
// crash: the provider may or may not have it, so it is not re-sent blindly.
const UncertainReason = "delivery uncertain: the server stopped while this message was being sent; check with the customer, then retry if needed"

// OutboxItem is a claimed send with everything needed to build it.
// MessageID is the message sent, or the one reacted to when Reaction is set.
type OutboxItem struct {
	ID             string
	WorkspaceID    string
	MessageID      string
	ChannelID      string
	ConversationID string
	Attempts       int // including the current one

	Kind              string
	Text              string
	Content           json.RawMessage
	ReplyToExternalID string
	To                string // the contact's identifier on the channel
	ChatID            string // the conversation's provider chat id
	IsGroup           bool
	LastInboundAt     *time.Time
	Attachments       []inbox.Attachment
	// Reaction is set on a reaction job: set our reaction on the provider's
	// message Reaction.TargetID to Reaction.Emoji ("" removes it). Nothing
	// else of the message is sent.
	Reaction *channel.OutReaction
}

// plClaimable is the FROM and WHERE of the outbox rows a claim may take now
// (arguments: OutboxPending, now, OutboxPending, OutboxSending,
// OutboxMessage). Sends of one conversation go out in order: a row waits
// while an earlier one of its conversation is pending (retrying) or in
// flight. A reaction job holds up only a later reaction job on the same
// message, so that a retrying reaction never delays the messages.
const plClaimable = `FROM outbox o JOIN messages m ON m.id = o.message_id
	WHERE o.state = ? AND o.next_attempt_at <= ?
	AND NOT EXISTS (SELECT 1 FROM outbox o2 JOIN messages m2 ON m2.id = o2.message_id
		WHERE m2.conversation_id = m.conversation_id AND o2.state IN (?, ?)
		AND (o2.kind = ? OR o2.message_id = o.message_id)
		AND (o2.created_at < o.created_at OR (o2.created_at = o.created_at AND o2.id < o.id)))`

// ClaimOutbox marks up to limit due outbox rows as in flight (attempts+1,
// leased until now+lease) and returns them. Rows left in flight by a crashed
// node (lease expired) are not re-sent: their messages are marked failed as
// uncertain (see UncertainReason) and returned in uncertain for logging.
func (db *DB) ClaimOutbox(ctx context.Context, lease time.Duration, limit int) (items []OutboxItem, uncertain []string, err error) {
	// Most polls find nothing: a read says so without a write transaction
	// (which would hold the single SQLite writer, and empty the inbound
	// pipeline's cache, for nothing). Rows that become due meanwhile are
	// claimed at the next poll.
	var due bool
	err = db.read(ctx, func(t *tx) error {
		now := ts(t.now)
		return t.queryRow(`SELECT EXISTS (SELECT 1 `+plClaimable+`)
			OR EXISTS (SELECT 1 FROM outbox WHERE state = ? AND locked_until < ?)`,
			OutboxPending, now, OutboxPending, OutboxSending, OutboxMessage, OutboxSending, now).Scan(&due)
	})
	if err != nil || !due {
		return nil, nil, err
	}
	var ids []string
	err = db.write(ctx, func(t *tx) error {
		now := ts(t.now)
		// Interrupted attempts.
		rows, err := t.query(`SELECT id, message_id, workspace_id, kind FROM outbox WHERE state = ? AND locked_until < ?`, OutboxSending, now)
		if err != nil {
			return err
		}
		type stuck struct{ id, msg, ws, kind string }
		var st []stuck
		for rows.Next() {
			var s stuck
			if err := rows.Scan(&s.id, &s.msg, &s.ws, &s.kind); err != nil {
				rows.Close()
				return err
			}
			st = append(st, s)
		}
		rows.Close()
		for _, s := range st {
			if s.kind == OutboxReaction {
				// Setting a reaction again is harmless (the provider keeps
				// one per account): an interrupted one is simply due again.
				if _, err := t.exec(`UPDATE outbox SET state = ?, next_attempt_at = ?, locked_until = 0, attempt_started_at = NULL WHERE id = ?`,
					OutboxPending, now, s.id); err != nil {
					return err
				}
				continue
			}
			if err := plFailOutbox(t, s.id, s.msg, s.ws, UncertainReason); err != nil {
				return err
			}
			uncertain = append(uncertain, s.msg)
		}
		lock := ""
		if t.d.name == "postgres" {
			lock = " FOR UPDATE OF o SKIP LOCKED"
		}
		rows, err = t.query(`UPDATE outbox SET state = ?, attempts = attempts + 1, attempt_started_at = ?, locked_until = ?
			WHERE id IN (SELECT o.id `+plClaimable+`
				ORDER BY o.next_attempt_at, o.id LIMIT ?`+lock+`)
			RETURNING id`, OutboxSending, now, ts(t.now.Add(lease)), OutboxPending, now, OutboxPending, OutboxSending, OutboxMessage, limit)
		if err != nil {
			return err
		}
		ids, err = collectStrings(rows)
		return err
	})
	if err != nil {
		return nil, uncertain, err
	}
	for _, id := range ids {
		it, err := db.outboxItem(ctx, id)
		if err != nil {
			return items, uncertain, err
		}
		items = append(items, it)
	}
	return items, uncertain, nil
}

func (db *DB) outboxItem(ctx context.Context, id string) (OutboxItem, error) {
	var it OutboxItem
	err := db.read(ctx, func(t *tx) error {
		var content []byte
		var replyExt sql.NullString
		var lastIn sql.NullInt64
		var job, payload string
		err := t.queryRow(`SELECT o.id, o.workspace_id, o.message_id, o.channel_id, m.conversation_id, o.attempts, o.kind, o.payload,
				m.kind, m.text, m.content, r.external_id, c.external_chat_id, c.is_group, c.last_inbound_at,
				COALESCE((SELECT i.identifier FROM contact_identities i WHERE i.contact_id = c.contact_id AND i.channel_id = c.channel_id ORDER BY i.created_at LIMIT 1), '')
			FROM outbox o JOIN messages m ON m.id = o.message_id JOIN conversations c ON c.id = m.conversation_id
			LEFT JOIN messages r ON r.id = m.reply_to_id
			WHERE o.id = ?`, id).Scan(&it.ID, &it.WorkspaceID, &it.MessageID, &it.ChannelID, &it.ConversationID, &it.Attempts, &job, &payload,
			&it.Kind, &it.Text, &content, &replyExt, &it.ChatID, &it.IsGroup, &lastIn, &it.To)
		if err != nil {
			return noRows(err, "outbox item")
		}
		it.LastInboundAt = fromNullTS(lastIn)
		if job == OutboxReaction {
			var p ReactionPayload
			if err := json.Unmarshal([]byte(payload), &p); err != nil {
				return fmt.Errorf("outbox %s: reaction payload: %w", id, err)
			}
			it.Reaction = &channel.OutReaction{TargetID: p.TargetID, Emoji: p.Emoji}
			return nil
		}
		if len(content) > 0 {
			it.Content = json.RawMessage(content)
		}
		it.ReplyToExternalID = replyExt.String
		rows, err := t.query(`SELECT id, kind, mime_type, filename, size, duration_ms, width, height, provider_ref, storage_key
			FROM attachments WHERE message_id = ? ORDER BY created_at, id`, it.MessageID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a inbox.Attachment
			if err := rows.Scan(&a.ID, &a.Kind, &a.MimeType, &a.Filename, &a.Size, &a.DurationMS, &a.Width, &a.Height, &a.ProviderRef, &a.StorageKey); err != nil {
				return err
			}
			a.MessageID = it.MessageID
			it.Attachments = append(it.Attachments, a)
		}
		return rows.Err()
	})
	return it, err
}

// MarkOutboxSent records a successful send: the provider id(s), status sent
// (unless a faster status webhook already moved it further), change rows,
// and any status/reaction events that arrived before we knew the id.
func (db *DB) MarkOutboxSent(ctx context.Context, it OutboxItem, externalIDs []string) error {
	if it.Reaction != nil {
		return db.markReactionSent(ctx, it)
	}
	return db.write(ctx, func(t *tx) error {
		if _, err := t.exec(`UPDATE messages SET status = ?, error = '' WHERE id = ? AND status IN ('queued', 'failed')`, inbox.MsgSent, it.MessageID); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO message_statuses (message_id, status, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, it.MessageID, inbox.MsgSent, ts(t.now)); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE outbox SET state = ?, last_error = '', locked_until = 0 WHERE id = ?`, OutboxSent, it.ID); err != nil {
			return err
		}
		if err := plChannelActivity(t, "last_outbound_at", it.ChannelID, t.now); err != nil {
			return err
		}
		return plRecordSent(t, it, externalIDs)
	})
}

// FailOutboxPartly gives up a send of several parts that failed after some
// went out (the adapter's "partial" error): the message fails as with
// FailOutbox, and the provider ids of the parts sent are recorded on it so
// that their later statuses and echoes find it. One transaction; the
// message's change row shows its final state. A reaction job, or no id,
// is a plain FailOutbox.
func (db *DB) FailOutboxPartly(ctx context.Context, it OutboxItem, externalIDs []string, reason string) error {
	if it.Reaction != nil || !plAnyID(externalIDs) {
		return db.FailOutbox(ctx, it, reason)
	}
	return db.write(ctx, func(t *tx) error {
		if err := plFailOutboxRows(t, it.ID, it.MessageID, reason); err != nil {
			return err
		}
		// Some parts did go out.
		if err := plChannelActivity(t, "last_outbound_at", it.ChannelID, t.now); err != nil {
			return err
		}
		return plRecordSent(t, it, externalIDs)
	})
}

// plRecordSent records the provider ids of a send (with what waited for
// them) and emits its message.
func plRecordSent(t *tx, it OutboxItem, externalIDs []string) error {
	a := plNewApplier(t, inbox.Channel{ID: it.ChannelID, WorkspaceID: it.WorkspaceID})
	if err := plRecordExternalIDs(a, it, externalIDs); err != nil {
		return err
	}
	a.touch(inbox.EntityMessage, it.MessageID)
	return a.emitAll()
}

func plAnyID(ids []string) bool {
	for _, id := range ids {
		if id != "" {
			return true
		}
	}
	return false
}

// plRecordExternalIDs records the provider ids of the outbox item's sent
// message (the first is its external_id, the others further parts), then
// applies the status/reaction events that arrived before the ids were
// known. The caller sets the message's status first: those events move
// it on from there (a failed one stays failed). The caller emits.
func plRecordExternalIDs(a *plApplier, it OutboxItem, externalIDs []string) error {
	t := a.t
	for i, ext := range externalIDs {
		if ext == "" {
			continue
		}
		// An echo of this very send may have been stored first: it is
		// our message, so the echo copy goes.
		var other, dir string
		err := t.queryRow(`SELECT id, direction FROM messages WHERE workspace_id = ? AND channel_id = ? AND external_id = ? AND external_id <> '' AND id <> ?`,
			it.WorkspaceID, it.ChannelID, ext, it.MessageID).Scan(&other, &dir)
		if err == nil && dir == "outbound" {
			if _, err := t.exec(`DELETE FROM messages WHERE id = ?`, other); err != nil {
				return err
			}
			if err := t.emit(it.WorkspaceID, inbox.EntityMessage, inbox.OpDelete, other, nil); err != nil {
				return err
			}
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if i == 0 {
			if _, err := t.exec(`UPDATE messages SET external_id = ? WHERE id = ?`, ext, it.MessageID); err != nil {
				return err
			}
		} else if _, err := t.exec(`INSERT INTO message_external_ids (workspace_id, channel_id, external_id, message_id) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, it.WorkspaceID, it.ChannelID, ext, it.MessageID); err != nil {
			return err
		}
	}
	for _, ext := range externalIDs {
		if err := a.applyPending(ext); err != nil {
			return err
		}
	}
	return nil
}

// markReactionSent records a delivered reaction: the job is done and the
// channel sent. The reacted-to message itself does not change (the
// reaction is already stored on it).
func (db *DB) markReactionSent(ctx context.Context, it OutboxItem) error {
	return db.write(ctx, func(t *tx) error {
		if _, err := t.exec(`UPDATE outbox SET state = ?, last_error = '', locked_until = 0 WHERE id = ?`, OutboxSent, it.ID); err != nil {
			return err
		}
		return plChannelActivity(t, "last_outbound_at", it.ChannelID, t.now)
	})
}

// RetryOutboxLater puts a failed attempt back in the queue for at.
func (db *DB) RetryOutboxLater(ctx context.Context, it OutboxItem, reason string, at time.Time) error {
	return db.write(ctx, func(t *tx) error {
		if _, err := t.exec(`UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ?, locked_until = 0, attempt_started_at = NULL WHERE id = ? AND state = ?`,
			OutboxPending, ts(at), plTruncate(reason, 1000), it.ID, OutboxSending); err != nil {
			return err
		}
		what := "send"
		if it.Reaction != nil {
			what = "reaction"
		}
		return plChannelError(t, `id = ?`, it.ChannelID, what+" (will retry): "+reason)
	})
}

// FailOutbox gives a send up: the message becomes failed with the provider's
// reason. A reaction job that fails leaves its message as it is: the
// failure shows on the outbox row and as the channel's last error.
func (db *DB) FailOutbox(ctx context.Context, it OutboxItem, reason string) error {
	return db.write(ctx, func(t *tx) error {
		if it.Reaction != nil {
			return plFailReaction(t, it.ID, it.ChannelID, reason)
		}
		return plFailOutbox(t, it.ID, it.MessageID, it.WorkspaceID, reason)
	})
}

func plFailReaction(t *tx, outboxID, channelID, reason string) error {
	if reason == "" {
		reason = "the provider refused the reaction"
	}
	if _, err := t.exec(`UPDATE outbox SET state = ?, last_error = ?, locked_until = 0, attempt_started_at = NULL WHERE id = ?`, OutboxFailed, plTruncate(reason, 1000), outboxID); err != nil {
		return err
	}
	return plChannelError(t, `id = ?`, channelID, "reaction not delivered: "+reason)
}

func plFailOutbox(t *tx, outboxID, messageID, wsID, reason string) error {
	if err := plFailOutboxRows(t, outboxID, messageID, reason); err != nil {
		return err
	}
	return emitMessage(t, wsID, messageID)
}

// plFailOutboxRows is plFailOutbox without the message's change row.
func plFailOutboxRows(t *tx, outboxID, messageID, reason string) error {
	if reason == "" {
		reason = "the provider refused the message"
	}
	if _, err := t.exec(`UPDATE outbox SET state = ?, last_error = ?, locked_until = 0, attempt_started_at = NULL WHERE id = ?`, OutboxFailed, plTruncate(reason, 1000), outboxID); err != nil {
		return err
	}
	if err := plChannelError(t, `id = (SELECT channel_id FROM outbox WHERE id = ?)`, outboxID, "send failed: "+reason); err != nil {
		return err
	}
	if _, err := t.exec(`UPDATE messages SET status = ?, error = ? WHERE id = ?`, inbox.MsgFailed, plTruncate(reason, 1000), messageID); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO message_statuses (message_id, status, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, messageID, inbox.MsgFailed, ts(t.now))
	return err
}

// RetryMessage re-queues a failed outbound message (POST /messages/{id}/retry).
// Conflict when the message is not failed.
func (db *DB) RetryMessage(ctx context.Context, wsID, messageID string) (inbox.Message, error) {
	var out inbox.Message
	err := db.write(ctx, func(t *tx) error {
		var status, dir, channelID string
		err := t.queryRow(`SELECT status, direction, channel_id FROM messages WHERE id = ? AND workspace_id = ?`, messageID, wsID).Scan(&status, &dir, &channelID)
		if err != nil {
			return noRows(err, "message")
		}
		if dir != "outbound" || status != inbox.MsgFailed {
			return inbox.Errorf(inbox.Conflict, "only a failed outbound message can be retried (this one is %s)", status)
		}
		if _, err := t.exec(`UPDATE messages SET status = ?, error = '' WHERE id = ?`, inbox.MsgQueued, messageID); err != nil {
			return err
		}
		res, err := t.exec(`UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = ?, last_error = '', locked_until = 0, attempt_started_at = NULL
			WHERE message_id = ? AND kind = ?`, OutboxPending, ts(t.now), messageID, OutboxMessage)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := t.exec(`INSERT INTO outbox (id, workspace_id, message_id, channel_id, state, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
				newID(), wsID, messageID, channelID, OutboxPending, ts(t.now), ts(t.now)); err != nil {
				return err
			}
		}
		out, err = emitMessageGet(t, wsID, messageID)
		return err
	})
	return out, err
}

// OutboxState returns a message's send row's state, attempts and last error (tests, diagnostics).
func (db *DB) OutboxState(ctx context.Context, messageID string) (state string, attempts int, lastError string, err error) {
	err = db.read(ctx, func(t *tx) error {
		return noRows(t.queryRow(`SELECT state, attempts, last_error FROM outbox WHERE message_id = ? AND kind = ?`, messageID, OutboxMessage).
			Scan(&state, &attempts, &lastError), "outbox row")
	})
	return
}

// OutboxJob is one outbox row as diagnostics show it.
type OutboxJob struct {
	ID        string
	Kind      string // OutboxMessage or OutboxReaction
	State     string
	Attempts  int
	LastError string
	Payload   string // a reaction job's ReactionPayload as JSON
}

// OutboxJobs returns the outbox rows of a message (its send and the
// reaction jobs on it), oldest first (tests, diagnostics).
func (db *DB) OutboxJobs(ctx context.Context, messageID string) ([]OutboxJob, error) {
	var out []OutboxJob
	err := db.read(ctx, func(t *tx) error {
		rows, err := t.query(`SELECT id, kind, state, attempts, last_error, payload FROM outbox WHERE message_id = ? ORDER BY created_at, id`, messageID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j OutboxJob
			if err := rows.Scan(&j.ID, &j.Kind, &j.State, &j.Attempts, &j.LastError, &j.Payload); err != nil {
				return err
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	return out, err
}
