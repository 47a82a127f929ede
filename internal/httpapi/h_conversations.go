package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

func (s *server) listConversations(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	limit, cursor, err := pageParams(r, 25, 100)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := inbox.ConversationFilter{UserID: p.User.ID, View: q.Get("view"), Status: q.Get("status"), Channel: q.Get("channel"),
		Label: q.Get("label"), Assignee: q.Get("assignee"), Team: q.Get("team"), Q: q.Get("q"), Limit: limit, Cursor: cursor}
	if f.View == "" {
		f.View = inbox.ViewAll
	}
	if f.Assignee == "me" {
		f.Assignee = p.User.ID
	}
	var v inbox.Validator
	v.Check(inbox.ValidView(f.View), "view", "must be mine, unassigned, open, all, closed or spam")
	v.Check(f.Status == "" || inbox.ValidConversationStatus(f.Status), "status", "must be open, pending, snoozed, resolved or spam")
	v.Check(f.Channel == "" || validID(f.Channel), "channel", "is not a valid id")
	v.Check(f.Label == "" || validID(f.Label), "label", "is not a valid id")
	v.Check(f.Team == "" || validID(f.Team), "team", "is not a valid id")
	v.Check(f.Assignee == "" || f.Assignee == "none" || validID(f.Assignee), "assignee", "must be a user id, me or none")
	v.Check(len(f.Q) <= 200, "q", "is too long")
	if err := v.Err(); err != nil {
		return err
	}
	page, err := s.Store.ListConversations(r.Context(), p.WorkspaceID, f)
	if err != nil {
		return err
	}
	page.Items = nonNil(page.Items)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// NewConversationRequest is the body of POST /conversations.
type NewConversationRequest struct {
	ContactID string `json:"contact_id"`
	ChannelID string `json:"channel_id"`
}

func (s *server) createConversation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in NewConversationRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(validID(in.ContactID), "contact_id", "is not a valid id")
	v.Check(validID(in.ChannelID), "channel_id", "is not a valid id")
	if err := v.Err(); err != nil {
		return err
	}
	c, created, err := s.Store.CreateConversation(r.Context(), p.WorkspaceID, in.ContactID, in.ChannelID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
	return nil
}

func (s *server) getConversation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	c, err := s.Store.GetConversation(r.Context(), p.WorkspaceID, p.User.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// ConversationPatchRequest is the body of PATCH /conversations/{id}.
type ConversationPatchRequest struct {
	Status       inbox.Optional[string]     `json:"status"`
	Priority     inbox.Optional[string]     `json:"priority"`
	SnoozedUntil inbox.Optional[*time.Time] `json:"snoozed_until"`
	AssigneeID   inbox.Optional[*string]    `json:"assignee_id"`
	TeamID       inbox.Optional[*string]    `json:"team_id"`
	Title        inbox.Optional[string]     `json:"title"`
}

func (s *server) updateConversation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ConversationPatchRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(!in.Status.Set || inbox.ValidConversationStatus(in.Status.Value), "status", "must be open, pending, snoozed, resolved or spam")
	v.Check(!in.Priority.Set || validPriority(in.Priority.Value), "priority", "must be none, low, medium, high or urgent")
	if in.Status.Set && in.Status.Value == inbox.StatusSnoozed {
		v.Check(in.SnoozedUntil.Set && in.SnoozedUntil.Value != nil, "snoozed_until", "is required to snooze")
	}
	if in.SnoozedUntil.Set && in.SnoozedUntil.Value != nil {
		v.Check(in.SnoozedUntil.Value.After(s.Now()), "snoozed_until", "must be in the future")
	}
	if in.Title.Set {
		checkLen(&v, "title", in.Title.Value, 0, 200)
	}
	if in.AssigneeID.Set && in.AssigneeID.Value != nil {
		id := *in.AssigneeID.Value
		if !validID(id) {
			v.Check(false, "assignee_id", "is not a valid id")
		} else if _, err := s.Store.MemberRole(r.Context(), p.WorkspaceID, id); inbox.IsCode(err, inbox.NotFound) {
			v.Check(false, "assignee_id", "is not a member of this workspace")
		} else if err != nil {
			return err
		}
	}
	if in.TeamID.Set && in.TeamID.Value != nil {
		id := *in.TeamID.Value
		if !validID(id) {
			v.Check(false, "team_id", "is not a valid id")
		} else {
			ts, err := s.Store.ListTeams(r.Context(), p.WorkspaceID)
			if err != nil {
				return err
			}
			found := false
			for _, t := range ts {
				found = found || t.ID == id
			}
			v.Check(found, "team_id", "is not a team of this workspace")
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	patch := inbox.ConversationPatch{Status: in.Status, Priority: in.Priority, SnoozedUntil: in.SnoozedUntil,
		AssigneeID: in.AssigneeID, TeamID: in.TeamID, Title: in.Title}
	if patch.SnoozedUntil.Set && patch.SnoozedUntil.Value != nil {
		t := patch.SnoozedUntil.Value.UTC()
		patch.SnoozedUntil.Value = &t
	}
	c, err := s.Store.UpdateConversation(r.Context(), p.WorkspaceID, p.User.ID, r.PathValue("id"), patch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) markRead(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rs, err := s.Store.MarkRead(r.Context(), p.WorkspaceID, p.User.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rs)
	return nil
}

func (s *server) markUnread(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rs, err := s.Store.MarkUnread(r.Context(), p.WorkspaceID, p.User.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rs)
	return nil
}

// LabelIDsRequest is the body of POST /conversations/{id}/labels.
type LabelIDsRequest struct {
	LabelIDs []string `json:"label_ids"`
}

func (s *server) addLabels(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in LabelIDsRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(len(in.LabelIDs) > 0 && len(in.LabelIDs) <= 50, "label_ids", "must list 1 to 50 label ids")
	for i, id := range in.LabelIDs {
		v.Check(validID(id), fmt.Sprintf("label_ids[%d]", i), "is not a valid id")
	}
	if err := v.Err(); err != nil {
		return err
	}
	c, err := s.Store.AddConversationLabels(r.Context(), p.WorkspaceID, r.PathValue("id"), in.LabelIDs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) removeLabel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	c, err := s.Store.RemoveConversationLabel(r.Context(), p.WorkspaceID, r.PathValue("id"), r.PathValue("label_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) participants(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ps, err := s.Store.Participants(r.Context(), p.WorkspaceID, r.PathValue("id"))
	return list(w, ps, err)
}

func (s *server) listMessages(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	limit, _, err := pageParams(r, 50, 100)
	if err != nil {
		return err
	}
	before := r.URL.Query().Get("before")
	if before == "" {
		before = r.URL.Query().Get("cursor")
	}
	if len(before) > 512 {
		return inbox.FieldError("invalid query", map[string]string{"before": "is too long"})
	}
	page, err := s.Store.ListMessages(r.Context(), p.WorkspaceID, r.PathValue("id"), before, limit)
	if err != nil {
		return err
	}
	page.Items = nonNil(page.Items)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// SendRequest is the body of POST /conversations/{id}/messages.
type SendRequest struct {
	Text          string            `json:"text"`
	AttachmentIDs []string          `json:"attachment_ids"`
	Private       bool              `json:"private"`
	ReplyToID     *string           `json:"reply_to_id"`
	Template      *channel.Template `json:"template"`
}

const maxTextLen = 65536

func (s *server) createMessage(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in SendRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(utf8.RuneCountInString(in.Text) <= maxTextLen, "text", fmt.Sprintf("is longer than %d characters", maxTextLen))
	v.Check(utf8.ValidString(in.Text), "text", "is not valid UTF-8")
	v.Check(len(in.AttachmentIDs) <= 10, "attachment_ids", "at most 10 attachments")
	for i, id := range in.AttachmentIDs {
		v.Check(validID(id), fmt.Sprintf("attachment_ids[%d]", i), "is not a valid id")
	}
	v.Check(in.ReplyToID == nil || validID(*in.ReplyToID), "reply_to_id", "is not a valid id")
	hasBody := strings.TrimSpace(in.Text) != "" || len(in.AttachmentIDs) > 0 || in.Template != nil
	v.Check(hasBody, "text", "is required (or attachments or a template)")
	if in.Private {
		v.Check(in.Template == nil, "template", "private notes cannot be templates")
	}
	if in.Template != nil {
		v.Check(in.Template.Name != "" && len(in.Template.Name) <= 512, "template.name", "is required")
		v.Check(in.Template.Language != "" && len(in.Template.Language) <= 16, "template.language", "is required")
	}
	if err := v.Err(); err != nil {
		return err
	}
	conv, err := s.Store.GetConversation(r.Context(), p.WorkspaceID, p.User.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	var m inbox.Message
	switch {
	case in.Private:
		mentions, err := s.mentions(r.Context(), p.WorkspaceID, in.Text)
		if err != nil {
			return err
		}
		m, err = s.Store.CreateMessage(r.Context(), p.WorkspaceID, inbox.NewMessage{
			ConversationID: conv.ID, Sender: p.Actor(), Direction: "outbound", Kind: inbox.KindText, Text: in.Text,
			AttachmentIDs: in.AttachmentIDs, ReplyToID: in.ReplyToID, Private: true, Mentions: mentions, Status: inbox.MsgSent,
		})
		if err != nil {
			return err
		}
	case s.Sender != nil:
		if m, err = s.Sender.Send(r.Context(), p.WorkspaceID, p, conv, in); err != nil {
			return err
		}
	default:
		nm := inbox.NewMessage{ConversationID: conv.ID, Sender: p.Actor(), Direction: "outbound", Kind: inbox.KindText,
			Text: in.Text, AttachmentIDs: in.AttachmentIDs, ReplyToID: in.ReplyToID, Status: inbox.MsgQueued, Outbox: true}
		if in.Template != nil {
			nm.Kind = inbox.KindTemplate
			if nm.Content, err = json.Marshal(in.Template); err != nil {
				return err
			}
		}
		if m, err = s.Store.CreateMessage(r.Context(), p.WorkspaceID, nm); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusAccepted, m)
	return nil
}

// mentions resolves @Name and @email in text to member ids.
func (s *server) mentions(ctx context.Context, wsID, text string) ([]string, error) {
	if !strings.Contains(text, "@") {
		return nil, nil
	}
	ms, err := s.Store.ListMembers(ctx, wsID)
	if err != nil {
		return nil, err
	}
	return findMentions(text, ms), nil
}

func findMentions(text string, ms []inbox.Member) []string {
	lower := strings.ToLower(text)
	var out []string
	for _, m := range ms {
		for _, handle := range []string{m.Email, m.Name} {
			if handle == "" {
				continue
			}
			if mentioned(lower, "@"+strings.ToLower(handle)) {
				out = append(out, m.ID)
				break
			}
		}
	}
	return out
}

// mentioned reports whether needle occurs in s not followed by a letter or digit.
func mentioned(s, needle string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], needle)
		if j < 0 {
			return false
		}
		end := i + j + len(needle)
		before := i + j
		okBefore := before == 0 || !isWordByte(s[before-1])
		r, _ := utf8.DecodeRuneInString(s[end:])
		if okBefore && (end == len(s) || !(unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return true
		}
		i = before + 1
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b >= 0x80
}

// ReactionRequest is the body of POST /messages/{id}/reactions.
type ReactionRequest struct {
	Emoji string `json:"emoji"`
}

func (s *server) addReaction(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ReactionRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	var v inbox.Validator
	v.Check(in.Emoji != "" && len(in.Emoji) <= 32 && utf8.ValidString(in.Emoji) && strings.TrimSpace(in.Emoji) == in.Emoji, "emoji", "must be one emoji")
	if err := v.Err(); err != nil {
		return err
	}
	// Delivered to the provider too (queued with it in the store): refused
	// here, before anything is stored, when it cannot be.
	if err := s.checkReaction(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	m, err := s.Store.AddReaction(r.Context(), p.WorkspaceID, r.PathValue("id"), inbox.Reaction{Emoji: in.Emoji, By: p.Actor()})
	if err != nil {
		return err
	}
	s.notifySender()
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *server) removeReaction(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	m, err := s.Store.RemoveReaction(r.Context(), p.WorkspaceID, r.PathValue("id"), p.Actor())
	if err != nil {
		return err
	}
	s.notifySender()
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *server) snapshot(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	snap, err := s.Store.Snapshot(r.Context(), p.WorkspaceID, p.User.ID)
	if err != nil {
		return err
	}
	for i := range snap.Channels {
		snap.Channels[i] = s.presentChannel(snap.Channels[i])
	}
	snap.Conversations, snap.Labels = nonNil(snap.Conversations), nonNil(snap.Labels)
	snap.Members, snap.Channels, snap.Teams = nonNil(snap.Members), nonNil(snap.Channels), nonNil(snap.Teams)
	writeJSON(w, http.StatusOK, snap)
	return nil
}

func (s *server) changes(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	limit, _, err := pageParams(r, 500, 1000)
	if err != nil {
		return err
	}
	since := r.URL.Query().Get("since")
	if since == "" || len(since) > 64 {
		return inbox.FieldError("invalid query", map[string]string{"since": "is required: a cursor from /sync/snapshot or /sync"})
	}
	batch, err := s.Store.Changes(r.Context(), p.WorkspaceID, since, limit)
	if err != nil {
		if inbox.IsCode(err, inbox.Conflict) || inbox.IsCode(err, inbox.Invalid) {
			return &statusErr{status: http.StatusGone, err: inbox.Wrap(inbox.Conflict, err, "the cursor is too old or unknown; take a new snapshot")}
		}
		return err
	}
	batch.Changes = FilterChanges(batch.Changes, p.User.ID)
	writeJSON(w, http.StatusOK, batch)
	return nil
}

// FilterChanges drops read_state changes of other users (they are per user).
func FilterChanges(cs []inbox.Change, userID string) []inbox.Change {
	out := make([]inbox.Change, 0, len(cs))
	for _, c := range cs {
		if c.Entity == inbox.EntityReadState {
			var rs struct {
				UserID string `json:"user_id"`
			}
			if json.Unmarshal(c.Data, &rs) != nil || rs.UserID != userID {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}
