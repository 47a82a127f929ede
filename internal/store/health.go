package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// ChannelHealth reports a channel's status and its last inbound, outbound and error.
func (db *DB) ChannelHealth(ctx context.Context, wsID, id string) (inbox.ChannelHealth, error) {
	h := inbox.ChannelHealth{ID: id}
	var in, out, errAt sql.NullInt64
	err := db.read(ctx, func(t *tx) error {
		return t.queryRow(`SELECT status, status_detail, last_inbound_at, last_outbound_at, last_error, last_error_at FROM channels WHERE id = ? AND workspace_id = ?`,
			id, wsID).Scan(&h.Status, &h.StatusDetail, &in, &out, &h.LastError, &errAt)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return h, inbox.Errorf(inbox.NotFound, "channel not found")
	}
	h.LastInboundAt, h.LastOutboundAt, h.LastErrorAt = nullTime(in), nullTime(out), nullTime(errAt)
	return h, err
}

func nullTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromTS(v.Int64)
	return &t
}

// plChannelActivity records that a channel received (column last_inbound_at)
// or sent (last_outbound_at) at t.
func plChannelActivity(t *tx, column, channelID string, at time.Time) error {
	_, err := t.exec(`UPDATE channels SET `+column+` = ? WHERE id = ?`, ts(at), channelID)
	return err
}

// plChannelError records a channel's latest failure; where selects the
// channel with arg (e.g. "id = ?" or a subquery on the row that failed).
func plChannelError(t *tx, where string, arg any, reason string) error {
	_, err := t.exec(`UPDATE channels SET last_error = ?, last_error_at = ? WHERE `+where, plTruncate(reason, 1000), ts(t.now), arg)
	return err
}

// DBStats reports the connection pools' statistics for /metrics.
func (db *DB) DBStats() map[string]sql.DBStats {
	if db.wdb == db.rdb {
		return map[string]sql.DBStats{"main": db.wdb.Stats()}
	}
	return map[string]sql.DBStats{"write": db.wdb.Stats(), "read": db.rdb.Stats()}
}
