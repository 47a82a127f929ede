package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

const userCols = `u.id, u.email, u.name, u.avatar_url, u.availability, u.password_hash, u.created_at`

func scanUser(sc interface{ Scan(...any) error }, extra ...any) (inbox.User, error) {
	var u inbox.User
	var created int64
	dst := append([]any{&u.ID, &u.Email, &u.Name, &u.AvatarURL, &u.Availability, &u.PasswordHash, &created}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return u, err
	}
	u.CreatedAt = fromTS(created)
	return u, nil
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// HasUsers reports whether any user exists (set-up done).
func (db *DB) HasUsers(ctx context.Context) (bool, error) {
	var n int
	err := db.read(ctx, func(t *tx) error {
		return t.queryRow(`SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) x`).Scan(&n)
	})
	return n > 0, err
}

// Setup creates the first user and workspace; Conflict once any user exists.
func (db *DB) Setup(ctx context.Context, in inbox.SetupInput) (inbox.User, inbox.Workspace, error) {
	var v inbox.Validator
	v.Check(strings.TrimSpace(in.Workspace) != "", "workspace", "is required")
	v.Check(strings.TrimSpace(in.Name) != "", "name", "is required")
	v.Check(strings.Contains(in.Email, "@"), "email", "must be an email address")
	v.Check(in.PasswordHash != "", "password", "is required")
	if err := v.Err(); err != nil {
		return inbox.User{}, inbox.Workspace{}, err
	}
	var u inbox.User
	var ws inbox.Workspace
	err := db.write(ctx, func(t *tx) error {
		if q := t.d.globalLock(lockSetup); q != "" {
			if _, err := t.exec(q); err != nil {
				return err
			}
		}
		var n int
		if err := t.queryRow(`SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) x`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return inbox.Errorf(inbox.Conflict, "set-up is already done")
		}
		var err error
		if u, err = insertUser(t, in.Email, in.Name, in.PasswordHash); err != nil {
			return err
		}
		ws, err = createWorkspace(t, u.ID, in.Workspace)
		return err
	})
	if err != nil {
		return inbox.User{}, inbox.Workspace{}, err
	}
	return u, ws, nil
}

func insertUser(t *tx, email, name, hash string) (inbox.User, error) {
	u := inbox.User{ID: newID(), Email: normEmail(email), Name: strings.TrimSpace(name), Availability: "online", PasswordHash: hash, CreatedAt: t.now}
	_, err := t.exec(`INSERT INTO users (id, email, name, avatar_url, availability, password_hash, created_at, updated_at) VALUES (?, ?, ?, '', ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.Availability, u.PasswordHash, ts(t.now), ts(t.now))
	if err != nil {
		if t.d.classify(err) == errUnique {
			return u, inbox.Errorf(inbox.Conflict, "a user with this email already exists")
		}
		return u, err
	}
	return u, nil
}

func createWorkspace(t *tx, ownerID, name string) (inbox.Workspace, error) {
	ws := inbox.Workspace{ID: newID(), Name: strings.TrimSpace(name), CreatedAt: t.now}
	if ws.Name == "" {
		return ws, inbox.FieldError("validation failed", map[string]string{"name": "is required"})
	}
	if _, err := t.exec(`INSERT INTO workspaces (id, name, change_seq, pruned_seq, created_at) VALUES (?, ?, 0, 0, ?)`, ws.ID, ws.Name, ts(t.now)); err != nil {
		return ws, err
	}
	if _, err := t.exec(`INSERT INTO conversation_counters (workspace_id, last_number) VALUES (?, 0)`, ws.ID); err != nil {
		return ws, err
	}
	if _, err := t.exec(`INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`, ws.ID, ownerID, string(inbox.RoleOwner), ts(t.now)); err != nil {
		if t.d.classify(err) == errForeignKey {
			return ws, notFound("user")
		}
		return ws, err
	}
	return ws, emitMember(t, ws.ID, ownerID)
}

// CreateWorkspace makes a workspace with ownerID as its owner.
func (db *DB) CreateWorkspace(ctx context.Context, ownerID, name string) (inbox.Workspace, error) {
	var ws inbox.Workspace
	err := db.write(ctx, func(t *tx) error {
		if _, err := getUser(t, ownerID); err != nil {
			return err
		}
		var err error
		ws, err = createWorkspace(t, ownerID, name)
		return err
	})
	return ws, err
}

// GetWorkspace returns one workspace.
func (db *DB) GetWorkspace(ctx context.Context, wsID string) (inbox.Workspace, error) {
	var ws inbox.Workspace
	err := db.read(ctx, func(t *tx) error {
		var created int64
		err := t.queryRow(`SELECT id, name, created_at FROM workspaces WHERE id = ?`, wsID).Scan(&ws.ID, &ws.Name, &created)
		ws.CreatedAt = fromTS(created)
		return noRows(err, "workspace")
	})
	return ws, err
}

func getUser(t *tx, id string) (inbox.User, error) {
	u, err := scanUser(t.queryRow(`SELECT `+userCols+` FROM users u WHERE u.id = ?`, id))
	return u, noRows(err, "user")
}

// UserByEmail returns a user with their password hash.
func (db *DB) UserByEmail(ctx context.Context, email string) (inbox.User, error) {
	var u inbox.User
	err := db.read(ctx, func(t *tx) error {
		var err error
		u, err = scanUser(t.queryRow(`SELECT `+userCols+` FROM users u WHERE u.email = ?`, normEmail(email)))
		return noRows(err, "user")
	})
	return u, err
}

// UserByID returns a user.
func (db *DB) UserByID(ctx context.Context, id string) (inbox.User, error) {
	var u inbox.User
	err := db.read(ctx, func(t *tx) error {
		var err error
		u, err = getUser(t, id)
		return err
	})
	return u, err
}

// UpdateUser changes a profile; every workspace of the user gets a member change.
func (db *DB) UpdateUser(ctx context.Context, id string, p inbox.UserPatch) (inbox.User, error) {
	var u inbox.User
	err := db.write(ctx, func(t *tx) error {
		var err error
		if u, err = getUser(t, id); err != nil {
			return err
		}
		if p.Name.Set {
			u.Name = strings.TrimSpace(p.Name.Value)
		}
		if p.AvatarURL.Set {
			u.AvatarURL = p.AvatarURL.Value
		}
		if p.Availability.Set {
			switch p.Availability.Value {
			case "online", "away", "busy":
				u.Availability = p.Availability.Value
			default:
				return inbox.FieldError("validation failed", map[string]string{"availability": "must be online, away or busy"})
			}
		}
		if p.PasswordHash.Set && p.PasswordHash.Value != "" {
			u.PasswordHash = p.PasswordHash.Value
		}
		if _, err := t.exec(`UPDATE users SET name = ?, avatar_url = ?, availability = ?, password_hash = ?, updated_at = ? WHERE id = ?`,
			u.Name, u.AvatarURL, u.Availability, u.PasswordHash, ts(t.now), id); err != nil {
			return err
		}
		rows, err := t.query(`SELECT workspace_id FROM memberships WHERE user_id = ?`, id)
		if err != nil {
			return err
		}
		wss, err := collectStrings(rows)
		if err != nil {
			return err
		}
		for _, ws := range wss {
			if err := emitMember(t, ws, id); err != nil {
				return err
			}
		}
		return nil
	})
	return u, err
}

// UserWorkspaces lists the workspaces of a user with their role.
func (db *DB) UserWorkspaces(ctx context.Context, userID string) ([]inbox.WorkspaceRef, error) {
	out := []inbox.WorkspaceRef{}
	err := db.read(ctx, func(t *tx) error {
		rows, err := t.query(`SELECT w.id, w.name, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = ? ORDER BY w.created_at, w.id`, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r inbox.WorkspaceRef
			if err := rows.Scan(&r.ID, &r.Name, &r.Role); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// MemberRole returns the role of a user in a workspace.
func (db *DB) MemberRole(ctx context.Context, wsID, userID string) (inbox.Role, error) {
	var role inbox.Role
	err := db.read(ctx, func(t *tx) error {
		return noRows(t.queryRow(`SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?`, wsID, userID).Scan(&role), "member")
	})
	return role, err
}

func collectStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// listMembers returns members of a workspace (one user when userID != "").
func listMembers(t *tx, wsID, userID string) ([]inbox.Member, error) {
	q := `SELECT ` + userCols + `, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = ?`
	args := []any{wsID}
	if userID != "" {
		q += ` AND m.user_id = ?`
		args = append(args, userID)
	}
	rows, err := t.query(q+` ORDER BY m.created_at, u.id`, args...)
	if err != nil {
		return nil, err
	}
	out := []inbox.Member{}
	idx := map[string]int{}
	for rows.Next() {
		var m inbox.Member
		var joined int64
		u, err := scanUser(rows, &m.Role, &joined)
		if err != nil {
			rows.Close()
			return nil, err
		}
		u.PasswordHash = ""
		m.User = u
		m.JoinedAt = fromTS(joined)
		m.TeamIDs = []string{}
		idx[u.ID] = len(out)
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	q = `SELECT tm.user_id, tm.team_id FROM team_members tm JOIN teams tt ON tt.id = tm.team_id WHERE tm.workspace_id = ?`
	args = []any{wsID}
	if userID != "" {
		q += ` AND tm.user_id = ?`
		args = append(args, userID)
	}
	rows, err = t.query(q+` ORDER BY tt.created_at, tt.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var uid, tid string
		if err := rows.Scan(&uid, &tid); err != nil {
			return nil, err
		}
		if i, ok := idx[uid]; ok {
			out[i].TeamIDs = append(out[i].TeamIDs, tid)
		}
	}
	return out, rows.Err()
}

func getMember(t *tx, wsID, userID string) (inbox.Member, error) {
	ms, err := listMembers(t, wsID, userID)
	if err != nil {
		return inbox.Member{}, err
	}
	if len(ms) == 0 {
		return inbox.Member{}, notFound("member")
	}
	return ms[0], nil
}

func emitMember(t *tx, wsID, userID string) error {
	m, err := getMember(t, wsID, userID)
	if err != nil {
		return err
	}
	return t.emit(wsID, inbox.EntityMember, inbox.OpUpsert, userID, m)
}

// ListMembers lists the members of a workspace.
func (db *DB) ListMembers(ctx context.Context, wsID string) ([]inbox.Member, error) {
	var out []inbox.Member
	err := db.read(ctx, func(t *tx) error {
		var err error
		out, err = listMembers(t, wsID, "")
		return err
	})
	return out, err
}

// AddMember adds a member, creating the user when the email is new.
func (db *DB) AddMember(ctx context.Context, wsID string, in inbox.NewMember) (inbox.Member, error) {
	if !in.Role.Valid() {
		return inbox.Member{}, inbox.FieldError("validation failed", map[string]string{"role": "must be owner, admin or agent"})
	}
	if !strings.Contains(in.Email, "@") {
		return inbox.Member{}, inbox.FieldError("validation failed", map[string]string{"email": "must be an email address"})
	}
	var m inbox.Member
	err := db.write(ctx, func(t *tx) error {
		if err := requireWorkspace(t, wsID); err != nil {
			return err
		}
		u, err := scanUser(t.queryRow(`SELECT `+userCols+` FROM users u WHERE u.email = ?`, normEmail(in.Email)))
		if err == sql.ErrNoRows {
			var v inbox.Validator
			v.Check(strings.TrimSpace(in.Name) != "", "name", "is required for a new user")
			v.Check(in.PasswordHash != "", "password", "is required for a new user")
			if err := v.Err(); err != nil {
				return err
			}
			u, err = insertUser(t, in.Email, in.Name, in.PasswordHash)
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`, wsID, u.ID, string(in.Role), ts(t.now)); err != nil {
			if t.d.classify(err) == errUnique {
				return inbox.Errorf(inbox.Conflict, "already a member of this workspace")
			}
			return err
		}
		if m, err = getMember(t, wsID, u.ID); err != nil {
			return err
		}
		return t.emit(wsID, inbox.EntityMember, inbox.OpUpsert, u.ID, m)
	})
	return m, err
}

func requireWorkspace(t *tx, wsID string) error {
	var id string
	return noRows(t.queryRow(`SELECT id FROM workspaces WHERE id = ?`, wsID).Scan(&id), "workspace")
}

// UpdateMemberRole changes a member's role.
func (db *DB) UpdateMemberRole(ctx context.Context, wsID, userID string, role inbox.Role) (inbox.Member, error) {
	if !role.Valid() {
		return inbox.Member{}, inbox.FieldError("validation failed", map[string]string{"role": "must be owner, admin or agent"})
	}
	var m inbox.Member
	err := db.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ?`, string(role), wsID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("member")
		}
		if m, err = getMember(t, wsID, userID); err != nil {
			return err
		}
		return t.emit(wsID, inbox.EntityMember, inbox.OpUpsert, userID, m)
	})
	return m, err
}

// RemoveMember removes a member: their conversations are unassigned, they
// leave the workspace's teams and their tokens there are deleted.
func (db *DB) RemoveMember(ctx context.Context, wsID, userID string) error {
	return db.write(ctx, func(t *tx) error {
		res, err := t.exec(`DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?`, wsID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("member")
		}
		rows, err := t.query(`UPDATE conversations SET assignee_id = NULL, updated_at = ? WHERE workspace_id = ? AND assignee_id = ? RETURNING id`, ts(t.now), wsID, userID)
		if err != nil {
			return err
		}
		convs, err := collectStrings(rows)
		if err != nil {
			return err
		}
		rows, err = t.query(`DELETE FROM team_members WHERE workspace_id = ? AND user_id = ? RETURNING team_id`, wsID, userID)
		if err != nil {
			return err
		}
		teams, err := collectStrings(rows)
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM api_tokens WHERE workspace_id = ? AND user_id = ?`, wsID, userID); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM read_state WHERE workspace_id = ? AND user_id = ?`, wsID, userID); err != nil {
			return err
		}
		for _, id := range convs {
			if err := emitConversation(t, wsID, id); err != nil {
				return err
			}
		}
		for _, id := range teams {
			if err := emitTeam(t, wsID, id); err != nil {
				return err
			}
		}
		return t.emit(wsID, inbox.EntityMember, inbox.OpDelete, userID, nil)
	})
}

// CreateSession stores a login session.
func (db *DB) CreateSession(ctx context.Context, s inbox.Session) error {
	if s.TokenHash == "" || s.UserID == "" {
		return inbox.Errorf(inbox.Invalid, "session needs a token hash and a user")
	}
	return db.write(ctx, func(t *tx) error {
		created := s.CreatedAt
		if created.IsZero() {
			created = t.now
		}
		_, err := t.exec(`INSERT INTO sessions (token_hash, user_id, csrf_token, user_agent, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			s.TokenHash, s.UserID, s.CSRFToken, s.UserAgent, ts(created), ts(s.ExpiresAt))
		if err != nil && t.d.classify(err) == errForeignKey {
			return notFound("user")
		}
		return err
	})
}

// SessionByHash returns a live session; NotFound when missing or expired.
func (db *DB) SessionByHash(ctx context.Context, tokenHash string) (inbox.Session, error) {
	var s inbox.Session
	err := db.read(ctx, func(t *tx) error {
		var created, expires int64
		err := t.queryRow(`SELECT token_hash, user_id, csrf_token, user_agent, created_at, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?`, tokenHash, ts(t.now)).
			Scan(&s.TokenHash, &s.UserID, &s.CSRFToken, &s.UserAgent, &created, &expires)
		s.CreatedAt, s.ExpiresAt = fromTS(created), fromTS(expires)
		return noRows(err, "session")
	})
	return s, err
}

// DeleteSession removes a session (no error when it is already gone).
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	return db.write(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
}

// DeleteExpiredSessions removes sessions expired at now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(t *tx) error {
		res, err := t.exec(`DELETE FROM sessions WHERE expires_at <= ?`, ts(now))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

const tokenCols = `id, workspace_id, user_id, name, token_hash, created_at, last_used_at`

func scanToken(sc interface{ Scan(...any) error }) (inbox.APIToken, error) {
	var a inbox.APIToken
	var created int64
	var used sql.NullInt64
	err := sc.Scan(&a.ID, &a.WorkspaceID, &a.UserID, &a.Name, &a.TokenHash, &created, &used)
	a.CreatedAt, a.LastUsedAt = fromTS(created), fromNullTS(used)
	return a, err
}

// CreateAPIToken stores a token of a member.
func (db *DB) CreateAPIToken(ctx context.Context, a inbox.APIToken) (inbox.APIToken, error) {
	if a.TokenHash == "" || strings.TrimSpace(a.Name) == "" {
		return a, inbox.FieldError("validation failed", map[string]string{"name": "is required"})
	}
	err := db.write(ctx, func(t *tx) error {
		var role string
		if err := t.queryRow(`SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?`, a.WorkspaceID, a.UserID).Scan(&role); err != nil {
			return noRows(err, "member")
		}
		if a.ID == "" {
			a.ID = newID()
		}
		a.Name = strings.TrimSpace(a.Name)
		a.CreatedAt = t.now
		a.LastUsedAt = nil
		_, err := t.exec(`INSERT INTO api_tokens (id, workspace_id, user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			a.ID, a.WorkspaceID, a.UserID, a.Name, a.TokenHash, ts(t.now))
		return err
	})
	return a, err
}

// APITokenByHash finds a token by its SHA-256 (only while its user is still a member).
func (db *DB) APITokenByHash(ctx context.Context, tokenHash string) (inbox.APIToken, error) {
	var a inbox.APIToken
	err := db.read(ctx, func(t *tx) error {
		var err error
		a, err = scanToken(t.queryRow(`SELECT `+tokenCols+` FROM api_tokens WHERE token_hash = ?`, tokenHash))
		return noRows(err, "token")
	})
	return a, err
}

// ListAPITokens lists tokens of a workspace (of one user when userID != "").
func (db *DB) ListAPITokens(ctx context.Context, wsID, userID string) ([]inbox.APIToken, error) {
	out := []inbox.APIToken{}
	err := db.read(ctx, func(t *tx) error {
		q := `SELECT ` + tokenCols + ` FROM api_tokens WHERE workspace_id = ?`
		args := []any{wsID}
		if userID != "" {
			q += ` AND user_id = ?`
			args = append(args, userID)
		}
		rows, err := t.query(q+` ORDER BY created_at, id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanToken(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteAPIToken removes a token of the workspace.
func (db *DB) DeleteAPIToken(ctx context.Context, wsID, id string) error {
	return db.write(ctx, func(t *tx) error {
		res, err := t.exec(`DELETE FROM api_tokens WHERE workspace_id = ? AND id = ?`, wsID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("token")
		}
		return nil
	})
}

// TouchAPIToken records the last use of a token.
func (db *DB) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	return db.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, ts(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("token")
		}
		return nil
	})
}
