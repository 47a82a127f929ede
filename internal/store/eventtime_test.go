package store

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/inbox"
)

func TestEventTime(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name               string
		provider, received time.Time
		want               time.Time
	}{
		{"no provider time: receive time", time.Time{}, base.Add(123456789), base.Add(123456000)},
		{"whole second, received within it: receive time", base, base.Add(400 * time.Millisecond), base.Add(400 * time.Millisecond)},
		{"whole second, delivered late: provider time as given", base, base.Add(3 * time.Second), base},
		{"same second, received just after it: still before the next second", base, base.Add(1020 * time.Millisecond), base.Add(time.Second - time.Microsecond)},
		{"precise provider time (ms): kept", base.Add(250 * time.Millisecond), base.Add(400 * time.Millisecond), base.Add(250 * time.Millisecond)},
		{"provider clock ahead: kept", base.Add(time.Second), base.Add(400 * time.Millisecond), base.Add(time.Second)},
	} {
		if got := eventTime(tc.provider, tc.received); !got.Equal(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestV7FloorOrdersWithIDs(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	floor := plV7Floor(at)
	if plV7Floor(time.Unix(0, 0)) != "" {
		t.Fatal("floor of the epoch")
	}
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	// A real id minted now sorts after the floor of an earlier time and
	// before the floor of a later one.
	if s := id.String(); !(plV7Floor(time.Now().Add(-time.Second)) < s && s < plV7Floor(time.Now().Add(time.Second))) {
		t.Fatalf("id %s outside its floors", s)
	}
	if !(floor < plV7Floor(at.Add(time.Millisecond))) {
		t.Fatal("floors out of order")
	}
}

func TestTruncateKeepsCharactersWhole(t *testing.T) {
	s := "Ошибка доставки" // two bytes a letter
	for n := 0; n <= len(s); n++ {
		got := plTruncate(s, n)
		if len(got) > n || !utf8.ValidString(got) || !strings.HasPrefix(s, got) || len(got) < n-1 {
			t.Fatalf("plTruncate(%q, %d) = %q", s, n, got)
		}
	}
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("я", 150)
	for _, tc := range []struct{ kind, text, want string }{
		{inbox.KindText, "  hello\n  world ", "hello world"},
		{inbox.KindText, "", ""},
		{inbox.KindImage, "", "[image]"},
		{inbox.KindImage, "a caption", "a caption"},
		{inbox.KindUnsupported, "", "[unsupported message]"},
		{inbox.KindText, long, strings.Repeat("я", 140) + "…"},
	} {
		if got := preview(tc.kind, tc.text); got != tc.want {
			t.Errorf("preview(%s, %q) = %q, want %q", tc.kind, tc.text, got, tc.want)
		}
	}
}
