package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/parleyhq/parley/internal/inbox"
)

const accountCols = `id, workspace_id, provider, name, config, secrets, secrets_enc, created_at, updated_at`

func scanAccount(sc interface{ Scan(...any) error }) (inbox.ProviderAccount, error) {
	var a inbox.ProviderAccount
	var cfg, sec []byte
	var created, updated int64
	if err := sc.Scan(&a.ID, &a.WorkspaceID, &a.Provider, &a.Name, &cfg, &sec, &a.SecretsEnc, &created, &updated); err != nil {
		return a, err
	}
	a.CreatedAt, a.UpdatedAt = fromTS(created), fromTS(updated)
	a.Config, a.Secrets = map[string]any{}, map[string]inbox.SecretState{}
	if err := decodeJSON(cfg, &a.Config); err != nil {
		return a, err
	}
	return a, decodeJSON(sec, &a.Secrets)
}

// ListProviderAccounts lists the provider accounts of a workspace.
func (db *DB) ListProviderAccounts(ctx context.Context, wsID string) ([]inbox.ProviderAccount, error) {
	out := []inbox.ProviderAccount{}
	err := db.read(ctx, func(t *tx) error {
		rows, err := t.query(`SELECT `+accountCols+` FROM provider_accounts WHERE workspace_id = ? ORDER BY created_at, id`, wsID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}

// CreateProviderAccount stores a provider account (secrets arrive sealed).
func (db *DB) CreateProviderAccount(ctx context.Context, wsID string, a inbox.ProviderAccount) (inbox.ProviderAccount, error) {
	var v inbox.Validator
	v.Check(strings.TrimSpace(a.Provider) != "", "provider", "is required")
	v.Check(strings.TrimSpace(a.Name) != "", "name", "is required")
	if err := v.Err(); err != nil {
		return a, err
	}
	err := db.write(ctx, func(t *tx) error {
		if err := requireWorkspace(t, wsID); err != nil {
			return err
		}
		a.ID, a.WorkspaceID, a.CreatedAt, a.UpdatedAt = newID(), wsID, t.now, t.now
		if a.Config == nil {
			a.Config = map[string]any{}
		}
		if a.Secrets == nil {
			a.Secrets = map[string]inbox.SecretState{}
		}
		_, err := t.exec(`INSERT INTO provider_accounts (id, workspace_id, provider, name, config, secrets, secrets_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, wsID, a.Provider, strings.TrimSpace(a.Name), jsonText(a.Config, "{}"), jsonText(a.Secrets, "{}"), a.SecretsEnc, ts(t.now), ts(t.now))
		return err
	})
	return a, err
}

func getAccount(t *tx, wsID, id string) (inbox.ProviderAccount, error) {
	a, err := scanAccount(t.queryRow(`SELECT `+accountCols+` FROM provider_accounts WHERE workspace_id = ? AND id = ?`, wsID, id))
	return a, noRows(err, "provider account")
}

// GetProviderAccount returns one provider account.
func (db *DB) GetProviderAccount(ctx context.Context, wsID, id string) (inbox.ProviderAccount, error) {
	var a inbox.ProviderAccount
	err := db.read(ctx, func(t *tx) error {
		var err error
		a, err = getAccount(t, wsID, id)
		return err
	})
	return a, err
}

// UpdateProviderAccount replaces name, config and secrets (SecretsEnc nil keeps the sealed secrets).
func (db *DB) UpdateProviderAccount(ctx context.Context, wsID string, a inbox.ProviderAccount) (inbox.ProviderAccount, error) {
	var out inbox.ProviderAccount
	err := db.write(ctx, func(t *tx) error {
		cur, err := getAccount(t, wsID, a.ID)
		if err != nil {
			return err
		}
		if strings.TrimSpace(a.Name) != "" {
			cur.Name = strings.TrimSpace(a.Name)
		}
		if a.Config != nil {
			cur.Config = a.Config
		}
		if a.SecretsEnc != nil {
			cur.SecretsEnc = a.SecretsEnc
			if a.Secrets != nil {
				cur.Secrets = a.Secrets
			}
		}
		cur.UpdatedAt = t.now
		if _, err := t.exec(`UPDATE provider_accounts SET name = ?, config = ?, secrets = ?, secrets_enc = ?, updated_at = ? WHERE id = ?`,
			cur.Name, jsonText(cur.Config, "{}"), jsonText(cur.Secrets, "{}"), cur.SecretsEnc, ts(t.now), cur.ID); err != nil {
			return err
		}
		out = cur
		return nil
	})
	return out, err
}

// DeleteProviderAccount removes an account; Conflict while channels use it.
func (db *DB) DeleteProviderAccount(ctx context.Context, wsID, id string) error {
	return db.write(ctx, func(t *tx) error {
		if _, err := getAccount(t, wsID, id); err != nil {
			return err
		}
		var n int
		if err := t.queryRow(`SELECT COUNT(*) FROM channels WHERE provider_account_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return inbox.Errorf(inbox.Conflict, "the account is used by %d channel(s); delete or move them first", n)
		}
		_, err := t.exec(`DELETE FROM provider_accounts WHERE id = ?`, id)
		return err
	})
}

const channelCols = `id, workspace_id, kind, name, provider_account_id, config, secrets, secrets_enc, status, status_detail, created_at, updated_at`

func scanChannel(sc interface{ Scan(...any) error }) (inbox.Channel, error) {
	var c inbox.Channel
	var acct sql.NullString
	var cfg, sec []byte
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.WorkspaceID, &c.Kind, &c.Name, &acct, &cfg, &sec, &c.SecretsEnc, &c.Status, &c.StatusDetail, &created, &updated); err != nil {
		return c, err
	}
	c.ProviderAccountID = acct.String
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	c.Config, c.Secrets = map[string]any{}, map[string]inbox.SecretState{}
	if err := decodeJSON(cfg, &c.Config); err != nil {
		return c, err
	}
	return c, decodeJSON(sec, &c.Secrets)
}

func listChannels(t *tx, wsID string) ([]inbox.Channel, error) {
	rows, err := t.query(`SELECT `+channelCols+` FROM channels WHERE workspace_id = ? ORDER BY created_at, id`, wsID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []inbox.Channel{}
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListChannels lists the channels of a workspace.
func (db *DB) ListChannels(ctx context.Context, wsID string) ([]inbox.Channel, error) {
	var out []inbox.Channel
	err := db.read(ctx, func(t *tx) error {
		var err error
		out, err = listChannels(t, wsID)
		return err
	})
	return out, err
}

// channelChange is a channel as the change log shows it: no sealed secrets.
// emitChannel appends a channel's change row: the channel as the API shows it.
func emitChannel(t *tx, c inbox.Channel) error {
	return t.emit(c.WorkspaceID, inbox.EntityChannel, inbox.OpUpsert, c.ID, c.Presented(t.publicURL))
}

// CreateChannel stores a channel (secrets arrive sealed in SecretsEnc).
func (db *DB) CreateChannel(ctx context.Context, wsID string, c inbox.Channel) (inbox.Channel, error) {
	var v inbox.Validator
	v.Check(strings.TrimSpace(c.Kind) != "", "kind", "is required")
	v.Check(strings.TrimSpace(c.Name) != "", "name", "is required")
	if err := v.Err(); err != nil {
		return c, err
	}
	err := db.write(ctx, func(t *tx) error {
		if err := requireWorkspace(t, wsID); err != nil {
			return err
		}
		if c.ProviderAccountID != "" {
			if _, err := getAccount(t, wsID, c.ProviderAccountID); err != nil {
				return err
			}
		}
		if c.ID == "" {
			c.ID = newID()
		}
		c.WorkspaceID, c.CreatedAt, c.UpdatedAt = wsID, t.now, t.now
		c.Name = strings.TrimSpace(c.Name)
		if c.Status == "" {
			c.Status = "active"
		}
		if c.Config == nil {
			c.Config = map[string]any{}
		}
		if c.Secrets == nil {
			c.Secrets = map[string]inbox.SecretState{}
		}
		_, err := t.exec(`INSERT INTO channels (`+channelCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, wsID, c.Kind, c.Name, nullStr(&c.ProviderAccountID), jsonText(c.Config, "{}"), jsonText(c.Secrets, "{}"), c.SecretsEnc,
			c.Status, c.StatusDetail, ts(t.now), ts(t.now))
		if err != nil {
			return err
		}
		return emitChannel(t, c)
	})
	return c, err
}

func getChannel(t *tx, wsID, id string) (inbox.Channel, error) {
	c, err := scanChannel(t.queryRow(`SELECT `+channelCols+` FROM channels WHERE workspace_id = ? AND id = ?`, wsID, id))
	return c, noRows(err, "channel")
}

// GetChannel returns one channel of the workspace.
func (db *DB) GetChannel(ctx context.Context, wsID, id string) (inbox.Channel, error) {
	var c inbox.Channel
	err := db.read(ctx, func(t *tx) error {
		var err error
		c, err = getChannel(t, wsID, id)
		return err
	})
	return c, err
}

// ChannelByID returns a channel whatever its workspace (webhooks, workers).
func (db *DB) ChannelByID(ctx context.Context, id string) (inbox.Channel, error) {
	var c inbox.Channel
	err := db.read(ctx, func(t *tx) error {
		var err error
		c, err = scanChannel(t.queryRow(`SELECT `+channelCols+` FROM channels WHERE id = ?`, id))
		return noRows(err, "channel")
	})
	return c, err
}

// UpdateChannel applies a patch to a channel.
func (db *DB) UpdateChannel(ctx context.Context, wsID, id string, p inbox.ChannelPatch) (inbox.Channel, error) {
	var c inbox.Channel
	err := db.write(ctx, func(t *tx) error {
		if err := lockRow(t, "channels", wsID, id); err != nil {
			return err
		}
		var err error
		if c, err = getChannel(t, wsID, id); err != nil {
			return err
		}
		if p.Name.Set {
			if strings.TrimSpace(p.Name.Value) == "" {
				return inbox.FieldError("validation failed", map[string]string{"name": "is required"})
			}
			c.Name = strings.TrimSpace(p.Name.Value)
		}
		if p.Config.Set {
			c.Config = p.Config.Value
			if c.Config == nil {
				c.Config = map[string]any{}
			}
		}
		if p.Secrets.Set {
			c.Secrets = p.Secrets.Value
			if c.Secrets == nil {
				c.Secrets = map[string]inbox.SecretState{}
			}
		}
		if p.SecretsEnc.Set {
			c.SecretsEnc = p.SecretsEnc.Value
		}
		if p.Status.Set {
			c.Status = p.Status.Value
		}
		if p.StatusDetail.Set {
			c.StatusDetail = p.StatusDetail.Value
		}
		c.UpdatedAt = t.now
		if _, err := t.exec(`UPDATE channels SET name = ?, config = ?, secrets = ?, secrets_enc = ?, status = ?, status_detail = ?, updated_at = ? WHERE id = ?`,
			c.Name, jsonText(c.Config, "{}"), jsonText(c.Secrets, "{}"), c.SecretsEnc, c.Status, c.StatusDetail, ts(t.now), id); err != nil {
			return err
		}
		return emitChannel(t, c)
	})
	return c, err
}

// DeleteChannel removes a channel with its conversations (tombstones for each).
func (db *DB) DeleteChannel(ctx context.Context, wsID, id string) error {
	return db.write(ctx, func(t *tx) error {
		if _, err := getChannel(t, wsID, id); err != nil {
			return err
		}
		rows, err := t.query(`SELECT id FROM conversations WHERE channel_id = ?`, id)
		if err != nil {
			return err
		}
		convs, err := collectStrings(rows)
		if err != nil {
			return err
		}
		rows, err = t.query(`SELECT DISTINCT contact_id FROM contact_identities WHERE channel_id = ?`, id)
		if err != nil {
			return err
		}
		contacts, err := collectStrings(rows)
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM channels WHERE id = ?`, id); err != nil {
			return err
		}
		// Nothing can apply the channel's unprocessed webhooks any more; they
		// are kept (failed) with the rest of the log until pruned.
		if _, err := t.exec(`UPDATE inbound_log SET state = ?, error = ? WHERE channel_id = ? AND state = 'pending'`,
			InboundFailed, "the channel was deleted", id); err != nil {
			return err
		}
		for _, c := range convs {
			if err := t.emit(wsID, inbox.EntityConversation, inbox.OpDelete, c, nil); err != nil {
				return err
			}
		}
		for _, c := range contacts {
			if err := emitContact(t, wsID, c); err != nil {
				return err
			}
		}
		return t.emit(wsID, inbox.EntityChannel, inbox.OpDelete, id, nil)
	})
}
