package store

// Media: uploads, the lazy provider-media cache and its eviction bookkeeping.

import (
	"context"
	"database/sql"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// CreateUpload records an uploaded file (message_id NULL until it is sent).
func (db *DB) CreateUpload(ctx context.Context, wsID, createdBy string, a inbox.Attachment) (inbox.Attachment, error) {
	if a.ID == "" {
		a.ID = newID()
	}
	err := db.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO attachments (id, workspace_id, kind, mime_type, filename, size, duration_ms, width, height, storage_key, created_by, created_at, cached_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, wsID, a.Kind, a.MimeType, a.Filename, a.Size, a.DurationMS, a.Width, a.Height, a.StorageKey, createdBy, ts(t.now), ts(t.now))
		return err
	})
	a.URL = attachmentURL(wsID, a.ID)
	return a, err
}

// MediaAttachment is an attachment with what the media service needs.
type MediaAttachment struct {
	inbox.Attachment
	WorkspaceID string
	ChannelID   string // "" for an upload not yet sent
	CachedAt    *time.Time
}

// MediaAttachment loads an attachment; wsID "" looks it up in any workspace
// (signed share URLs). Another workspace's id is NotFound.
func (db *DB) MediaAttachment(ctx context.Context, wsID, id string) (MediaAttachment, error) {
	var m MediaAttachment
	err := db.read(ctx, func(t *tx) error {
		var msgID, chID sql.NullString
		var cached sql.NullInt64
		err := t.queryRow(`SELECT a.id, a.workspace_id, a.message_id, m.channel_id, a.kind, a.mime_type, a.filename, a.size, a.duration_ms, a.width, a.height,
				a.provider_ref, a.storage_key, a.cached_at
			FROM attachments a LEFT JOIN messages m ON m.id = a.message_id WHERE a.id = ?`, id).Scan(
			&m.ID, &m.WorkspaceID, &msgID, &chID, &m.Kind, &m.MimeType, &m.Filename, &m.Size, &m.DurationMS, &m.Width, &m.Height,
			&m.ProviderRef, &m.StorageKey, &cached)
		if err != nil {
			return noRows(err, "attachment")
		}
		if wsID != "" && m.WorkspaceID != wsID {
			return notFound("attachment")
		}
		m.MessageID, m.ChannelID = msgID.String, chID.String
		m.CachedAt = fromNullTS(cached)
		m.URL = attachmentURL(m.WorkspaceID, m.ID)
		return nil
	})
	return m, err
}

// SetAttachmentFile records where an attachment's bytes are stored (after a
// provider fetch or a conversion), with their size and type.
func (db *DB) SetAttachmentFile(ctx context.Context, id, storageKey, mimeType string, size int64) error {
	return db.write(ctx, func(t *tx) error {
		_, err := t.exec(`UPDATE attachments SET storage_key = ?, mime_type = CASE WHEN ? <> '' THEN ? ELSE mime_type END, size = ?, cached_at = ?, accessed_at = ? WHERE id = ?`,
			storageKey, mimeType, mimeType, size, ts(t.now), ts(t.now), id)
		return err
	})
}

// TouchAttachment records an access (for LRU eviction).
func (db *DB) TouchAttachment(ctx context.Context, id string, at time.Time) error {
	return db.write(ctx, func(t *tx) error {
		_, err := t.exec(`UPDATE attachments SET accessed_at = ? WHERE id = ?`, ts(at), id)
		return err
	})
}

// CachedMedia is one cached provider file.
type CachedMedia struct {
	ID         string
	StorageKey string
	Size       int64
	LastUsed   time.Time
}

// CachedMediaList lists cached provider files (re-fetchable, so evictable),
// least recently used first. Uploads are never listed.
func (db *DB) CachedMediaList(ctx context.Context) ([]CachedMedia, error) {
	var out []CachedMedia
	err := db.read(ctx, func(t *tx) error {
		rows, err := t.query(`SELECT id, storage_key, size, COALESCE(accessed_at, cached_at, created_at) FROM attachments
			WHERE storage_key <> '' AND provider_ref <> '' ORDER BY COALESCE(accessed_at, cached_at, created_at), id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c CachedMedia
			var at int64
			if err := rows.Scan(&c.ID, &c.StorageKey, &c.Size, &at); err != nil {
				return err
			}
			c.LastUsed = fromTS(at)
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// ClearAttachmentFile forgets a cached file (it is fetched again on the next
// open). It reports false when the storage key changed meanwhile.
func (db *DB) ClearAttachmentFile(ctx context.Context, id, storageKey string) (bool, error) {
	var n int64
	err := db.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE attachments SET storage_key = '', cached_at = NULL WHERE id = ? AND storage_key = ? AND provider_ref <> ''`, id, storageKey)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// NewAttachmentID makes an attachment id (so a file can be stored under its
// id before its row exists).
func NewAttachmentID() string { return newID() }
