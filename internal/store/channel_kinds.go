package store

import (
	"context"

	"github.com/parleyhq/parley/internal/inbox"
)

// ChannelsOfKinds lists the channels of the given kinds in every workspace
// (background jobs that ask providers about their channels), oldest first.
// No kinds lists none.
func (db *DB) ChannelsOfKinds(ctx context.Context, kinds []string) ([]inbox.Channel, error) {
	out := []inbox.Channel{}
	if len(kinds) == 0 {
		return out, nil
	}
	err := db.read(ctx, func(t *tx) error {
		cond, args := t.d.inList(kinds)
		rows, err := t.query(`SELECT `+channelCols+` FROM channels WHERE kind `+cond+` ORDER BY created_at, id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanChannel(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}
