package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// SnapshotConversations is how many conversations a snapshot carries (the
// first page of view=all); older ones are fetched with ListConversations.
const SnapshotConversations = 500

func cursorGone(format string, args ...any) error {
	return inbox.Errorf(inbox.Conflict, format, args...)
}

// Changes returns changes with seq > since, in order. A cursor that is not a
// number, is ahead of the workspace or older than the retained log is a Conflict.
func (db *DB) Changes(ctx context.Context, wsID, since string, limit int) (inbox.ChangeBatch, error) {
	batch := inbox.ChangeBatch{Changes: []inbox.Change{}}
	limit = clampLimit(limit, 500, 1000)
	after := int64(0)
	if since != "" {
		v, err := strconv.ParseInt(since, 10, 64)
		if err != nil || v < 0 {
			return batch, cursorGone("unknown sync cursor; take a new snapshot")
		}
		after = v
	}
	err := db.readTx(ctx, func(t *tx) error {
		var head, pruned int64
		if err := t.queryRow(`SELECT change_seq, pruned_seq FROM workspaces WHERE id = ?`, wsID).Scan(&head, &pruned); err != nil {
			return noRows(err, "workspace")
		}
		if after > head {
			return cursorGone("unknown sync cursor; take a new snapshot")
		}
		if after < pruned {
			return cursorGone("sync cursor too old; take a new snapshot")
		}
		rows, err := t.query(`SELECT seq, entity, op, entity_id, data, created_at FROM changes WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?`, wsID, after, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := inbox.Change{WorkspaceID: wsID}
			var data []byte
			var at int64
			if err := rows.Scan(&c.Seq, &c.Entity, &c.Op, &c.ID, &data, &at); err != nil {
				return err
			}
			if len(data) > 0 {
				c.Data = json.RawMessage(append([]byte(nil), data...))
			}
			c.At = fromTS(at)
			batch.Changes = append(batch.Changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return batch, err
	}
	if len(batch.Changes) > limit {
		batch.Changes = batch.Changes[:limit]
		batch.More = true
	}
	batch.Cursor = strconv.FormatInt(after, 10)
	if n := len(batch.Changes); n > 0 {
		batch.Cursor = strconv.FormatInt(batch.Changes[n-1].Seq, 10)
	}
	return batch, nil
}

// Snapshot returns the current cursor and state, read in one snapshot, so
// that Changes(cursor) afterwards continues exactly where it stands.
func (db *DB) Snapshot(ctx context.Context, wsID, userID string) (inbox.Snapshot, error) {
	var s inbox.Snapshot
	err := db.readTx(ctx, func(t *tx) error {
		var head int64
		if err := t.queryRow(`SELECT change_seq FROM workspaces WHERE id = ?`, wsID).Scan(&head); err != nil {
			return noRows(err, "workspace")
		}
		s.Cursor = strconv.FormatInt(head, 10)
		page, err := listConversations(t, wsID, inbox.ConversationFilter{UserID: userID, View: inbox.ViewAll, Limit: SnapshotConversations}, SnapshotConversations)
		if err != nil {
			return err
		}
		s.Conversations = page.Items
		if s.Labels, err = listLabels(t, wsID); err != nil {
			return err
		}
		if s.Members, err = listMembers(t, wsID, ""); err != nil {
			return err
		}
		if s.Channels, err = listChannels(t, wsID); err != nil {
			return err
		}
		s.Teams, err = listTeams(t, wsID, "")
		return err
	})
	return s, err
}

// PruneChanges deletes changes older than olderThan. Each workspace remembers
// the highest pruned seq, so a cursor below it is answered with Conflict.
func (db *DB) PruneChanges(ctx context.Context, olderThan time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(t *tx) error {
		cut := ts(olderThan)
		if _, err := t.exec(`UPDATE workspaces SET pruned_seq = (SELECT MAX(seq) FROM changes ch WHERE ch.workspace_id = workspaces.id AND ch.created_at < ?)
			WHERE pruned_seq < (SELECT COALESCE(MAX(seq), 0) FROM changes ch WHERE ch.workspace_id = workspaces.id AND ch.created_at < ?)`, cut, cut); err != nil {
			return err
		}
		res, err := t.exec(`DELETE FROM changes WHERE seq <= (SELECT w.pruned_seq FROM workspaces w WHERE w.id = changes.workspace_id)`)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
