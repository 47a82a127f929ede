package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/parleyhq/parley/internal/channel"
)

// FillContactProfile fills the empty name and avatar of the contact known
// by p.Identifier on a channel from the provider's profile of that user
// (ingest's background lookups): a value already there — an operator's
// edit, a name a webhook gave — is never overwritten. It reports whether
// anything changed; an unknown identity changes nothing.
func (db *DB) FillContactProfile(ctx context.Context, wsID, channelID string, p channel.Party) (bool, error) {
	if p.Identifier == "" || (p.Name == "" && p.AvatarURL == "") {
		return false, nil
	}
	changed := false
	err := db.write(ctx, func(t *tx) error {
		var cid string
		err := t.queryRow(`SELECT contact_id FROM contact_identities WHERE workspace_id = ? AND channel_id = ? AND identifier = ?`,
			wsID, channelID, p.Identifier).Scan(&cid)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if filled, err := fillContact(t, cid, p.Name, p.AvatarURL); err != nil || !filled {
			return err
		}
		changed = true
		// Conversations show the contact's name and avatar.
		if err := emitContactConversations(t, wsID, cid); err != nil {
			return err
		}
		return emitContact(t, wsID, cid)
	})
	return changed, err
}

// fillContact sets a contact's name and avatar where they are empty (an
// operator's edit, or a name given earlier, is never overwritten) and
// reports whether it changed anything.
func fillContact(t *tx, id, name, avatar string) (bool, error) {
	res, err := t.exec(`UPDATE contacts SET
			name = CASE WHEN name = '' THEN ? ELSE name END,
			avatar_url = CASE WHEN avatar_url = '' THEN ? ELSE avatar_url END,
			updated_at = ?
		WHERE id = ? AND ((name = '' AND ? <> '') OR (avatar_url = '' AND ? <> ''))`, name, avatar, ts(t.now), id, name, avatar)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
