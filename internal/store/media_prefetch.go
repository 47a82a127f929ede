package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// UncachedMedia is a provider file not cached yet: an attachment of a
// message received on a channel of kind ChannelKind.
type UncachedMedia struct {
	MediaAttachment
	ChannelKind string
	CreatedAt   time.Time
}

// MediaCursor is where a listing of UncachedMedia resumes: after the row
// created at CreatedAt with id ID (ID "" starts at CreatedAt inclusive).
type MediaCursor struct {
	CreatedAt time.Time
	ID        string
}

// UncachedMediaPage lists the provider attachments whose file was never
// cached (a file evicted by the janitor is not fetched again until someone
// opens it) after the cursor, oldest first, at most limit: those of
// live messages on channels of the given kinds (none: every kind). Pass
// MediaCursor{CreatedAt: since} for the attachments created since a time,
// then the last row's CreatedAt and ID for the next page.
func (db *DB) UncachedMediaPage(ctx context.Context, kinds []string, after MediaCursor, limit int) ([]UncachedMedia, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []UncachedMedia
	err := db.read(ctx, func(t *tx) error {
		q := `SELECT a.id, a.workspace_id, a.message_id, m.channel_id, c.kind, a.kind, a.mime_type, a.filename, a.size, a.duration_ms, a.width, a.height,
				a.provider_ref, a.created_at
			FROM attachments a JOIN messages m ON m.id = a.message_id JOIN channels c ON c.id = m.channel_id
			WHERE a.id >= ? AND a.storage_key = '' AND a.accessed_at IS NULL AND a.provider_ref <> '' AND m.deleted_at IS NULL
				AND (a.created_at > ? OR (a.created_at = ? AND a.id > ?))`
		at := ts(after.CreatedAt)
		args := []any{idFloor(after.CreatedAt.Add(-idClockSlack)), at, at, after.ID}
		if len(kinds) > 0 {
			cond, kargs := t.d.inList(kinds)
			q += ` AND c.kind ` + cond
			args = append(args, kargs...)
		}
		rows, err := t.query(q+` ORDER BY a.created_at, a.id LIMIT ?`, append(args, limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u UncachedMedia
			var msgID sql.NullString
			var created int64
			if err := rows.Scan(&u.ID, &u.WorkspaceID, &msgID, &u.ChannelID, &u.ChannelKind, &u.Kind, &u.MimeType, &u.Filename, &u.Size,
				&u.DurationMS, &u.Width, &u.Height, &u.ProviderRef, &created); err != nil {
				return err
			}
			u.MessageID, u.CreatedAt = msgID.String, fromTS(created)
			u.URL = attachmentURL(u.WorkspaceID, u.ID)
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, err
}

// Ids are UUIDv7 (newID), which begin with their creation time in
// milliseconds and so sort by it: a lower bound on the id lets the listing
// read the window through the primary key instead of scanning every
// attachment (attachments.created_at has no index). The id and created_at
// are taken from the same clock moments apart; idClockSlack covers that.
const idClockSlack = time.Hour

// idFloor is the smallest UUIDv7 string of a time (its milliseconds).
func idFloor(t time.Time) string {
	ms := max(t.UnixMilli(), 0)
	return fmt.Sprintf("%08x-%04x-0000-0000-000000000000", uint64(ms)>>16, uint64(ms)&0xffff)
}
