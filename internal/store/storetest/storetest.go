// Package storetest is the conformance suite of inbox.Store: every
// implementation (SQLite, PostgreSQL) must pass Run.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// Opener returns a fresh, empty store for one test.
type Opener func(t *testing.T) inbox.Store

// Run runs the whole conformance suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s inbox.Store)
	}{
		{"Setup", testSetup},
		{"Members", testMembers},
		{"Sessions", testSessions},
		{"APITokens", testAPITokens},
		{"Teams", testTeams},
		{"Labels", testLabels},
		{"ProviderAccountsAndChannels", testChannels},
		{"Contacts", testContacts},
		{"ContactSearchAndPaging", testContactPaging},
		{"MergeContacts", testMerge},
		{"Conversations", testConversations},
		{"ConversationViewsAndFilters", testViews},
		{"ConversationPaging", testConversationPaging},
		{"UnreadCounts", testUnread},
		{"Messages", testMessages},
		{"MessagePaging", testMessagePaging},
		{"ChangeLog", testChangeLog},
		{"ChangeCursorRules", testCursorRules},
		{"Snapshot", testSnapshot},
		{"Isolation", testIsolation},
		{"ConcurrentChangeLog", testConcurrentChanges},
		{"ConcurrentStarts", testConcurrentStarts},
		{"ConcurrentPatches", testConcurrentPatches},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

// ---- helpers ----

func ctx() context.Context { return context.Background() }

// must(f())(t) returns f's value, failing the test on f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func wantCode(t *testing.T, err error, code inbox.Code) {
	t.Helper()
	if got := inbox.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// world is a store with two workspaces, an owner in both, an agent in A,
// and a channel in each.
type world struct {
	s            inbox.Store
	owner, agent inbox.User
	a, b         inbox.Workspace
	chA, chA2    inbox.Channel
	chB          inbox.Channel
}

func newWorld(t *testing.T, s inbox.Store) *world {
	t.Helper()
	w := &world{s: s}
	var err error
	w.owner, w.a, err = s.Setup(ctx(), inbox.SetupInput{Workspace: "Acme", Name: "Olga Owner", Email: "olga@example.com", PasswordHash: "hash-o"})
	noErr(t, err)
	w.b = must(s.CreateWorkspace(ctx(), w.owner.ID, "Beta"))(t)
	m := must(s.AddMember(ctx(), w.a.ID, inbox.NewMember{Email: "alex@example.com", Name: "Alex Agent", PasswordHash: "hash-a", Role: inbox.RoleAgent}))(t)
	w.agent = m.User
	w.chA = must(s.CreateChannel(ctx(), w.a.ID, inbox.Channel{Kind: "telegram", Name: "Bot A", Config: map[string]any{"x": "1"}, SecretsEnc: []byte{1, 2, 3}, Secrets: map[string]inbox.SecretState{"bot_token": {Configured: true}}}))(t)
	w.chA2 = must(s.CreateChannel(ctx(), w.a.ID, inbox.Channel{Kind: "whatsapp", Name: "WA A"}))(t)
	w.chB = must(s.CreateChannel(ctx(), w.b.ID, inbox.Channel{Kind: "telegram", Name: "Bot B"}))(t)
	return w
}

func (w *world) contact(t *testing.T, ws string, ch inbox.Channel, name, ident string) inbox.Contact {
	t.Helper()
	c := inbox.Contact{Name: name}
	if ident != "" {
		c.Identities = []inbox.Identity{{ChannelID: ch.ID, Identifier: ident}}
	}
	return must(w.s.CreateContact(ctx(), ws, c))(t)
}

func (w *world) conversation(t *testing.T, ws string, ch inbox.Channel, name, ident string) inbox.Conversation {
	t.Helper()
	c := w.contact(t, ws, ch, name, ident)
	conv, created, err := w.s.CreateConversation(ctx(), ws, c.ID, ch.ID)
	noErr(t, err)
	if !created {
		t.Fatalf("conversation not created")
	}
	return conv
}

func (w *world) inbound(t *testing.T, ws, convID, text string) inbox.Message {
	t.Helper()
	return must(w.s.CreateMessage(ctx(), ws, inbox.NewMessage{ConversationID: convID, Direction: "inbound", Sender: inbox.Actor{Type: "contact", ID: "c", Name: "C"}, Text: text}))(t)
}

func head(t *testing.T, s inbox.Store, ws string) string {
	t.Helper()
	snap := must(s.Snapshot(ctx(), ws, ""))(t)
	return snap.Cursor
}

// changesSince returns all changes after cursor.
func changesSince(t *testing.T, s inbox.Store, ws, cursor string) []inbox.Change {
	t.Helper()
	var out []inbox.Change
	for {
		b := must(s.Changes(ctx(), ws, cursor, 100))(t)
		out = append(out, b.Changes...)
		cursor = b.Cursor
		if !b.More {
			return out
		}
	}
}

type ch struct{ entity, op, id string }

func summarize(cs []inbox.Change) []ch {
	out := make([]ch, len(cs))
	for i, c := range cs {
		out[i] = ch{c.Entity, c.Op, c.ID}
	}
	return out
}

// wantChanges asserts the changes after cursor contain want (as a set, each once at least).
func wantChanges(t *testing.T, s inbox.Store, ws, cursor string, want ...ch) []inbox.Change {
	t.Helper()
	got := changesSince(t, s, ws, cursor)
	sum := summarize(got)
	for _, w := range want {
		if !slices.Contains(sum, w) {
			t.Fatalf("changes after %s = %v; missing %v", cursor, sum, w)
		}
	}
	for _, c := range got {
		if c.Op == inbox.OpDelete && c.Data != nil {
			t.Fatalf("tombstone %v carries data %s", c, c.Data)
		}
		if c.Op == inbox.OpUpsert && len(c.Data) == 0 {
			t.Fatalf("upsert %v has no data", c)
		}
	}
	return got
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func convIDs(cs []inbox.Conversation) []string {
	return ids(cs, func(c inbox.Conversation) string { return c.ID })
}

// ---- tests ----

func testSetup(t *testing.T, s inbox.Store) {
	if has := must(s.HasUsers(ctx()))(t); has {
		t.Fatal("HasUsers on an empty store")
	}
	_, _, err := s.Setup(ctx(), inbox.SetupInput{Workspace: "", Name: "x", Email: "x@example.com", PasswordHash: "h"})
	wantCode(t, err, inbox.Invalid)
	u, ws, err := s.Setup(ctx(), inbox.SetupInput{Workspace: "Acme", Name: "Olga", Email: "Olga@Example.com", PasswordHash: "h1"})
	noErr(t, err)
	if u.ID == "" || ws.ID == "" || ws.Name != "Acme" || u.Email != "olga@example.com" {
		t.Fatalf("setup = %+v %+v", u, ws)
	}
	if !must(s.HasUsers(ctx()))(t) {
		t.Fatal("HasUsers after setup is false")
	}
	_, _, err = s.Setup(ctx(), inbox.SetupInput{Workspace: "Other", Name: "Eve", Email: "eve@example.com", PasswordHash: "h"})
	wantCode(t, err, inbox.Conflict)

	got := must(s.UserByEmail(ctx(), "OLGA@example.com"))(t)
	if got.ID != u.ID || got.PasswordHash != "h1" {
		t.Fatalf("UserByEmail = %+v", got)
	}
	_, err = s.UserByEmail(ctx(), "nobody@example.com")
	wantCode(t, err, inbox.NotFound)
	_, err = s.UserByID(ctx(), "nope")
	wantCode(t, err, inbox.NotFound)
	if r := must(s.MemberRole(ctx(), ws.ID, u.ID))(t); r != inbox.RoleOwner {
		t.Fatalf("role = %q", r)
	}
	got2 := must(s.GetWorkspace(ctx(), ws.ID))(t)
	if got2.Name != "Acme" {
		t.Fatalf("GetWorkspace = %+v", got2)
	}
	_, err = s.GetWorkspace(ctx(), "missing")
	wantCode(t, err, inbox.NotFound)

	ws2 := must(s.CreateWorkspace(ctx(), u.ID, "Second"))(t)
	refs := must(s.UserWorkspaces(ctx(), u.ID))(t)
	if len(refs) != 2 || refs[0].ID != ws.ID || refs[1].ID != ws2.ID || refs[1].Role != inbox.RoleOwner {
		t.Fatalf("UserWorkspaces = %+v", refs)
	}
	_, err = s.CreateWorkspace(ctx(), "ghost", "X")
	wantCode(t, err, inbox.NotFound)

	up := must(s.UpdateUser(ctx(), u.ID, inbox.UserPatch{Name: inbox.Some("Olga B"), Availability: inbox.Some("away"), PasswordHash: inbox.Some("h2")}))(t)
	if up.Name != "Olga B" || up.Availability != "away" {
		t.Fatalf("UpdateUser = %+v", up)
	}
	if must(s.UserByID(ctx(), u.ID))(t).PasswordHash != "h2" {
		t.Fatal("password hash not updated")
	}
	_, err = s.UpdateUser(ctx(), u.ID, inbox.UserPatch{Availability: inbox.Some("asleep")})
	wantCode(t, err, inbox.Invalid)
	_, err = s.UpdateUser(ctx(), "ghost", inbox.UserPatch{Name: inbox.Some("x")})
	wantCode(t, err, inbox.NotFound)
	// The profile change reaches both workspaces' change logs.
	for _, w := range []string{ws.ID, ws2.ID} {
		cs := changesSince(t, s, w, "0")
		last := cs[len(cs)-1]
		if last.Entity != inbox.EntityMember || last.ID != u.ID || !json.Valid(last.Data) {
			t.Fatalf("last change of %s = %+v", w, last)
		}
		var m inbox.Member
		noErr(t, json.Unmarshal(last.Data, &m))
		if m.Name != "Olga B" {
			t.Fatalf("member change = %s", last.Data)
		}
	}
}

func testMembers(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	_, err := s.AddMember(ctx(), w.a.ID, inbox.NewMember{Email: "new@example.com", Role: inbox.RoleAgent})
	wantCode(t, err, inbox.Invalid) // a new user needs name and password
	_, err = s.AddMember(ctx(), w.a.ID, inbox.NewMember{Email: "alex@example.com", Role: inbox.RoleAdmin})
	wantCode(t, err, inbox.Conflict)
	_, err = s.AddMember(ctx(), w.a.ID, inbox.NewMember{Email: "z@example.com", Name: "Z", PasswordHash: "h", Role: "boss"})
	wantCode(t, err, inbox.Invalid)
	_, err = s.AddMember(ctx(), "ghost", inbox.NewMember{Email: "z@example.com", Name: "Z", PasswordHash: "h", Role: inbox.RoleAgent})
	wantCode(t, err, inbox.NotFound)

	// An existing user joins B without a password.
	m := must(s.AddMember(ctx(), w.b.ID, inbox.NewMember{Email: "ALEX@example.com", Role: inbox.RoleAdmin}))(t)
	if m.ID != w.agent.ID || m.Role != inbox.RoleAdmin || m.PasswordHash != "" {
		t.Fatalf("AddMember existing = %+v", m)
	}
	ms := must(s.ListMembers(ctx(), w.a.ID))(t)
	if len(ms) != 2 || ms[0].ID != w.owner.ID || ms[1].ID != w.agent.ID || ms[1].Role != inbox.RoleAgent {
		t.Fatalf("ListMembers A = %+v", ms)
	}
	for _, m := range ms {
		if m.PasswordHash != "" || m.TeamIDs == nil {
			t.Fatalf("member leaks hash or nil teams: %+v", m)
		}
	}
	cur := head(t, s, w.a.ID)
	up := must(s.UpdateMemberRole(ctx(), w.a.ID, w.agent.ID, inbox.RoleAdmin))(t)
	if up.Role != inbox.RoleAdmin {
		t.Fatalf("UpdateMemberRole = %+v", up)
	}
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityMember, inbox.OpUpsert, w.agent.ID})
	_, err = s.UpdateMemberRole(ctx(), w.a.ID, "ghost", inbox.RoleAdmin)
	wantCode(t, err, inbox.NotFound)
	_, err = s.UpdateMemberRole(ctx(), w.a.ID, w.agent.ID, "boss")
	wantCode(t, err, inbox.Invalid)
	if r := must(s.MemberRole(ctx(), w.b.ID, w.agent.ID))(t); r != inbox.RoleAdmin {
		t.Fatalf("role in B = %q", r)
	}

	// Removing a member unassigns their conversations (in that workspace only).
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	agentID := w.agent.ID
	must(s.UpdateConversation(ctx(), w.a.ID, "", conv.ID, inbox.ConversationPatch{AssigneeID: inbox.Some(&agentID)}))(t)
	convB := w.conversation(t, w.b.ID, w.chB, "Bea", "bea")
	must(s.UpdateConversation(ctx(), w.b.ID, "", convB.ID, inbox.ConversationPatch{AssigneeID: inbox.Some(&agentID)}))(t)
	tok := must(s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.a.ID, UserID: w.agent.ID, Name: "cli", TokenHash: "th-agent"}))(t)
	cur = head(t, s, w.a.ID)
	noErr(t, s.RemoveMember(ctx(), w.a.ID, w.agent.ID))
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityMember, inbox.OpDelete, w.agent.ID}, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	if got := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t); got.AssigneeID != nil {
		t.Fatalf("conversation still assigned: %+v", got.AssigneeID)
	}
	if got := must(s.GetConversation(ctx(), w.b.ID, "", convB.ID))(t); got.AssigneeID == nil || *got.AssigneeID != agentID {
		t.Fatalf("conversation in B lost its assignee")
	}
	_, err = s.MemberRole(ctx(), w.a.ID, w.agent.ID)
	wantCode(t, err, inbox.NotFound)
	_, err = s.APITokenByHash(ctx(), tok.TokenHash)
	wantCode(t, err, inbox.NotFound)
	wantCode(t, s.RemoveMember(ctx(), w.a.ID, w.agent.ID), inbox.NotFound)
	// The user remains (still a member of B).
	must(s.UserByID(ctx(), w.agent.ID))(t)
}

func testSessions(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	now := time.Now().UTC()
	noErr(t, s.CreateSession(ctx(), inbox.Session{TokenHash: "live", UserID: w.owner.ID, CSRFToken: "csrf", UserAgent: "ua", ExpiresAt: now.Add(time.Hour)}))
	noErr(t, s.CreateSession(ctx(), inbox.Session{TokenHash: "old", UserID: w.owner.ID, CSRFToken: "c2", ExpiresAt: now.Add(-time.Minute)}))
	wantCode(t, s.CreateSession(ctx(), inbox.Session{TokenHash: "live", UserID: w.owner.ID, ExpiresAt: now.Add(time.Hour)}), inbox.Conflict)
	wantCode(t, s.CreateSession(ctx(), inbox.Session{TokenHash: "x", UserID: "ghost", ExpiresAt: now.Add(time.Hour)}), inbox.NotFound)
	got := must(s.SessionByHash(ctx(), "live"))(t)
	if got.UserID != w.owner.ID || got.CSRFToken != "csrf" || got.UserAgent != "ua" || got.ExpiresAt.Sub(now.Add(time.Hour)).Abs() > time.Millisecond {
		t.Fatalf("session = %+v", got)
	}
	_, err := s.SessionByHash(ctx(), "old")
	wantCode(t, err, inbox.NotFound)
	_, err = s.SessionByHash(ctx(), "none")
	wantCode(t, err, inbox.NotFound)
	if n := must(s.DeleteExpiredSessions(ctx(), now))(t); n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d", n)
	}
	noErr(t, s.DeleteSession(ctx(), "live"))
	_, err = s.SessionByHash(ctx(), "live")
	wantCode(t, err, inbox.NotFound)
	noErr(t, s.DeleteSession(ctx(), "live"))
}

func testAPITokens(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	a := must(s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.a.ID, UserID: w.owner.ID, Name: "ci", TokenHash: "h1"}))(t)
	must(s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.a.ID, UserID: w.agent.ID, Name: "bot", TokenHash: "h2"}))(t)
	must(s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.b.ID, UserID: w.owner.ID, Name: "b", TokenHash: "h3"}))(t)
	_, err := s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.b.ID, UserID: w.agent.ID, Name: "x", TokenHash: "h4"})
	wantCode(t, err, inbox.NotFound) // agent is not a member of B
	_, err = s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.a.ID, UserID: w.owner.ID, Name: "dup", TokenHash: "h1"})
	wantCode(t, err, inbox.Conflict)
	got := must(s.APITokenByHash(ctx(), "h1"))(t)
	if got.ID != a.ID || got.WorkspaceID != w.a.ID || got.UserID != w.owner.ID || got.LastUsedAt != nil {
		t.Fatalf("APITokenByHash = %+v", got)
	}
	if l := must(s.ListAPITokens(ctx(), w.a.ID, ""))(t); len(l) != 2 {
		t.Fatalf("ListAPITokens all = %d", len(l))
	}
	if l := must(s.ListAPITokens(ctx(), w.a.ID, w.agent.ID))(t); len(l) != 1 || l[0].Name != "bot" {
		t.Fatalf("ListAPITokens agent = %+v", l)
	}
	at := time.Now().UTC().Truncate(time.Second)
	noErr(t, s.TouchAPIToken(ctx(), a.ID, at))
	if got := must(s.APITokenByHash(ctx(), "h1"))(t); got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) {
		t.Fatalf("LastUsedAt = %v", got.LastUsedAt)
	}
	wantCode(t, s.TouchAPIToken(ctx(), "ghost", at), inbox.NotFound)
	wantCode(t, s.DeleteAPIToken(ctx(), w.b.ID, a.ID), inbox.NotFound)
	noErr(t, s.DeleteAPIToken(ctx(), w.a.ID, a.ID))
	_, err = s.APITokenByHash(ctx(), "h1")
	wantCode(t, err, inbox.NotFound)
}

func testTeams(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	_, err := s.CreateTeam(ctx(), w.a.ID, inbox.Team{Name: " "})
	wantCode(t, err, inbox.Invalid)
	_, err = s.CreateTeam(ctx(), w.b.ID, inbox.Team{Name: "B team", MemberIDs: []string{w.agent.ID}})
	wantCode(t, err, inbox.Invalid) // not a member of B
	cur := head(t, s, w.a.ID)
	tm := must(s.CreateTeam(ctx(), w.a.ID, inbox.Team{Name: "Support", Description: "d", MemberIDs: []string{w.agent.ID}}))(t)
	if tm.ID == "" || !slices.Equal(tm.MemberIDs, []string{w.agent.ID}) {
		t.Fatalf("CreateTeam = %+v", tm)
	}
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityTeam, inbox.OpUpsert, tm.ID}, ch{inbox.EntityMember, inbox.OpUpsert, w.agent.ID})
	ms := must(s.ListMembers(ctx(), w.a.ID))(t)
	if !slices.Equal(ms[1].TeamIDs, []string{tm.ID}) {
		t.Fatalf("member teams = %+v", ms[1].TeamIDs)
	}
	up := must(s.UpdateTeam(ctx(), w.a.ID, inbox.Team{ID: tm.ID, Name: "Support 2", MemberIDs: []string{w.owner.ID}}))(t)
	if up.Name != "Support 2" || !slices.Equal(up.MemberIDs, []string{w.owner.ID}) {
		t.Fatalf("UpdateTeam = %+v", up)
	}
	_, err = s.UpdateTeam(ctx(), w.b.ID, inbox.Team{ID: tm.ID, Name: "x"})
	wantCode(t, err, inbox.NotFound)
	if l := must(s.ListTeams(ctx(), w.b.ID))(t); len(l) != 0 {
		t.Fatalf("teams leak into B: %+v", l)
	}
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	tid := tm.ID
	must(s.UpdateConversation(ctx(), w.a.ID, "", conv.ID, inbox.ConversationPatch{TeamID: inbox.Some(&tid)}))(t)
	wantCode(t, s.DeleteTeam(ctx(), w.b.ID, tm.ID), inbox.NotFound)
	cur = head(t, s, w.a.ID)
	noErr(t, s.DeleteTeam(ctx(), w.a.ID, tm.ID))
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityTeam, inbox.OpDelete, tm.ID}, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	if got := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t); got.TeamID != nil {
		t.Fatalf("team not cleared: %v", *got.TeamID)
	}
	if l := must(s.ListTeams(ctx(), w.a.ID))(t); len(l) != 0 {
		t.Fatalf("team not deleted: %+v", l)
	}
}

func testLabels(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	cur := head(t, s, w.a.ID)
	l := must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "vip", Color: "#f00"}))(t)
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityLabel, inbox.OpUpsert, l.ID})
	_, err := s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "vip"})
	wantCode(t, err, inbox.Conflict)
	lb := must(s.CreateLabel(ctx(), w.b.ID, inbox.Label{Name: "vip"}))(t) // names are per workspace
	l2 := must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "billing"}))(t)
	_, err = s.UpdateLabel(ctx(), w.a.ID, inbox.Label{ID: l2.ID, Name: "vip"})
	wantCode(t, err, inbox.Conflict)
	_, err = s.UpdateLabel(ctx(), w.a.ID, inbox.Label{ID: lb.ID, Name: "z"})
	wantCode(t, err, inbox.NotFound)
	up := must(s.UpdateLabel(ctx(), w.a.ID, inbox.Label{ID: l2.ID, Name: "billing2", Color: "#0f0", Description: "money"}))(t)
	if up.Name != "billing2" || up.Color != "#0f0" || up.Description != "money" || !up.CreatedAt.Equal(l2.CreatedAt) {
		t.Fatalf("UpdateLabel = %+v (was %+v)", up, l2)
	}
	ls := must(s.ListLabels(ctx(), w.a.ID))(t)
	if len(ls) != 2 || ls[0].Name != "billing2" || ls[1].Name != "vip" {
		t.Fatalf("ListLabels = %+v", ls)
	}
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	got := must(s.AddConversationLabels(ctx(), w.a.ID, conv.ID, []string{l.ID, l2.ID, l.ID}))(t)
	if len(got.Labels) != 2 {
		t.Fatalf("labels = %v", got.Labels)
	}
	_, err = s.AddConversationLabels(ctx(), w.a.ID, conv.ID, []string{lb.ID})
	wantCode(t, err, inbox.NotFound)
	wantCode(t, s.DeleteLabel(ctx(), w.b.ID, l.ID), inbox.NotFound)
	cur = head(t, s, w.a.ID)
	noErr(t, s.DeleteLabel(ctx(), w.a.ID, l.ID))
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityLabel, inbox.OpDelete, l.ID}, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	if got := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t); !slices.Equal(got.Labels, []string{l2.ID}) {
		t.Fatalf("labels after delete = %v", got.Labels)
	}
}

func testChannels(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	acct := must(s.CreateProviderAccount(ctx(), w.a.ID, inbox.ProviderAccount{Provider: "wappi", Name: "Wappi", Config: map[string]any{"k": "v"}, SecretsEnc: []byte("sealed"), Secrets: map[string]inbox.SecretState{"api_token": {Configured: true}}}))(t)
	got := must(s.GetProviderAccount(ctx(), w.a.ID, acct.ID))(t)
	if string(got.SecretsEnc) != "sealed" || got.Config["k"] != "v" || !got.Secrets["api_token"].Configured {
		t.Fatalf("GetProviderAccount = %+v", got)
	}
	_, err := s.GetProviderAccount(ctx(), w.b.ID, acct.ID)
	wantCode(t, err, inbox.NotFound)
	up := must(s.UpdateProviderAccount(ctx(), w.a.ID, inbox.ProviderAccount{ID: acct.ID, Name: "Wappi 2"}))(t)
	if up.Name != "Wappi 2" || string(up.SecretsEnc) != "sealed" {
		t.Fatalf("UpdateProviderAccount = %+v", up)
	}
	_, err = s.UpdateProviderAccount(ctx(), w.b.ID, inbox.ProviderAccount{ID: acct.ID, Name: "x"})
	wantCode(t, err, inbox.NotFound)
	if l := must(s.ListProviderAccounts(ctx(), w.b.ID))(t); len(l) != 0 {
		t.Fatalf("accounts leak: %+v", l)
	}
	_, err = s.CreateChannel(ctx(), w.b.ID, inbox.Channel{Kind: "wappi", Name: "x", ProviderAccountID: acct.ID})
	wantCode(t, err, inbox.NotFound)
	cur := head(t, s, w.a.ID)
	c := must(s.CreateChannel(ctx(), w.a.ID, inbox.Channel{Kind: "wappi", Name: "Wappi WA", ProviderAccountID: acct.ID, Config: map[string]any{"profile_id": "p1"}}))(t)
	chg := wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityChannel, inbox.OpUpsert, c.ID})
	var fromLog inbox.Channel
	noErr(t, json.Unmarshal(chg[0].Data, &fromLog))
	if fromLog.Name != "Wappi WA" || fromLog.Config["profile_id"] != "p1" {
		t.Fatalf("channel change = %s", chg[0].Data)
	}
	wantCode(t, s.DeleteProviderAccount(ctx(), w.a.ID, acct.ID), inbox.Conflict)
	wantCode(t, s.DeleteProviderAccount(ctx(), w.b.ID, acct.ID), inbox.NotFound)

	g := must(s.GetChannel(ctx(), w.a.ID, w.chA.ID))(t)
	if string(g.SecretsEnc) != "\x01\x02\x03" || g.Config["x"] != "1" || !g.Secrets["bot_token"].Configured || g.Status != "active" {
		t.Fatalf("GetChannel = %+v", g)
	}
	_, err = s.GetChannel(ctx(), w.b.ID, w.chA.ID)
	wantCode(t, err, inbox.NotFound)
	if g := must(s.ChannelByID(ctx(), w.chB.ID))(t); g.WorkspaceID != w.b.ID {
		t.Fatalf("ChannelByID = %+v", g)
	}
	_, err = s.ChannelByID(ctx(), "ghost")
	wantCode(t, err, inbox.NotFound)
	p := must(s.UpdateChannel(ctx(), w.a.ID, w.chA.ID, inbox.ChannelPatch{Name: inbox.Some("Renamed"), Status: inbox.Some("error"), StatusDetail: inbox.Some("token revoked"), SecretsEnc: inbox.Some([]byte("new"))}))(t)
	if p.Name != "Renamed" || p.Status != "error" || p.StatusDetail != "token revoked" || string(p.SecretsEnc) != "new" || p.Config["x"] != "1" {
		t.Fatalf("UpdateChannel = %+v", p)
	}
	_, err = s.UpdateChannel(ctx(), w.b.ID, w.chA.ID, inbox.ChannelPatch{Name: inbox.Some("x")})
	wantCode(t, err, inbox.NotFound)
	if l := must(s.ListChannels(ctx(), w.a.ID))(t); len(l) != 3 {
		t.Fatalf("ListChannels A = %d", len(l))
	}
	conv := w.conversation(t, w.a.ID, c, "Carl", "carl")
	wantCode(t, s.DeleteChannel(ctx(), w.b.ID, c.ID), inbox.NotFound)
	cur = head(t, s, w.a.ID)
	noErr(t, s.DeleteChannel(ctx(), w.a.ID, c.ID))
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityChannel, inbox.OpDelete, c.ID}, ch{inbox.EntityConversation, inbox.OpDelete, conv.ID})
	_, err = s.GetConversation(ctx(), w.a.ID, "", conv.ID)
	wantCode(t, err, inbox.NotFound)
	noErr(t, s.DeleteProviderAccount(ctx(), w.a.ID, acct.ID))
	_, err = s.GetProviderAccount(ctx(), w.a.ID, acct.ID)
	wantCode(t, err, inbox.NotFound)
}

func testContacts(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	cur := head(t, s, w.a.ID)
	c := must(s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: "Carl", Emails: []string{"carl@example.com"}, Phones: []string{"+4930123", "+4930123"},
		Identities: []inbox.Identity{{ChannelID: w.chA.ID, Identifier: "111"}}, Tags: []string{"a", "a", "b"}, Attributes: map[string]any{"plan": "pro"}}))(t)
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityContact, inbox.OpUpsert, c.ID})
	if !slices.Equal(c.Phones, []string{"+4930123"}) || !slices.Equal(c.Tags, []string{"a", "b"}) || len(c.Identities) != 1 || c.Identities[0].ChannelKind != "telegram" || c.Attributes["plan"] != "pro" {
		t.Fatalf("CreateContact = %+v", c)
	}
	// Identity uniqueness is per (workspace, channel, identifier).
	_, err := s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: "Dup", Identities: []inbox.Identity{{ChannelID: w.chA.ID, Identifier: "111"}}})
	wantCode(t, err, inbox.Conflict)
	must(s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: "Other channel", Identities: []inbox.Identity{{ChannelID: w.chA2.ID, Identifier: "111"}}}))(t)
	must(s.CreateContact(ctx(), w.b.ID, inbox.Contact{Name: "Other ws", Identities: []inbox.Identity{{ChannelID: w.chB.ID, Identifier: "111"}}}))(t)
	_, err = s.CreateContact(ctx(), w.b.ID, inbox.Contact{Name: "Foreign channel", Identities: []inbox.Identity{{ChannelID: w.chA.ID, Identifier: "222"}}})
	wantCode(t, err, inbox.NotFound)

	got := must(s.ContactByIdentity(ctx(), w.a.ID, w.chA.ID, "111"))(t)
	if got.ID != c.ID || !slices.Equal(got.Emails, []string{"carl@example.com"}) {
		t.Fatalf("ContactByIdentity = %+v", got)
	}
	_, err = s.ContactByIdentity(ctx(), w.b.ID, w.chA.ID, "111")
	wantCode(t, err, inbox.NotFound)
	_, err = s.ContactByIdentity(ctx(), w.a.ID, w.chA.ID, "999")
	wantCode(t, err, inbox.NotFound)
	_, err = s.GetContact(ctx(), w.b.ID, c.ID)
	wantCode(t, err, inbox.NotFound)

	conv, _, err := s.CreateConversation(ctx(), w.a.ID, c.ID, w.chA.ID)
	noErr(t, err)
	cur = head(t, s, w.a.ID)
	up := must(s.UpdateContact(ctx(), w.a.ID, c.ID, inbox.ContactPatch{Name: inbox.Some("Carl C"), Emails: inbox.Some([]string{"c2@example.com", "carl@example.com"}), Blocked: inbox.Some(true), Notes: inbox.Some("n")}))(t)
	if up.Name != "Carl C" || !slices.Equal(up.Emails, []string{"c2@example.com", "carl@example.com"}) || !slices.Equal(up.Phones, []string{"+4930123"}) || !up.Blocked || up.Notes != "n" {
		t.Fatalf("UpdateContact = %+v", up)
	}
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityContact, inbox.OpUpsert, c.ID}, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	if g := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t); g.Contact.Name != "Carl C" {
		t.Fatalf("conversation contact = %+v", g.Contact)
	}
	_, err = s.UpdateContact(ctx(), w.b.ID, c.ID, inbox.ContactPatch{Name: inbox.Some("x")})
	wantCode(t, err, inbox.NotFound)

	cc := must(s.ContactConversations(ctx(), w.a.ID, c.ID))(t)
	if len(cc) != 1 || cc[0].ID != conv.ID {
		t.Fatalf("ContactConversations = %+v", cc)
	}
	_, err = s.ContactConversations(ctx(), w.b.ID, c.ID)
	wantCode(t, err, inbox.NotFound)

	wantCode(t, s.DeleteContact(ctx(), w.b.ID, c.ID), inbox.NotFound)
	cur = head(t, s, w.a.ID)
	noErr(t, s.DeleteContact(ctx(), w.a.ID, c.ID))
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityContact, inbox.OpDelete, c.ID}, ch{inbox.EntityConversation, inbox.OpDelete, conv.ID})
	_, err = s.GetContact(ctx(), w.a.ID, c.ID)
	wantCode(t, err, inbox.NotFound)
	_, err = s.ContactByIdentity(ctx(), w.a.ID, w.chA.ID, "111")
	wantCode(t, err, inbox.NotFound)
}

func testContactPaging(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	for i := range 7 {
		must(s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: fmt.Sprintf("Person %d", i), Emails: []string{fmt.Sprintf("p%d@example.com", i)},
			Phones: []string{fmt.Sprintf("+1555000%d", i)}, Identities: []inbox.Identity{{ChannelID: w.chA.ID, Identifier: fmt.Sprintf("tg%d", i)}}}))(t)
	}
	must(s.CreateContact(ctx(), w.b.ID, inbox.Contact{Name: "Person B"}))(t)
	var all []inbox.Contact
	cursor := ""
	for range 10 {
		p := must(s.ListContacts(ctx(), w.a.ID, inbox.ContactFilter{Limit: 3, Cursor: cursor}))(t)
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(all) != 7 || all[0].Name != "Person 6" || all[6].Name != "Person 0" {
		t.Fatalf("paged contacts = %v", ids(all, func(c inbox.Contact) string { return c.Name }))
	}
	for _, tc := range []struct{ q, want string }{{"person 3", "Person 3"}, {"P4@EXAMPLE", "Person 4"}, {"+15550005", "Person 5"}, {"tg2", "Person 2"}} {
		p := must(s.ListContacts(ctx(), w.a.ID, inbox.ContactFilter{Q: tc.q}))(t)
		if len(p.Items) != 1 || p.Items[0].Name != tc.want {
			t.Fatalf("q=%q -> %v", tc.q, ids(p.Items, func(c inbox.Contact) string { return c.Name }))
		}
	}
	if p := must(s.ListContacts(ctx(), w.a.ID, inbox.ContactFilter{Q: "100%"}))(t); len(p.Items) != 0 {
		t.Fatalf("wildcards are not escaped: %d", len(p.Items))
	}
	_, err := s.ListContacts(ctx(), w.a.ID, inbox.ContactFilter{Cursor: "!!!"})
	wantCode(t, err, inbox.Invalid)
}

func testMerge(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	p := must(s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: "", Emails: []string{"p@example.com"}, Tags: []string{"x"}, Attributes: map[string]any{"a": "p", "only_p": 1.0},
		Identities: []inbox.Identity{{ChannelID: w.chA.ID, Identifier: "p-tg"}}}))(t)
	m1 := must(s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: "Merged One", AvatarURL: "http://a/1", Emails: []string{"m1@example.com", "p@example.com"}, Phones: []string{"+1"}, Tags: []string{"y"},
		Attributes: map[string]any{"a": "m1", "only_m": true}, Identities: []inbox.Identity{{ChannelID: w.chA2.ID, Identifier: "m1-wa"}}}))(t)
	m2 := must(s.CreateContact(ctx(), w.a.ID, inbox.Contact{Name: "Second", Phones: []string{"+2"}, Tags: []string{"x", "z"}, Notes: "m2 notes"}))(t)
	other := must(s.CreateContact(ctx(), w.b.ID, inbox.Contact{Name: "B"}))(t)
	_, err := s.MergeContacts(ctx(), w.a.ID, inbox.MergeInput{PrimaryID: p.ID, MergeIDs: []string{other.ID}})
	wantCode(t, err, inbox.NotFound)
	_, err = s.MergeContacts(ctx(), w.a.ID, inbox.MergeInput{PrimaryID: p.ID, MergeIDs: []string{p.ID}})
	wantCode(t, err, inbox.Invalid)
	_, err = s.MergeContacts(ctx(), w.a.ID, inbox.MergeInput{PrimaryID: p.ID, MergeIDs: []string{m1.ID}, Keep: map[string]string{"name": other.ID}})
	wantCode(t, err, inbox.Invalid)

	conv1, _, err := s.CreateConversation(ctx(), w.a.ID, m1.ID, w.chA2.ID)
	noErr(t, err)
	msg := must(s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv1.ID, Direction: "inbound", Sender: inbox.Actor{Type: "contact", ID: m1.ID, Name: "Merged One"}, Text: "hi"}))(t)
	must(s.AddReaction(ctx(), w.a.ID, msg.ID, inbox.Reaction{Emoji: "👍", By: inbox.Actor{Type: "contact", ID: m1.ID}}))(t)

	cur := head(t, s, w.a.ID)
	got, err := s.MergeContacts(ctx(), w.a.ID, inbox.MergeInput{PrimaryID: p.ID, MergeIDs: []string{m1.ID, m2.ID}, Keep: map[string]string{"name": m2.ID, "attributes": m1.ID}})
	noErr(t, err)
	if got.ID != p.ID || got.Name != "Second" || got.AvatarURL != "http://a/1" || got.Notes != "m2 notes" {
		t.Fatalf("merged scalars = %+v", got)
	}
	if !slices.Equal(got.Emails, []string{"p@example.com", "m1@example.com"}) || !slices.Equal(got.Phones, []string{"+1", "+2"}) || !slices.Equal(got.Tags, []string{"x", "y", "z"}) {
		t.Fatalf("merged lists = %+v", got)
	}
	if len(got.Identities) != 2 {
		t.Fatalf("merged identities = %+v", got.Identities)
	}
	if got.Attributes["a"] != "m1" || got.Attributes["only_p"] != 1.0 || got.Attributes["only_m"] != true {
		t.Fatalf("merged attributes = %+v", got.Attributes)
	}
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityContact, inbox.OpDelete, m1.ID}, ch{inbox.EntityContact, inbox.OpDelete, m2.ID},
		ch{inbox.EntityContact, inbox.OpUpsert, p.ID}, ch{inbox.EntityConversation, inbox.OpUpsert, conv1.ID})
	for _, id := range []string{m1.ID, m2.ID} {
		_, err := s.GetContact(ctx(), w.a.ID, id)
		wantCode(t, err, inbox.NotFound)
	}
	if c := must(s.ContactByIdentity(ctx(), w.a.ID, w.chA2.ID, "m1-wa"))(t); c.ID != p.ID {
		t.Fatalf("identity not moved")
	}
	if cv := must(s.GetConversation(ctx(), w.a.ID, "", conv1.ID))(t); cv.Contact.ID != p.ID || cv.Contact.Name != "Second" {
		t.Fatalf("conversation contact = %+v", cv.Contact)
	}
	m := must(s.GetMessage(ctx(), w.a.ID, msg.ID))(t)
	if m.Sender.ID != p.ID || len(m.Reactions) != 1 || m.Reactions[0].By.ID != p.ID {
		t.Fatalf("message sender/reactions not moved: %+v %+v", m.Sender, m.Reactions)
	}
}

func testConversations(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	c := w.contact(t, w.a.ID, w.chA, "Carl", "carl")
	cur := head(t, s, w.a.ID)
	conv, created, err := s.CreateConversation(ctx(), w.a.ID, c.ID, w.chA.ID)
	noErr(t, err)
	if !created || conv.Number != 1 || conv.Status != "open" || conv.Contact.Name != "Carl" || conv.ChannelKind != "telegram" || conv.LastMessage != nil || conv.Labels == nil {
		t.Fatalf("CreateConversation = %+v", conv)
	}
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	again, created, err := s.CreateConversation(ctx(), w.a.ID, c.ID, w.chA.ID)
	noErr(t, err)
	if created || again.ID != conv.ID {
		t.Fatalf("second CreateConversation made a new one")
	}
	conv2, created, err := s.CreateConversation(ctx(), w.a.ID, c.ID, w.chA2.ID)
	noErr(t, err)
	if !created || conv2.Number != 2 {
		t.Fatalf("conversation on another channel = %+v", conv2)
	}
	// Numbers are per workspace.
	if cb := w.conversation(t, w.b.ID, w.chB, "Bea", "bea"); cb.Number != 1 {
		t.Fatalf("B's first number = %d", cb.Number)
	}
	_, _, err = s.CreateConversation(ctx(), w.b.ID, c.ID, w.chB.ID)
	wantCode(t, err, inbox.NotFound)
	_, _, err = s.CreateConversation(ctx(), w.a.ID, c.ID, w.chB.ID)
	wantCode(t, err, inbox.NotFound)

	agent := w.agent.ID
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	up := must(s.UpdateConversation(ctx(), w.a.ID, w.agent.ID, conv.ID, inbox.ConversationPatch{Status: inbox.Some("snoozed"), SnoozedUntil: inbox.Some(&until), AssigneeID: inbox.Some(&agent), Priority: inbox.Some("high")}))(t)
	if up.Status != "snoozed" || up.SnoozedUntil == nil || !up.SnoozedUntil.Equal(until) || up.AssigneeID == nil || *up.AssigneeID != agent || up.Priority != "high" {
		t.Fatalf("UpdateConversation = %+v", up)
	}
	up = must(s.UpdateConversation(ctx(), w.a.ID, "", conv.ID, inbox.ConversationPatch{Status: inbox.Some("resolved"), AssigneeID: inbox.Some[*string](nil)}))(t)
	if up.SnoozedUntil != nil || up.AssigneeID != nil {
		t.Fatalf("resolve did not clear snooze/assignee: %+v", up)
	}
	for _, p := range []inbox.ConversationPatch{
		{Status: inbox.Some("closed")},
		{Priority: inbox.Some("meh")},
		{AssigneeID: inbox.Some(&w.b.ID)},
	} {
		_, err := s.UpdateConversation(ctx(), w.a.ID, "", conv.ID, p)
		wantCode(t, err, inbox.Invalid)
	}
	// A member of B only cannot be assigned in A.
	bOnly := must(s.AddMember(ctx(), w.b.ID, inbox.NewMember{Email: "bob@example.com", Name: "Bob", PasswordHash: "h", Role: inbox.RoleAgent}))(t)
	_, err = s.UpdateConversation(ctx(), w.a.ID, "", conv.ID, inbox.ConversationPatch{AssigneeID: inbox.Some(&bOnly.ID)})
	wantCode(t, err, inbox.Invalid)
	_, err = s.UpdateConversation(ctx(), w.b.ID, "", conv.ID, inbox.ConversationPatch{Status: inbox.Some("open")})
	wantCode(t, err, inbox.NotFound)
	// A resolved conversation is not returned by CreateConversation: a new one starts.
	conv3, created, err := s.CreateConversation(ctx(), w.a.ID, c.ID, w.chA.ID)
	noErr(t, err)
	if !created || conv3.ID == conv.ID || conv3.Number != 3 {
		t.Fatalf("after resolve = %+v created=%v", conv3, created)
	}
	if ps := must(s.Participants(ctx(), w.a.ID, conv.ID))(t); len(ps) != 0 {
		t.Fatalf("participants of a 1:1 = %+v", ps)
	}
	_, err = s.Participants(ctx(), w.b.ID, conv.ID)
	wantCode(t, err, inbox.NotFound)
	l := must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "vip"}))(t)
	cur = head(t, s, w.a.ID)
	must(s.AddConversationLabels(ctx(), w.a.ID, conv.ID, []string{l.ID}))(t)
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	got := must(s.RemoveConversationLabel(ctx(), w.a.ID, conv.ID, l.ID))(t)
	if len(got.Labels) != 0 {
		t.Fatalf("label not removed: %v", got.Labels)
	}
	_, err = s.RemoveConversationLabel(ctx(), w.b.ID, conv.ID, l.ID)
	wantCode(t, err, inbox.NotFound)
	_, err = s.GetConversation(ctx(), w.b.ID, "", conv.ID)
	wantCode(t, err, inbox.NotFound)
}

func testViews(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	agent, owner := w.agent.ID, w.owner.ID
	tm := must(s.CreateTeam(ctx(), w.a.ID, inbox.Team{Name: "T"}))(t)
	l := must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "vip"}))(t)
	type spec struct {
		status   string
		assignee *string
		team     bool
		label    bool
		channel  inbox.Channel
	}
	specs := map[string]spec{
		"open-mine":       {status: "open", assignee: &agent},
		"pending-mine":    {status: "pending", assignee: &agent, label: true},
		"snoozed-mine":    {status: "snoozed", assignee: &agent},
		"resolved-mine":   {status: "resolved", assignee: &agent},
		"open-none":       {status: "open", team: true, channel: w.chA2},
		"pending-none":    {status: "pending"},
		"snoozed-none":    {status: "snoozed"},
		"spam-none":       {status: "spam"},
		"open-owner":      {status: "open", assignee: &owner, label: true},
		"resolved-owner":  {status: "resolved", assignee: &owner},
		"spam-mine":       {status: "spam", assignee: &agent},
		"open-none-title": {status: "open"},
	}
	byName := map[string]string{}
	for name, sp := range specs {
		chn := w.chA
		if sp.channel.ID != "" {
			chn = sp.channel
		}
		conv := w.conversation(t, w.a.ID, chn, "Contact "+name, "id-"+name)
		p := inbox.ConversationPatch{Status: inbox.Some(sp.status), AssigneeID: inbox.Some(sp.assignee)}
		if sp.team {
			p.TeamID = inbox.Some(&tm.ID)
		}
		if name == "open-none-title" {
			p.Title = inbox.Some("Refund for order 4711")
		}
		must(s.UpdateConversation(ctx(), w.a.ID, "", conv.ID, p))(t)
		if sp.label {
			must(s.AddConversationLabels(ctx(), w.a.ID, conv.ID, []string{l.ID}))(t)
		}
		byName[conv.ID] = name
	}
	w.conversation(t, w.b.ID, w.chB, "Other ws", "x") // never visible in A
	names := func(cs []inbox.Conversation) []string {
		var out []string
		for _, c := range cs {
			out = append(out, byName[c.ID])
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		f    inbox.ConversationFilter
		want []string
	}{
		{inbox.ConversationFilter{View: "mine", UserID: agent}, []string{"open-mine", "pending-mine", "snoozed-mine"}},
		{inbox.ConversationFilter{View: "unassigned", UserID: agent}, []string{"open-none", "open-none-title", "pending-none"}},
		{inbox.ConversationFilter{View: "open"}, []string{"open-mine", "open-none", "open-none-title", "open-owner", "pending-mine", "pending-none"}},
		{inbox.ConversationFilter{View: "all"}, []string{"open-mine", "open-none", "open-none-title", "open-owner", "pending-mine", "pending-none", "resolved-mine", "resolved-owner", "snoozed-mine", "snoozed-none"}},
		{inbox.ConversationFilter{View: "closed"}, []string{"resolved-mine", "resolved-owner"}},
		{inbox.ConversationFilter{View: "spam"}, []string{"spam-mine", "spam-none"}},
		{inbox.ConversationFilter{View: "all", Status: "pending"}, []string{"pending-mine", "pending-none"}},
		{inbox.ConversationFilter{View: "all", Channel: w.chA2.ID}, []string{"open-none"}},
		{inbox.ConversationFilter{View: "all", Label: l.ID}, []string{"open-owner", "pending-mine"}},
		{inbox.ConversationFilter{View: "all", Assignee: owner}, []string{"open-owner", "resolved-owner"}},
		{inbox.ConversationFilter{View: "open", Assignee: "none"}, []string{"open-none", "open-none-title", "pending-none"}},
		{inbox.ConversationFilter{View: "all", Team: tm.ID}, []string{"open-none"}},
		{inbox.ConversationFilter{View: "all", Q: "order 4711"}, []string{"open-none-title"}},
		{inbox.ConversationFilter{View: "all", Q: "contact PENDING-m"}, []string{"pending-mine"}},
		{inbox.ConversationFilter{View: "all", Q: "id-snoozed-none"}, []string{"snoozed-none"}},
	} {
		p := must(s.ListConversations(ctx(), w.a.ID, tc.f))(t)
		if got := names(p.Items); !slices.Equal(got, tc.want) {
			t.Errorf("filter %+v = %v, want %v", tc.f, got, tc.want)
		}
		if p.Total == nil || *p.Total != len(tc.want) {
			t.Errorf("filter %+v total = %v, want %d", tc.f, p.Total, len(tc.want))
		}
	}
	// Totals follow deletes (cascades) and reassignment.
	for id, name := range byName {
		switch name {
		case "open-none":
			c := must(s.GetConversation(ctx(), w.a.ID, "", id))(t)
			noErr(t, s.DeleteContact(ctx(), w.a.ID, c.Contact.ID))
		case "pending-none":
			must(s.UpdateConversation(ctx(), w.a.ID, "", id, inbox.ConversationPatch{AssigneeID: inbox.Some(&owner)}))(t)
		}
	}
	noErr(t, s.RemoveMember(ctx(), w.a.ID, w.agent.ID)) // unassigns the agent's conversations
	for _, tc := range []struct {
		f    inbox.ConversationFilter
		want int
	}{
		{inbox.ConversationFilter{View: "open"}, 5},
		{inbox.ConversationFilter{View: "unassigned"}, 3},
		{inbox.ConversationFilter{View: "all", Assignee: owner}, 3},
		{inbox.ConversationFilter{View: "all", Assignee: "none"}, 6},
		{inbox.ConversationFilter{View: "mine", UserID: agent}, 0},
	} {
		p := must(s.ListConversations(ctx(), w.a.ID, tc.f))(t)
		if *p.Total != tc.want || len(p.Items) != tc.want {
			t.Errorf("after changes %+v: total %d, items %d, want %d", tc.f, *p.Total, len(p.Items), tc.want)
		}
	}
	_, err := s.ListConversations(ctx(), w.a.ID, inbox.ConversationFilter{View: "bogus"})
	wantCode(t, err, inbox.Invalid)
	_, err = s.ListConversations(ctx(), w.a.ID, inbox.ConversationFilter{View: "all", Status: "bogus"})
	wantCode(t, err, inbox.Invalid)
	_, err = s.ListConversations(ctx(), w.a.ID, inbox.ConversationFilter{View: "all", Cursor: "%%%"})
	wantCode(t, err, inbox.Invalid)
}

func testConversationPaging(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	var made []string
	for i := range 11 {
		made = append(made, w.conversation(t, w.a.ID, w.chA, fmt.Sprintf("P%d", i), fmt.Sprintf("p%d", i)).ID)
	}
	// Activity reorders: an inbound message moves conversation 3 to the top.
	w.inbound(t, w.a.ID, made[3], "bump")
	want := []string{made[3]}
	for i := 10; i >= 0; i-- {
		if i != 3 {
			want = append(want, made[i])
		}
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		p := must(s.ListConversations(ctx(), w.a.ID, inbox.ConversationFilter{View: "all", Limit: 4, Cursor: cursor}))(t)
		pages++
		if p.Total == nil || *p.Total != 11 {
			t.Fatalf("total = %v", p.Total)
		}
		got = append(got, convIDs(p.Items)...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		if pages > 5 {
			t.Fatal("too many pages")
		}
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Fatalf("pages=%d order=%v want %v", pages, got, want)
	}
}

func testUnread(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	for i := range 3 {
		w.inbound(t, w.a.ID, conv.ID, fmt.Sprintf("m%d", i))
	}
	must(s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv.ID, Direction: "outbound", Private: true, Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "note"}))(t)
	unread := func(user string) int {
		p := must(s.ListConversations(ctx(), w.a.ID, inbox.ConversationFilter{View: "all", UserID: user}))(t)
		g := must(s.GetConversation(ctx(), w.a.ID, user, conv.ID))(t)
		if len(p.Items) != 1 || p.Items[0].UnreadCount != g.UnreadCount {
			t.Fatalf("list and get disagree: %+v vs %d", p.Items, g.UnreadCount)
		}
		return g.UnreadCount
	}
	if n := unread(w.agent.ID); n != 3 {
		t.Fatalf("agent unread = %d, want 3", n)
	}
	cur := head(t, s, w.a.ID)
	rs := must(s.MarkRead(ctx(), w.a.ID, w.agent.ID, conv.ID))(t)
	if rs.UnreadCount != 0 || rs.UserID != w.agent.ID || rs.ConversationID != conv.ID {
		t.Fatalf("MarkRead = %+v", rs)
	}
	chg := wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityReadState, inbox.OpUpsert, w.agent.ID + ":" + conv.ID})
	var got inbox.ReadState
	noErr(t, json.Unmarshal(chg[0].Data, &got))
	if got.UserID != w.agent.ID || got.ConversationID != conv.ID {
		t.Fatalf("read_state change = %s", chg[0].Data)
	}
	if n := unread(w.agent.ID); n != 0 {
		t.Fatalf("after read = %d", n)
	}
	if n := unread(w.owner.ID); n != 3 {
		t.Fatalf("owner unread = %d (read state must be per user)", n)
	}
	w.inbound(t, w.a.ID, conv.ID, "again")
	w.inbound(t, w.a.ID, conv.ID, "again 2")
	if n := unread(w.agent.ID); n != 2 {
		t.Fatalf("after 2 more = %d", n)
	}
	// Change data is user-neutral.
	cs := changesSince(t, s, w.a.ID, cur)
	for _, c := range cs {
		if c.Entity == inbox.EntityConversation {
			var cv inbox.Conversation
			noErr(t, json.Unmarshal(c.Data, &cv))
			if cv.UnreadCount != 0 {
				t.Fatalf("conversation change carries unread_count %d", cv.UnreadCount)
			}
		}
	}
	rs = must(s.MarkUnread(ctx(), w.a.ID, w.owner.ID, conv.ID))(t)
	if rs.UnreadCount != 1 || unread(w.owner.ID) != 1 {
		t.Fatalf("MarkUnread = %+v", rs)
	}
	// An agent's reply reads the conversation for them.
	must(s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv.ID, Direction: "outbound", Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "answer"}))(t)
	if n := unread(w.owner.ID); n != 0 {
		t.Fatalf("after reply = %d", n)
	}
	_, err := s.MarkRead(ctx(), w.b.ID, w.owner.ID, conv.ID)
	wantCode(t, err, inbox.NotFound)
	_, err = s.MarkRead(ctx(), w.a.ID, "ghost", conv.ID)
	wantCode(t, err, inbox.NotFound)
}

func testMessages(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	in := w.inbound(t, w.a.ID, conv.ID, "Hello   there\nfriend")
	if in.Status != "received" || in.Direction != "inbound" || in.Attachments == nil || in.Reactions == nil {
		t.Fatalf("inbound = %+v", in)
	}
	c := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t)
	if c.LastMessage == nil || c.LastMessage.Preview != "Hello there friend" || c.LastMessage.Direction != "inbound" || c.LastInboundAt == nil {
		t.Fatalf("last message = %+v", c.LastMessage)
	}
	cur := head(t, s, w.a.ID)
	note := must(s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv.ID, Private: true, Sender: inbox.Actor{Type: "agent", ID: w.owner.ID, Name: "Olga"}, Text: "secret note", Mentions: []string{w.agent.ID}}))(t)
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityMessage, inbox.OpUpsert, note.ID}, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID})
	if !note.Private || !slices.Equal(note.Mentions, []string{w.agent.ID}) || note.Direction != "outbound" {
		t.Fatalf("note = %+v", note)
	}
	c2 := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t)
	if c2.LastMessage.Preview != "Hello there friend" {
		t.Fatalf("private note changed the preview: %+v", c2.LastMessage)
	}
	if !c2.UpdatedAt.After(c.UpdatedAt) && !c2.UpdatedAt.Equal(c.UpdatedAt) {
		t.Fatalf("updated_at went back")
	}
	reply := in.ID
	out := must(s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv.ID, Direction: "outbound", Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "On it", ReplyToID: &reply, Outbox: true, Content: []byte(`{"k":1}`)}))(t)
	if out.Status != "queued" || out.ReplyToID == nil || *out.ReplyToID != in.ID || string(out.Content) == "" {
		t.Fatalf("outbound = %+v", out)
	}
	if c3 := must(s.GetConversation(ctx(), w.a.ID, "", conv.ID))(t); c3.LastMessage.Preview != "On it" || c3.LastMessage.Direction != "outbound" {
		t.Fatalf("last message after reply = %+v", c3.LastMessage)
	}
	_, err := s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv.ID, Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "x", AttachmentIDs: []string{"ghost"}})
	wantCode(t, err, inbox.Invalid)
	bad := "ghost"
	_, err = s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: conv.ID, Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "x", ReplyToID: &bad})
	wantCode(t, err, inbox.Invalid)
	_, err = s.CreateMessage(ctx(), w.b.ID, inbox.NewMessage{ConversationID: conv.ID, Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "x"})
	wantCode(t, err, inbox.NotFound)
	_, err = s.GetMessage(ctx(), w.b.ID, in.ID)
	wantCode(t, err, inbox.NotFound)

	// Reactions: one per actor, replaced, removed.
	agent := inbox.Actor{Type: "agent", ID: w.agent.ID, Name: "Alex"}
	must(s.AddReaction(ctx(), w.a.ID, in.ID, inbox.Reaction{Emoji: "👍", By: agent}))(t)
	cur = head(t, s, w.a.ID)
	m := must(s.AddReaction(ctx(), w.a.ID, in.ID, inbox.Reaction{Emoji: "❤️", By: agent}))(t)
	wantChanges(t, s, w.a.ID, cur, ch{inbox.EntityMessage, inbox.OpUpsert, in.ID})
	must(s.AddReaction(ctx(), w.a.ID, in.ID, inbox.Reaction{Emoji: "😀", By: inbox.Actor{Type: "contact", ID: "c1"}}))(t)
	m = must(s.GetMessage(ctx(), w.a.ID, in.ID))(t)
	if len(m.Reactions) != 2 || m.Reactions[0].Emoji != "❤️" || m.Reactions[0].By.ID != w.agent.ID {
		t.Fatalf("reactions = %+v", m.Reactions)
	}
	m = must(s.RemoveReaction(ctx(), w.a.ID, in.ID, agent))(t)
	if len(m.Reactions) != 1 || m.Reactions[0].By.ID != "c1" {
		t.Fatalf("after remove = %+v", m.Reactions)
	}
	_, err = s.AddReaction(ctx(), w.b.ID, in.ID, inbox.Reaction{Emoji: "👍", By: agent})
	wantCode(t, err, inbox.NotFound)
	_, err = s.RemoveReaction(ctx(), w.b.ID, in.ID, agent)
	wantCode(t, err, inbox.NotFound)
}

func testMessagePaging(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	other := w.conversation(t, w.a.ID, w.chA2, "Dan", "dan")
	var made []string
	for i := range 8 {
		made = append(made, w.inbound(t, w.a.ID, conv.ID, fmt.Sprintf("m%d", i)).ID)
		w.inbound(t, w.a.ID, other.ID, "noise")
	}
	p := must(s.ListMessages(ctx(), w.a.ID, conv.ID, "", 3))(t)
	if got := ids(p.Items, func(m inbox.Message) string { return m.ID }); !slices.Equal(got, made[5:]) || p.NextCursor == "" {
		t.Fatalf("newest page = %v want %v", got, made[5:])
	}
	p = must(s.ListMessages(ctx(), w.a.ID, conv.ID, p.NextCursor, 3))(t)
	if got := ids(p.Items, func(m inbox.Message) string { return m.ID }); !slices.Equal(got, made[2:5]) {
		t.Fatalf("second page = %v want %v", got, made[2:5])
	}
	p = must(s.ListMessages(ctx(), w.a.ID, conv.ID, p.NextCursor, 3))(t)
	if got := ids(p.Items, func(m inbox.Message) string { return m.ID }); !slices.Equal(got, made[:2]) || p.NextCursor != "" {
		t.Fatalf("last page = %v want %v (next %q)", got, made[:2], p.NextCursor)
	}
	_, err := s.ListMessages(ctx(), w.b.ID, conv.ID, "", 3)
	wantCode(t, err, inbox.NotFound)
	_, err = s.ListMessages(ctx(), w.a.ID, conv.ID, "garbage!", 3)
	wantCode(t, err, inbox.Invalid)
}

func testChangeLog(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	all := changesSince(t, s, w.a.ID, "")
	// Seqs are contiguous from 1 and each batch is in order.
	for i, c := range all {
		if c.Seq != int64(i+1) {
			t.Fatalf("seq %d at %d: %v", c.Seq, i, summarize(all))
		}
	}
	if len(all) == 0 || all[0].Entity != inbox.EntityMember || all[0].ID != w.owner.ID {
		t.Fatalf("first change = %+v", all)
	}
	// B's log is separate: its own seq space.
	bs := changesSince(t, s, w.b.ID, "")
	for _, c := range bs {
		if c.ID == w.chA.ID || c.ID == w.agent.ID {
			t.Fatalf("A's change in B's log: %+v", c)
		}
	}
	if bs[0].Seq != 1 {
		t.Fatalf("B's seq starts at %d", bs[0].Seq)
	}
	// Paging with limit and More.
	b1 := must(s.Changes(ctx(), w.a.ID, "0", 2))(t)
	if len(b1.Changes) != 2 || !b1.More || b1.Cursor != "2" {
		t.Fatalf("batch = %+v", b1)
	}
	b2 := must(s.Changes(ctx(), w.a.ID, b1.Cursor, 1000))(t)
	if b2.More || len(b2.Changes) != len(all)-2 || b2.Cursor != strconv.Itoa(len(all)) {
		t.Fatalf("rest = %d more=%v cursor=%s", len(b2.Changes), b2.More, b2.Cursor)
	}
	empty := must(s.Changes(ctx(), w.a.ID, b2.Cursor, 10))(t)
	if len(empty.Changes) != 0 || empty.Cursor != b2.Cursor || empty.More {
		t.Fatalf("at head = %+v", empty)
	}
	// The channel change carries the API JSON without sealed secrets.
	for _, c := range all {
		if c.Entity == inbox.EntityChannel && c.ID == w.chA.ID {
			var m map[string]any
			noErr(t, json.Unmarshal(c.Data, &m))
			if m["name"] != "Bot A" || m["secrets_enc"] != nil || m["SecretsEnc"] != nil {
				t.Fatalf("channel change = %s", c.Data)
			}
		}
	}
}

func testCursorRules(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	h := head(t, s, w.a.ID)
	for _, bad := range []string{"abc", "-1", "1.5", strconv.Itoa(mustAtoi(t, h) + 1)} {
		_, err := s.Changes(ctx(), w.a.ID, bad, 10)
		wantCode(t, err, inbox.Conflict)
	}
	_, err := s.Changes(ctx(), "ghost", "0", 10)
	wantCode(t, err, inbox.NotFound)
	// Prune everything so far: old cursors are gone, the head still works.
	n := must(s.PruneChanges(ctx(), time.Now().Add(time.Minute)))(t)
	if n < mustAtoi(t, h) {
		t.Fatalf("pruned %d, want at least %s", n, h)
	}
	_, err = s.Changes(ctx(), w.a.ID, "0", 10)
	wantCode(t, err, inbox.Conflict)
	b := must(s.Changes(ctx(), w.a.ID, h, 10))(t)
	if len(b.Changes) != 0 {
		t.Fatalf("after prune at head = %+v", b)
	}
	l := must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "new"}))(t)
	b = must(s.Changes(ctx(), w.a.ID, h, 10))(t)
	if len(b.Changes) != 1 || b.Changes[0].ID != l.ID || b.Changes[0].Seq != int64(mustAtoi(t, h)+1) {
		t.Fatalf("after prune = %+v", b)
	}
	// Pruning with an old cutoff keeps recent changes.
	if n := must(s.PruneChanges(ctx(), time.Now().Add(-time.Hour)))(t); n != 0 {
		t.Fatalf("pruned %d recent changes", n)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	noErr(t, err)
	return n
}

func testSnapshot(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	w.inbound(t, w.a.ID, conv.ID, "hi")
	must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "vip"}))(t)
	must(s.CreateTeam(ctx(), w.a.ID, inbox.Team{Name: "T"}))(t)
	snap := must(s.Snapshot(ctx(), w.a.ID, w.agent.ID))(t)
	if len(snap.Conversations) != 1 || snap.Conversations[0].UnreadCount != 1 || len(snap.Labels) != 1 || len(snap.Members) != 2 || len(snap.Channels) != 2 || len(snap.Teams) != 1 {
		t.Fatalf("snapshot = %+v", snap)
	}
	all := changesSince(t, s, w.a.ID, "0")
	if snap.Cursor != strconv.FormatInt(all[len(all)-1].Seq, 10) {
		t.Fatalf("snapshot cursor %s, head %d", snap.Cursor, all[len(all)-1].Seq)
	}
	msg := w.inbound(t, w.a.ID, conv.ID, "after")
	got := changesSince(t, s, w.a.ID, snap.Cursor)
	if sum := summarize(got); len(sum) != 2 || !slices.Contains(sum, ch{inbox.EntityMessage, inbox.OpUpsert, msg.ID}) || !slices.Contains(sum, ch{inbox.EntityConversation, inbox.OpUpsert, conv.ID}) {
		t.Fatalf("changes after snapshot = %v", sum)
	}
	_, err := s.Snapshot(ctx(), "ghost", w.owner.ID)
	wantCode(t, err, inbox.NotFound)
}

// testIsolation checks that every workspace-scoped read of A's objects through B answers NotFound or empty.
func testIsolation(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	conv := w.conversation(t, w.a.ID, w.chA, "Carl", "carl")
	msg := w.inbound(t, w.a.ID, conv.ID, "hi")
	l := must(s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: "vip"}))(t)
	tm := must(s.CreateTeam(ctx(), w.a.ID, inbox.Team{Name: "T"}))(t)
	acct := must(s.CreateProviderAccount(ctx(), w.a.ID, inbox.ProviderAccount{Provider: "wappi", Name: "W"}))(t)
	tok := must(s.CreateAPIToken(ctx(), inbox.APIToken{WorkspaceID: w.a.ID, UserID: w.owner.ID, Name: "t", TokenHash: "iso"}))(t)
	b := w.b.ID
	checks := map[string]error{}
	_, checks["GetConversation"] = s.GetConversation(ctx(), b, "", conv.ID)
	_, checks["UpdateConversation"] = s.UpdateConversation(ctx(), b, "", conv.ID, inbox.ConversationPatch{Title: inbox.Some("x")})
	_, checks["MarkRead"] = s.MarkRead(ctx(), b, w.owner.ID, conv.ID)
	_, checks["MarkUnread"] = s.MarkUnread(ctx(), b, w.owner.ID, conv.ID)
	_, checks["AddConversationLabels"] = s.AddConversationLabels(ctx(), b, conv.ID, nil)
	_, checks["Participants"] = s.Participants(ctx(), b, conv.ID)
	_, checks["ListMessages"] = s.ListMessages(ctx(), b, conv.ID, "", 10)
	_, checks["GetMessage"] = s.GetMessage(ctx(), b, msg.ID)
	_, checks["CreateMessage"] = s.CreateMessage(ctx(), b, inbox.NewMessage{ConversationID: conv.ID, Sender: inbox.Actor{Type: "agent", ID: w.owner.ID}, Text: "x"})
	_, checks["AddReaction"] = s.AddReaction(ctx(), b, msg.ID, inbox.Reaction{Emoji: "x", By: inbox.Actor{Type: "agent", ID: w.owner.ID}})
	_, checks["GetContact"] = s.GetContact(ctx(), b, conv.Contact.ID)
	checks["DeleteContact"] = s.DeleteContact(ctx(), b, conv.Contact.ID)
	_, checks["UpdateLabel"] = s.UpdateLabel(ctx(), b, inbox.Label{ID: l.ID, Name: "y"})
	checks["DeleteLabel"] = s.DeleteLabel(ctx(), b, l.ID)
	_, checks["UpdateTeam"] = s.UpdateTeam(ctx(), b, inbox.Team{ID: tm.ID, Name: "y"})
	checks["DeleteTeam"] = s.DeleteTeam(ctx(), b, tm.ID)
	_, checks["GetProviderAccount"] = s.GetProviderAccount(ctx(), b, acct.ID)
	checks["DeleteProviderAccount"] = s.DeleteProviderAccount(ctx(), b, acct.ID)
	_, checks["GetChannel"] = s.GetChannel(ctx(), b, w.chA.ID)
	checks["DeleteChannel"] = s.DeleteChannel(ctx(), b, w.chA.ID)
	checks["DeleteAPIToken"] = s.DeleteAPIToken(ctx(), b, tok.ID)
	_, checks["UpdateMemberRole"] = s.UpdateMemberRole(ctx(), b, w.agent.ID, inbox.RoleAdmin)
	checks["RemoveMember"] = s.RemoveMember(ctx(), b, w.agent.ID)
	_, checks["MergeContacts"] = s.MergeContacts(ctx(), b, inbox.MergeInput{PrimaryID: conv.Contact.ID, MergeIDs: []string{"x"}})
	for name, err := range checks {
		if inbox.ErrorCode(err) != inbox.NotFound {
			t.Errorf("%s across workspaces: %v, want not_found", name, err)
		}
	}
	if p := must(s.ListConversations(ctx(), b, inbox.ConversationFilter{View: "all"}))(t); len(p.Items) != 0 || *p.Total != 0 {
		t.Errorf("B lists A's conversations")
	}
	if p := must(s.ListContacts(ctx(), b, inbox.ContactFilter{}))(t); len(p.Items) != 0 {
		t.Errorf("B lists A's contacts")
	}
	for name, n := range map[string]int{
		"labels":   len(must(s.ListLabels(ctx(), b))(t)),
		"teams":    len(must(s.ListTeams(ctx(), b))(t)),
		"accounts": len(must(s.ListProviderAccounts(ctx(), b))(t)),
		"tokens":   len(must(s.ListAPITokens(ctx(), b, ""))(t)),
		"channels": len(must(s.ListChannels(ctx(), b))(t)) - 1,
		"members":  len(must(s.ListMembers(ctx(), b))(t)) - 1,
	} {
		if n != 0 {
			t.Errorf("B sees A's %s", name)
		}
	}
	// Nothing above wrote anything.
	if _, err := s.GetConversation(ctx(), w.a.ID, "", conv.ID); err != nil {
		t.Fatal(err)
	}
}

// testConcurrentChanges runs writers in two workspaces while a reader tails
// A's log: it must see every committed change exactly once, in seq order.
func testConcurrentChanges(t *testing.T, s inbox.Store) {
	w := newWorld(t, s)
	writers, perWriter := 8, 200
	if raceEnabled {
		writers, perWriter = 8, 40
	}
	if testing.Short() {
		writers, perWriter = 4, 20
	}
	convs := make([]string, writers)
	for i := range convs {
		convs[i] = w.conversation(t, w.a.ID, w.chA, fmt.Sprintf("W%d", i), fmt.Sprintf("w%d", i)).ID
	}
	convB := w.conversation(t, w.b.ID, w.chB, "B", "b").ID
	start := head(t, s, w.a.ID)

	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perWriter {
				var err error
				switch j % 4 {
				case 0, 1:
					_, err = s.CreateMessage(ctx(), w.a.ID, inbox.NewMessage{ConversationID: convs[i], Direction: "inbound", Sender: inbox.Actor{Type: "contact", ID: "x"}, Text: "m"})
				case 2:
					_, err = s.MarkRead(ctx(), w.a.ID, w.agent.ID, convs[i])
				case 3:
					_, err = s.CreateLabel(ctx(), w.a.ID, inbox.Label{Name: fmt.Sprintf("l-%d-%d", i, j)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // noise in another workspace
		defer wg.Done()
		for range perWriter {
			if _, err := s.CreateMessage(ctx(), w.b.ID, inbox.NewMessage{ConversationID: convB, Direction: "inbound", Sender: inbox.Actor{Type: "contact", ID: "x"}, Text: "b"}); err != nil {
				errs <- err
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var seen []inbox.Change
	cursor := start
	finished := false
	for {
		b, err := s.Changes(ctx(), w.a.ID, cursor, 50)
		noErr(t, err)
		for _, c := range b.Changes {
			prev := int64(mustAtoi(t, cursor))
			if len(seen) > 0 {
				prev = seen[len(seen)-1].Seq
			}
			if c.Seq != prev+1 {
				t.Fatalf("tail skipped or repeated: got seq %d after %d", c.Seq, prev)
			}
			seen = append(seen, c)
		}
		cursor = b.Cursor
		if finished && !b.More {
			break
		}
		select {
		case <-done:
			finished = true
		default:
			if !b.More {
				time.Sleep(time.Millisecond)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := changesSince(t, s, w.a.ID, start)
	if len(all) != len(seen) {
		t.Fatalf("tail saw %d changes, log has %d", len(seen), len(all))
	}
	for i := range all {
		if all[i].Seq != seen[i].Seq || all[i].ID != seen[i].ID || all[i].Entity != seen[i].Entity {
			t.Fatalf("change %d differs: %+v vs %+v", i, all[i], seen[i])
		}
	}
	// Every mutation produced its changes: per writer perWriter/2 messages (message+conversation), reads, labels.
	var msgs, labels, reads int
	for _, c := range all {
		switch c.Entity {
		case inbox.EntityMessage:
			msgs++
		case inbox.EntityLabel:
			labels++
		case inbox.EntityReadState:
			reads++
		}
	}
	if msgs != writers*perWriter/2 || labels != writers*perWriter/4 || reads != writers*perWriter/4 {
		t.Fatalf("messages=%d labels=%d reads=%d", msgs, labels, reads)
	}
}

// testConcurrentStarts checks that racing set-ups make one user and racing
// conversation starts with one contact on one channel make one conversation.
func testConcurrentStarts(t *testing.T, s inbox.Store) {
	const n = 6
	var wg sync.WaitGroup
	setupErrs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, setupErrs[i] = s.Setup(ctx(), inbox.SetupInput{Workspace: "W", Name: "N", Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: "h"})
		}()
	}
	wg.Wait()
	ok := 0
	var ws string
	for _, err := range setupErrs {
		if err == nil {
			ok++
		} else if inbox.ErrorCode(err) != inbox.Conflict {
			t.Fatalf("racing setup: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d set-ups succeeded, want 1", ok)
	}
	for i := range n {
		if u, err := s.UserByEmail(ctx(), fmt.Sprintf("u%d@example.com", i)); err == nil {
			ws = must(s.UserWorkspaces(ctx(), u.ID))(t)[0].ID
		}
	}
	chn := must(s.CreateChannel(ctx(), ws, inbox.Channel{Kind: "api", Name: "API"}))(t)
	c := must(s.CreateContact(ctx(), ws, inbox.Contact{Name: "C"}))(t)
	ids := make([]string, n)
	created := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conv, made, err := s.CreateConversation(ctx(), ws, c.ID, chn.ID)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = conv.ID, made
		}()
	}
	wg.Wait()
	made := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("racing starts made different conversations: %v", ids)
		}
		if created[i] {
			made++
		}
	}
	if made != 1 {
		t.Fatalf("%d starts report created, want 1", made)
	}
}

// testConcurrentPatches: patches of different fields of one row, racing, all
// survive (no lost update on PostgreSQL at READ COMMITTED).
func testConcurrentPatches(t *testing.T, s inbox.Store) {
	_, w, err := s.Setup(ctx(), inbox.SetupInput{Workspace: "W", Name: "N", Email: "p@example.com", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	chn := must(s.CreateChannel(ctx(), w.ID, inbox.Channel{Kind: "api", Name: "API"}))(t)
	c := must(s.CreateContact(ctx(), w.ID, inbox.Contact{Name: "C"}))(t)
	conv, _, err := s.CreateConversation(ctx(), w.ID, c.ID, chn.ID)
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 10
	for i := range rounds {
		title, prio := fmt.Sprintf("title %d", i), []string{"low", "high"}[i%2]
		name, notes := fmt.Sprintf("name %d", i), fmt.Sprintf("notes %d", i)
		var wg sync.WaitGroup
		wg.Add(4)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateConversation(ctx(), w.ID, "", conv.ID, inbox.ConversationPatch{Title: inbox.Some(title)}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := s.UpdateConversation(ctx(), w.ID, "", conv.ID, inbox.ConversationPatch{Priority: inbox.Some(prio)}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := s.UpdateContact(ctx(), w.ID, c.ID, inbox.ContactPatch{Name: inbox.Some(name)}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := s.UpdateContact(ctx(), w.ID, c.ID, inbox.ContactPatch{Notes: inbox.Some(notes)}); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		got := must(s.GetConversation(ctx(), w.ID, "", conv.ID))(t)
		if got.Title != title || got.Priority != prio {
			t.Fatalf("round %d: conversation lost an update: title %q priority %q", i, got.Title, got.Priority)
		}
		gc := must(s.GetContact(ctx(), w.ID, c.ID))(t)
		if gc.Name != name || gc.Notes != notes {
			t.Fatalf("round %d: contact lost an update: name %q notes %q", i, gc.Name, gc.Notes)
		}
	}
}
