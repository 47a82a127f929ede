package store

import "github.com/parleyhq/parley/internal/inbox"

// The pipeline's change rows hold exactly the API JSON (what emitContact,
// emitConversation and emitMessage append). emitAll makes them without a
// read where the applier knows the entity as stored: a message it created
// and nothing touched since, and a conversation only bumped since a cached
// copy (the bump is applied to the copy as the UPDATE applies it to the
// row). Everything else is read back, a chunk at a time.

// plEmitChunk is how many entities one read fetches.
const plEmitChunk = 32

func (a *plApplier) emitAll() error {
	if err := a.markDone(); err != nil {
		return err
	}
	for _, id := range a.contacts {
		if err := emitContact(a.t, a.ws, id); err != nil {
			return err
		}
	}
	changed := make(map[string]bool, len(a.contacts)) // contacts whose name may have changed
	for _, id := range a.contacts {
		changed[id] = true
	}
	convs := make(map[string]inbox.Conversation, len(a.conversations))
	var read []string
	for _, id := range a.conversations {
		if c, ok := a.bumped[id]; ok && !a.convDirty[id] && !changed[c.Contact.ID] {
			convs[id] = c
			continue
		}
		read = append(read, id)
	}
	if err := plReadConversations(a.t, read, convs); err != nil {
		return err
	}
	for _, id := range a.conversations {
		c := convs[id]
		if err := a.t.emit(a.ws, inbox.EntityConversation, inbox.OpUpsert, id, c); err != nil {
			return err
		}
		a.emitted[id] = c
	}
	msgs := make(map[string]inbox.Message, len(a.messages))
	read = read[:0]
	for _, id := range a.messages {
		if m, ok := a.fresh[id]; ok {
			msgs[id] = m
		} else {
			read = append(read, id)
		}
	}
	if err := plReadMessages(a.t, read, msgs); err != nil {
		return err
	}
	for _, id := range a.messages {
		if err := a.t.emit(a.ws, inbox.EntityMessage, inbox.OpUpsert, id, msgs[id]); err != nil {
			return err
		}
	}
	return nil
}

// plReadConversations reads the user-neutral conversations of ids into out.
// The ids were found or created by the applier inside its workspace.
func plReadConversations(t *tx, ids []string, out map[string]inbox.Conversation) error {
	for start := 0; start < len(ids); start += plEmitChunk {
		chunk := ids[start:min(start+plEmitChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		// By primary key only: with workspace_id in the condition SQLite
		// walks the workspace's activity index instead.
		cs, err := queryConversations(t, "", `c.id IN (`+placeholders(len(chunk))+`)`, args, len(chunk))
		if err != nil {
			return err
		}
		for _, c := range cs {
			out[c.ID] = c
		}
		for _, id := range chunk {
			if _, ok := out[id]; !ok {
				return notFound("conversation")
			}
		}
	}
	return nil
}

// plReadMessages reads the messages of ids into out.
func plReadMessages(t *tx, ids []string, out map[string]inbox.Message) error {
	for start := 0; start < len(ids); start += plEmitChunk {
		chunk := ids[start:min(start+plEmitChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		// By primary key only (as for conversations): the ids are the
		// applier's own, inside its workspace.
		rows, err := t.query(`SELECT `+msgCols+` FROM messages m WHERE m.id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return err
		}
		ms := make([]inbox.Message, 0, len(chunk))
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return err
			}
			ms = append(ms, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := fillMessages(t, ms); err != nil {
			return err
		}
		for _, m := range ms {
			out[m.ID] = m
		}
		for _, id := range chunk {
			if _, ok := out[id]; !ok {
				return notFound("message")
			}
		}
	}
	return nil
}
