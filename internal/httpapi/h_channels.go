package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
)

// ChannelRequest is the body of POST/PATCH /channels. On PATCH, config
// replaces the whole config; secrets are merged (an empty value removes one).
type ChannelRequest struct {
	Kind              string                            `json:"kind"`
	Name              inbox.Optional[string]            `json:"name"`
	ProviderAccountID string                            `json:"provider_account_id"`
	Config            inbox.Optional[map[string]any]    `json:"config"`
	Secrets           inbox.Optional[map[string]string] `json:"secrets"`
}

// ProviderAccountRequest is the body of POST/PATCH /provider-accounts.
type ProviderAccountRequest struct {
	Provider string                            `json:"provider"`
	Name     inbox.Optional[string]            `json:"name"`
	Config   inbox.Optional[map[string]any]    `json:"config"`
	Secrets  inbox.Optional[map[string]string] `json:"secrets"`
}

func secretStates(m map[string]string) map[string]inbox.SecretState {
	out := map[string]inbox.SecretState{}
	for k, v := range m {
		if v != "" {
			out[k] = inbox.SecretState{Configured: true}
		}
	}
	return out
}

func checkSecrets(v *inbox.Validator, m map[string]string) {
	v.Check(len(m) <= 32, "secrets", "too many")
	for k, val := range m {
		v.Check(k != "" && len(k) <= 64, "secrets", "names must be 1 to 64 characters")
		v.Check(len(val) <= 16384, "secrets."+k, "is too long")
	}
}

func (s *server) presentChannel(c inbox.Channel) inbox.Channel { return c.Presented(s.PublicURL) }

func (s *server) openSecrets(sealed []byte) (map[string]string, error) {
	if s.Secrets == nil {
		return nil, errors.New("httpapi: no secret box configured")
	}
	m, err := s.Secrets.OpenMap(sealed)
	if err != nil {
		return nil, inbox.Wrap(inbox.Internal, err, "cannot open sealed secrets (was PARLEY_SECRET_KEY changed?)")
	}
	return m, nil
}

func (s *server) seal(m map[string]string) ([]byte, error) {
	if s.Secrets == nil {
		return nil, errors.New("httpapi: no secret box configured")
	}
	return s.Secrets.SealMap(m)
}

func (s *server) listChannels(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	cs, err := s.Store.ListChannels(r.Context(), p.WorkspaceID)
	for i := range cs {
		cs[i] = s.presentChannel(cs[i])
	}
	return list(w, cs, err)
}

func (s *server) getChannel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	c, err := s.Store.GetChannel(r.Context(), p.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.presentChannel(c))
	return nil
}

// ChannelHealth answers GET /channels/{id}/health.
func (s *server) channelHealth(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	h, err := s.Store.ChannelHealth(r.Context(), p.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// validateAdapter runs the kind's ValidateConfig; plain errors become field-less invalid errors.
func (s *server) validateAdapter(kind string, config map[string]any, secrets map[string]string) error {
	a, ok := s.Channels.Get(kind)
	if !ok {
		return inbox.FieldError("unknown channel kind", map[string]string{"kind": "must be one of: " + strings.Join(s.Channels.Kinds(), ", ")})
	}
	if err := a.ValidateConfig(config, secrets); err != nil {
		var ie *inbox.Error
		if errors.As(err, &ie) && ie.Code == inbox.Invalid {
			return err
		}
		return inbox.Wrap(inbox.Invalid, err, "invalid channel configuration: %v", err)
	}
	return nil
}

func (s *server) createChannel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ChannelRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(in.Kind != "", "kind", "is required")
	name := strings.TrimSpace(in.Name.Value)
	checkLen(&v, "name", name, 1, 100)
	v.Check(in.ProviderAccountID == "" || validID(in.ProviderAccountID), "provider_account_id", "is not a valid id")
	secrets := in.Secrets.Value
	checkSecrets(&v, secrets)
	if err := v.Err(); err != nil {
		return err
	}
	config := in.Config.Value
	if config == nil {
		config = map[string]any{}
	}
	if err := s.validateAdapter(in.Kind, config, secrets); err != nil {
		return err
	}
	if in.ProviderAccountID != "" {
		if _, err := s.Store.GetProviderAccount(r.Context(), p.WorkspaceID, in.ProviderAccountID); err != nil {
			if inbox.IsCode(err, inbox.NotFound) {
				return inbox.FieldError("unknown provider account", map[string]string{"provider_account_id": "not found"})
			}
			return err
		}
	}
	sealed, err := s.seal(secrets)
	if err != nil {
		return err
	}
	c, err := s.Store.CreateChannel(r.Context(), p.WorkspaceID, inbox.Channel{
		WorkspaceID: p.WorkspaceID, Kind: in.Kind, Name: name, ProviderAccountID: in.ProviderAccountID,
		Config: config, Secrets: secretStates(secrets), SecretsEnc: sealed, Status: "active",
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.presentChannel(c))
	return nil
}

func (s *server) updateChannel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ChannelRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	cur, err := s.Store.GetChannel(r.Context(), p.WorkspaceID, id)
	if err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(in.Kind == "" || in.Kind == cur.Kind, "kind", "cannot be changed")
	v.Check(in.ProviderAccountID == "" || in.ProviderAccountID == cur.ProviderAccountID, "provider_account_id", "cannot be changed")
	var patch inbox.ChannelPatch
	if in.Name.Set {
		name := strings.TrimSpace(in.Name.Value)
		checkLen(&v, "name", name, 1, 100)
		patch.Name = inbox.Some(name)
	}
	checkSecrets(&v, in.Secrets.Value)
	if err := v.Err(); err != nil {
		return err
	}
	config := cur.Config
	if in.Config.Set {
		config = in.Config.Value
		if config == nil {
			config = map[string]any{}
		}
		patch.Config = inbox.Some(config)
	}
	secrets, err := s.openSecrets(cur.SecretsEnc)
	if err != nil {
		return err
	}
	for k, val := range in.Secrets.Value {
		if val == "" {
			delete(secrets, k)
		} else {
			secrets[k] = val
		}
	}
	if err := s.validateAdapter(cur.Kind, config, secrets); err != nil {
		return err
	}
	if in.Secrets.Set {
		sealed, err := s.seal(secrets)
		if err != nil {
			return err
		}
		patch.SecretsEnc = inbox.Some(sealed)
		patch.Secrets = inbox.Some(secretStates(secrets))
	}
	c, err := s.Store.UpdateChannel(r.Context(), p.WorkspaceID, id, patch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.presentChannel(c))
	return nil
}

func (s *server) deleteChannel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Store.DeleteChannel(r.Context(), p.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func presentAccount(a inbox.ProviderAccount) inbox.ProviderAccount {
	a.SecretsEnc = nil
	if a.Secrets == nil {
		a.Secrets = map[string]inbox.SecretState{}
	}
	if a.Config == nil {
		a.Config = map[string]any{}
	}
	return a
}

func (s *server) listAccounts(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	as, err := s.Store.ListProviderAccounts(r.Context(), p.WorkspaceID)
	for i := range as {
		as[i] = presentAccount(as[i])
	}
	return list(w, as, err)
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.Store.GetProviderAccount(r.Context(), p.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, presentAccount(a))
	return nil
}

func (s *server) saveAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ProviderAccountRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	var a inbox.ProviderAccount
	secrets := map[string]string{}
	if id != "" {
		var err error
		if a, err = s.Store.GetProviderAccount(r.Context(), p.WorkspaceID, id); err != nil {
			return err
		}
		if secrets, err = s.openSecrets(a.SecretsEnc); err != nil {
			return err
		}
	}
	var v inbox.Validator
	if id == "" {
		a.Provider = strings.TrimSpace(in.Provider)
		checkLen(&v, "provider", a.Provider, 1, 64)
	} else {
		v.Check(in.Provider == "" || in.Provider == a.Provider, "provider", "cannot be changed")
	}
	if in.Name.Set || id == "" {
		a.Name = strings.TrimSpace(in.Name.Value)
		checkLen(&v, "name", a.Name, 1, 100)
	}
	if in.Config.Set || a.Config == nil {
		a.Config = in.Config.Value
		if a.Config == nil {
			a.Config = map[string]any{}
		}
	}
	checkSecrets(&v, in.Secrets.Value)
	if err := v.Err(); err != nil {
		return err
	}
	for k, val := range in.Secrets.Value {
		if val == "" {
			delete(secrets, k)
		} else {
			secrets[k] = val
		}
	}
	sealed, err := s.seal(secrets)
	if err != nil {
		return err
	}
	a.WorkspaceID, a.SecretsEnc, a.Secrets = p.WorkspaceID, sealed, secretStates(secrets)
	status := http.StatusOK
	if id == "" {
		status = http.StatusCreated
		a, err = s.Store.CreateProviderAccount(r.Context(), p.WorkspaceID, a)
	} else {
		a, err = s.Store.UpdateProviderAccount(r.Context(), p.WorkspaceID, a)
	}
	if err != nil {
		return err
	}
	writeJSON(w, status, presentAccount(a))
	return nil
}

func (s *server) deleteAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Store.DeleteProviderAccount(r.Context(), p.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
