package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// TestUncachedMediaPage: the prefetcher's listing holds the provider files
// not cached yet, of live messages on channels of the asked kinds, created
// after the cursor, oldest first, page by page; never uploads, cached files
// or deleted messages.
func TestUncachedMediaPage(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			now := base
			db.now = func() time.Time { return now }
			_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"})
			if err != nil {
				t.Fatal(err)
			}
			wa, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "whatsapp", Name: "WA"})
			if err != nil {
				t.Fatal(err)
			}
			tg, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "telegram", Name: "TG"})
			if err != nil {
				t.Fatal(err)
			}
			// One message with one attachment per ref, received minute i.
			add := func(ch inbox.Channel, ref string, minute int) string {
				t.Helper()
				now = base.Add(time.Duration(minute) * time.Minute)
				_, err := db.ApplyInbound(ctx, InboundEntry{ID: "e-" + ref, ReceivedAt: now}, ch, []channel.Event{{Type: channel.EventMessage,
					ExternalID: "m-" + ref, ChatID: "1", Direction: "inbound", Kind: inbox.KindImage, Sender: channel.Party{Identifier: "1"},
					Attachments: []channel.Media{{Kind: inbox.KindImage, MimeType: "image/jpeg", ProviderRef: ref}}}})
				if err != nil {
					t.Fatal(err)
				}
				var id string
				if err := db.rdb.QueryRowContext(ctx, db.d.rebind(`SELECT id FROM attachments WHERE provider_ref = ?`), ref).Scan(&id); err != nil {
					t.Fatal(err)
				}
				return id
			}
			old := add(wa, "old", 0)
			a1 := add(wa, "a1", 10)
			cached := add(wa, "cached", 11)
			tgm := add(tg, "tg", 12)
			deleted := add(wa, "deleted", 13)
			a2 := add(wa, "a2", 14)
			a3 := add(wa, "a3", 14) // same time as a2: ordered by id
			if err := db.SetAttachmentFile(ctx, cached, "cache/"+ws.ID+"/"+cached, "", 10); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ApplyInbound(ctx, InboundEntry{ID: "e-del", ReceivedAt: now}, wa, []channel.Event{{Type: channel.EventDelete,
				ExternalID: "d-1", ChatID: "1", TargetID: "m-deleted"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.CreateUpload(ctx, ws.ID, "", inbox.Attachment{Kind: inbox.KindImage, StorageKey: ""}); err != nil {
				t.Fatal(err)
			}
			ids := func(kinds []string, after MediaCursor, limit int) ([]string, []UncachedMedia) {
				t.Helper()
				page, err := db.UncachedMediaPage(ctx, kinds, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, u := range page {
					out = append(out, u.ID)
				}
				return out, page
			}
			since := MediaCursor{CreatedAt: base.Add(5 * time.Minute)}
			later := []string{a2, a3}
			if a3 < a2 {
				later = []string{a3, a2}
			}
			want := append([]string{a1}, later...)
			got, page := ids([]string{"whatsapp"}, since, 10)
			if !slices.Equal(got, want) {
				t.Fatalf("whatsapp since minute 5: %v, want %v (old %s cached %s tg %s deleted %s)", got, want, old, cached, tgm, deleted)
			}
			if u := page[0]; u.ChannelID != wa.ID || u.ChannelKind != "whatsapp" || u.WorkspaceID != ws.ID || u.ProviderRef != "a1" ||
				u.MimeType != "image/jpeg" || !u.CreatedAt.Equal(base.Add(10*time.Minute)) || u.MessageID == "" {
				t.Fatalf("row %+v", u)
			}
			// Page by page, resuming after the last row (two rows share a time).
			var paged []string
			for cur := since; ; {
				got, page := ids([]string{"whatsapp"}, cur, 1)
				if len(got) == 0 {
					break
				}
				if len(paged) > len(want) {
					t.Fatalf("paging does not end: %v", paged)
				}
				paged = append(paged, got...)
				cur = MediaCursor{CreatedAt: page[0].CreatedAt, ID: page[0].ID}
			}
			if !slices.Equal(paged, want) {
				t.Fatalf("paged %v, want %v", paged, want)
			}
			if got, _ := ids(nil, MediaCursor{CreatedAt: base}, 10); !slices.Equal(got, append([]string{old, a1, tgm}, later...)) {
				t.Fatalf("every kind from the start: %v", got)
			}
			if got, _ := ids([]string{"telegram", "email"}, since, 10); !slices.Equal(got, []string{tgm}) {
				t.Fatalf("telegram: %v", got)
			}
		})
	}
}

// TestIDFloor: the bound sorts before the ids made at its time and after
// those made earlier.
func TestIDFloor(t *testing.T) {
	before := newID()
	time.Sleep(3 * time.Millisecond)
	floor := idFloor(time.Now())
	time.Sleep(3 * time.Millisecond)
	after := newID()
	if !(before < floor && floor <= after) {
		t.Fatalf("%s < %s <= %s does not hold", before, floor, after)
	}
	if got := idFloor(time.UnixMilli(0x0123456789ab)); got != "01234567-89ab-0000-0000-000000000000" {
		t.Fatal(got)
	}
}
