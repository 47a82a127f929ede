package httpapi

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
)

// SetupRequest is the body of POST /setup.
type SetupRequest struct {
	Workspace string `json:"workspace"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Password  string `json:"password"`
}

// SetupResponse answers POST /setup.
type SetupResponse struct {
	User      inbox.User      `json:"user"`
	Workspace inbox.Workspace `json:"workspace"`
}

// Setup creates the first workspace and its owner (the API's POST /setup and
// `parley setup`). Conflict once a user exists.
func Setup(ctx context.Context, st inbox.Store, params auth.Params, in SetupRequest) (SetupResponse, error) {
	var v inbox.Validator
	in.Workspace, in.Name = strings.TrimSpace(in.Workspace), strings.TrimSpace(in.Name)
	checkLen(&v, "workspace", in.Workspace, 1, 100)
	if in.Name == "" {
		in.Name = strings.Split(in.Email, "@")[0]
	}
	checkLen(&v, "name", in.Name, 1, 100)
	email, ok := NormalizeEmail(in.Email)
	v.Check(ok, "email", "is not a valid email address")
	checkPassword(&v, "password", in.Password)
	if err := v.Err(); err != nil {
		return SetupResponse{}, err
	}
	if has, err := st.HasUsers(ctx); err != nil {
		return SetupResponse{}, err
	} else if has {
		return SetupResponse{}, inbox.Errorf(inbox.Conflict, "set-up is already done")
	}
	hash, err := auth.HashPassword(in.Password, params)
	if err != nil {
		return SetupResponse{}, err
	}
	u, ws, err := st.Setup(ctx, inbox.SetupInput{Workspace: in.Workspace, Name: in.Name, Email: email, PasswordHash: hash})
	if err != nil {
		return SetupResponse{}, err
	}
	return SetupResponse{User: u, Workspace: ws}, nil
}

func checkPassword(v *inbox.Validator, field, pw string) {
	v.Check(len(pw) >= 8, field, "must be at least 8 characters")
	v.Check(len(pw) <= 256, field, "must be at most 256 bytes")
}

func (s *server) setupStatus(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	has, err := s.Store.HasUsers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"needed": !has})
	return nil
}

func (s *server) setup(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in SetupRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	out, err := Setup(r.Context(), s.Store, s.PasswordParams, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// LoginRequest is the body of POST /auth/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// MeResponse answers login and GET /me.
type MeResponse struct {
	User       inbox.User           `json:"user"`
	Workspaces []inbox.WorkspaceRef `json:"workspaces"`
	CSRFToken  string               `json:"csrf_token"`
}

func (s *server) login(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in LoginRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(strings.TrimSpace(in.Email) != "", "email", "is required")
	v.Check(in.Password != "", "password", "is required")
	v.Check(len(in.Email) <= 254, "email", "is too long")
	v.Check(len(in.Password) <= 256, "password", "is too long")
	if err := v.Err(); err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	emailKey, ipKey := "email:"+email, "ip:"+clientIP(r)
	if wait, blocked := s.LoginLimiter.Blocked(emailKey); blocked {
		return tooMany(wait.Seconds())
	}
	if wait, blocked := s.LoginIPLimiter.Blocked(ipKey); blocked {
		return tooMany(wait.Seconds())
	}
	fail := func() error {
		s.LoginLimiter.Fail(emailKey)
		s.LoginIPLimiter.Fail(ipKey)
		return inbox.Errorf(inbox.Unauthorized, "wrong email or password")
	}
	u, err := s.Store.UserByEmail(r.Context(), email)
	if inbox.IsCode(err, inbox.NotFound) {
		_ = auth.VerifyPassword(in.Password, s.dummyHash()) // same work as a real check
		return fail()
	} else if err != nil {
		return err
	}
	if err := auth.VerifyPassword(in.Password, u.PasswordHash); err != nil {
		return fail()
	}
	s.LoginLimiter.Reset(emailKey)
	token, csrf := auth.NewToken(""), auth.NewToken("")
	now := s.Now().UTC()
	sess := inbox.Session{TokenHash: auth.HashToken(token), UserID: u.ID, CSRFToken: csrf,
		UserAgent: truncate(r.UserAgent(), 256), CreatedAt: now, ExpiresAt: now.Add(s.SessionTTL)}
	if err := s.Store.CreateSession(r.Context(), sess); err != nil {
		return err
	}
	wss, err := s.Store.UserWorkspaces(r.Context(), u.ID)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt, MaxAge: int(s.SessionTTL.Seconds())})
	writeJSON(w, http.StatusOK, MeResponse{User: u, Workspaces: nonNil(wss), CSRFToken: csrf})
	return nil
}

func tooMany(seconds float64) error {
	n := int(seconds)
	if float64(n) < seconds {
		n++
	}
	if n < 1 {
		n = 1
	}
	return &retryErr{seconds: n, err: inbox.Errorf(inbox.RateLimited, "too many failed logins; try again in %d seconds", n)}
}

func (s *server) dummyHash() string {
	s.dummyOnce.Do(func() { s.dummy, _ = auth.HashPassword("not a password", s.PasswordParams) })
	return s.dummy
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) { // never inside a character
		n--
	}
	return s[:n]
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.Store.DeleteSession(r.Context(), auth.HashToken(c.Value)); err != nil && !inbox.IsCode(err, inbox.NotFound) {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	wss, err := s.Store.UserWorkspaces(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	if p.Token != nil { // a token sees only its workspace
		var only []inbox.WorkspaceRef
		for _, ws := range wss {
			if ws.ID == p.Token.WorkspaceID {
				only = append(only, ws)
			}
		}
		wss = only
	}
	out := MeResponse{User: p.User, Workspaces: nonNil(wss)}
	if p.Session != nil {
		out.CSRFToken = p.Session.CSRFToken
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// MePatch is the body of PATCH /me.
type MePatch struct {
	Name            inbox.Optional[string] `json:"name"`
	AvatarURL       inbox.Optional[string] `json:"avatar_url"`
	Availability    inbox.Optional[string] `json:"availability"`
	Password        inbox.Optional[string] `json:"password"`
	CurrentPassword string                 `json:"current_password"`
}

func (s *server) updateMe(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in MePatch
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	var patch inbox.UserPatch
	if in.Name.Set {
		name := strings.TrimSpace(in.Name.Value)
		checkLen(&v, "name", name, 1, 100)
		patch.Name = inbox.Some(name)
	}
	if in.AvatarURL.Set {
		checkLen(&v, "avatar_url", in.AvatarURL.Value, 0, 2048)
		v.Check(in.AvatarURL.Value == "" || strings.HasPrefix(in.AvatarURL.Value, "https://") || strings.HasPrefix(in.AvatarURL.Value, "http://") || strings.HasPrefix(in.AvatarURL.Value, "/"), "avatar_url", "must be an http(s) URL")
		patch.AvatarURL = in.AvatarURL
	}
	if in.Availability.Set {
		v.Check(validAvailability(in.Availability.Value), "availability", "must be online, away or busy")
		patch.Availability = in.Availability
	}
	if in.Password.Set {
		checkPassword(&v, "password", in.Password.Value)
		v.Check(in.CurrentPassword != "", "current_password", "is required to change the password")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if in.Password.Set {
		u, err := s.Store.UserByEmail(r.Context(), p.User.Email)
		if err != nil {
			return err
		}
		if auth.VerifyPassword(in.CurrentPassword, u.PasswordHash) != nil {
			return inbox.FieldError("wrong password", map[string]string{"current_password": "is wrong"})
		}
		hash, err := auth.HashPassword(in.Password.Value, s.PasswordParams)
		if err != nil {
			return err
		}
		patch.PasswordHash = inbox.Some(hash)
	}
	u, err := s.Store.UpdateUser(r.Context(), p.User.ID, patch)
	if err != nil {
		return err
	}
	p.User = u
	return s.me(w, r, p)
}
