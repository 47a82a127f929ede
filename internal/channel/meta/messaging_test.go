package meta

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// A messaging item that does not fit the expected shape is kept as a
// placeholder named by what can still be read of it: message.mid (else a
// hash of the item) and its sender (the recipient when we sent it).
func TestParseMessagingUnreadableItem(t *testing.T) {
	const page, psid = "682498302938465", "1254459154682919"
	wrap := func(item string) []byte {
		return []byte(`{"object":"page","entry":[{"id":"` + page + `","time":1700000000999,"messaging":[` + item + `]}]}`)
	}
	cases := []struct {
		name      string
		item      string
		id        string // "" = a hash
		sender    string
		chat      string
		direction string
		unixMilli int64
	}{
		{"text of another type",
			`{"sender":{"id":"` + psid + `"},"recipient":{"id":"` + page + `"},"timestamp":1700000000123,"message":{"mid":"m_BAD","text":{"rich":true}}}`,
			"m_BAD", psid, psid, "inbound", 1700000000123},
		{"our echo with is_echo as a string",
			`{"sender":{"id":"` + page + `"},"recipient":{"id":"` + psid + `"},"timestamp":1700000000124,"message":{"mid":"m_ECHO","is_echo":"true","text":"hi"}}`,
			"m_ECHO", page, psid, "outbound", 1700000000124},
		{"reaction that is not an object, no mid",
			`{"sender":{"id":"` + psid + `"},"recipient":{"id":"` + page + `"},"timestamp":1700000000125,"reaction":"love"}`,
			"", psid, psid, "inbound", 1700000000125},
		{"not an object",
			`"x"`, "", "", "", "inbound", 1700000000999},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := wrap(c.item)
			evs, err := ParseMessaging(body, Flavor{Kind: "messenger", Object: "page", Label: "Messenger", OwnIDs: []string{page}})
			if err != nil || len(evs) != 1 {
				t.Fatalf("%v %+v", err, evs)
			}
			e := evs[0]
			if e.Type != channel.EventMessage || e.Kind != inbox.KindUnsupported || string(e.Raw) != c.item || string(e.Content) != c.item {
				t.Fatalf("%+v", e)
			}
			if c.id != "" && e.ExternalID != c.id || c.id == "" && !strings.HasPrefix(e.ExternalID, "unparsed:") {
				t.Fatalf("id %q, want %q", e.ExternalID, c.id)
			}
			again, _ := ParseMessaging(body, Flavor{Kind: "messenger", Object: "page", Label: "Messenger", OwnIDs: []string{page}})
			if again[0].ExternalID != e.ExternalID {
				t.Fatalf("id not stable: %q then %q", e.ExternalID, again[0].ExternalID)
			}
			if e.Sender.Identifier != c.sender || e.ChatID != c.chat || e.Direction != c.direction {
				t.Fatalf("sender %+v chat %q direction %q", e.Sender, e.ChatID, e.Direction)
			}
			if c.direction == "outbound" && e.Recipient.Identifier != psid {
				t.Fatalf("recipient %+v", e.Recipient)
			}
			if !e.Timestamp.Equal(time.UnixMilli(c.unixMilli)) {
				t.Fatalf("timestamp %v", e.Timestamp)
			}
		})
	}
}

func TestLooseField(t *testing.T) {
	raw := []byte(`{"a":{"b":"x","c":{"bad":1}},"n":12,"s":[1]}`)
	var s Str
	if !LooseField(raw, &s, "a", "b") || s != "x" {
		t.Fatalf("a.b = %q", s)
	}
	var n Num
	if !LooseField(raw, &n, "n") || n.Value != 12 {
		t.Fatalf("n = %+v", n)
	}
	var str string
	if LooseField(raw, &str, "s") || LooseField(raw, &str, "a", "missing") || LooseField(raw, &str, "n", "deeper") || LooseField([]byte(`[`), &str, "a") {
		t.Fatal("absent or mistyped values must report false")
	}
}
