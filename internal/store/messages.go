package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/inbox"
)

const msgCols = `m.id, m.conversation_id, m.direction, m.sender_type, m.sender_id, m.sender_name, m.kind, m.text, m.content, m.location,
	m.external_id, m.reply_to_id, m.status, m.error, m.private, m.mentions, m.previous_text, m.edited_at, m.deleted_at, m.created_at`

func scanMessage(sc interface{ Scan(...any) error }) (inbox.Message, error) {
	var m inbox.Message
	var content, loc, mentions []byte
	var replyTo sql.NullString
	var edited, deleted sql.NullInt64
	var created int64
	if err := sc.Scan(&m.ID, &m.ConversationID, &m.Direction, &m.Sender.Type, &m.Sender.ID, &m.Sender.Name, &m.Kind, &m.Text, &content, &loc,
		&m.ExternalID, &replyTo, &m.Status, &m.Error, &m.Private, &mentions, &m.PreviousText, &edited, &deleted, &created); err != nil {
		return m, err
	}
	if len(content) > 0 {
		m.Content = json.RawMessage(append([]byte(nil), content...))
	}
	if len(loc) > 0 {
		m.Location = &inbox.Location{}
		if err := json.Unmarshal(loc, m.Location); err != nil {
			return m, err
		}
	}
	if len(mentions) > 0 {
		if err := json.Unmarshal(mentions, &m.Mentions); err != nil {
			return m, err
		}
	}
	m.ReplyToID = strPtr(replyTo)
	m.EditedAt, m.DeletedAt = fromNullTS(edited), fromNullTS(deleted)
	m.CreatedAt = fromTS(created)
	m.Attachments, m.Reactions = []inbox.Attachment{}, []inbox.Reaction{}
	return m, nil
}

const attCols = `a.id, a.message_id, a.kind, a.mime_type, a.filename, a.size, a.duration_ms, a.width, a.height, a.provider_ref, a.storage_key, a.workspace_id`

func scanAttachment(sc interface{ Scan(...any) error }) (inbox.Attachment, error) {
	var a inbox.Attachment
	var msg sql.NullString
	var ws string
	err := sc.Scan(&a.ID, &msg, &a.Kind, &a.MimeType, &a.Filename, &a.Size, &a.DurationMS, &a.Width, &a.Height, &a.ProviderRef, &a.StorageKey, &ws)
	a.MessageID = msg.String
	a.URL = attachmentURL(ws, a.ID)
	return a, err
}

// attachmentURL is the authenticated API path of an attachment's bytes.
func attachmentURL(wsID, id string) string {
	return "/api/v1/workspaces/" + wsID + "/attachments/" + id
}

// fillMessages loads attachments and reactions of messages.
func fillMessages(t *tx, ms []inbox.Message) error {
	if len(ms) == 0 {
		return nil
	}
	idx := make(map[string]int, len(ms))
	ids := make([]any, len(ms))
	for i, m := range ms {
		idx[m.ID] = i
		ids[i] = m.ID
	}
	in := placeholders(len(ids))
	rows, err := t.query(`SELECT `+attCols+` FROM attachments a WHERE a.message_id IN (`+in+`) ORDER BY a.message_id, a.created_at, a.id`, ids...)
	if err != nil {
		return err
	}
	for rows.Next() {
		a, err := scanAttachment(rows)
		if err != nil {
			rows.Close()
			return err
		}
		i := idx[a.MessageID]
		ms[i].Attachments = append(ms[i].Attachments, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = t.query(`SELECT message_id, emoji, actor_type, actor_id, actor_name FROM reactions WHERE message_id IN (`+in+`) ORDER BY message_id, created_at, actor_type, actor_id`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var mid string
		var r inbox.Reaction
		if err := rows.Scan(&mid, &r.Emoji, &r.By.Type, &r.By.ID, &r.By.Name); err != nil {
			return err
		}
		i := idx[mid]
		ms[i].Reactions = append(ms[i].Reactions, r)
	}
	return rows.Err()
}

func getMessage(t *tx, wsID, id string) (inbox.Message, error) {
	m, err := scanMessage(t.queryRow(`SELECT `+msgCols+` FROM messages m WHERE m.workspace_id = ? AND m.id = ?`, wsID, id))
	if err != nil {
		return m, noRows(err, "message")
	}
	ms := []inbox.Message{m}
	err = fillMessages(t, ms)
	return ms[0], err
}

func emitMessage(t *tx, wsID, id string) error {
	_, err := emitMessageGet(t, wsID, id)
	return err
}

// emitMessageGet appends the message's change and returns the message.
func emitMessageGet(t *tx, wsID, id string) (inbox.Message, error) {
	m, err := getMessage(t, wsID, id)
	if err != nil {
		return m, err
	}
	return m, t.emit(wsID, inbox.EntityMessage, inbox.OpUpsert, id, m)
}

// ListMessages returns the newest limit messages before the cursor, oldest first.
func (db *DB) ListMessages(ctx context.Context, wsID, conversationID, before string, limit int) (inbox.Page[inbox.Message], error) {
	page := inbox.Page[inbox.Message]{Items: []inbox.Message{}}
	limit = clampLimit(limit, 50, 200)
	err := db.read(ctx, func(t *tx) error {
		var x string
		if err := t.queryRow(`SELECT id FROM conversations WHERE workspace_id = ? AND id = ?`, wsID, conversationID).Scan(&x); err != nil {
			return noRows(err, "conversation")
		}
		q := `SELECT ` + msgCols + ` FROM messages m WHERE m.conversation_id = ?`
		args := []any{conversationID}
		if before != "" {
			at, id, err := decodeCursor(before)
			if err != nil {
				return err
			}
			q += ` AND (m.created_at, m.id) < (?, ?)`
			args = append(args, at, id)
		}
		q += ` ORDER BY m.created_at DESC, m.id DESC LIMIT ?`
		args = append(args, limit+1)
		rows, err := t.query(q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var ms []inbox.Message
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(ms) > limit {
			ms = ms[:limit]
			oldest := ms[limit-1]
			page.NextCursor = encodeCursor(ts(oldest.CreatedAt), oldest.ID)
		}
		for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
			ms[i], ms[j] = ms[j], ms[i]
		}
		if ms != nil {
			page.Items = ms
		}
		return fillMessages(t, page.Items)
	})
	return page, err
}

// GetMessage returns one message.
func (db *DB) GetMessage(ctx context.Context, wsID, id string) (inbox.Message, error) {
	var m inbox.Message
	err := db.read(ctx, func(t *tx) error {
		var err error
		m, err = getMessage(t, wsID, id)
		return err
	})
	return m, err
}

// preview is the one-line summary of a message in the queue, the same
// whether the message came through the API or a webhook.
func preview(kind, text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		switch kind {
		case inbox.KindText:
			return ""
		case inbox.KindUnsupported:
			return "[unsupported message]"
		}
		return "[" + kind + "]"
	}
	if utf8.RuneCountInString(text) > 140 {
		r := []rune(text)
		return string(r[:140]) + "…"
	}
	return text
}

// CreateMessage stores a message made through the API: a private note, or an
// outbound message (with its outbox row when m.Outbox). Uploads named in
// AttachmentIDs are attached. The conversation's activity moves; its last
// message summary only for non-private messages.
func (db *DB) CreateMessage(ctx context.Context, wsID string, in inbox.NewMessage) (inbox.Message, error) {
	var out inbox.Message
	if in.Direction == "" {
		in.Direction = "outbound"
	}
	if in.Kind == "" {
		in.Kind = inbox.KindText
	}
	var v inbox.Validator
	v.Check(in.Direction == "outbound" || in.Direction == "inbound", "direction", "must be inbound or outbound")
	v.Check(in.Sender.Type != "", "sender", "is required")
	v.Check(!(in.Outbox && in.Private), "private", "a private note is not sent")
	if err := v.Err(); err != nil {
		return out, err
	}
	if in.Status == "" {
		switch {
		case in.Outbox:
			in.Status = inbox.MsgQueued
		case in.Direction == "inbound":
			in.Status = inbox.MsgReceived
		default:
			in.Status = inbox.MsgSent
		}
	}
	err := db.write(ctx, func(t *tx) error {
		var channelID string
		if err := t.queryRow(`SELECT channel_id FROM conversations WHERE workspace_id = ? AND id = ?`, wsID, in.ConversationID).Scan(&channelID); err != nil {
			return noRows(err, "conversation")
		}
		if in.ReplyToID != nil && *in.ReplyToID != "" {
			var x string
			if err := t.queryRow(`SELECT id FROM messages WHERE workspace_id = ? AND conversation_id = ? AND id = ?`, wsID, in.ConversationID, *in.ReplyToID).Scan(&x); err != nil {
				if err == sql.ErrNoRows {
					return inbox.FieldError("validation failed", map[string]string{"reply_to_id": "is not a message of this conversation"})
				}
				return err
			}
		}
		id := newID()
		var content any
		if len(in.Content) > 0 {
			if !json.Valid(in.Content) {
				return inbox.FieldError("validation failed", map[string]string{"content": "is not JSON"})
			}
			content = string(in.Content)
		}
		var mentions any
		if len(in.Mentions) > 0 {
			mentions = jsonNull(in.Mentions)
		}
		if _, err := t.exec(`INSERT INTO messages (id, workspace_id, conversation_id, channel_id, direction, sender_type, sender_id, sender_name, kind, text, content,
			external_id, reply_to_id, status, private, mentions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?)`,
			id, wsID, in.ConversationID, channelID, in.Direction, in.Sender.Type, in.Sender.ID, in.Sender.Name, in.Kind, in.Text, content,
			nullStr(in.ReplyToID), in.Status, in.Private, mentions, ts(t.now)); err != nil {
			return err
		}
		for _, aid := range uniq(in.AttachmentIDs) {
			res, err := t.exec(`UPDATE attachments SET message_id = ? WHERE workspace_id = ? AND id = ? AND message_id IS NULL`, id, wsID, aid)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return inbox.FieldError("validation failed", map[string]string{"attachment_ids": "contains an unknown or already used upload"})
			}
		}
		if err := touchConversation(t, in.ConversationID, in.Direction, in.Private, preview(in.Kind, in.Text)); err != nil {
			return err
		}
		if in.Outbox {
			if _, err := t.exec(`INSERT INTO outbox (id, workspace_id, message_id, channel_id, state, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`,
				newID(), wsID, id, channelID, ts(t.now), ts(t.now)); err != nil {
				return err
			}
		}
		var err error
		if out, err = emitMessageGet(t, wsID, id); err != nil {
			return err
		}
		if err := emitConversation(t, wsID, in.ConversationID); err != nil {
			return err
		}
		if in.Sender.Type == "agent" && in.Sender.ID != "" && !in.Private {
			// Answering a conversation reads it.
			var role string
			if err := t.queryRow(`SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?`, wsID, in.Sender.ID).Scan(&role); err == nil {
				_, err = setReadCount(t, wsID, in.Sender.ID, in.ConversationID, func(int64) int64 { return 0 })
				return err
			} else if err != sql.ErrNoRows {
				return err
			}
		}
		return nil
	})
	return out, err
}

// touchConversation moves a conversation's activity for a new message.
func touchConversation(t *tx, convID, direction string, private bool, pv string) error {
	now := ts(t.now)
	if private {
		_, err := t.exec(`UPDATE conversations SET last_activity_at = ?, updated_at = ? WHERE id = ?`, now, now, convID)
		return err
	}
	if direction == "inbound" {
		_, err := t.exec(`UPDATE conversations SET last_activity_at = ?, updated_at = ?, last_message_preview = ?, last_message_at = ?, last_message_direction = ?,
			last_inbound_at = ?, inbound_count = inbound_count + 1 WHERE id = ?`, now, now, pv, now, direction, now, convID)
		return err
	}
	_, err := t.exec(`UPDATE conversations SET last_activity_at = ?, updated_at = ?, last_message_preview = ?, last_message_at = ?, last_message_direction = ? WHERE id = ?`,
		now, now, pv, now, direction, convID)
	return err
}

// AddReaction sets the actor's reaction on a message (one per actor). An
// operator's reaction (agent or bot) on a message the customer has (not a
// private note) is also our account's reaction at the provider: its
// delivery is queued in the outbox in the same transaction (see
// queueReaction) once the message has a provider id. Refusing what cannot
// be delivered (a channel without reactions, a message not sent yet) is the
// caller's check, before this: the adapter knows the channel.
func (db *DB) AddReaction(ctx context.Context, wsID, messageID string, r inbox.Reaction) (inbox.Message, error) {
	var out inbox.Message
	if strings.TrimSpace(r.Emoji) == "" || r.By.Type == "" || r.By.ID == "" {
		return out, inbox.FieldError("validation failed", map[string]string{"emoji": "is required"})
	}
	err := db.write(ctx, func(t *tx) error {
		target, err := reactionTargetOf(t, wsID, messageID)
		if err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO reactions (message_id, workspace_id, actor_type, actor_id, actor_name, emoji, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (message_id, actor_type, actor_id) DO UPDATE SET emoji = excluded.emoji, actor_name = excluded.actor_name, created_at = excluded.created_at`,
			messageID, wsID, r.By.Type, r.By.ID, r.By.Name, r.Emoji, ts(t.now)); err != nil {
			return err
		}
		if target.sendsReaction(r.By) {
			if err := queueReaction(t, target); err != nil {
				return err
			}
		}
		out, err = emitMessageGet(t, wsID, messageID)
		return err
	})
	return out, err
}

// RemoveReaction removes the actor's reaction from a message. For an
// operator on a message the customer has, the change is queued for the
// provider as AddReaction does, if a reaction of ours was ever queued for
// the message: there is nothing to take back at the provider otherwise (a
// reaction from before reactions were delivered, or on a channel that
// cannot send them), and the removal stays local.
func (db *DB) RemoveReaction(ctx context.Context, wsID, messageID string, by inbox.Actor) (inbox.Message, error) {
	var out inbox.Message
	err := db.write(ctx, func(t *tx) error {
		target, err := reactionTargetOf(t, wsID, messageID)
		if err != nil {
			return err
		}
		res, err := t.exec(`DELETE FROM reactions WHERE message_id = ? AND actor_type = ? AND actor_id = ?`, messageID, by.Type, by.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out, err = getMessage(t, wsID, messageID)
			return err
		}
		if target.sendsReaction(by) {
			var x int
			err := t.queryRow(`SELECT 1 FROM outbox WHERE message_id = ? AND kind = ? LIMIT 1`, messageID, OutboxReaction).Scan(&x)
			switch {
			case err == nil:
				if err := queueReaction(t, target); err != nil {
					return err
				}
			case err != sql.ErrNoRows:
				return err
			}
		}
		out, err = emitMessageGet(t, wsID, messageID)
		return err
	})
	return out, err
}

// reactionTarget is what deciding on a reaction's delivery needs to know
// about the message reacted to.
type reactionTarget struct {
	wsID, messageID, channelID, externalID string
	private                                bool
}

func reactionTargetOf(t *tx, wsID, messageID string) (reactionTarget, error) {
	rt := reactionTarget{wsID: wsID, messageID: messageID}
	err := t.queryRow(`SELECT channel_id, external_id, private FROM messages WHERE workspace_id = ? AND id = ?`, wsID, messageID).
		Scan(&rt.channelID, &rt.externalID, &rt.private)
	return rt, noRows(err, "message")
}

// sendsReaction reports whether by's reaction on the message goes to the
// provider: an operator's on a message the customer has, which needs its
// provider id. Private notes' reactions stay within the team; a contact's
// come from the provider.
func (rt reactionTarget) sendsReaction(by inbox.Actor) bool {
	return !rt.private && by.Type != "contact" && rt.externalID != ""
}

// ReactionPayload is an outbox reaction job's payload: set our account's
// reaction on the provider's message TargetID to Emoji ("" removes it).
type ReactionPayload struct {
	TargetID string `json:"target_id"`
	Emoji    string `json:"emoji"`
}

// queueReaction queues, in t, the job that sets our account's reaction on
// the target at the provider. A provider keeps one reaction per account,
// while several operators may react here: the job carries the latest
// operator reaction left on the message ("" when none is left: remove), so
// one operator's removal does not take down another's reaction. The jobs of
// the message not in flight are superseded by this one (it carries the whole
// state); one in flight goes first (a conversation's jobs keep their order).
// The newest job stays, sent or failed: RemoveReaction reads from it that
// the provider has had a reaction of ours on the message.
func queueReaction(t *tx, rt reactionTarget) error {
	var p ReactionPayload
	p.TargetID = rt.externalID
	err := t.queryRow(`SELECT emoji FROM reactions WHERE message_id = ? AND actor_type <> 'contact' ORDER BY created_at DESC, actor_type, actor_id LIMIT 1`,
		rt.messageID).Scan(&p.Emoji)
	if err != nil && err != sql.ErrNoRows {
		return err
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM outbox WHERE message_id = ? AND kind = ? AND state <> ?`, rt.messageID, OutboxReaction, OutboxSending); err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO outbox (id, workspace_id, message_id, channel_id, state, attempts, next_attempt_at, created_at, kind, payload)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
		newID(), rt.wsID, rt.messageID, rt.channelID, OutboxPending, ts(t.now), ts(t.now), OutboxReaction, string(payload))
	return err
}
