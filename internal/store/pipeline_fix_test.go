package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

// plModes runs fn on every backend, applying one entry at a time and in
// batches (the batch path prefetches what the other looks up).
func plModes(t *testing.T, fn func(t *testing.T, f *plFixture)) {
	for name, db := range plBackends(t) {
		for _, batched := range []bool{false, true} {
			mode := name
			if batched {
				mode += "/batched"
			}
			t.Run(mode, func(t *testing.T) {
				f := plSetup(t, db)
				f.batched = batched
				fn(t, f)
			})
		}
	}
}

// appendEntry logs one entry on the fixture's channel and returns it as
// stored (pending, first attempt).
func (f *plFixture) appendEntry(t *testing.T) InboundEntry {
	t.Helper()
	ctx := context.Background()
	f.n++
	e := InboundEntry{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(fmt.Sprintf(`{"fix":%d}`, f.n)), ReceivedAt: f.t0.Add(time.Duration(f.n) * time.Second)}
	if err := f.db.AppendInbound(ctx, []InboundEntry{e}); err != nil {
		t.Fatal(err)
	}
	es, err := f.db.InboundSince(ctx, f.ch.ID, time.Time{}, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	return es[len(es)-1]
}

// reload reads entry id back as a reprocess sees it.
func (f *plFixture) reload(t *testing.T, id string) InboundEntry {
	t.Helper()
	es, err := f.db.InboundSince(context.Background(), f.ch.ID, time.Time{}, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("entry %s not found", id)
	return InboundEntry{}
}

// applyItems applies entries with their events, in one batch or one by one.
func (f *plFixture) applyItems(t *testing.T, items ...InboundBatchItem) ApplyResult {
	t.Helper()
	ctx := context.Background()
	if f.batched {
		res, err := f.db.ApplyInboundBatch(ctx, f.ch, items)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var total ApplyResult
	for _, it := range items {
		res, err := f.db.ApplyInbound(ctx, it.Entry, f.ch, it.Events)
		if err != nil {
			t.Fatal(err)
		}
		total.Add(res)
	}
	return total
}

func (f *plFixture) byExt(t *testing.T) map[string]plMsg {
	t.Helper()
	out := map[string]plMsg{}
	for _, m := range f.messages(t) {
		out[m.Ext] = m
	}
	return out
}

// TestSenderlessEventsAreKept: an adapter's placeholder naming nobody is
// stored from the unknown sender instead of failing the channel's batch.
func TestSenderlessEventsAreKept(t *testing.T) {
	plModes(t, func(t *testing.T, f *plFixture) {
		senderless := func(ext string) channel.Event {
			return channel.Event{Type: channel.EventMessage, ExternalID: ext, Direction: "inbound", Kind: inbox.KindUnsupported,
				Text: "[unreadable piece]", Raw: []byte(`{"odd":true}`)}
		}
		items := []InboundBatchItem{
			{Entry: f.appendEntry(t), Events: []channel.Event{plMsgEv("g1", "111", "first")}},
			{Entry: f.appendEntry(t), Events: []channel.Event{senderless("odd:1")}},
			{Entry: f.appendEntry(t), Events: []channel.Event{plMsgEv("g2", "111", "second")}},
			// No id at all: stored too (it cannot be deduplicated).
			{Entry: f.appendEntry(t), Events: []channel.Event{senderless("")}},
			// A reaction naming nobody is the unknown sender's too.
			{Entry: f.appendEntry(t), Events: []channel.Event{{Type: channel.EventReaction, TargetID: "g1", Emoji: "👍", Direction: "inbound"}}},
		}
		res := f.applyItems(t, items...)
		if res.NewMessages != 4 || res.Changed != 1 {
			t.Fatalf("result %+v", res)
		}
		ms := f.byExt(t)
		odd, ok := ms["odd:1"]
		if !ok || len(ms) != 4 {
			t.Fatalf("messages %+v", ms)
		}
		if odd.Kind != inbox.KindUnsupported || odd.Text != "[unreadable piece]" || odd.SenderName != "Unknown sender" || odd.Direction != "inbound" {
			t.Fatalf("placeholder %+v", odd)
		}
		if ms[""].Kind != inbox.KindUnsupported || ms[""].Conv != odd.Conv {
			t.Fatalf("id-less placeholder %+v, want in %s", ms[""], odd.Conv)
		}
		if ms["g1"].Conv == odd.Conv {
			t.Fatal("the unknown sender's message joined a customer's conversation")
		}
		if n := f.count(t, `SELECT COUNT(*) FROM contact_identities WHERE channel_id = ? AND identifier = ?`, f.ch.ID, "unknown"); n != 1 {
			t.Fatalf("%d unknown identities", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM reactions WHERE message_id = ?`, ms["g1"].ID); n != 1 {
			t.Fatalf("%d reactions on g1", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM inbound_log WHERE channel_id = ? AND state <> ?`, f.ch.ID, InboundDone); n != 0 {
			t.Fatalf("%d entries not done", n)
		}
		// A replay stores the id-less one again (nothing to know it by), no other.
		again := f.applyItems(t, items[1:2]...)
		if again.NewMessages != 0 || again.Unchanged != 1 {
			t.Fatalf("replay %+v", again)
		}
	})
}

// messengerBody is a Messenger webhook holding one messaging item, as
// providers.md §2 documents it (times in milliseconds).
func messengerBody(ms int64, item string) []byte {
	return []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE","time":%d,"messaging":[%s]}]}`, ms+123, item))
}

func messengerEvents(t *testing.T, ms int64, item string) []channel.Event {
	t.Helper()
	evs, err := meta.ParseMessaging(messengerBody(ms, item), meta.Flavor{Kind: "messenger", Object: "page", Label: "Messenger", OwnIDs: []string{"PAGE"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatalf("no events from %s", item)
	}
	return evs
}

// TestMessengerDeliveryWatermark: a delivery without mids marks everything
// we sent in that chat up to its watermark delivered, only ever upwards.
func TestMessengerDeliveryWatermark(t *testing.T) {
	plModes(t, func(t *testing.T, f *plFixture) {
		const t0 = int64(1700000000000)
		apply := func(ms int64, item string) ApplyResult {
			return f.apply(t, f.ch, messengerEvents(t, ms, item)...)
		}
		echo := func(ms int64, mid string) {
			apply(ms, fmt.Sprintf(`{"sender":{"id":"PAGE"},"recipient":{"id":"PSID"},"timestamp":%d,"message":{"mid":%q,"is_echo":true,"text":"reply %s"}}`, ms, mid, mid))
		}
		apply(t0, fmt.Sprintf(`{"sender":{"id":"PSID"},"recipient":{"id":"PAGE"},"timestamp":%d,"message":{"mid":"m_in","text":"hi"}}`, t0))
		echo(t0+1000, "m_failed")
		echo(t0+2000, "m_read")
		echo(t0+3000, "m_sent")
		echo(t0+4000, "m_delivered")
		echo(t0+9000, "m_later")
		f.apply(t, f.ch, plStatusEv("m_failed", inbox.MsgFailed, "no route"), plStatusEv("m_read", inbox.MsgRead, ""),
			plStatusEv("m_delivered", inbox.MsgDelivered, ""))
		// Another customer's chat is not touched.
		f.apply(t, f.ch, plMsgEv("x_in", "OTHER", "hello"), plEchoEv("x_out", "OTHER", "reply"))
		delivery := fmt.Sprintf(`{"sender":{"id":"PSID"},"recipient":{"id":"PAGE"},"timestamp":%d,"delivery":{"watermark":%d}}`, t0+6000, t0+5000)
		if r := apply(t0+6000, delivery); r.Changed != 1 {
			t.Fatalf("delivery %+v", r)
		}
		want := map[string]string{"m_failed": inbox.MsgFailed, "m_read": inbox.MsgRead, "m_sent": inbox.MsgDelivered,
			"m_delivered": inbox.MsgDelivered, "m_later": inbox.MsgSent, "x_out": inbox.MsgSent, "m_in": inbox.MsgReceived}
		ms := f.byExt(t)
		for ext, st := range want {
			if ms[ext].Status != st {
				t.Errorf("%s: status %s, want %s", ext, ms[ext].Status, st)
			}
		}
		if n := f.count(t, `SELECT COUNT(*) FROM message_statuses WHERE message_id = ? AND status = ?`, ms["m_sent"].ID, inbox.MsgDelivered); n != 1 {
			t.Fatalf("%d delivered rows for m_sent", n)
		}
		if ms["m_failed"].Error != "no route" {
			t.Fatalf("failed message's reason %q", ms["m_failed"].Error)
		}
		// A redelivered webhook changes nothing.
		if r := apply(t0+6000, delivery); r.Changed != 0 || r.Unchanged != 1 {
			t.Fatalf("replay %+v", r)
		}
		// A watermark from a customer we have no conversation with.
		stranger := fmt.Sprintf(`{"sender":{"id":"NOBODY"},"recipient":{"id":"PAGE"},"timestamp":%d,"delivery":{"watermark":%d}}`, t0+7000, t0+7000)
		if r := apply(t0+7000, stranger); r.Unchanged != 1 {
			t.Fatalf("stranger %+v", r)
		}
	})
}

// TestLateEditsDoNotOverwrite: edits arriving out of order keep the newest
// text; a replayed edit changes nothing.
func TestLateEditsDoNotOverwrite(t *testing.T) {
	plModes(t, func(t *testing.T, f *plFixture) {
		at := f.t0.Add(time.Hour)
		edit := func(text string, d time.Duration) channel.Event {
			return channel.Event{Type: channel.EventEdit, TargetID: "m1", ChatID: "111", Direction: "inbound",
				Sender: channel.Party{Identifier: "111"}, Text: text, Timestamp: at.Add(d)}
		}
		m := plMsgEv("m1", "111", "v0")
		m.Timestamp = at
		f.apply(t, f.ch, m)
		steps := []struct {
			ev        channel.Event
			changed   bool
			text, old string
		}{
			{edit("v1", time.Minute), true, "v1", "v0"},
			{edit("v2", 2*time.Minute), true, "v2", "v1"},
			{edit("v1", time.Minute), false, "v2", "v1"},   // late
			{edit("v2", 2*time.Minute), false, "v2", "v1"}, // replay
		}
		for i, s := range steps {
			r := f.apply(t, f.ch, s.ev)
			if (r.Changed == 1) != s.changed || r.Changed+r.Unchanged != 1 {
				t.Fatalf("step %d: %+v, want changed=%v", i, r, s.changed)
			}
			got := f.byExt(t)["m1"]
			if got.Text != s.text || got.Prev != s.old {
				t.Fatalf("step %d: text %q previous %q, want %q %q", i, got.Text, got.Prev, s.text, s.old)
			}
			if want := ts(at.Add(2 * time.Minute)); i >= 1 && got.Edited.Int64 != want {
				t.Fatalf("step %d: edited_at %d, want %d", i, got.Edited.Int64, want)
			}
		}
	})
}

// TestChannelErrorEvents: a provider's report about the channel shows in its
// health and leaves its authorization alone; authorization events still
// set it.
func TestChannelErrorEvents(t *testing.T) {
	plModes(t, func(t *testing.T, f *plFixture) {
		ctx := context.Background()
		health := func() inbox.ChannelHealth {
			h, err := f.db.ChannelHealth(ctx, f.ws, f.ch.ID)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		before := health()
		at := f.t0.Add(time.Hour)
		chErr := channel.Event{Type: channel.EventChannelError, Error: "app unsubscribed from the page", Timestamp: at}
		if r := f.apply(t, f.ch, chErr); r.Changed != 1 || r.NewMessages != 0 {
			t.Fatalf("channel error %+v", r)
		}
		h := health()
		if !strings.Contains(h.LastError, "app unsubscribed from the page") || h.LastErrorAt == nil || !h.LastErrorAt.Equal(at) {
			t.Fatalf("health %+v", h)
		}
		if h.Status != before.Status || h.StatusDetail != before.StatusDetail {
			t.Fatalf("status %q %q, was %q %q", h.Status, h.StatusDetail, before.Status, before.StatusDetail)
		}
		if n := len(f.messages(t)); n != 0 {
			t.Fatalf("%d messages", n)
		}
		// Authorization events keep setting the status.
		if r := f.apply(t, f.ch, channel.Event{Type: channel.EventAuth, AuthState: "unauthorized", AuthDetail: "logged out"}); r.Changed != 1 {
			t.Fatalf("auth %+v", r)
		}
		if h := health(); h.Status != "disconnected" || h.StatusDetail != "logged out" {
			t.Fatalf("after auth %+v", h)
		}
		// A newer error replaces the last one and keeps the status; an older
		// one (a replayed entry) does not.
		newer := channel.Event{Type: channel.EventChannelError, Error: "rate limited", Timestamp: at.Add(time.Minute)}
		if r := f.apply(t, f.ch, newer); r.Changed != 1 {
			t.Fatalf("newer %+v", r)
		}
		if r := f.apply(t, f.ch, chErr); r.Changed != 0 || r.Unchanged != 1 {
			t.Fatalf("older %+v", r)
		}
		if h := health(); !strings.Contains(h.LastError, "rate limited") || h.Status != "disconnected" {
			t.Fatalf("after newer %+v", h)
		}
		if r := f.apply(t, f.ch, channel.Event{Type: channel.EventAuth, AuthState: "authorized"}); r.Changed != 1 {
			t.Fatalf("reauth %+v", r)
		}
		if h := health(); h.Status != "active" || !strings.Contains(h.LastError, "rate limited") {
			t.Fatalf("after reauth %+v", h)
		}
	})
}

// TestReprocessCorrectsUnsupported: re-applying an entry whose event now
// parses corrects the message it stored as unsupported, in place.
func TestReprocessCorrectsUnsupported(t *testing.T) {
	plModes(t, func(t *testing.T, f *plFixture) {
		ctx := context.Background()
		at := f.t0.Add(time.Hour)
		unknown := channel.Event{Type: channel.EventMessage, ExternalID: "m9", ChatID: "777", Direction: "inbound", Kind: inbox.KindUnsupported,
			Sender: channel.Party{Identifier: "777", Name: "Cust"}, Raw: []byte(`{"type":"newfangled"}`), Timestamp: at}
		e := f.appendEntry(t)
		f.applyItems(t, InboundBatchItem{Entry: e, Events: []channel.Event{unknown}})
		first := f.byExt(t)["m9"]
		if first.Kind != inbox.KindUnsupported {
			t.Fatalf("stored %+v", first)
		}
		parsed := plMsgEv("m9", "777", "now readable")
		parsed.Timestamp = at
		// A new entry with the same id is a duplicate, whatever it holds.
		if r := f.applyItems(t, InboundBatchItem{Entry: f.appendEntry(t), Events: []channel.Event{parsed}}); r.Unchanged != 1 {
			t.Fatalf("duplicate %+v", r)
		}
		if got := f.byExt(t)["m9"]; got.Kind != inbox.KindUnsupported {
			t.Fatalf("a first attempt corrected %+v", got)
		}
		// The reprocess of E.
		if r := f.applyItems(t, InboundBatchItem{Entry: f.reload(t, e.ID), Events: []channel.Event{parsed}}); r.Changed != 1 || r.NewMessages != 0 {
			t.Fatalf("reprocess %+v", r)
		}
		ms := f.messages(t)
		if len(ms) != 1 {
			t.Fatalf("%d messages", len(ms))
		}
		got := ms[0]
		if got.ID != first.ID || got.Conv != first.Conv || got.Kind != inbox.KindText || got.Text != "now readable" || got.Status != first.Status {
			t.Fatalf("corrected %+v, was %+v", got, first)
		}
		if got.Content.Valid {
			t.Fatalf("content %q kept", got.Content.String)
		}
		if c := f.conv(t, got.Conv); c.LastMessage == nil || c.LastMessage.Preview != "now readable" {
			t.Fatalf("conversation preview %+v", c.LastMessage)
		}
		var created int64
		if err := f.db.rdb.QueryRowContext(ctx, f.db.d.rebind(`SELECT created_at FROM messages WHERE id = ?`), got.ID).Scan(&created); err != nil || created != ts(at) {
			t.Fatalf("created_at %d %v, want %d", created, err, ts(at))
		}
		// Reprocessing again, now with media: the message is no longer
		// unsupported, so nothing changes.
		img := parsed
		img.Kind = inbox.KindImage
		img.Attachments = []channel.Media{{Kind: inbox.KindImage, ProviderRef: "file-1"}}
		if r := f.applyItems(t, InboundBatchItem{Entry: f.reload(t, e.ID), Events: []channel.Event{img}}); r.Unchanged != 1 || r.Changed != 0 {
			t.Fatalf("second reprocess %+v", r)
		}
	})
}

// TestReprocessReplacesAttachments: a placeholder corrected into a media
// message gets that message's attachments.
func TestReprocessReplacesAttachments(t *testing.T) {
	plModes(t, func(t *testing.T, f *plFixture) {
		unknown := channel.Event{Type: channel.EventMessage, ExternalID: "m10", ChatID: "777", Direction: "inbound", Kind: inbox.KindUnsupported,
			Sender: channel.Party{Identifier: "777"}, Attachments: []channel.Media{{Kind: "document", ProviderRef: "raw-ref"}}}
		e := f.appendEntry(t)
		f.applyItems(t, InboundBatchItem{Entry: e, Events: []channel.Event{unknown}})
		img := plMsgEv("m10", "777", "caption")
		img.Kind = inbox.KindImage
		img.Attachments = []channel.Media{{Kind: inbox.KindImage, MimeType: "image/jpeg", ProviderRef: "file-1"}}
		if r := f.applyItems(t, InboundBatchItem{Entry: f.reload(t, e.ID), Events: []channel.Event{img}}); r.Changed != 1 {
			t.Fatalf("reprocess %+v", r)
		}
		m := f.byExt(t)["m10"]
		if m.Kind != inbox.KindImage || m.Text != "caption" {
			t.Fatalf("%+v", m)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM attachments WHERE message_id = ?`, m.ID); n != 1 {
			t.Fatalf("%d attachments", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM attachments WHERE message_id = ? AND provider_ref = ? AND kind = ?`, m.ID, "file-1", inbox.KindImage); n != 1 {
			t.Fatal("the new attachment is not stored")
		}
	})
}
