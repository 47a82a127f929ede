package providersim

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"
	"unicode"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

var fixedNow = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// offlineSim is a Server with every test channel registered and a fixed URL
// (no listener: the stream only needs registrations).
func offlineSim(t *testing.T) *Server {
	t.Helper()
	srv := New(ServerOptions{})
	t.Cleanup(srv.Close)
	srv.SetURL("http://sim.test")
	for _, ch := range testChannels("http://parley.test") {
		if err := srv.Register(ch); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

func take(t *testing.T, srv *Server, seed int64, n int) []Delivery {
	t.Helper()
	st := srv.NewStream(seed, fixedNow)
	out := make([]Delivery, 0, n)
	for range n {
		d, ok := st.Next()
		if !ok {
			t.Fatal("stream ended")
		}
		out = append(out, d)
	}
	return out
}

func TestStreamDeterministic(t *testing.T) {
	a := take(t, offlineSim(t), 7, 400)
	b := take(t, offlineSim(t), 7, 400)
	for i := range a {
		if a[i].ChannelID != b[i].ChannelID || a[i].Action != b[i].Action || !bytes.Equal(a[i].Body, b[i].Body) {
			t.Fatalf("item %d differs with the same seed:\n%s %s %s\n%s %s %s", i,
				a[i].ChannelID, a[i].Action, a[i].Body, b[i].ChannelID, b[i].Action, b[i].Body)
		}
	}
	c := take(t, offlineSim(t), 8, 400)
	same := 0
	for i := range a {
		if bytes.Equal(a[i].Body, c[i].Body) {
			same++
		}
	}
	if same > 10 {
		t.Errorf("seeds 7 and 8 share %d of 400 payloads; want different streams", same)
	}
}

func TestStreamEmptyServer(t *testing.T) {
	srv := New(ServerOptions{})
	defer srv.Close()
	if _, ok := srv.NewStream(1, fixedNow).Next(); ok {
		t.Fatal("a stream without channels must report ok=false")
	}
}

// TestStreamParsesWithAdapters checks every payload against the real
// adapter: signature verifies, Parse yields exactly the expected event types,
// media, groups, reactions (add and remove) and edits come out as intended.
func TestStreamParsesWithAdapters(t *testing.T) {
	srv := offlineSim(t)
	reg := adapters()
	seen := map[string]bool{}
	nonLatin, emoji := false, false
	wants := []string{
		"ch-wa.text", "ch-wa.batch", "ch-wa.image", "ch-wa.document", "ch-wa.voice", "ch-wa.location", "ch-wa.contact",
		"ch-wa.reaction", "ch-wa.unreaction", "ch-wa.reply",
		"ch-fb.image", "ch-fb.reaction", "ch-fb.unreaction", "ch-fb.edit", "ch-ig.reply", "ch-ig.image",
		"ch-tg.text", "ch-tg.group.text", "ch-tg.group.reaction", "ch-tg.group.unreaction", "ch-tg.edit", "ch-tg.image",
		"ch-tg.voice", "ch-tg.document", "ch-tg.location", "ch-tg.contact",
		"ch-tw.text", "ch-tw.image",
		"ch-wwa.text", "ch-wwa.group.text", "ch-wwa.group.image", "ch-wwa.group.reaction", "ch-wwa.unreaction",
		"ch-wwa.voice", "ch-wwa.document", "ch-wwa.location", "ch-wwa.contact", "ch-wwa.edit", "ch-wwa.reply",
		"ch-wtg.group.text", "ch-wtg.image", "ch-wmx.group.text", "ch-wmx.text", "ch-wmx.image",
		"ch-api.text", "ch-api.image",
	}
	missing := func() []string {
		var out []string
		for _, w := range wants {
			if !seenEither(seen, w) {
				out = append(out, w)
			}
		}
		return out
	}
	st := srv.NewStream(3, fixedNow)
	for n := 0; n < 8000 && (n < 600 || len(missing()) > 0); n++ {
		d, _ := st.Next()
		evs := checkDelivery(t, srv, reg, d)
		for _, e := range evs {
			for _, r := range e.Sender.Name {
				nonLatin = nonLatin || unicode.In(r, unicode.Cyrillic, unicode.Han, unicode.Arabic, unicode.Greek)
				emoji = emoji || r >= 0x1F300
			}
		}
		grp := ""
		if d.Group {
			grp = ".group"
		}
		seen[fmt.Sprintf("%s%s.%s", d.ChannelID, grp, d.Action)] = true
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("8000 items never produced %v", m)
	}
	if !nonLatin || !emoji {
		t.Errorf("sender names: non-Latin seen %v, emoji seen %v; want both", nonLatin, emoji)
	}
}

// checkDelivery verifies and parses d with the real adapter and checks the
// events against what the stream meant to send.
func checkDelivery(t testing.TB, srv *Server, reg *channel.Registry, d Delivery) []channel.Event {
	t.Helper()
	ch, _ := srv.Channel(d.ChannelID)
	a, ok := reg.Get(d.Kind)
	if !ok {
		t.Fatalf("no adapter for %s", d.Kind)
	}
	cfg := cfgOf(srv, ch)
	hdr, err := headersFor(&ch, ch.WebhookURL, d.Body)
	if err != nil {
		t.Fatal(err)
	}
	req := channel.Request{Method: http.MethodPost, URL: ch.WebhookURL, Header: hdr, Body: d.Body}
	if err := a.Verify(cfg, req); err != nil {
		t.Fatalf("#%d %s %s: Verify: %v", d.Seq, d.ChannelID, d.Action, err)
	}
	evs, err := a.Parse(cfg, req)
	if err != nil {
		t.Fatalf("#%d %s %s: Parse: %v\n%s", d.Seq, d.ChannelID, d.Action, err, d.Body)
	}
	if len(evs) != len(d.Expect) {
		t.Fatalf("#%d %s %s: %d events, want %v\n%s", d.Seq, d.ChannelID, d.Action, len(evs), d.Expect, d.Body)
	}
	for i, e := range evs {
		if e.Type != d.Expect[i] {
			t.Fatalf("#%d %s %s: event %d is %s, want %s\n%s", d.Seq, d.ChannelID, d.Action, i, e.Type, d.Expect[i], d.Body)
		}
		if e.Direction != "inbound" {
			t.Errorf("#%d %s %s: direction %q", d.Seq, d.ChannelID, d.Action, e.Direction)
		}
		if e.Type == channel.EventMessage && e.Kind == inbox.KindUnsupported {
			t.Errorf("#%d %s %s: unsupported message\n%s", d.Seq, d.ChannelID, d.Action, d.Body)
		}
		if e.IsGroup != d.Group && e.Type != channel.EventReaction {
			t.Errorf("#%d %s %s: IsGroup=%v, want %v", d.Seq, d.ChannelID, d.Action, e.IsGroup, d.Group)
		}
		if e.ChatID == "" {
			t.Errorf("#%d %s %s: empty ChatID", d.Seq, d.ChannelID, d.Action)
		}
	}
	e := evs[0]
	switch d.Action {
	case "reaction":
		if e.Emoji == "" || e.TargetID == "" {
			t.Errorf("#%d %s: reaction without emoji or target: %+v", d.Seq, d.ChannelID, e)
		}
		if len(evs) == 2 && (evs[0].Emoji != "" || evs[1].Emoji == "") {
			t.Errorf("#%d %s: a replaced reaction is a removal then an add", d.Seq, d.ChannelID)
		}
	case "unreaction":
		if e.Emoji != "" || e.TargetID == "" {
			t.Errorf("#%d %s: removal must have Emoji \"\" and a target: %+v", d.Seq, d.ChannelID, e)
		}
	case "edit":
		if e.TargetID == "" || e.Text == "" {
			t.Errorf("#%d %s: edit without target or text", d.Seq, d.ChannelID)
		}
	case "reply":
		if e.ReplyToID == "" {
			t.Errorf("#%d %s: reply without ReplyToID\n%s", d.Seq, d.ChannelID, d.Body)
		}
	case "location":
		if e.Kind != inbox.KindLocation || e.Location == nil {
			t.Errorf("#%d %s: location kind %q", d.Seq, d.ChannelID, e.Kind)
		}
	case "contact":
		if e.Kind != inbox.KindContacts {
			t.Errorf("#%d %s: contact kind %q", d.Seq, d.ChannelID, e.Kind)
		}
	}
	if d.MediaKind != "" {
		if len(e.Attachments) != 1 || e.Attachments[0].Kind != d.MediaKind || e.Attachments[0].ProviderRef == "" {
			t.Errorf("#%d %s %s: attachments %+v, want one %s", d.Seq, d.ChannelID, d.Action, e.Attachments, d.MediaKind)
		}
	}
	return evs
}

// seenEither accepts "ch.action" when the action happened in a direct or a group chat.
func seenEither(seen map[string]bool, want string) bool {
	if seen[want] {
		return true
	}
	for i := 0; i < len(want); i++ {
		if want[i] == '.' {
			return seen[want[:i]+".group"+want[i:]]
		}
	}
	return false
}

func BenchmarkStreamNext(b *testing.B) {
	srv := New(ServerOptions{})
	defer srv.Close()
	srv.SetURL("http://sim.test")
	for _, ch := range testChannels("http://parley.test") {
		if err := srv.Register(ch); err != nil {
			b.Fatal(err)
		}
	}
	st := srv.NewStream(3, fixedNow)
	b.ReportAllocs()
	for b.Loop() {
		st.Next()
	}
}

// FuzzStreamSeeds: whatever the seed, every payload verifies and parses into
// the expected events.
func FuzzStreamSeeds(f *testing.F) {
	for _, s := range []int64{0, 1, -7, 1 << 40} {
		f.Add(s)
	}
	reg := adapters()
	f.Fuzz(func(t *testing.T, seed int64) {
		srv := offlineSim(t)
		st := srv.NewStream(seed, fixedNow)
		for range 60 {
			d, _ := st.Next()
			checkDelivery(t, srv, reg, d)
		}
	})
}
