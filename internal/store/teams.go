package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/parleyhq/parley/internal/inbox"
)

func listTeams(t *tx, wsID, id string) ([]inbox.Team, error) {
	q := `SELECT id, name, description, created_at FROM teams WHERE workspace_id = ?`
	args := []any{wsID}
	if id != "" {
		q += ` AND id = ?`
		args = append(args, id)
	}
	rows, err := t.query(q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	out := []inbox.Team{}
	idx := map[string]int{}
	for rows.Next() {
		var tm inbox.Team
		var created int64
		if err := rows.Scan(&tm.ID, &tm.Name, &tm.Description, &created); err != nil {
			rows.Close()
			return nil, err
		}
		tm.CreatedAt = fromTS(created)
		tm.MemberIDs = []string{}
		idx[tm.ID] = len(out)
		out = append(out, tm)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	q = `SELECT team_id, user_id FROM team_members WHERE workspace_id = ?`
	args = []any{wsID}
	if id != "" {
		q += ` AND team_id = ?`
		args = append(args, id)
	}
	rows, err = t.query(q+` ORDER BY user_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var tid, uid string
		if err := rows.Scan(&tid, &uid); err != nil {
			return nil, err
		}
		if i, ok := idx[tid]; ok {
			out[i].MemberIDs = append(out[i].MemberIDs, uid)
		}
	}
	return out, rows.Err()
}

func getTeam(t *tx, wsID, id string) (inbox.Team, error) {
	ts, err := listTeams(t, wsID, id)
	if err != nil {
		return inbox.Team{}, err
	}
	if len(ts) == 0 {
		return inbox.Team{}, notFound("team")
	}
	return ts[0], nil
}

func emitTeam(t *tx, wsID, id string) error {
	tm, err := getTeam(t, wsID, id)
	if err != nil {
		return err
	}
	return t.emit(wsID, inbox.EntityTeam, inbox.OpUpsert, id, tm)
}

// ListTeams lists the teams of a workspace.
func (db *DB) ListTeams(ctx context.Context, wsID string) ([]inbox.Team, error) {
	var out []inbox.Team
	err := db.read(ctx, func(t *tx) error {
		var err error
		out, err = listTeams(t, wsID, "")
		return err
	})
	return out, err
}

// setTeamMembers replaces the members of a team; every id must be a member of
// the workspace. Members whose team list changed get member changes.
func setTeamMembers(t *tx, wsID, teamID string, userIDs []string) error {
	rows, err := t.query(`SELECT user_id FROM team_members WHERE team_id = ?`, teamID)
	if err != nil {
		return err
	}
	old, err := collectStrings(rows)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, u := range userIDs {
		if want[u] {
			continue
		}
		want[u] = true
		var role string
		if err := t.queryRow(`SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?`, wsID, u).Scan(&role); err != nil {
			if err == sql.ErrNoRows {
				return inbox.FieldError("validation failed", map[string]string{"member_ids": "contains a user who is not a member"})
			}
			return err
		}
	}
	had := map[string]bool{}
	for _, u := range old {
		had[u] = true
	}
	var touched []string
	for _, u := range old {
		if !want[u] {
			if _, err := t.exec(`DELETE FROM team_members WHERE team_id = ? AND user_id = ?`, teamID, u); err != nil {
				return err
			}
			touched = append(touched, u)
		}
	}
	for _, u := range userIDs {
		if !had[u] {
			had[u] = true
			if _, err := t.exec(`INSERT INTO team_members (team_id, user_id, workspace_id) VALUES (?, ?, ?)`, teamID, u, wsID); err != nil {
				return err
			}
			touched = append(touched, u)
		}
	}
	for _, u := range touched {
		if err := emitMember(t, wsID, u); err != nil {
			return err
		}
	}
	return nil
}

// CreateTeam makes a team with its members.
func (db *DB) CreateTeam(ctx context.Context, wsID string, tm inbox.Team) (inbox.Team, error) {
	if strings.TrimSpace(tm.Name) == "" {
		return tm, inbox.FieldError("validation failed", map[string]string{"name": "is required"})
	}
	var out inbox.Team
	err := db.write(ctx, func(t *tx) error {
		if err := requireWorkspace(t, wsID); err != nil {
			return err
		}
		id := newID()
		if _, err := t.exec(`INSERT INTO teams (id, workspace_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, wsID, strings.TrimSpace(tm.Name), tm.Description, ts(t.now)); err != nil {
			return err
		}
		if err := setTeamMembers(t, wsID, id, tm.MemberIDs); err != nil {
			return err
		}
		var err error
		if out, err = getTeam(t, wsID, id); err != nil {
			return err
		}
		return t.emit(wsID, inbox.EntityTeam, inbox.OpUpsert, id, out)
	})
	return out, err
}

// UpdateTeam replaces a team's name, description and members (MemberIDs nil keeps them).
func (db *DB) UpdateTeam(ctx context.Context, wsID string, tm inbox.Team) (inbox.Team, error) {
	if strings.TrimSpace(tm.Name) == "" {
		return tm, inbox.FieldError("validation failed", map[string]string{"name": "is required"})
	}
	var out inbox.Team
	err := db.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE teams SET name = ?, description = ? WHERE workspace_id = ? AND id = ?`, strings.TrimSpace(tm.Name), tm.Description, wsID, tm.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("team")
		}
		if tm.MemberIDs != nil {
			if err := setTeamMembers(t, wsID, tm.ID, tm.MemberIDs); err != nil {
				return err
			}
		}
		if out, err = getTeam(t, wsID, tm.ID); err != nil {
			return err
		}
		return t.emit(wsID, inbox.EntityTeam, inbox.OpUpsert, tm.ID, out)
	})
	return out, err
}

// DeleteTeam removes a team; its conversations lose their team.
func (db *DB) DeleteTeam(ctx context.Context, wsID, id string) error {
	return db.write(ctx, func(t *tx) error {
		if _, err := getTeam(t, wsID, id); err != nil {
			return err
		}
		rows, err := t.query(`UPDATE conversations SET team_id = NULL, updated_at = ? WHERE workspace_id = ? AND team_id = ? RETURNING id`, ts(t.now), wsID, id)
		if err != nil {
			return err
		}
		convs, err := collectStrings(rows)
		if err != nil {
			return err
		}
		rows, err = t.query(`DELETE FROM team_members WHERE team_id = ? RETURNING user_id`, id)
		if err != nil {
			return err
		}
		users, err := collectStrings(rows)
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM teams WHERE workspace_id = ? AND id = ?`, wsID, id); err != nil {
			return err
		}
		for _, c := range convs {
			if err := emitConversation(t, wsID, c); err != nil {
				return err
			}
		}
		for _, u := range users {
			if err := emitMember(t, wsID, u); err != nil {
				return err
			}
		}
		return t.emit(wsID, inbox.EntityTeam, inbox.OpDelete, id, nil)
	})
}

const labelCols = `id, name, color, description, created_at`

func scanLabel(sc interface{ Scan(...any) error }) (inbox.Label, error) {
	var l inbox.Label
	var created int64
	err := sc.Scan(&l.ID, &l.Name, &l.Color, &l.Description, &created)
	l.CreatedAt = fromTS(created)
	return l, err
}

func listLabels(t *tx, wsID string) ([]inbox.Label, error) {
	rows, err := t.query(`SELECT `+labelCols+` FROM labels WHERE workspace_id = ? ORDER BY name, id`, wsID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []inbox.Label{}
	for rows.Next() {
		l, err := scanLabel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ListLabels lists the labels of a workspace by name.
func (db *DB) ListLabels(ctx context.Context, wsID string) ([]inbox.Label, error) {
	var out []inbox.Label
	err := db.read(ctx, func(t *tx) error {
		var err error
		out, err = listLabels(t, wsID)
		return err
	})
	return out, err
}

func labelConflict(err error, t *tx) error {
	if err != nil && t.d.classify(err) == errUnique {
		return &inbox.Error{Code: inbox.Conflict, Message: "a label with this name already exists", Fields: map[string]string{"name": "is already used"}, Err: err}
	}
	return err
}

// CreateLabel makes a label; Conflict on a duplicate name.
func (db *DB) CreateLabel(ctx context.Context, wsID string, l inbox.Label) (inbox.Label, error) {
	l.Name = strings.TrimSpace(l.Name)
	if l.Name == "" {
		return l, inbox.FieldError("validation failed", map[string]string{"name": "is required"})
	}
	err := db.write(ctx, func(t *tx) error {
		if err := requireWorkspace(t, wsID); err != nil {
			return err
		}
		l.ID, l.CreatedAt = newID(), t.now
		_, err := t.exec(`INSERT INTO labels (id, workspace_id, name, color, description, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			l.ID, wsID, l.Name, l.Color, l.Description, ts(t.now))
		if err != nil {
			return labelConflict(err, t)
		}
		return t.emit(wsID, inbox.EntityLabel, inbox.OpUpsert, l.ID, l)
	})
	return l, err
}

// UpdateLabel replaces a label's name, color and description.
func (db *DB) UpdateLabel(ctx context.Context, wsID string, l inbox.Label) (inbox.Label, error) {
	l.Name = strings.TrimSpace(l.Name)
	if l.Name == "" {
		return l, inbox.FieldError("validation failed", map[string]string{"name": "is required"})
	}
	var out inbox.Label
	err := db.write(ctx, func(t *tx) error {
		var err error
		out, err = scanLabel(t.queryRow(`UPDATE labels SET name = ?, color = ?, description = ? WHERE workspace_id = ? AND id = ? RETURNING `+labelCols,
			l.Name, l.Color, l.Description, wsID, l.ID))
		if err != nil {
			return noRows(labelConflict(err, t), "label")
		}
		return t.emit(wsID, inbox.EntityLabel, inbox.OpUpsert, out.ID, out)
	})
	return out, err
}

// DeleteLabel removes a label from the workspace and its conversations.
func (db *DB) DeleteLabel(ctx context.Context, wsID, id string) error {
	return db.write(ctx, func(t *tx) error {
		var x string
		if err := t.queryRow(`SELECT id FROM labels WHERE workspace_id = ? AND id = ?`, wsID, id).Scan(&x); err != nil {
			return noRows(err, "label")
		}
		rows, err := t.query(`DELETE FROM conversation_labels WHERE label_id = ? RETURNING conversation_id`, id)
		if err != nil {
			return err
		}
		convs, err := collectStrings(rows)
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM labels WHERE id = ?`, id); err != nil {
			return err
		}
		for _, c := range convs {
			if err := emitConversation(t, wsID, c); err != nil {
				return err
			}
		}
		return t.emit(wsID, inbox.EntityLabel, inbox.OpDelete, id, nil)
	})
}
