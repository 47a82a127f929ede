package store

import "github.com/parleyhq/parley/internal/inbox"

// The pipeline appends change rows through the store's own readers so the
// change data is exactly the API JSON (what emitContact, emitConversation and
// emitMessage append), reading the touched entities of a batch a chunk at a
// time instead of one by one.

// plEmitChunk is how many entities one read fetches.
const plEmitChunk = 32

// plEmitConversations appends the user-neutral conversations, in ids order.
// The ids were found or created by the applier inside wsID.
func plEmitConversations(t *tx, wsID string, ids []string) error {
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
		byID := make(map[string]int, len(cs))
		for i, c := range cs {
			byID[c.ID] = i
		}
		for _, id := range chunk {
			i, ok := byID[id]
			if !ok {
				return notFound("conversation")
			}
			if err := t.emit(wsID, inbox.EntityConversation, inbox.OpUpsert, id, cs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// plEmitMessages appends the messages, in ids order.
func plEmitMessages(t *tx, wsID string, ids []string) error {
	for start := 0; start < len(ids); start += plEmitChunk {
		chunk := ids[start:min(start+plEmitChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		// By primary key only (as for conversations): the ids are the
		// applier's own, inside wsID.
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
		byID := make(map[string]int, len(ms))
		for i, m := range ms {
			byID[m.ID] = i
		}
		for _, id := range chunk {
			i, ok := byID[id]
			if !ok {
				return notFound("message")
			}
			if err := t.emit(wsID, inbox.EntityMessage, inbox.OpUpsert, id, ms[i]); err != nil {
				return err
			}
		}
	}
	return nil
}
