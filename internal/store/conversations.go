package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// convSelect reads a conversation with its channel kind, contact summary and
// (when a user is given) that user's read position.
const convSelect = `SELECT c.id, c.number, c.channel_id, ch.kind, c.contact_id, ct.name, ct.avatar_url, c.status, c.priority,
	c.snoozed_until, c.assignee_id, c.team_id, c.is_group, c.title, c.group_meta, c.external_chat_id,
	c.last_message_preview, c.last_message_at, c.last_message_direction, c.last_inbound_at, c.inbound_count,
	c.created_at, c.updated_at, c.last_activity_at,
	(SELECT rs.read_count FROM read_state rs WHERE rs.conversation_id = c.id AND rs.user_id = ?)
	FROM conversations c
	JOIN channels ch ON ch.id = c.channel_id
	JOIN contacts ct ON ct.id = c.contact_id`

type convRow struct {
	inbox.Conversation
	activity int64
}

func scanConversation(sc interface{ Scan(...any) error }, withUser bool) (convRow, error) {
	var r convRow
	c := &r.Conversation
	var snoozed, lastAt, lastIn sql.NullInt64
	var assignee, team sql.NullString
	var meta []byte
	var preview, dir string
	var inbound int64
	var readCount sql.NullInt64
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.Number, &c.ChannelID, &c.ChannelKind, &c.Contact.ID, &c.Contact.Name, &c.Contact.AvatarURL, &c.Status, &c.Priority,
		&snoozed, &assignee, &team, &c.IsGroup, &c.Title, &meta, &c.ExternalChat,
		&preview, &lastAt, &dir, &lastIn, &inbound, &created, &updated, &r.activity, &readCount); err != nil {
		return r, err
	}
	c.SnoozedUntil, c.LastInboundAt = fromNullTS(snoozed), fromNullTS(lastIn)
	c.AssigneeID, c.TeamID = strPtr(assignee), strPtr(team)
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	if lastAt.Valid {
		c.LastMessage = &inbox.LastMessage{Preview: preview, At: fromTS(lastAt.Int64), Direction: dir}
	}
	if len(meta) > 0 {
		if err := decodeJSON(meta, &c.GroupMeta); err != nil {
			return r, err
		}
	}
	c.Labels = []string{}
	if withUser {
		unread := inbound
		if readCount.Valid {
			unread = inbound - readCount.Int64
		}
		c.UnreadCount = int(max(unread, 0))
	}
	return r, nil
}

// queryConversations runs convSelect with a WHERE clause and fills labels.
func queryConversations(t *tx, userID, where string, args []any, limit int) ([]inbox.Conversation, error) {
	rows, err := queryConvRows(t, userID, where, args, "", limit)
	if err != nil {
		return nil, err
	}
	out := make([]inbox.Conversation, len(rows))
	for i, r := range rows {
		out[i] = r.Conversation
	}
	return out, fillLabels(t, out)
}

func queryConvRows(t *tx, userID, where string, args []any, extra string, limit int) ([]convRow, error) {
	q := convSelect + ` WHERE ` + where + extra + ` ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`
	all := append([]any{userID}, args...)
	all = append(all, limit)
	rows, err := t.query(q, all...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []convRow{}
	for rows.Next() {
		r, err := scanConversation(rows, userID != "")
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func fillLabels(t *tx, cs []inbox.Conversation) error {
	if len(cs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(cs))
	ids := make([]any, len(cs))
	for i, c := range cs {
		idx[c.ID] = i
		ids[i] = c.ID
	}
	rows, err := t.query(`SELECT conversation_id, label_id FROM conversation_labels WHERE conversation_id IN (`+placeholders(len(ids))+`) ORDER BY conversation_id, created_at, label_id`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var cid, lid string
		if err := rows.Scan(&cid, &lid); err != nil {
			return err
		}
		i := idx[cid]
		cs[i].Labels = append(cs[i].Labels, lid)
	}
	return rows.Err()
}

func getConversation(t *tx, wsID, userID, id string) (inbox.Conversation, error) {
	cs, err := queryConversations(t, userID, `c.workspace_id = ? AND c.id = ?`, []any{wsID, id}, 1)
	if err != nil {
		return inbox.Conversation{}, err
	}
	if len(cs) == 0 {
		return inbox.Conversation{}, notFound("conversation")
	}
	return cs[0], nil
}

// emitConversation appends the user-neutral conversation to the change log.
func emitConversation(t *tx, wsID, id string) error {
	c, err := getConversation(t, wsID, "", id)
	if err != nil {
		return err
	}
	return t.emit(wsID, inbox.EntityConversation, inbox.OpUpsert, id, c)
}

// viewCondition is the SQL condition of a queue view. Multi-status views
// exclude statuses (so the activity index keeps the order). The unassigned
// argument is the "nobody assigned" test: IS NULL on conversations, the empty
// string on conversation_counts.
func viewCondition(view, userID, unassigned string) (string, []any, error) {
	switch view {
	case inbox.ViewMine:
		return ` AND c.assignee_id = ? AND c.status NOT IN ('resolved', 'spam')`, []any{userID}, nil
	case inbox.ViewUnassigned:
		return ` AND ` + unassigned + ` AND c.status IN ('open', 'pending')`, nil, nil
	case inbox.ViewOpen:
		return ` AND c.status NOT IN ('snoozed', 'resolved', 'spam')`, nil, nil
	case inbox.ViewAll, "":
		return ` AND c.status <> 'spam'`, nil, nil
	case inbox.ViewClosed:
		return ` AND c.status = 'resolved'`, nil, nil
	case inbox.ViewSpam:
		return ` AND c.status = 'spam'`, nil, nil
	}
	return "", nil, inbox.FieldError("validation failed", map[string]string{"view": "must be mine, unassigned, open, all, closed or spam"})
}

// convQuery is the filter of a queue (without the cursor): the WHERE clause
// on conversations, and, when only view, status and assignee filter, the
// WHERE clause on conversation_counts that gives the total without a scan.
type convQuery struct {
	where        string
	args         []any
	needsContact bool
	countWhere   string // "" when the total needs COUNT(*)
	countArgs    []any
}

// conversationWhere builds the filter of a queue.
func conversationWhere(wsID string, f inbox.ConversationFilter) (convQuery, error) {
	q := convQuery{where: `c.workspace_id = ?`, args: []any{wsID}, countWhere: `c.workspace_id = ?`, countArgs: []any{wsID}}
	if f.View == inbox.ViewMine && f.UserID == "" {
		return q, inbox.FieldError("validation failed", map[string]string{"view": "mine needs a user"})
	}
	cond, cargs, err := viewCondition(f.View, f.UserID, `c.assignee_id IS NULL`)
	if err != nil {
		return q, err
	}
	ccond, _, _ := viewCondition(f.View, f.UserID, `c.assignee_id = ''`)
	q.where += cond
	q.args = append(q.args, cargs...)
	q.countWhere += ccond
	q.countArgs = append(q.countArgs, cargs...)
	countable := true
	if f.Status != "" {
		if !inbox.ValidConversationStatus(f.Status) {
			return q, inbox.FieldError("validation failed", map[string]string{"status": "is not a conversation status"})
		}
		q.where += ` AND c.status = ?`
		q.args = append(q.args, f.Status)
		q.countWhere += ` AND c.status = ?`
		q.countArgs = append(q.countArgs, f.Status)
	}
	if f.Assignee == "none" {
		q.where += ` AND c.assignee_id IS NULL`
		q.countWhere += ` AND c.assignee_id = ''`
	} else if f.Assignee != "" {
		q.where += ` AND c.assignee_id = ?`
		q.args = append(q.args, f.Assignee)
		q.countWhere += ` AND c.assignee_id = ?`
		q.countArgs = append(q.countArgs, f.Assignee)
	}
	if f.Channel != "" {
		countable = false
		q.where += ` AND c.channel_id = ?`
		q.args = append(q.args, f.Channel)
	}
	if f.Team != "" {
		countable = false
		q.where += ` AND c.team_id = ?`
		q.args = append(q.args, f.Team)
	}
	if f.Label != "" {
		countable = false
		q.where += ` AND EXISTS (SELECT 1 FROM conversation_labels cl WHERE cl.conversation_id = c.id AND cl.label_id = ?)`
		q.args = append(q.args, f.Label)
	}
	if s := strings.TrimSpace(f.Q); s != "" {
		countable = false
		p := likePattern(s)
		q.needsContact = true
		q.where += ` AND (lower(c.title) LIKE ? ESCAPE '\' OR lower(ct.name) LIKE ? ESCAPE '\'
			OR EXISTS (SELECT 1 FROM contact_emails e WHERE e.contact_id = c.contact_id AND e.email LIKE ? ESCAPE '\')
			OR EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.contact_id AND p.phone LIKE ? ESCAPE '\')
			OR EXISTS (SELECT 1 FROM contact_identities i WHERE i.contact_id = c.contact_id AND lower(i.identifier) LIKE ? ESCAPE '\'))`
		q.args = append(q.args, p, p, p, p, p)
	}
	if !countable {
		q.countWhere, q.countArgs = "", nil
	}
	return q, nil
}

// ListConversations returns one page of a queue, newest activity first, with
// the total for the filter and the viewer's unread counts.
func (db *DB) ListConversations(ctx context.Context, wsID string, f inbox.ConversationFilter) (inbox.Page[inbox.Conversation], error) {
	var page inbox.Page[inbox.Conversation]
	err := db.read(ctx, func(t *tx) error {
		var err error
		page, err = listConversations(t, wsID, f, 100)
		return err
	})
	return page, err
}

func listConversations(t *tx, wsID string, f inbox.ConversationFilter, maxLimit int) (inbox.Page[inbox.Conversation], error) {
	page := inbox.Page[inbox.Conversation]{Items: []inbox.Conversation{}}
	limit := clampLimit(f.Limit, 25, maxLimit)
	cq, err := conversationWhere(wsID, f)
	if err != nil {
		return page, err
	}
	extra := ""
	var pargs []any
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return page, err
		}
		extra = ` AND (c.last_activity_at, c.id) < (?, ?)`
		pargs = []any{at, id}
	}
	rows, err := queryConvRows(t, f.UserID, cq.where, append(append([]any{}, cq.args...), pargs...), extra, limit+1)
	if err != nil {
		return page, err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		page.NextCursor = encodeCursor(last.activity, last.ID)
	}
	for _, r := range rows {
		page.Items = append(page.Items, r.Conversation)
	}
	if err := fillLabels(t, page.Items); err != nil {
		return page, err
	}
	total, err := countConversations(t, cq)
	if err != nil {
		return page, err
	}
	page.Total = &total
	return page, nil
}

// countConversations gives the total of a queue: from the trigger-kept
// counters when the filter allows, else with COUNT(*).
func countConversations(t *tx, cq convQuery) (int, error) {
	var n int64
	if cq.countWhere != "" {
		err := t.queryRow(`SELECT COALESCE(SUM(c.n), 0) FROM conversation_counts c WHERE `+cq.countWhere, cq.countArgs...).Scan(&n)
		return int(n), err
	}
	q := `SELECT COUNT(*) FROM conversations c`
	if cq.needsContact {
		q += ` JOIN contacts ct ON ct.id = c.contact_id`
	}
	err := t.queryRow(q+` WHERE `+cq.where, cq.args...).Scan(&n)
	return int(n), err
}

// GetConversation returns one conversation with the user's unread count.
func (db *DB) GetConversation(ctx context.Context, wsID, userID, id string) (inbox.Conversation, error) {
	var c inbox.Conversation
	err := db.read(ctx, func(t *tx) error {
		var err error
		c, err = getConversation(t, wsID, userID, id)
		return err
	})
	return c, err
}

// nextConversationNumber allocates the workspace's next display number.
func nextConversationNumber(t *tx, wsID string) (int64, error) {
	var n int64
	err := t.queryRow(`UPDATE conversation_counters SET last_number = last_number + 1 WHERE workspace_id = ? RETURNING last_number`, wsID).Scan(&n)
	return n, noRows(err, "workspace")
}

// CreateConversation starts a conversation with a contact on a channel, or
// returns the one still open (open, pending or snoozed) between them.
func (db *DB) CreateConversation(ctx context.Context, wsID, contactID, channelID string) (inbox.Conversation, bool, error) {
	var c inbox.Conversation
	created := false
	err := db.write(ctx, func(t *tx) error {
		var x string
		// Locking the contact serialises concurrent starts, so only one open conversation results.
		if err := t.queryRow(`SELECT id FROM contacts WHERE workspace_id = ? AND id = ?`+t.d.forUpdate(), wsID, contactID).Scan(&x); err != nil {
			return noRows(err, "contact")
		}
		if _, err := getChannel(t, wsID, channelID); err != nil {
			return err
		}
		err := t.queryRow(`SELECT id FROM conversations WHERE workspace_id = ? AND contact_id = ? AND channel_id = ? AND is_group = FALSE
			AND status IN ('open', 'pending', 'snoozed') ORDER BY last_activity_at DESC, id DESC LIMIT 1`, wsID, contactID, channelID).Scan(&x)
		if err == nil {
			c, err = getConversation(t, wsID, "", x)
			return err
		}
		if err != sql.ErrNoRows {
			return err
		}
		id, err := insertConversation(t, wsID, newConversation{ContactID: contactID, ChannelID: channelID})
		if err != nil {
			return err
		}
		created = true
		if c, err = getConversation(t, wsID, "", id); err != nil {
			return err
		}
		return t.emit(wsID, inbox.EntityConversation, inbox.OpUpsert, id, c)
	})
	return c, created, err
}

// newConversation is what insertConversation needs.
type newConversation struct {
	ContactID, ChannelID string
	IsGroup              bool
	Title                string
	GroupMeta            map[string]any
	ExternalChat         string
	ActivityAt           time.Time // when its activity starts (zero: now)
}

func insertConversation(t *tx, wsID string, n newConversation) (string, error) {
	num, err := nextConversationNumber(t, wsID)
	if err != nil {
		return "", err
	}
	id := newID()
	var meta any
	if n.GroupMeta != nil {
		meta = jsonNull(n.GroupMeta)
	}
	if n.ActivityAt.IsZero() {
		n.ActivityAt = t.now
	}
	_, err = t.exec(`INSERT INTO conversations (id, workspace_id, number, channel_id, contact_id, status, priority, is_group, title, group_meta, external_chat_id,
		last_activity_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'open', 'none', ?, ?, ?, ?, ?, ?, ?)`,
		id, wsID, num, n.ChannelID, n.ContactID, n.IsGroup, n.Title, meta, n.ExternalChat, ts(n.ActivityAt), ts(t.now), ts(t.now))
	return id, err
}

var priorities = map[string]bool{"none": true, "low": true, "medium": true, "high": true, "urgent": true}

// UpdateConversation applies a patch (status, priority, snooze, assignee, team, title).
func (db *DB) UpdateConversation(ctx context.Context, wsID, userID, id string, p inbox.ConversationPatch) (inbox.Conversation, error) {
	var out inbox.Conversation
	err := db.write(ctx, func(t *tx) error {
		if err := lockRow(t, "conversations", wsID, id); err != nil {
			return err
		}
		c, err := getConversation(t, wsID, "", id)
		if err != nil {
			return err
		}
		var v inbox.Validator
		if p.Status.Set {
			v.Check(inbox.ValidConversationStatus(p.Status.Value), "status", "must be open, pending, snoozed, resolved or spam")
			c.Status = p.Status.Value
			if c.Status != inbox.StatusSnoozed && !p.SnoozedUntil.Set {
				c.SnoozedUntil = nil
			}
		}
		if p.Priority.Set {
			v.Check(priorities[p.Priority.Value], "priority", "must be none, low, medium, high or urgent")
			c.Priority = p.Priority.Value
		}
		if p.SnoozedUntil.Set {
			c.SnoozedUntil = p.SnoozedUntil.Value
		}
		if p.Title.Set {
			c.Title = p.Title.Value
		}
		if err := v.Err(); err != nil {
			return err
		}
		if p.AssigneeID.Set {
			c.AssigneeID = p.AssigneeID.Value
			if c.AssigneeID != nil && *c.AssigneeID == "" {
				c.AssigneeID = nil
			}
			if c.AssigneeID != nil {
				var role string
				if err := t.queryRow(`SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?`, wsID, *c.AssigneeID).Scan(&role); err != nil {
					if err == sql.ErrNoRows {
						return inbox.FieldError("validation failed", map[string]string{"assignee_id": "is not a member of this workspace"})
					}
					return err
				}
			}
		}
		if p.TeamID.Set {
			c.TeamID = p.TeamID.Value
			if c.TeamID != nil && *c.TeamID == "" {
				c.TeamID = nil
			}
			if c.TeamID != nil {
				var x string
				if err := t.queryRow(`SELECT id FROM teams WHERE workspace_id = ? AND id = ?`, wsID, *c.TeamID).Scan(&x); err != nil {
					if err == sql.ErrNoRows {
						return inbox.FieldError("validation failed", map[string]string{"team_id": "is not a team of this workspace"})
					}
					return err
				}
			}
		}
		if _, err := t.exec(`UPDATE conversations SET status = ?, priority = ?, snoozed_until = ?, assignee_id = ?, team_id = ?, title = ?, updated_at = ? WHERE id = ?`,
			c.Status, c.Priority, tsPtr(c.SnoozedUntil), nullStr(c.AssigneeID), nullStr(c.TeamID), c.Title, ts(t.now), id); err != nil {
			return err
		}
		if err := emitConversation(t, wsID, id); err != nil {
			return err
		}
		out, err = getConversation(t, wsID, userID, id)
		return err
	})
	return out, err
}

// setReadCount stores a user's read position as a count of inbound messages.
func setReadCount(t *tx, wsID, userID, convID string, unread func(inbound int64) int64) (inbox.ReadState, error) {
	var inbound int64
	if err := t.queryRow(`SELECT inbound_count FROM conversations WHERE workspace_id = ? AND id = ?`, wsID, convID).Scan(&inbound); err != nil {
		return inbox.ReadState{}, noRows(err, "conversation")
	}
	var role string
	if err := t.queryRow(`SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?`, wsID, userID).Scan(&role); err != nil {
		return inbox.ReadState{}, noRows(err, "member")
	}
	u := min(max(unread(inbound), 0), inbound)
	rs := inbox.ReadState{ConversationID: convID, UserID: userID, LastReadAt: t.now, UnreadCount: int(u)}
	if _, err := t.exec(`INSERT INTO read_state (conversation_id, user_id, workspace_id, last_read_at, read_count) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_at = excluded.last_read_at, read_count = excluded.read_count`,
		convID, userID, wsID, ts(t.now), inbound-u); err != nil {
		return rs, err
	}
	return rs, t.emit(wsID, inbox.EntityReadState, inbox.OpUpsert, userID+":"+convID, rs)
}

// MarkRead marks every message of the conversation read for the user.
func (db *DB) MarkRead(ctx context.Context, wsID, userID, id string) (inbox.ReadState, error) {
	var rs inbox.ReadState
	err := db.write(ctx, func(t *tx) error {
		var err error
		rs, err = setReadCount(t, wsID, userID, id, func(int64) int64 { return 0 })
		return err
	})
	return rs, err
}

// MarkUnread marks the conversation unread for the user (its newest inbound message unread).
func (db *DB) MarkUnread(ctx context.Context, wsID, userID, id string) (inbox.ReadState, error) {
	var rs inbox.ReadState
	err := db.write(ctx, func(t *tx) error {
		var err error
		rs, err = setReadCount(t, wsID, userID, id, func(int64) int64 { return 1 })
		return err
	})
	return rs, err
}

// AddConversationLabels attaches labels of the workspace to a conversation.
func (db *DB) AddConversationLabels(ctx context.Context, wsID, id string, labelIDs []string) (inbox.Conversation, error) {
	var out inbox.Conversation
	err := db.write(ctx, func(t *tx) error {
		if _, err := getConversation(t, wsID, "", id); err != nil {
			return err
		}
		added := false
		for _, l := range uniq(labelIDs) {
			var x string
			if err := t.queryRow(`SELECT id FROM labels WHERE workspace_id = ? AND id = ?`, wsID, l).Scan(&x); err != nil {
				return noRows(err, "label")
			}
			res, err := t.exec(`INSERT INTO conversation_labels (conversation_id, label_id, workspace_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, l, wsID, ts(t.now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				added = true
			}
		}
		if added {
			if _, err := t.exec(`UPDATE conversations SET updated_at = ? WHERE id = ?`, ts(t.now), id); err != nil {
				return err
			}
			if err := emitConversation(t, wsID, id); err != nil {
				return err
			}
		}
		var err error
		out, err = getConversation(t, wsID, "", id)
		return err
	})
	return out, err
}

// RemoveConversationLabel detaches a label from a conversation.
func (db *DB) RemoveConversationLabel(ctx context.Context, wsID, id, labelID string) (inbox.Conversation, error) {
	var out inbox.Conversation
	err := db.write(ctx, func(t *tx) error {
		if _, err := getConversation(t, wsID, "", id); err != nil {
			return err
		}
		var x string
		if err := t.queryRow(`SELECT id FROM labels WHERE workspace_id = ? AND id = ?`, wsID, labelID).Scan(&x); err != nil {
			return noRows(err, "label")
		}
		res, err := t.exec(`DELETE FROM conversation_labels WHERE conversation_id = ? AND label_id = ?`, id, labelID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := t.exec(`UPDATE conversations SET updated_at = ? WHERE id = ?`, ts(t.now), id); err != nil {
				return err
			}
			if err := emitConversation(t, wsID, id); err != nil {
				return err
			}
		}
		out, err = getConversation(t, wsID, "", id)
		return err
	})
	return out, err
}

// Participants lists the members of a group conversation.
func (db *DB) Participants(ctx context.Context, wsID, conversationID string) ([]inbox.Participant, error) {
	out := []inbox.Participant{}
	err := db.read(ctx, func(t *tx) error {
		var ch string
		if err := t.queryRow(`SELECT channel_id FROM conversations WHERE workspace_id = ? AND id = ?`, wsID, conversationID).Scan(&ch); err != nil {
			return noRows(err, "conversation")
		}
		rows, err := t.query(`SELECT p.contact_id, ct.name,
			COALESCE((SELECT MIN(ci.identifier) FROM contact_identities ci WHERE ci.contact_id = p.contact_id AND ci.channel_id = ?), ''),
			p.role, p.joined_at
			FROM conversation_participants p JOIN contacts ct ON ct.id = p.contact_id
			WHERE p.conversation_id = ? ORDER BY p.joined_at, p.contact_id`, ch, conversationID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p inbox.Participant
			var joined int64
			if err := rows.Scan(&p.ContactID, &p.Name, &p.Identifier, &p.Role, &joined); err != nil {
				return err
			}
			p.JoinedAt = fromTS(joined)
			out = append(out, p)
		}
		return rows.Err()
	})
	return out, err
}
