package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
)

// NameRequest is a body with just a name.
type NameRequest struct {
	Name string `json:"name"`
}

// WorkspaceResponse is a workspace with the caller's role.
type WorkspaceResponse struct {
	inbox.Workspace
	Role inbox.Role `json:"role"`
}

func (s *server) createWorkspace(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in NameRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	in.Name = strings.TrimSpace(in.Name)
	checkLen(&v, "name", in.Name, 1, 100)
	if err := v.Err(); err != nil {
		return err
	}
	ws, err := s.Store.CreateWorkspace(r.Context(), p.User.ID, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, WorkspaceResponse{Workspace: ws, Role: inbox.RoleOwner})
	return nil
}

func (s *server) getWorkspace(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ws, err := s.Store.GetWorkspace(r.Context(), p.WorkspaceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, WorkspaceResponse{Workspace: ws, Role: p.Role})
	return nil
}

// ListResponse wraps a non-paginated list.
type ListResponse[T any] struct {
	Items []T `json:"items"`
}

func list[T any](w http.ResponseWriter, items []T, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ListResponse[T]{Items: nonNil(items)})
	return nil
}

func (s *server) listMembers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ms, err := s.Store.ListMembers(r.Context(), p.WorkspaceID)
	return list(w, ms, err)
}

// MemberRequest is the body of POST /members.
type MemberRequest struct {
	Email    string     `json:"email"`
	Name     string     `json:"name"`
	Password string     `json:"password"`
	Role     inbox.Role `json:"role"`
}

func (s *server) addMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in MemberRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	email, ok := NormalizeEmail(in.Email)
	v.Check(ok, "email", "is not a valid email address")
	in.Name = strings.TrimSpace(in.Name)
	checkLen(&v, "name", in.Name, 0, 100)
	if in.Role == "" {
		in.Role = inbox.RoleAgent
	}
	v.Check(in.Role.Valid(), "role", "must be owner, admin or agent")
	if in.Password != "" {
		checkPassword(&v, "password", in.Password)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if in.Role == inbox.RoleOwner && p.Role != inbox.RoleOwner {
		return inbox.Errorf(inbox.Forbidden, "only an owner can add owners")
	}
	nm := inbox.NewMember{Email: email, Name: in.Name, Role: in.Role}
	if _, err := s.Store.UserByEmail(r.Context(), email); inbox.IsCode(err, inbox.NotFound) {
		// A new user: name and password are needed.
		v.Check(in.Name != "", "name", "is required for a new user")
		v.Check(in.Password != "", "password", "is required for a new user")
		if err := v.Err(); err != nil {
			return err
		}
		if nm.PasswordHash, err = auth.HashPassword(in.Password, s.PasswordParams); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	m, err := s.Store.AddMember(r.Context(), p.WorkspaceID, nm)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

// RoleRequest is the body of PATCH /members/{user_id}.
type RoleRequest struct {
	Role inbox.Role `json:"role"`
}

// guardOwner refuses changes to owners by non-owners and leaving a workspace without an owner.
func (s *server) guardOwner(r *http.Request, p *auth.Principal, userID string, newRole inbox.Role) error {
	ms, err := s.Store.ListMembers(r.Context(), p.WorkspaceID)
	if err != nil {
		return err
	}
	owners, target := 0, -1
	for i, m := range ms {
		if m.Role == inbox.RoleOwner {
			owners++
		}
		if m.ID == userID {
			target = i
		}
	}
	if target < 0 {
		return inbox.Errorf(inbox.NotFound, "member not found")
	}
	if (ms[target].Role == inbox.RoleOwner || newRole == inbox.RoleOwner) && p.Role != inbox.RoleOwner {
		return inbox.Errorf(inbox.Forbidden, "only an owner can change owners")
	}
	if ms[target].Role == inbox.RoleOwner && newRole != inbox.RoleOwner && owners == 1 {
		return inbox.Errorf(inbox.Conflict, "a workspace needs at least one owner")
	}
	return nil
}

func (s *server) updateMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in RoleRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if !in.Role.Valid() {
		return inbox.FieldError("invalid role", map[string]string{"role": "must be owner, admin or agent"})
	}
	userID := r.PathValue("user_id")
	if err := s.guardOwner(r, p, userID, in.Role); err != nil {
		return err
	}
	m, err := s.Store.UpdateMemberRole(r.Context(), p.WorkspaceID, userID, in.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	userID := r.PathValue("user_id")
	if err := s.guardOwner(r, p, userID, ""); err != nil {
		return err
	}
	if err := s.Store.RemoveMember(r.Context(), p.WorkspaceID, userID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TokenResponse answers POST /tokens: the token is shown once.
type TokenResponse struct {
	inbox.APIToken
	Token string `json:"token"`
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	userID := p.User.ID
	if p.Role.CanManage() {
		userID = ""
	}
	ts, err := s.Store.ListAPITokens(r.Context(), p.WorkspaceID, userID)
	return list(w, ts, err)
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in NameRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	in.Name = strings.TrimSpace(in.Name)
	checkLen(&v, "name", in.Name, 1, 100)
	if err := v.Err(); err != nil {
		return err
	}
	tok := auth.NewToken("prl_")
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	t, err := s.Store.CreateAPIToken(r.Context(), inbox.APIToken{ID: id.String(), WorkspaceID: p.WorkspaceID, UserID: p.User.ID,
		Name: in.Name, TokenHash: auth.HashToken(tok), CreatedAt: s.Now().UTC()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, TokenResponse{APIToken: t, Token: tok})
	return nil
}

func (s *server) deleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	ts, err := s.Store.ListAPITokens(r.Context(), p.WorkspaceID, "")
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ts, func(t inbox.APIToken) bool { return t.ID == id })
	if i < 0 {
		return inbox.Errorf(inbox.NotFound, "token not found")
	}
	if ts[i].UserID != p.User.ID && !p.Role.CanManage() {
		return inbox.Errorf(inbox.Forbidden, "only admins can revoke other members' tokens")
	}
	if err := s.Store.DeleteAPIToken(r.Context(), p.WorkspaceID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TeamRequest is the body of POST/PATCH /teams.
type TeamRequest struct {
	Name        inbox.Optional[string]   `json:"name"`
	Description inbox.Optional[string]   `json:"description"`
	MemberIDs   inbox.Optional[[]string] `json:"member_ids"`
}

func (s *server) listTeams(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ts, err := s.Store.ListTeams(r.Context(), p.WorkspaceID)
	return list(w, ts, err)
}

func (s *server) saveTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in TeamRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	var t inbox.Team
	if id != "" {
		ts, err := s.Store.ListTeams(r.Context(), p.WorkspaceID)
		if err != nil {
			return err
		}
		if t, err = findByID(ts, id, func(t inbox.Team) string { return t.ID }, "team"); err != nil {
			return err
		}
	}
	var v inbox.Validator
	if in.Name.Set || id == "" {
		t.Name = strings.TrimSpace(in.Name.Value)
		checkLen(&v, "name", t.Name, 1, 100)
	}
	if in.Description.Set {
		t.Description = in.Description.Value
		checkLen(&v, "description", t.Description, 0, 1000)
	}
	if in.MemberIDs.Set {
		t.MemberIDs = nonNil(in.MemberIDs.Value)
		if err := s.checkMembers(r, p, &v, "member_ids", t.MemberIDs); err != nil {
			return err
		}
	}
	t.MemberIDs = nonNil(t.MemberIDs)
	if err := v.Err(); err != nil {
		return err
	}
	var err error
	status := http.StatusOK
	if id == "" {
		status = http.StatusCreated
		t, err = s.Store.CreateTeam(r.Context(), p.WorkspaceID, t)
	} else {
		t, err = s.Store.UpdateTeam(r.Context(), p.WorkspaceID, t)
	}
	if err != nil {
		return err
	}
	writeJSON(w, status, t)
	return nil
}

func (s *server) checkMembers(r *http.Request, p *auth.Principal, v *inbox.Validator, field string, ids []string) error {
	if len(ids) > 1000 {
		v.Check(false, field, "too many")
		return nil
	}
	ms, err := s.Store.ListMembers(r.Context(), p.WorkspaceID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		v.Check(slices.ContainsFunc(ms, func(m inbox.Member) bool { return m.ID == id }), field, "contains an id that is not a member")
	}
	return nil
}

func (s *server) deleteTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Store.DeleteTeam(r.Context(), p.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// LabelRequest is the body of POST/PATCH /labels.
type LabelRequest struct {
	Name        inbox.Optional[string] `json:"name"`
	Color       inbox.Optional[string] `json:"color"`
	Description inbox.Optional[string] `json:"description"`
}

func (s *server) listLabels(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ls, err := s.Store.ListLabels(r.Context(), p.WorkspaceID)
	return list(w, ls, err)
}

func (s *server) saveLabel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in LabelRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	l := inbox.Label{Color: "#6b7280"}
	if id != "" {
		ls, err := s.Store.ListLabels(r.Context(), p.WorkspaceID)
		if err != nil {
			return err
		}
		if l, err = findByID(ls, id, func(l inbox.Label) string { return l.ID }, "label"); err != nil {
			return err
		}
	}
	var v inbox.Validator
	if in.Name.Set || id == "" {
		l.Name = strings.TrimSpace(in.Name.Value)
		checkLen(&v, "name", l.Name, 1, 64)
	}
	if in.Color.Set {
		l.Color = in.Color.Value
		v.Check(colorRE.MatchString(l.Color), "color", "must be #rrggbb")
	}
	if in.Description.Set {
		l.Description = in.Description.Value
		checkLen(&v, "description", l.Description, 0, 500)
	}
	if err := v.Err(); err != nil {
		return err
	}
	var err error
	status := http.StatusOK
	if id == "" {
		status = http.StatusCreated
		l, err = s.Store.CreateLabel(r.Context(), p.WorkspaceID, l)
	} else {
		l, err = s.Store.UpdateLabel(r.Context(), p.WorkspaceID, l)
	}
	if err != nil {
		return err
	}
	writeJSON(w, status, l)
	return nil
}

func (s *server) deleteLabel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Store.DeleteLabel(r.Context(), p.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// findByID picks the item with id out of a short list the store returns
// whole (teams, labels); a missing id is NotFound.
func findByID[T any](items []T, id string, idOf func(T) string, what string) (T, error) {
	i := slices.IndexFunc(items, func(x T) bool { return idOf(x) == id })
	if i < 0 {
		var zero T
		return zero, inbox.Errorf(inbox.NotFound, "%s not found", what)
	}
	return items[i], nil
}
