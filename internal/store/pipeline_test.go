package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// plBackends opens one fresh database per available backend: SQLite always,
// PostgreSQL (a fresh schema) when PARLEY_TEST_POSTGRES_URL is set.
func plBackends(t *testing.T) map[string]*DB {
	t.Helper()
	ctx := context.Background()
	out := map[string]*DB{}
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	out["sqlite"] = db
	if u := os.Getenv("PARLEY_TEST_POSTGRES_URL"); u != "" {
		out["postgres"] = PLOpenPostgresSchema(t, u)
	}
	return out
}

// PLOpenPostgresSchema opens a store on a fresh schema of the test database.
func PLOpenPostgresSchema(t testing.TB, base string) *DB {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := "pl_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	db, err := Open(ctx, base+sep+"search_path="+schema, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	})
	return db
}

type plFixture struct {
	db  *DB
	ws  string
	ch  inbox.Channel
	ch2 inbox.Channel
	n   int
	t0  time.Time
	// batched: apply through ApplyInboundBatch (prefetching) instead of ApplyInbound.
	batched bool
}

func plSetup(t testing.TB, db *DB) *plFixture {
	t.Helper()
	ctx := context.Background()
	var ws inbox.Workspace
	u, err := db.UserByEmail(ctx, "owner@example.com")
	if err == nil {
		ws, err = db.CreateWorkspace(ctx, u.ID, "Acme "+uuid.NewString()[:6])
	} else {
		_, ws, err = db.Setup(ctx, inbox.SetupInput{Workspace: "Acme", Name: "Ann", Email: "owner@example.com", PasswordHash: "x"})
	}
	if err != nil {
		t.Fatal(err)
	}
	ch, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "test", Name: "WA"})
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "test", Name: "TG"})
	if err != nil {
		t.Fatal(err)
	}
	return &plFixture{db: db, ws: ws.ID, ch: ch, ch2: ch2, t0: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// apply logs one entry holding events on ch and applies it.
func (f *plFixture) apply(t *testing.T, ch inbox.Channel, events ...channel.Event) ApplyResult {
	t.Helper()
	ctx := context.Background()
	f.n++
	e := InboundEntry{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, Body: []byte(fmt.Sprintf(`{"n":%d}`, f.n)), ReceivedAt: f.t0.Add(time.Duration(f.n) * time.Second)}
	if err := f.db.AppendInbound(ctx, []InboundEntry{e}); err != nil {
		t.Fatal(err)
	}
	es, err := f.db.InboundSince(ctx, ch.ID, time.Time{}, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	e = es[len(es)-1]
	var res ApplyResult
	if f.batched {
		res, err = f.db.ApplyInboundBatch(ctx, ch, []InboundBatchItem{{Entry: e, Events: events}})
	} else {
		res, err = f.db.ApplyInbound(ctx, e, ch, events)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

type plMsg struct {
	ID, Conv, Direction, SenderType, SenderName, Kind, Text, Status, Error, Ext, Prev string
	Content                                                                           sql.NullString
	Edited, Deleted                                                                   sql.NullInt64
}

func (f *plFixture) messages(t *testing.T) []plMsg {
	t.Helper()
	rows, err := f.db.rdb.Query(f.db.d.rebind(`SELECT id, conversation_id, direction, sender_type, sender_name, kind, text, status, error, external_id, previous_text, content, edited_at, deleted_at
		FROM messages WHERE workspace_id = ? ORDER BY created_at, id`), f.ws)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []plMsg
	for rows.Next() {
		var m plMsg
		if err := rows.Scan(&m.ID, &m.Conv, &m.Direction, &m.SenderType, &m.SenderName, &m.Kind, &m.Text, &m.Status, &m.Error, &m.Ext, &m.Prev, &m.Content, &m.Edited, &m.Deleted); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *plFixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.rdb.QueryRow(f.db.d.rebind(q), args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *plFixture) conv(t *testing.T, id string) inbox.Conversation {
	t.Helper()
	c, err := f.db.GetConversation(context.Background(), f.ws, "", id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func plMsgEv(ext, from, text string) channel.Event {
	return channel.Event{Type: channel.EventMessage, ExternalID: ext, ChatID: from, Direction: "inbound", Kind: inbox.KindText,
		Sender: channel.Party{Identifier: from, Name: "Cust " + from}, Text: text}
}

func plEchoEv(ext, to, text string) channel.Event {
	return channel.Event{Type: channel.EventMessage, ExternalID: ext, ChatID: to, Direction: "outbound", Kind: inbox.KindText,
		Sender: channel.Party{Identifier: "us", Name: "Shop"}, Recipient: channel.Party{Identifier: to}, Text: text}
}

func plStatusEv(target, status, reason string) channel.Event {
	return channel.Event{Type: channel.EventStatus, TargetID: target, Status: status, Error: reason}
}

func TestApplyInbound(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) { plApplyCases(t, db, false) })
		t.Run(name+"/batched", func(t *testing.T) { plApplyCases(t, db, true) })
	}
}

func plApplyCases(t *testing.T, db *DB, batched bool) {
	ctx := context.Background()
	plSetup := func(t testing.TB, db *DB) *plFixture {
		f := plSetup(t, db)
		f.batched = batched
		return f
	}
	t.Run("duplicate sequential", func(t *testing.T) {
		f := plSetup(t, db)
		r1 := f.apply(t, f.ch, plMsgEv("m1", "111", "hi"))
		r2 := f.apply(t, f.ch, plMsgEv("m1", "111", "hi"))
		if r1.NewMessages != 1 || r2.NewMessages != 0 || r2.Unchanged != 1 {
			t.Fatalf("results %+v %+v", r1, r2)
		}
		ms := f.messages(t)
		if len(ms) != 1 || ms[0].Direction != "inbound" || ms[0].SenderType != "contact" || ms[0].Status != inbox.MsgReceived {
			t.Fatalf("messages %+v", ms)
		}
		c := f.conv(t, ms[0].Conv)
		if c.LastMessage == nil || c.LastMessage.Preview != "hi" || c.LastInboundAt == nil || c.Status != inbox.StatusOpen {
			t.Fatalf("conversation %+v", c)
		}
		if n := f.count(t, `SELECT inbound_count FROM conversations WHERE id = ?`, c.ID); n != 1 {
			t.Fatalf("inbound_count %d", n)
		}
		// change rows for message, conversation and contact
		b, err := db.Changes(ctx, f.ws, "0", 1000)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range b.Changes {
			seen[c.Entity] = true
		}
		for _, e := range []string{inbox.EntityMessage, inbox.EntityConversation, inbox.EntityContact} {
			if !seen[e] {
				t.Errorf("no %s change row", e)
			}
		}
	})
	t.Run("duplicate concurrent", func(t *testing.T) {
		f := plSetup(t, db)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				e := InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch.ID, ReceivedAt: f.t0}
				_, err := db.ApplyInbound(ctx, e, f.ch, []channel.Event{plMsgEv("dup", "222", "same")})
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := len(f.messages(t)); n != 1 {
			t.Fatalf("%d messages", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM conversations WHERE workspace_id = ?`, f.ws); n != 1 {
			t.Fatalf("%d conversations", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM contacts WHERE workspace_id = ?`, f.ws); n != 1 {
			t.Fatalf("%d contacts", n)
		}
	})
	t.Run("statuses out of order and monotonic", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plEchoEv("o1", "333", "hello"))
		f.apply(t, f.ch, plStatusEv("o1", inbox.MsgRead, ""), plStatusEv("o1", inbox.MsgDelivered, ""))
		f.apply(t, f.ch, plStatusEv("o1", inbox.MsgSent, ""), plStatusEv("o1", inbox.MsgRead, ""))
		ms := f.messages(t)
		if len(ms) != 1 || ms[0].Status != inbox.MsgRead {
			t.Fatalf("messages %+v", ms)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM message_statuses WHERE message_id = ?`, ms[0].ID); n != 3 {
			t.Fatalf("%d status rows, want sent, delivered, read", n)
		}
	})
	t.Run("failed keeps its reason and is terminal", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plEchoEv("o2", "333", "hello"))
		f.apply(t, f.ch, plStatusEv("o2", inbox.MsgFailed, "131047: re-engagement message"), plStatusEv("o2", inbox.MsgDelivered, ""))
		ms := f.messages(t)
		if ms[0].Status != inbox.MsgFailed || ms[0].Error != "131047: re-engagement message" {
			t.Fatalf("%+v", ms[0])
		}
	})
	t.Run("status before its message is kept", func(t *testing.T) {
		f := plSetup(t, db)
		r := f.apply(t, f.ch, plStatusEv("o3", inbox.MsgDelivered, ""))
		if r.Pending != 1 {
			t.Fatalf("%+v", r)
		}
		f.apply(t, f.ch, plEchoEv("o3", "333", "late echo"))
		if ms := f.messages(t); ms[0].Status != inbox.MsgDelivered {
			t.Fatalf("%+v", ms[0])
		}
		if n := f.count(t, `SELECT COUNT(*) FROM pending_events`); n != 0 {
			t.Fatalf("%d pending left", n)
		}
	})
	t.Run("echoes are outbound and never unread", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plMsgEv("i1", "444", "question"))
		f.apply(t, f.ch, plEchoEv("e1", "444", "answer from phone"))
		f.apply(t, f.ch, plEchoEv("e1", "444", "answer from phone")) // replay
		ms := f.messages(t)
		if len(ms) != 2 || ms[1].Direction != "outbound" || ms[1].SenderType != "agent" || ms[1].Conv != ms[0].Conv {
			t.Fatalf("%+v", ms)
		}
		if n := f.count(t, `SELECT inbound_count FROM conversations WHERE id = ?`, ms[0].Conv); n != 1 {
			t.Fatalf("inbound_count %d", n)
		}
		if c := f.conv(t, ms[0].Conv); c.LastMessage.Direction != "outbound" {
			t.Fatalf("%+v", c.LastMessage)
		}
		// The echo of our own send (already holding that external id) is a no-op.
		m, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: ms[0].Conv, Sender: inbox.Actor{Type: "agent"}, Text: "ours", Outbox: true})
		if err != nil {
			t.Fatal(err)
		}
		items, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(items) != 1 {
			t.Fatalf("claim %v %d", err, len(items))
		}
		if err := db.MarkOutboxSent(ctx, items[0], []string{"wamid.ours"}); err != nil {
			t.Fatal(err)
		}
		if r := f.apply(t, f.ch, plEchoEv("wamid.ours", "444", "ours")); r.NewMessages != 0 {
			t.Fatalf("echo of our send created a message: %+v", r)
		}
		got, err := db.GetMessage(ctx, f.ws, m.ID)
		if err != nil || got.Status != inbox.MsgSent || got.ExternalID != "wamid.ours" {
			t.Fatalf("%v %+v", err, got)
		}
	})
	t.Run("reactions before target, removal", func(t *testing.T) {
		f := plSetup(t, db)
		react := channel.Event{Type: channel.EventReaction, TargetID: "r1", Emoji: "👍", Sender: channel.Party{Identifier: "555", Name: "Bob"}, ChatID: "555"}
		if r := f.apply(t, f.ch, react); r.Pending != 1 {
			t.Fatalf("%+v", r)
		}
		f.apply(t, f.ch, plMsgEv("r1", "555", "target"))
		ms := f.messages(t)
		m, err := db.GetMessage(ctx, f.ws, ms[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" {
			t.Fatalf("reactions %+v", m.Reactions)
		}
		f.apply(t, f.ch, channel.Event{Type: channel.EventReaction, TargetID: "r1", Emoji: "❤️", Sender: channel.Party{Identifier: "555"}})
		m, _ = db.GetMessage(ctx, f.ws, ms[0].ID)
		if len(m.Reactions) != 1 || m.Reactions[0].Emoji != "❤️" {
			t.Fatalf("replaced reaction %+v", m.Reactions)
		}
		f.apply(t, f.ch, channel.Event{Type: channel.EventReaction, TargetID: "r1", Emoji: "", Sender: channel.Party{Identifier: "555"}})
		m, _ = db.GetMessage(ctx, f.ws, ms[0].ID)
		if len(m.Reactions) != 0 {
			t.Fatalf("reaction not removed %+v", m.Reactions)
		}
	})
	t.Run("edits keep previous text, also before target", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, channel.Event{Type: channel.EventEdit, TargetID: "x2", Text: "early edit"})
		f.apply(t, f.ch, plMsgEv("x1", "666", "first"), plMsgEv("x2", "666", "orig2"))
		f.apply(t, f.ch, channel.Event{Type: channel.EventEdit, TargetID: "x1", Text: "first (edited)"})
		ms := f.messages(t)
		if ms[0].Text != "first (edited)" || ms[0].Prev != "first" || !ms[0].Edited.Valid {
			t.Fatalf("%+v", ms[0])
		}
		if ms[1].Text != "early edit" || ms[1].Prev != "orig2" {
			t.Fatalf("%+v", ms[1])
		}
	})
	t.Run("deletes leave a tombstone", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plMsgEv("d1", "777", "secret"))
		f.apply(t, f.ch, channel.Event{Type: channel.EventDelete, TargetID: "d1"})
		ms := f.messages(t)
		if len(ms) != 1 || ms[0].Text != "" || !ms[0].Deleted.Valid {
			t.Fatalf("%+v", ms)
		}
		page, err := db.ListMessages(ctx, f.ws, ms[0].Conv, "", 50)
		if err != nil || len(page.Items) != 1 || page.Items[0].DeletedAt == nil {
			t.Fatalf("tombstone not listed: %v %+v", err, page.Items)
		}
	})
	t.Run("groups: participants, title only from metadata", func(t *testing.T) {
		f := plSetup(t, db)
		g1 := plMsgEv("g1", "alice", "hi all")
		g1.ChatID, g1.IsGroup = "group-1", true
		g2 := plMsgEv("g2", "bob", "yo")
		g2.ChatID, g2.IsGroup = "group-1", true
		f.apply(t, f.ch, g1, g2)
		ms := f.messages(t)
		if len(ms) != 2 || ms[0].Conv != ms[1].Conv || ms[0].SenderName != "Cust alice" || ms[1].SenderName != "Cust bob" {
			t.Fatalf("%+v", ms)
		}
		c := f.conv(t, ms[0].Conv)
		if !c.IsGroup || c.Title != "" {
			t.Fatalf("group %+v", c)
		}
		ps, err := db.Participants(ctx, f.ws, c.ID)
		if err != nil || len(ps) != 2 {
			t.Fatalf("participants %v %+v", err, ps)
		}
		f.apply(t, f.ch, channel.Event{Type: channel.EventGroupInfo, ChatID: "group-1", IsGroup: true, GroupTitle: "Team chat",
			Participants: []channel.Party{{Identifier: "carol", Name: "Carol"}}})
		c = f.conv(t, ms[0].Conv)
		if c.Title != "Team chat" {
			t.Fatalf("title %q", c.Title)
		}
		if ps, _ := db.Participants(ctx, f.ws, c.ID); len(ps) != 3 {
			t.Fatalf("participants %+v", ps)
		}
		g3 := plMsgEv("g3", "alice", "again")
		g3.ChatID, g3.IsGroup = "group-1", true
		f.apply(t, f.ch, g3)
		if c = f.conv(t, ms[0].Conv); c.Title != "Team chat" {
			t.Fatalf("title changed by a sender: %q", c.Title)
		}
	})
	t.Run("contacts link across channels by phone, not across workspaces", func(t *testing.T) {
		f := plSetup(t, db)
		a := plMsgEv("p1", "4915112345678", "wa")
		a.Sender.Phone = "+4915112345678"
		b := plMsgEv("p2", "tg-99", "tg")
		b.Sender.Phone = "+49 151 1234 5678"
		f.apply(t, f.ch, a)
		f.apply(t, f.ch2, b)
		if n := f.count(t, `SELECT COUNT(*) FROM contacts WHERE workspace_id = ?`, f.ws); n != 1 {
			t.Fatalf("%d contacts, want one linked", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM conversations WHERE workspace_id = ?`, f.ws); n != 2 {
			t.Fatalf("%d conversations, want one per channel", n)
		}
		other := plSetup(t, db)
		c := plMsgEv("p3", "4915112345678", "other ws")
		c.Sender.Phone = "+4915112345678"
		other.apply(t, other.ch, c)
		if n := f.count(t, `SELECT COUNT(DISTINCT contact_id) FROM contact_phones WHERE phone = ? AND workspace_id IN (?, ?)`, "+4915112345678", f.ws, other.ws); n != 2 {
			t.Fatalf("%d contacts with the phone, want one per workspace", n)
		}
	})
	t.Run("names fill in only when empty", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plMsgEv("n1", "888", "hi"))
		var cid string
		if err := db.rdb.QueryRow(db.d.rebind(`SELECT contact_id FROM contact_identities WHERE identifier = ? AND channel_id = ?`), "888", f.ch.ID).Scan(&cid); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateContact(ctx, f.ws, cid, inbox.ContactPatch{Name: inbox.Some("Operator's name")}); err != nil {
			t.Fatal(err)
		}
		e := plMsgEv("n2", "888", "again")
		e.Sender.Name = "Provider name"
		e.Sender.AvatarURL = "https://example.com/a.png"
		f.apply(t, f.ch, e)
		c, err := db.GetContact(ctx, f.ws, cid)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Operator's name" || c.AvatarURL != "https://example.com/a.png" {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("message reopens a resolved conversation", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plMsgEv("z1", "999", "one"))
		ms := f.messages(t)
		if _, err := db.UpdateConversation(ctx, f.ws, "", ms[0].Conv, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusResolved)}); err != nil {
			t.Fatal(err)
		}
		f.apply(t, f.ch, plMsgEv("z2", "999", "two"))
		ms = f.messages(t)
		if ms[1].Conv != ms[0].Conv {
			t.Fatalf("new conversation instead of reopening")
		}
		if c := f.conv(t, ms[0].Conv); c.Status != inbox.StatusOpen {
			t.Fatalf("status %s", c.Status)
		}
	})
	t.Run("the open conversation takes the message, not a newer resolved or spam one", func(t *testing.T) {
		f := plSetup(t, db)
		f.apply(t, f.ch, plMsgEv("o1", "777", "first"))
		first := f.messages(t)[0]
		if _, err := db.UpdateConversation(ctx, f.ws, "", first.Conv, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusResolved)}); err != nil {
			t.Fatal(err)
		}
		var contact string
		if err := db.rdb.QueryRow(db.d.rebind(`SELECT contact_id FROM conversations WHERE id = ?`), first.Conv).Scan(&contact); err != nil {
			t.Fatal(err)
		}
		second, created, err := db.CreateConversation(ctx, f.ws, contact, f.ch.ID)
		if err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		f.apply(t, f.ch, plMsgEv("o2", "777", "to the open one"))
		ms := f.messages(t)
		if ms[1].Conv != second.ID {
			t.Fatalf("message in %s, want the open %s", ms[1].Conv, second.ID)
		}
		// Marked spam (the newest closed one): the customer's next message
		// joins it and stays spam; the older resolved one is not reopened.
		if _, err := db.UpdateConversation(ctx, f.ws, "", second.ID, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusSpam)}); err != nil {
			t.Fatal(err)
		}
		f.apply(t, f.ch, plMsgEv("o3", "777", "after spam"))
		ms = f.messages(t)
		if got := f.conv(t, ms[2].Conv); ms[2].Conv != second.ID || got.Status != inbox.StatusSpam {
			t.Fatalf("message in %s (%s), want the spam conversation %s", ms[2].Conv, got.Status, second.ID)
		}
		if got := f.conv(t, first.Conv); got.Status != inbox.StatusResolved {
			t.Fatalf("first conversation %s, want still resolved", got.Status)
		}
	})
	t.Run("read watermark", func(t *testing.T) {
		f := plSetup(t, db)
		e1 := plEchoEv("w1", "123", "a")
		e1.Timestamp = f.t0
		e2 := plEchoEv("w2", "123", "b")
		e2.Timestamp = f.t0.Add(time.Hour)
		f.apply(t, f.ch, e1, e2)
		f.apply(t, f.ch, channel.Event{Type: channel.EventRead, ChatID: "123", Sender: channel.Party{Identifier: "123"}, Watermark: f.t0.Add(time.Minute)})
		ms := f.messages(t)
		if ms[0].Status != inbox.MsgRead || ms[1].Status != inbox.MsgSent {
			t.Fatalf("%s %s", ms[0].Status, ms[1].Status)
		}
	})
	t.Run("unsupported kinds keep the raw payload", func(t *testing.T) {
		f := plSetup(t, db)
		u := plMsgEv("u1", "321", "")
		u.Kind = inbox.KindUnsupported
		u.Raw = json.RawMessage(`{"type":"poll","q":"?"}`)
		u2 := plMsgEv("u2", "321", "")
		u2.Kind = inbox.KindUnsupported
		u2.Raw = json.RawMessage(`Body=not+json&X=1`)
		u3 := plMsgEv("u3", "321", "")
		u3.Type = "future_event"
		u3.Raw = json.RawMessage(`{"new":true}`)
		f.apply(t, f.ch, u, u2, u3)
		ms := f.messages(t)
		if len(ms) != 3 {
			t.Fatalf("%d messages", len(ms))
		}
		for i, want := range []string{`"poll"`, `not+json`, `"new"`} {
			if ms[i].Kind != inbox.KindUnsupported || !strings.Contains(ms[i].Content.String, want) {
				t.Errorf("message %d: %+v", i, ms[i])
			}
		}
	})
	t.Run("attachments metadata first", func(t *testing.T) {
		f := plSetup(t, db)
		e := plMsgEv("a1", "654", "")
		e.Kind = inbox.KindImage
		e.Attachments = []channel.Media{{Kind: inbox.KindImage, MimeType: "image/jpeg", ProviderRef: "media-123", Size: 42}}
		f.apply(t, f.ch, e)
		ms := f.messages(t)
		m, err := db.GetMessage(ctx, f.ws, ms[0].ID)
		if err != nil || len(m.Attachments) != 1 {
			t.Fatalf("%v %+v", err, m)
		}
		ma, err := db.MediaAttachment(ctx, f.ws, m.Attachments[0].ID)
		if err != nil || ma.ProviderRef != "media-123" || ma.StorageKey != "" || ma.ChannelID != f.ch.ID {
			t.Fatalf("%v %+v", err, ma)
		}
	})
}

func TestPipelineClaims(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t.Run("outbox rows are claimed once across concurrent claimers", func(t *testing.T) {
				f := plSetup(t, db)
				const n = 40
				for i := 0; i < n; i++ {
					f.apply(t, f.ch, plMsgEv(fmt.Sprint("c", i), fmt.Sprint("42", i), "hi"))
				}
				for _, m := range f.messages(t) {
					if _, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: m.Conv, Sender: inbox.Actor{Type: "agent"}, Text: "x", Outbox: true}); err != nil {
						t.Fatal(err)
					}
				}
				var mu sync.Mutex
				seen := map[string]int{}
				var wg sync.WaitGroup
				for w := 0; w < 4; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							items, _, err := db.ClaimOutbox(ctx, time.Minute, 3)
							if err != nil {
								t.Error(err)
								return
							}
							if len(items) == 0 {
								return
							}
							mu.Lock()
							for _, it := range items {
								seen[it.MessageID]++
								if !strings.HasPrefix(it.To, "42") || it.Text == "" {
									t.Errorf("item %+v", it)
								}
							}
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if len(seen) != n {
					t.Fatalf("%d messages claimed, want %d", len(seen), n)
				}
				for id, c := range seen {
					if c != 1 {
						t.Fatalf("message %s claimed %d times", id, c)
					}
				}
			})
			t.Run("one conversation's sends are claimed in order, one at a time", func(t *testing.T) {
				f := plSetup(t, db)
				f.apply(t, f.ch, plMsgEv("q0", "77", "hi"))
				conv := f.messages(t)[0].Conv
				var ids []string
				for i := 0; i < 3; i++ {
					m, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: conv, Sender: inbox.Actor{Type: "agent"}, Text: fmt.Sprint(i), Outbox: true})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, m.ID)
				}
				for i := 0; i < 3; i++ {
					items, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
					if err != nil || len(items) != 1 || items[0].MessageID != ids[i] {
						t.Fatalf("claim %d: %v %+v", i, err, items)
					}
					if again, _, _ := db.ClaimOutbox(ctx, time.Minute, 10); len(again) != 0 {
						t.Fatalf("claimed past an in-flight send")
					}
					if err := db.MarkOutboxSent(ctx, items[0], []string{fmt.Sprint("q-ext-", i)}); err != nil {
						t.Fatal(err)
					}
				}
			})
			t.Run("a status webhook faster than our send record is kept and applied", func(t *testing.T) {
				f := plSetup(t, db)
				f.apply(t, f.ch, plMsgEv("c1", "43", "hi"))
				conv := f.messages(t)[0].Conv
				m, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: conv, Sender: inbox.Actor{Type: "agent"}, Text: "x", Outbox: true})
				if err != nil {
					t.Fatal(err)
				}
				items, _, err := db.ClaimOutbox(ctx, time.Minute, 1)
				if err != nil || len(items) != 1 {
					t.Fatal(err, len(items))
				}
				if r := f.apply(t, f.ch, plStatusEv("prov-1", inbox.MsgDelivered, "")); r.Pending != 1 {
					t.Fatalf("%+v", r)
				}
				if err := db.MarkOutboxSent(ctx, items[0], []string{"prov-1", "prov-2"}); err != nil {
					t.Fatal(err)
				}
				got, _ := db.GetMessage(ctx, f.ws, m.ID)
				if got.Status != inbox.MsgDelivered || got.ExternalID != "prov-1" {
					t.Fatalf("%+v", got)
				}
				// The second part of a split send is known too.
				f.apply(t, f.ch, plStatusEv("prov-2", inbox.MsgRead, ""))
				if got, _ = db.GetMessage(ctx, f.ws, m.ID); got.Status != inbox.MsgRead {
					t.Fatalf("%+v", got)
				}
			})
			t.Run("prune keeps pending and recent entries", func(t *testing.T) {
				f := plSetup(t, db)
				f.apply(t, f.ch, plMsgEv("pr1", "1", "x")) // done, received at t0+1s
				old := f.t0.Add(-time.Hour)
				if err := db.AppendInbound(ctx, []InboundEntry{{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte("{}"), ReceivedAt: old}}); err != nil {
					t.Fatal(err)
				}
				n, err := db.PruneInbound(ctx, f.t0.Add(time.Hour))
				if err != nil || n < 1 {
					t.Fatalf("%v %d", err, n)
				}
				if c := f.count(t, `SELECT COUNT(*) FROM inbound_log WHERE channel_id = ?`, f.ch.ID); c != 1 {
					t.Fatalf("%d left, want the pending one", c)
				}
			})
			t.Run("a channel whose oldest entry waits for its retry is not claimed for a later one", func(t *testing.T) {
				f := plSetup(t, db)
				if err := db.AppendInbound(ctx, []InboundEntry{{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(`{"n":1}`)}}); err != nil {
					t.Fatal(err)
				}
				if err := db.AppendInbound(ctx, []InboundEntry{{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(`{"n":2}`)}}); err != nil {
					t.Fatal(err)
				}
				pending, err := db.PendingInbound(ctx, f.ch.ID, 10)
				if err != nil || len(pending) != 2 {
					t.Fatalf("pending %d, %v", len(pending), err)
				}
				if err := db.FailInbound(ctx, pending[0].ID, "provider down", time.Now().Add(time.Minute), false); err != nil {
					t.Fatal(err)
				}
				claimed := func() bool {
					chs, err := db.ClaimInboundChannels(ctx, "node-a", time.Minute, 10)
					if err != nil {
						t.Fatal(err)
					}
					for _, c := range chs {
						if err := db.ReleaseInboundLease(ctx, c, "node-a"); err != nil {
							t.Fatal(err)
						}
						if c == f.ch.ID {
							return true
						}
					}
					return false
				}
				if claimed() {
					t.Fatal("claimed while its oldest entry waits for its retry")
				}
				if err := db.FailInbound(ctx, pending[0].ID, "provider down", time.Now().Add(-time.Second), false); err != nil {
					t.Fatal(err)
				}
				if !claimed() {
					t.Fatal("not claimed once the retry is due")
				}
			})
			t.Run("inbound channel leases are exclusive until they expire", func(t *testing.T) {
				f := plSetup(t, db)
				if err := db.AppendInbound(ctx, []InboundEntry{{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte("{}")}, {WorkspaceID: f.ws, ChannelID: f.ch2.ID, Body: []byte("{}")}}); err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				got := map[string]int{}
				var wg sync.WaitGroup
				for _, owner := range []string{"node-a", "node-b", "node-c"} {
					wg.Add(1)
					go func(owner string) {
						defer wg.Done()
						chs, err := db.ClaimInboundChannels(ctx, owner, time.Minute, 10)
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						for _, c := range chs {
							got[c]++
						}
						mu.Unlock()
					}(owner)
				}
				wg.Wait()
				if got[f.ch.ID] != 1 || got[f.ch2.ID] != 1 {
					t.Fatalf("claims %v", got)
				}
				if err := db.ReleaseInboundLease(ctx, f.ch.ID, "node-a"); err != nil {
					t.Fatal(err)
				}
				if err := db.ReleaseInboundLease(ctx, f.ch.ID, "node-b"); err != nil {
					t.Fatal(err)
				}
				if err := db.ReleaseInboundLease(ctx, f.ch.ID, "node-c"); err != nil {
					t.Fatal(err)
				}
				chs, err := db.ClaimInboundChannels(ctx, "node-d", time.Minute, 100)
				has := map[string]bool{}
				for _, c := range chs {
					has[c] = true
				}
				if err != nil || !has[f.ch.ID] || has[f.ch2.ID] {
					t.Fatalf("after release: %v %v", err, chs)
				}
			})
		})
	}
}

// TestApplyInboundBatchInterplay covers what one batch transaction shares
// between its entries: events kept for a target that arrives later in the
// same batch, conversations found earlier in the batch (and reopened by a
// later inbound message), contacts resolved once, and every entry marked done.
func TestApplyInboundBatchInterplay(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			f.apply(t, f.ch, plMsgEv("a0", "222", "before"))
			ms := f.messages(t)
			conv := ms[0].Conv
			if _, err := db.UpdateConversation(ctx, f.ws, "", conv, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusResolved)}); err != nil {
				t.Fatal(err)
			}
			// A reaction and a status kept in an earlier transaction.
			f.apply(t, f.ch, channel.Event{Type: channel.EventReaction, TargetID: "a3", Emoji: "🎉", Sender: channel.Party{Identifier: "222"}, ChatID: "222"})

			evs := [][]channel.Event{
				{plEchoEv("a1", "222", "sent from the phone")}, // outbound: must not reopen
				{{Type: channel.EventReaction, TargetID: "a2", Emoji: "👍", Sender: channel.Party{Identifier: "222"}, ChatID: "222"}}, // kept: a2 comes later
				{plMsgEv("a2", "222", "target in the same batch")},                                                                   // reopens, takes the kept reaction
				{plMsgEv("a3", "222", "target of an older reaction"), plMsgEv("a4", "333", "another customer")},
				{{Type: channel.EventReaction, TargetID: "a2", Emoji: "", Sender: channel.Party{Identifier: "222"}, ChatID: "222"}}, // removal after the kept add
			}
			var entries []InboundEntry
			for i := range evs {
				entries = append(entries, InboundEntry{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(fmt.Sprintf(`{"b":%d}`, i)), ReceivedAt: f.t0.Add(time.Hour + time.Duration(i)*time.Second)})
			}
			if err := db.AppendInbound(ctx, entries); err != nil {
				t.Fatal(err)
			}
			pending, err := db.PendingInbound(ctx, f.ch.ID, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(pending) != len(evs) {
				t.Fatalf("%d pending entries", len(pending))
			}
			items := make([]InboundBatchItem, len(pending))
			for i, e := range pending {
				items[i] = InboundBatchItem{Entry: e, Events: evs[i]}
			}
			res, err := db.ApplyInboundBatch(ctx, f.ch, items)
			if err != nil {
				t.Fatal(err)
			}
			if res.NewMessages != 4 || res.Pending != 1 {
				t.Fatalf("result %+v", res)
			}
			ms = f.messages(t)
			byExt := map[string]plMsg{}
			for _, m := range ms {
				byExt[m.Ext] = m
			}
			for _, ext := range []string{"a1", "a2", "a3"} {
				if byExt[ext].Conv != conv {
					t.Fatalf("%s in conversation %s, want %s", ext, byExt[ext].Conv, conv)
				}
			}
			if byExt["a4"].Conv == conv {
				t.Fatal("another customer's message in the same conversation")
			}
			if c := f.conv(t, conv); c.Status != inbox.StatusOpen {
				t.Fatalf("conversation %s, want reopened", c.Status)
			}
			m2, err := db.GetMessage(ctx, f.ws, byExt["a2"].ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(m2.Reactions) != 0 {
				t.Fatalf("a2 reactions %+v: the removal must apply after the kept reaction", m2.Reactions)
			}
			m3, err := db.GetMessage(ctx, f.ws, byExt["a3"].ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(m3.Reactions) != 1 || m3.Reactions[0].Emoji != "🎉" {
				t.Fatalf("a3 reactions %+v", m3.Reactions)
			}
			if n := f.count(t, `SELECT COUNT(*) FROM pending_events WHERE channel_id = ?`, f.ch.ID); n != 0 {
				t.Fatalf("%d events still pending", n)
			}
			if n := f.count(t, `SELECT COUNT(*) FROM inbound_log WHERE channel_id = ? AND state <> ?`, f.ch.ID, InboundDone); n != 0 {
				t.Fatalf("%d entries not done", n)
			}
			// Applying the same batch again changes nothing.
			again, err := db.ApplyInboundBatch(ctx, f.ch, items)
			if err != nil {
				t.Fatal(err)
			}
			if again.NewMessages != 0 || again.Pending != 0 {
				t.Fatalf("replay %+v", again)
			}
			if n := len(f.messages(t)); n != len(ms) {
				t.Fatalf("replay made %d messages, had %d", n, len(ms))
			}
		})
	}
}

// TestDeleteChannelFailsItsPendingEntries: webhooks of a deleted channel can
// never be applied; they are kept as failed instead of waiting for ever.
func TestDeleteChannelFailsItsPendingEntries(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			if err := db.AppendInbound(ctx, []InboundEntry{{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(`{}`), ReceivedAt: f.t0}}); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteChannel(ctx, f.ws, f.ch.ID); err != nil {
				t.Fatal(err)
			}
			if n := f.count(t, `SELECT COUNT(*) FROM inbound_log WHERE channel_id = ? AND state = ?`, f.ch.ID, InboundFailed); n != 1 {
				t.Fatalf("%d failed entries, want 1", n)
			}
			got, err := db.ClaimInboundChannels(ctx, "me", time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Fatalf("claimed %v", got)
			}
		})
	}
}

// TestChannelChangesCarryTheWebhookURL: a channel's change rows show it as
// the API does, webhook URL included, so a live client never loses it.
func TestChannelChangesCarryTheWebhookURL(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "w.db"), Options{PublicURL: "https://inbox.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := plSetup(t, db)
	if _, err := db.UpdateChannel(ctx, f.ws, f.ch.ID, inbox.ChannelPatch{Name: inbox.Some("Renamed")}); err != nil {
		t.Fatal(err)
	}
	b, err := db.Changes(ctx, f.ws, "0", 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range b.Changes {
		if c.Entity != inbox.EntityChannel || c.ID != f.ch.ID {
			continue
		}
		var ch inbox.Channel
		if err := json.Unmarshal(c.Data, &ch); err != nil {
			t.Fatal(err)
		}
		if ch.WebhookURL != "https://inbox.example/webhooks/"+f.ch.ID {
			t.Fatalf("change %d: webhook_url %q", c.Seq, ch.WebhookURL)
		}
		n++
	}
	if n < 2 {
		t.Fatalf("%d channel changes, want the create and the update", n)
	}
}

// TestUnstorableTextIsInvalid: text PostgreSQL cannot store (NUL, invalid
// UTF-8) is bad input, never an internal error; SQLite stores it.
func TestUnstorableTextIsInvalid(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			for _, in := range []string{"a\x00b", "bad \xff\xfe"} {
				_, err := db.CreateLabel(ctx, f.ws, inbox.Label{Name: in})
				if err != nil && !inbox.IsCode(err, inbox.Invalid) {
					t.Errorf("label %q: %v (code %s), want stored or invalid", in, err, inbox.ErrorCode(err))
				}
				_, err = db.UserByEmail(ctx, in+"@example.com")
				if err != nil && !inbox.IsCode(err, inbox.Invalid) && !inbox.IsCode(err, inbox.NotFound) {
					t.Errorf("user by email %q: %v, want not found or invalid", in, err)
				}
			}
		})
	}
}
