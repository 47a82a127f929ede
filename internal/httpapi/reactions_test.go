package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/whatsapp"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// reactEnv is an API over WhatsApp and Messenger channels, each with one
// inbound message (provider ids "wamid.IN" and "m_IN"); now shifts the
// server's clock.
type reactEnv struct {
	*apitest.Env
	wa, fb inbox.Message
}

func newReactEnv(t *testing.T, shift time.Duration) *reactEnv {
	t.Helper()
	e := newEnv(t, apitest.Options{Channels: channel.NewRegistry(whatsapp.New(), messenger.New(), testAdapter{}),
		Configure: func(d *httpapi.Deps) { d.Now = func() time.Time { return time.Now().Add(shift) } }})
	r := &reactEnv{Env: e}
	r.wa = r.inbound(t, "whatsapp", "wamid.IN", "15552223333")
	r.fb = r.inbound(t, "messenger", "m_IN", "PSID1")
	return r
}

// inbound stores a customer's message on a new channel of kind.
func (r *reactEnv) inbound(t *testing.T, kind, ext, from string) inbox.Message {
	t.Helper()
	ctx := context.Background()
	ch, err := r.Store.CreateChannel(ctx, r.Workspace.ID, inbox.Channel{Kind: kind, Name: kind})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Store.ApplyInbound(ctx, store.InboundEntry{ID: kind, ReceivedAt: time.Now()}, ch, []channel.Event{{Type: channel.EventMessage,
		ExternalID: ext, ChatID: from, Direction: "inbound", Kind: inbox.KindText, Text: "hi", Sender: channel.Party{Identifier: from}}}); err != nil {
		t.Fatal(err)
	}
	convs, err := r.Store.ListConversations(ctx, r.Workspace.ID, inbox.ConversationFilter{View: inbox.ViewAll, Channel: ch.ID})
	if err != nil || len(convs.Items) != 1 {
		t.Fatalf("%v %d", err, len(convs.Items))
	}
	ms, err := r.Store.ListMessages(ctx, r.Workspace.ID, convs.Items[0].ID, "", 10)
	if err != nil || len(ms.Items) != 1 {
		t.Fatalf("%v %d", err, len(ms.Items))
	}
	return ms.Items[0]
}

// reactionJobs are the payloads of a message's reaction jobs.
func (r *reactEnv) reactionJobs(t *testing.T, msgID string) []string {
	t.Helper()
	js, err := r.Store.OutboxJobs(context.Background(), msgID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range js {
		if j.Kind == store.OutboxReaction {
			out = append(out, j.Payload)
		}
	}
	return out
}

// refused checks a 400 invalid naming want, with nothing stored on msgID.
func (r *reactEnv) refused(t *testing.T, msgID string, res *apitest.Response, want string) {
	t.Helper()
	if res.Status != http.StatusBadRequest {
		t.Fatalf("status %d %s, want 400", res.Status, res.Body)
	}
	if e := res.Error(t); e.Code != inbox.Invalid || !strings.Contains(e.Message, want) || e.Fields["emoji"] == "" {
		t.Fatalf("error %+v, want invalid %q on emoji", e, want)
	}
	m, err := r.Store.GetMessage(context.Background(), r.Workspace.ID, msgID)
	if err != nil || len(m.Reactions) != 0 {
		t.Fatalf("%v reactions %+v: nothing may be stored", err, m.Reactions)
	}
	if js := r.reactionJobs(t, msgID); len(js) != 0 {
		t.Fatalf("jobs %v: nothing may be queued", js)
	}
}

func TestReactionReachesTheProvider(t *testing.T) {
	r := newReactEnv(t, 0)
	var m inbox.Message
	r.Owner.MustDo("POST", r.WS("/messages/"+r.wa.ID+"/reactions"), map[string]string{"emoji": "👍"}, 200, &m)
	if len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" || m.Reactions[0].By.ID != r.OwnerUser.ID {
		t.Fatalf("reactions %+v", m.Reactions)
	}
	if js := r.reactionJobs(t, r.wa.ID); len(js) != 1 || js[0] != `{"target_id":"wamid.IN","emoji":"👍"}` {
		t.Fatalf("jobs %v", js)
	}
	r.Owner.MustDo("DELETE", r.WS("/messages/"+r.wa.ID+"/reactions"), nil, 200, &m)
	if js := r.reactionJobs(t, r.wa.ID); len(m.Reactions) != 0 || len(js) != 1 || js[0] != `{"target_id":"wamid.IN","emoji":""}` {
		t.Fatalf("reactions %+v jobs %v: the removal supersedes the job not started", m.Reactions, js)
	}
}

func TestReactionRefusedBeforeStoring(t *testing.T) {
	r := newReactEnv(t, 0)
	react := func(id string) *apitest.Response {
		return r.Owner.Do("POST", r.WS("/messages/"+id+"/reactions"), map[string]string{"emoji": "👍"})
	}
	t.Run("channel without reactions", func(t *testing.T) {
		r.refused(t, r.fb.ID, react(r.fb.ID), "cannot send reactions")
	})
	t.Run("message not sent yet", func(t *testing.T) {
		out, err := r.Store.CreateMessage(context.Background(), r.Workspace.ID, inbox.NewMessage{ConversationID: r.wa.ConversationID,
			Sender: inbox.Actor{Type: "agent", ID: r.OwnerUser.ID}, Text: "queued", Outbox: true})
		if err != nil {
			t.Fatal(err)
		}
		r.refused(t, out.ID, react(out.ID), "not been sent")
	})
	t.Run("a private note's reactions stay in the team", func(t *testing.T) {
		var note inbox.Message
		r.Owner.MustDo("POST", r.WS("/conversations/"+r.fb.ConversationID+"/messages"), map[string]any{"text": "note", "private": true}, 202, &note)
		var m inbox.Message
		r.Owner.MustDo("POST", r.WS("/messages/"+note.ID+"/reactions"), map[string]string{"emoji": "👀"}, 200, &m)
		if len(m.Reactions) != 1 || len(r.reactionJobs(t, note.ID)) != 0 {
			t.Fatalf("reactions %+v", m.Reactions)
		}
	})
}

func TestReactionRefusedOutsideTheReplyWindow(t *testing.T) {
	r := newReactEnv(t, 30*time.Hour) // WhatsApp's window is 24 h
	r.refused(t, r.wa.ID, r.Owner.Do("POST", r.WS("/messages/"+r.wa.ID+"/reactions"), map[string]string{"emoji": "👍"}), "outside the 24-hour reply window")
}
