package store

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/parleyhq/parley/internal/inbox"
)

const contactCols = `c.id, c.name, c.avatar_url, c.tags, c.attributes, c.notes, c.blocked, c.created_at, c.updated_at`

func scanContact(sc interface{ Scan(...any) error }) (inbox.Contact, error) {
	var c inbox.Contact
	var tags, attrs []byte
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.Name, &c.AvatarURL, &tags, &attrs, &c.Notes, &c.Blocked, &created, &updated); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	c.Tags, c.Attributes = []string{}, map[string]any{}
	c.Emails, c.Phones, c.Identities = []string{}, []string{}, []inbox.Identity{}
	if err := decodeJSON(tags, &c.Tags); err != nil {
		return c, err
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if err := decodeJSON(attrs, &c.Attributes); err != nil {
		return c, err
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	return c, nil
}

// fillContacts loads emails, phones and identities of contacts.
func fillContacts(t *tx, cs []inbox.Contact) error {
	if len(cs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(cs))
	ids := make([]any, len(cs))
	for i, c := range cs {
		idx[c.ID] = i
		ids[i] = c.ID
	}
	in := placeholders(len(ids))
	for _, q := range []struct {
		sql  string
		emit func(i int, v string)
	}{
		{`SELECT contact_id, email FROM contact_emails WHERE contact_id IN (` + in + `) ORDER BY contact_id, position`, func(i int, v string) { cs[i].Emails = append(cs[i].Emails, v) }},
		{`SELECT contact_id, phone FROM contact_phones WHERE contact_id IN (` + in + `) ORDER BY contact_id, position`, func(i int, v string) { cs[i].Phones = append(cs[i].Phones, v) }},
	} {
		rows, err := t.query(q.sql, ids...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cid, v string
			if err := rows.Scan(&cid, &v); err != nil {
				rows.Close()
				return err
			}
			q.emit(idx[cid], v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	rows, err := t.query(`SELECT ci.contact_id, ci.channel_id, ch.kind, ci.identifier FROM contact_identities ci JOIN channels ch ON ch.id = ci.channel_id
		WHERE ci.contact_id IN (`+in+`) ORDER BY ci.contact_id, ci.created_at, ci.channel_id, ci.identifier`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var cid string
		var id inbox.Identity
		if err := rows.Scan(&cid, &id.ChannelID, &id.ChannelKind, &id.Identifier); err != nil {
			return err
		}
		i := idx[cid]
		cs[i].Identities = append(cs[i].Identities, id)
	}
	return rows.Err()
}

func getContact(t *tx, wsID, id string) (inbox.Contact, error) {
	c, err := scanContact(t.queryRow(`SELECT `+contactCols+` FROM contacts c WHERE c.workspace_id = ? AND c.id = ?`, wsID, id))
	if err != nil {
		return c, noRows(err, "contact")
	}
	cs := []inbox.Contact{c}
	if err := fillContacts(t, cs); err != nil {
		return c, err
	}
	return cs[0], nil
}

func emitContact(t *tx, wsID, id string) error {
	c, err := getContact(t, wsID, id)
	if err != nil {
		return err
	}
	return t.emit(wsID, inbox.EntityContact, inbox.OpUpsert, id, c)
}

// ListContacts lists contacts, newest first, optionally matching q.
func (db *DB) ListContacts(ctx context.Context, wsID string, f inbox.ContactFilter) (inbox.Page[inbox.Contact], error) {
	page := inbox.Page[inbox.Contact]{Items: []inbox.Contact{}}
	limit := clampLimit(f.Limit, 50, 200)
	err := db.read(ctx, func(t *tx) error {
		q := `SELECT ` + contactCols + ` FROM contacts c WHERE c.workspace_id = ?`
		args := []any{wsID}
		if f.Cursor != "" {
			b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
			if err != nil || len(b) == 0 {
				return inbox.FieldError("bad cursor", map[string]string{"cursor": "is not a valid cursor"})
			}
			q += ` AND c.id < ?`
			args = append(args, string(b))
		}
		if s := strings.TrimSpace(f.Q); s != "" {
			p := likePattern(s)
			q += ` AND (lower(c.name) LIKE ? ESCAPE '\'
				OR EXISTS (SELECT 1 FROM contact_emails e WHERE e.contact_id = c.id AND e.email LIKE ? ESCAPE '\')
				OR EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id AND p.phone LIKE ? ESCAPE '\')
				OR EXISTS (SELECT 1 FROM contact_identities i WHERE i.contact_id = c.id AND lower(i.identifier) LIKE ? ESCAPE '\'))`
			args = append(args, p, p, p, p)
		}
		q += ` ORDER BY c.id DESC LIMIT ?`
		args = append(args, limit+1)
		rows, err := t.query(q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanContact(rows)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, c)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(page.Items) > limit {
			page.Items = page.Items[:limit]
			page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Items[limit-1].ID))
		}
		return fillContacts(t, page.Items)
	})
	return page, err
}

// setContactLists replaces emails and/or phones of a contact (nil leaves a list alone).
func setContactLists(t *tx, wsID, id string, emails, phones []string) error {
	for _, l := range []struct {
		table, col string
		vals       []string
	}{{"contact_emails", "email", emails}, {"contact_phones", "phone", phones}} {
		if l.vals == nil {
			continue
		}
		if _, err := t.exec(`DELETE FROM `+l.table+` WHERE contact_id = ?`, id); err != nil {
			return err
		}
		seen := map[string]bool{}
		pos := 0
		for _, v := range l.vals {
			v = strings.TrimSpace(v)
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			if _, err := t.exec(`INSERT INTO `+l.table+` (contact_id, workspace_id, `+l.col+`, position) VALUES (?, ?, ?, ?)`, id, wsID, v, pos); err != nil {
				return err
			}
			pos++
		}
	}
	return nil
}

func addIdentity(t *tx, wsID, contactID string, id inbox.Identity) error {
	if id.ChannelID == "" || strings.TrimSpace(id.Identifier) == "" {
		return inbox.FieldError("validation failed", map[string]string{"identities": "need a channel_id and an identifier"})
	}
	if _, err := getChannel(t, wsID, id.ChannelID); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO contact_identities (workspace_id, channel_id, identifier, contact_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		wsID, id.ChannelID, id.Identifier, contactID, ts(t.now))
	if err != nil && t.d.classify(err) == errUnique {
		return &inbox.Error{Code: inbox.Conflict, Message: "another contact already has this identity on the channel", Fields: map[string]string{"identities": "already used"}, Err: err}
	}
	return err
}

// CreateContact makes a contact with its emails, phones and identities.
func (db *DB) CreateContact(ctx context.Context, wsID string, c inbox.Contact) (inbox.Contact, error) {
	var out inbox.Contact
	err := db.write(ctx, func(t *tx) error {
		if err := requireWorkspace(t, wsID); err != nil {
			return err
		}
		id := newID()
		if err := insertContact(t, wsID, id, c); err != nil {
			return err
		}
		var err error
		if out, err = getContact(t, wsID, id); err != nil {
			return err
		}
		return t.emit(wsID, inbox.EntityContact, inbox.OpUpsert, id, out)
	})
	return out, err
}

func insertContact(t *tx, wsID, id string, c inbox.Contact) error {
	if _, err := t.exec(`INSERT INTO contacts (id, workspace_id, name, avatar_url, tags, attributes, notes, blocked, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, wsID, strings.TrimSpace(c.Name), c.AvatarURL, jsonText(uniq(c.Tags), "[]"), jsonText(c.Attributes, "{}"), c.Notes, c.Blocked, ts(t.now), ts(t.now)); err != nil {
		return err
	}
	if err := setContactLists(t, wsID, id, strs(c.Emails), strs(c.Phones)); err != nil {
		return err
	}
	for _, i := range c.Identities {
		if err := addIdentity(t, wsID, id, i); err != nil {
			return err
		}
	}
	return nil
}

func uniq(ss []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// GetContact returns one contact.
func (db *DB) GetContact(ctx context.Context, wsID, id string) (inbox.Contact, error) {
	var c inbox.Contact
	err := db.read(ctx, func(t *tx) error {
		var err error
		c, err = getContact(t, wsID, id)
		return err
	})
	return c, err
}

// UpdateContact applies a patch. Conversations showing the contact get changes when the name or avatar changes.
func (db *DB) UpdateContact(ctx context.Context, wsID, id string, p inbox.ContactPatch) (inbox.Contact, error) {
	var c inbox.Contact
	err := db.write(ctx, func(t *tx) error {
		if err := lockRow(t, "contacts", wsID, id); err != nil {
			return err
		}
		var err error
		if c, err = getContact(t, wsID, id); err != nil {
			return err
		}
		refChanged := false
		if p.Name.Set && strings.TrimSpace(p.Name.Value) != c.Name {
			c.Name, refChanged = strings.TrimSpace(p.Name.Value), true
		}
		if p.AvatarURL.Set && p.AvatarURL.Value != c.AvatarURL {
			c.AvatarURL, refChanged = p.AvatarURL.Value, true
		}
		if p.Tags.Set {
			c.Tags = uniq(p.Tags.Value)
		}
		if p.Attributes.Set {
			c.Attributes = p.Attributes.Value
		}
		if p.Notes.Set {
			c.Notes = p.Notes.Value
		}
		if p.Blocked.Set {
			c.Blocked = p.Blocked.Value
		}
		if _, err := t.exec(`UPDATE contacts SET name = ?, avatar_url = ?, tags = ?, attributes = ?, notes = ?, blocked = ?, updated_at = ? WHERE id = ?`,
			c.Name, c.AvatarURL, jsonText(c.Tags, "[]"), jsonText(c.Attributes, "{}"), c.Notes, c.Blocked, ts(t.now), id); err != nil {
			return err
		}
		var emails, phones []string
		if p.Emails.Set {
			emails = strs(p.Emails.Value)
		}
		if p.Phones.Set {
			phones = strs(p.Phones.Value)
		}
		if err := setContactLists(t, wsID, id, emails, phones); err != nil {
			return err
		}
		if c, err = getContact(t, wsID, id); err != nil {
			return err
		}
		if refChanged {
			if err := emitContactConversations(t, wsID, id); err != nil {
				return err
			}
		}
		return t.emit(wsID, inbox.EntityContact, inbox.OpUpsert, id, c)
	})
	return c, err
}

func emitContactConversations(t *tx, wsID, contactID string) error {
	rows, err := t.query(`SELECT id FROM conversations WHERE workspace_id = ? AND contact_id = ?`, wsID, contactID)
	if err != nil {
		return err
	}
	ids, err := collectStrings(rows)
	if err != nil {
		return err
	}
	for _, c := range ids {
		if err := emitConversation(t, wsID, c); err != nil {
			return err
		}
	}
	return nil
}

// DeleteContact removes a contact with its conversations (tombstones for each).
func (db *DB) DeleteContact(ctx context.Context, wsID, id string) error {
	return db.write(ctx, func(t *tx) error {
		var x string
		if err := t.queryRow(`SELECT id FROM contacts WHERE workspace_id = ? AND id = ?`, wsID, id).Scan(&x); err != nil {
			return noRows(err, "contact")
		}
		rows, err := t.query(`SELECT id FROM conversations WHERE workspace_id = ? AND contact_id = ?`, wsID, id)
		if err != nil {
			return err
		}
		convs, err := collectStrings(rows)
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM contacts WHERE id = ?`, id); err != nil {
			return err
		}
		for _, c := range convs {
			if err := t.emit(wsID, inbox.EntityConversation, inbox.OpDelete, c, nil); err != nil {
				return err
			}
		}
		return t.emit(wsID, inbox.EntityContact, inbox.OpDelete, id, nil)
	})
}

// MergeContacts folds MergeIDs into PrimaryID in one transaction: emails,
// phones, identities and tags are unions; conversations, group
// participations, message senders and reactions move to the primary; Keep
// picks whose name/avatar_url/notes/blocked/attributes win; the merged
// contacts are deleted (tombstones).
func (db *DB) MergeContacts(ctx context.Context, wsID string, in inbox.MergeInput) (inbox.Contact, error) {
	var out inbox.Contact
	if in.PrimaryID == "" || len(in.MergeIDs) == 0 {
		return out, inbox.FieldError("validation failed", map[string]string{"merge_ids": "name at least one contact to merge"})
	}
	err := db.write(ctx, func(t *tx) error {
		primary, err := getContact(t, wsID, in.PrimaryID)
		if err != nil {
			return err
		}
		all := map[string]inbox.Contact{primary.ID: primary}
		var merges []inbox.Contact
		for _, id := range in.MergeIDs {
			if id == primary.ID {
				return inbox.FieldError("validation failed", map[string]string{"merge_ids": "must not contain the primary contact"})
			}
			if _, dup := all[id]; dup {
				continue
			}
			c, err := getContact(t, wsID, id)
			if err != nil {
				return err
			}
			all[id] = c
			merges = append(merges, c)
		}
		res := primary
		for field, from := range in.Keep {
			src, ok := all[from]
			if !ok {
				return inbox.FieldError("validation failed", map[string]string{"keep." + field: "must name the primary or a merged contact"})
			}
			switch field {
			case "name":
				res.Name = src.Name
			case "avatar_url":
				res.AvatarURL = src.AvatarURL
			case "notes":
				res.Notes = src.Notes
			case "blocked":
				res.Blocked = src.Blocked
			case "attributes":
			default:
				return inbox.FieldError("validation failed", map[string]string{"keep." + field: "is not a field that can be kept"})
			}
		}
		// Fill blanks of the primary from the merged contacts unless Keep chose.
		for _, m := range merges {
			if _, ok := in.Keep["name"]; !ok && res.Name == "" {
				res.Name = m.Name
			}
			if _, ok := in.Keep["avatar_url"]; !ok && res.AvatarURL == "" {
				res.AvatarURL = m.AvatarURL
			}
			if _, ok := in.Keep["notes"]; !ok && res.Notes == "" {
				res.Notes = m.Notes
			}
		}
		attrs := map[string]any{}
		for _, m := range merges {
			for k, v := range m.Attributes {
				attrs[k] = v
			}
		}
		for k, v := range primary.Attributes {
			attrs[k] = v
		}
		if from, ok := in.Keep["attributes"]; ok {
			for k, v := range all[from].Attributes {
				attrs[k] = v
			}
		}
		emails, phones, tags := primary.Emails, primary.Phones, primary.Tags
		for _, m := range merges {
			emails = append(emails, m.Emails...)
			phones = append(phones, m.Phones...)
			tags = append(tags, m.Tags...)
		}
		if _, err := t.exec(`UPDATE contacts SET name = ?, avatar_url = ?, tags = ?, attributes = ?, notes = ?, blocked = ?, updated_at = ? WHERE id = ?`,
			res.Name, res.AvatarURL, jsonText(uniq(tags), "[]"), jsonText(attrs, "{}"), res.Notes, res.Blocked, ts(t.now), primary.ID); err != nil {
			return err
		}
		if err := setContactLists(t, wsID, primary.ID, uniq(emails), uniq(phones)); err != nil {
			return err
		}
		var convs []string
		for _, m := range merges {
			// A contact's messages are in its own conversations and in the
			// groups it wrote in (it is a participant of each): found by
			// conversation (messages_history), before those move.
			if _, err := t.exec(`UPDATE messages SET sender_id = ? WHERE sender_type = 'contact' AND sender_id = ? AND conversation_id IN (
					SELECT id FROM conversations WHERE contact_id = ? UNION SELECT conversation_id FROM conversation_participants WHERE contact_id = ?)`,
				primary.ID, m.ID, m.ID, m.ID); err != nil {
				return err
			}
			if _, err := t.exec(`UPDATE contact_identities SET contact_id = ? WHERE contact_id = ?`, primary.ID, m.ID); err != nil {
				return err
			}
			rows, err := t.query(`UPDATE conversations SET contact_id = ?, updated_at = ? WHERE workspace_id = ? AND contact_id = ? RETURNING id`, primary.ID, ts(t.now), wsID, m.ID)
			if err != nil {
				return err
			}
			ids, err := collectStrings(rows)
			if err != nil {
				return err
			}
			convs = append(convs, ids...)
			if _, err := t.exec(`DELETE FROM conversation_participants WHERE contact_id = ? AND conversation_id IN (SELECT conversation_id FROM conversation_participants WHERE contact_id = ?)`, m.ID, primary.ID); err != nil {
				return err
			}
			if _, err := t.exec(`UPDATE conversation_participants SET contact_id = ? WHERE contact_id = ?`, primary.ID, m.ID); err != nil {
				return err
			}
			if _, err := t.exec(`DELETE FROM reactions WHERE workspace_id = ? AND actor_type = 'contact' AND actor_id = ? AND message_id IN (SELECT message_id FROM reactions WHERE actor_type = 'contact' AND actor_id = ?)`, wsID, m.ID, primary.ID); err != nil {
				return err
			}
			if _, err := t.exec(`UPDATE reactions SET actor_id = ? WHERE workspace_id = ? AND actor_type = 'contact' AND actor_id = ?`, primary.ID, wsID, m.ID); err != nil {
				return err
			}
			if _, err := t.exec(`DELETE FROM contacts WHERE id = ?`, m.ID); err != nil {
				return err
			}
			if err := t.emit(wsID, inbox.EntityContact, inbox.OpDelete, m.ID, nil); err != nil {
				return err
			}
		}
		if out, err = getContact(t, wsID, primary.ID); err != nil {
			return err
		}
		if err := t.emit(wsID, inbox.EntityContact, inbox.OpUpsert, primary.ID, out); err != nil {
			return err
		}
		if len(convs) > 0 || res.Name != primary.Name || res.AvatarURL != primary.AvatarURL {
			return emitContactConversations(t, wsID, primary.ID)
		}
		return nil
	})
	return out, err
}

// ContactByIdentity finds the contact with identifier on a channel of the workspace.
func (db *DB) ContactByIdentity(ctx context.Context, wsID, channelID, identifier string) (inbox.Contact, error) {
	var c inbox.Contact
	err := db.read(ctx, func(t *tx) error {
		var err error
		c, err = scanContact(t.queryRow(`SELECT `+contactCols+` FROM contact_identities ci JOIN contacts c ON c.id = ci.contact_id
			WHERE ci.workspace_id = ? AND ci.channel_id = ? AND ci.identifier = ?`, wsID, channelID, identifier))
		if err != nil {
			return noRows(err, "contact")
		}
		cs := []inbox.Contact{c}
		err = fillContacts(t, cs)
		c = cs[0]
		return err
	})
	return c, err
}

// ContactConversations lists the conversations of a contact, newest activity first.
func (db *DB) ContactConversations(ctx context.Context, wsID, contactID string) ([]inbox.Conversation, error) {
	var out []inbox.Conversation
	err := db.read(ctx, func(t *tx) error {
		var x string
		if err := t.queryRow(`SELECT id FROM contacts WHERE workspace_id = ? AND id = ?`, wsID, contactID).Scan(&x); err != nil {
			return noRows(err, "contact")
		}
		var err error
		out, err = queryConversations(t, "", `c.workspace_id = ? AND c.contact_id = ?`, []any{wsID, contactID}, 1000)
		return err
	})
	return out, err
}
