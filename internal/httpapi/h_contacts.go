package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
)

// ContactRequest is the body of POST/PATCH /contacts.
type ContactRequest struct {
	Name       inbox.Optional[string]         `json:"name"`
	AvatarURL  inbox.Optional[string]         `json:"avatar_url"`
	Emails     inbox.Optional[[]string]       `json:"emails"`
	Phones     inbox.Optional[[]string]       `json:"phones"`
	Tags       inbox.Optional[[]string]       `json:"tags"`
	Attributes inbox.Optional[map[string]any] `json:"attributes"`
	Notes      inbox.Optional[string]         `json:"notes"`
	Blocked    inbox.Optional[bool]           `json:"blocked"`
}

// toPatch validates and normalizes the request.
func (in ContactRequest) toPatch() (inbox.ContactPatch, error) {
	var v inbox.Validator
	var p inbox.ContactPatch
	if in.Name.Set {
		name := strings.TrimSpace(in.Name.Value)
		checkLen(&v, "name", name, 0, 200)
		p.Name = inbox.Some(name)
	}
	if in.AvatarURL.Set {
		checkLen(&v, "avatar_url", in.AvatarURL.Value, 0, 2048)
		p.AvatarURL = in.AvatarURL
	}
	if in.Emails.Set {
		p.Emails = inbox.Some(normalizeList(&v, "emails", in.Emails.Value, NormalizeEmail, func(e string) string {
			return fmt.Sprintf("%q is not a valid email address", truncate(e, 80))
		}))
	}
	if in.Phones.Set {
		p.Phones = inbox.Some(normalizeList(&v, "phones", in.Phones.Value, NormalizePhone, func(ph string) string {
			return fmt.Sprintf("%q is not a valid international phone number (+ and country code)", truncate(ph, 40))
		}))
	}
	if in.Tags.Set {
		v.Check(len(in.Tags.Value) <= 50, "tags", "too many")
		out := []string{}
		for i, t := range in.Tags.Value {
			t = strings.TrimSpace(t)
			checkLen(&v, fmt.Sprintf("tags[%d]", i), t, 1, 64)
			if !contains(out, t) {
				out = append(out, t)
			}
		}
		p.Tags = inbox.Some(out)
	}
	if in.Attributes.Set {
		v.Check(len(in.Attributes.Value) <= 100, "attributes", "too many")
		a := in.Attributes.Value
		if a == nil {
			a = map[string]any{}
		}
		p.Attributes = inbox.Some(a)
	}
	if in.Notes.Set {
		checkLen(&v, "notes", in.Notes.Value, 0, 10000)
		p.Notes = in.Notes
	}
	p.Blocked = in.Blocked
	return p, v.Err()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (s *server) listContacts(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	limit, cursor, err := pageParams(r, 25, 100)
	if err != nil {
		return err
	}
	q := r.URL.Query().Get("q")
	if len(q) > 200 {
		return inbox.FieldError("invalid query", map[string]string{"q": "is too long"})
	}
	page, err := s.Store.ListContacts(r.Context(), p.WorkspaceID, inbox.ContactFilter{Q: q, Limit: limit, Cursor: cursor})
	if err != nil {
		return err
	}
	page.Items = nonNil(page.Items)
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *server) createContact(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ContactRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	patch, err := in.toPatch()
	if err != nil {
		return err
	}
	c := inbox.Contact{Name: patch.Name.Value, AvatarURL: patch.AvatarURL.Value, Emails: nonNil(patch.Emails.Value),
		Phones: nonNil(patch.Phones.Value), Tags: nonNil(patch.Tags.Value), Attributes: patch.Attributes.Value,
		Notes: patch.Notes.Value, Blocked: patch.Blocked.Value, Identities: []inbox.Identity{}}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	if c.Name == "" && len(c.Emails) == 0 && len(c.Phones) == 0 {
		return inbox.FieldError("a contact needs a name, an email or a phone", map[string]string{"name": "is required without an email or phone"})
	}
	c, err = s.Store.CreateContact(r.Context(), p.WorkspaceID, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *server) getContact(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	c, err := s.Store.GetContact(r.Context(), p.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) updateContact(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ContactRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	patch, err := in.toPatch()
	if err != nil {
		return err
	}
	c, err := s.Store.UpdateContact(r.Context(), p.WorkspaceID, r.PathValue("id"), patch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) deleteContact(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Store.DeleteContact(r.Context(), p.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// MergeRequest is the body of POST /contacts/merge.
type MergeRequest struct {
	PrimaryID string            `json:"primary_id"`
	MergeIDs  []string          `json:"merge_ids"`
	Keep      map[string]string `json:"keep"`
}

func (s *server) mergeContacts(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in MergeRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(validID(in.PrimaryID), "primary_id", "is not a valid id")
	v.Check(len(in.MergeIDs) > 0 && len(in.MergeIDs) <= 50, "merge_ids", "must list 1 to 50 contact ids")
	all := map[string]bool{in.PrimaryID: true}
	for i, id := range in.MergeIDs {
		v.Check(validID(id), fmt.Sprintf("merge_ids[%d]", i), "is not a valid id")
		v.Check(!all[id], fmt.Sprintf("merge_ids[%d]", i), "is repeated or the primary")
		all[id] = true
	}
	for k, id := range in.Keep {
		switch k {
		case "name", "avatar_url", "notes", "blocked", "attributes":
			v.Check(all[id], "keep."+k, "must be one of the merged contacts")
		default:
			v.Check(false, "keep."+k, "is not a mergeable field")
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	c, err := s.Store.MergeContacts(r.Context(), p.WorkspaceID, inbox.MergeInput{PrimaryID: in.PrimaryID, MergeIDs: in.MergeIDs, Keep: in.Keep})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) contactConversations(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	cs, err := s.Store.ContactConversations(r.Context(), p.WorkspaceID, r.PathValue("id"))
	return list(w, cs, err)
}

// contactDuplicates lists likely duplicates: another contact sharing an
// email, a phone, or the exact (case-insensitive) name.
func (s *server) contactDuplicates(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	c, err := s.Store.GetContact(r.Context(), p.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	var queries []string
	queries = append(queries, c.Emails...)
	queries = append(queries, c.Phones...)
	if strings.TrimSpace(c.Name) != "" {
		queries = append(queries, c.Name)
	}
	seen := map[string]bool{c.ID: true}
	out := []inbox.Contact{}
	for _, q := range queries {
		page, err := s.Store.ListContacts(r.Context(), p.WorkspaceID, inbox.ContactFilter{Q: q, Limit: 100})
		if err != nil {
			return err
		}
		for _, o := range page.Items {
			if seen[o.ID] || !likelySame(c, o) {
				continue
			}
			seen[o.ID] = true
			out = append(out, o)
		}
	}
	writeJSON(w, http.StatusOK, ListResponse[inbox.Contact]{Items: out})
	return nil
}

func likelySame(a, b inbox.Contact) bool {
	for _, e := range a.Emails {
		for _, f := range b.Emails {
			if strings.EqualFold(e, f) {
				return true
			}
		}
	}
	for _, e := range a.Phones {
		if contains(b.Phones, e) {
			return true
		}
	}
	return strings.TrimSpace(a.Name) != "" && strings.EqualFold(strings.TrimSpace(a.Name), strings.TrimSpace(b.Name))
}

// normalizeList normalizes up to 20 values of field (emails, phones), dropping
// duplicates and recording a field error for each invalid one.
func normalizeList(v *inbox.Validator, field string, values []string, norm func(string) (string, bool), bad func(string) string) []string {
	v.Check(len(values) <= 20, field, "too many")
	out := []string{}
	for i, raw := range values {
		n, ok := norm(raw)
		v.Check(ok, fmt.Sprintf("%s[%d]", field, i), bad(raw))
		if ok && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
