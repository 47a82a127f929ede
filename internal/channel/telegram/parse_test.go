package telegram

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

const testToken = "123456789:AAEhBP0av28h2yKZ3Za4bcdEfGhIjKlmNoP"

func cfg() channel.Config {
	return channel.Config{Kind: Kind, Secrets: map[string]string{"bot_token": testToken, "webhook_secret": "s3cr3t_Value-1"}}
}

func parse(t *testing.T, body string) []channel.Event {
	t.Helper()
	evs, err := New().Parse(cfg(), channel.Request{Method: "POST", Body: []byte(body)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func one(t *testing.T, body string) channel.Event {
	t.Helper()
	evs := parse(t, body)
	if len(evs) != 1 {
		t.Fatalf("want 1 event, got %d: %+v", len(evs), evs)
	}
	return evs[0]
}

func TestVerify(t *testing.T) {
	a := New()
	cases := []struct {
		name   string
		header string
		secret string
		ok     bool
	}{
		{"match", "s3cr3t_Value-1", "s3cr3t_Value-1", true},
		{"wrong", "s3cr3t_Value-2", "s3cr3t_Value-1", false},
		{"prefix", "s3cr3t_Value-", "s3cr3t_Value-1", false},
		{"missing header", "", "s3cr3t_Value-1", false},
		{"no secret configured", "", "", false},
		{"header but no secret configured", "x", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.header != "" {
				h.Set(SecretHeader, c.header)
			}
			conf := channel.Config{Secrets: map[string]string{"webhook_secret": c.secret}}
			err := a.Verify(conf, channel.Request{Header: h, Body: []byte(`{"update_id":1}`)})
			if (err == nil) != c.ok {
				t.Fatalf("Verify ok=%v, want %v (err %v)", err == nil, c.ok, err)
			}
			if err != nil && !inbox.IsCode(err, inbox.Unauthorized) {
				t.Fatalf("want unauthorized code, got %v", err)
			}
		})
	}
}

func TestParseDocumentedSupergroupText(t *testing.T) {
	ev := one(t, `{"update_id":900001,"message":{"message_id":77,"date":1700000000,"chat":{"id":-1001234567890,
 "type":"supergroup","title":"Ops"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"text":"hello"}}`)
	want := channel.Event{Type: channel.EventMessage, ExternalID: "-1001234567890:77", ChatID: "-1001234567890",
		IsGroup: true, GroupTitle: "Ops", Direction: "inbound", Kind: inbox.KindText, Text: "hello"}
	if ev.Type != want.Type || ev.ExternalID != want.ExternalID || ev.ChatID != want.ChatID || !ev.IsGroup ||
		ev.GroupTitle != "Ops" || ev.Direction != "inbound" || ev.Kind != inbox.KindText || ev.Text != "hello" {
		t.Fatalf("got %+v", ev)
	}
	if ev.Sender.Identifier != "4242" || ev.Sender.Name != "Li" {
		t.Fatalf("sender %+v", ev.Sender)
	}
	if !ev.Timestamp.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("timestamp %v", ev.Timestamp)
	}
	if len(ev.Raw) == 0 {
		t.Fatal("raw missing")
	}
}

func TestParseKinds(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		kind    string
		text    string
		ref     string
		mime    string
		check   func(t *testing.T, ev channel.Event)
		evtType channel.EventType
	}{
		{name: "private unicode escaped", kind: inbox.KindText, text: "Привет 👋",
			body: `{"update_id":1,"message":{"message_id":5,"date":1700000000,"chat":{"id":4242,"type":"private","first_name":"Li"},"from":{"id":4242,"is_bot":false,"first_name":"Li","last_name":"Wei","username":"liwei","language_code":"ru"},"text":"\u041f\u0440\u0438\u0432\u0435\u0442 \ud83d\udc4b"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.IsGroup || ev.ChatID != "4242" || ev.Sender.Name != "Li Wei" || ev.ExternalID != "4242:5" {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "photo takes last size with caption", kind: inbox.KindImage, text: "look", ref: "BIG", mime: "image/jpeg",
			body: `{"update_id":2,"message":{"message_id":6,"date":1700000001,"chat":{"id":4242,"type":"private"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"photo":[{"file_id":"SMALL","file_unique_id":"a","width":90,"height":90,"file_size":100},{"file_id":"BIG","file_unique_id":"b","width":1280,"height":1280,"file_size":9000}],"caption":"look"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Attachments[0].Width != 1280 || ev.Attachments[0].Size != 9000 {
					t.Fatalf("%+v", ev.Attachments[0])
				}
			}},
		{name: "voice", kind: inbox.KindVoice, ref: "VOICE1", mime: "audio/ogg",
			body: `{"update_id":3,"message":{"message_id":7,"date":1700000002,"chat":{"id":4242,"type":"private"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"voice":{"file_id":"VOICE1","file_unique_id":"v","duration":3,"mime_type":"audio/ogg","file_size":5000}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Attachments[0].DurationMS != 3000 {
					t.Fatalf("%+v", ev.Attachments[0])
				}
			}},
		{name: "audio", kind: inbox.KindAudio, ref: "AUD", mime: "audio/mpeg",
			body: `{"update_id":4,"message":{"message_id":8,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"audio":{"file_id":"AUD","file_unique_id":"x","duration":200,"performer":"Band","title":"Song","mime_type":"audio/mpeg"}}}`},
		{name: "document", kind: inbox.KindDocument, ref: "DOC", mime: "application/pdf",
			body: `{"update_id":5,"message":{"message_id":9,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"document":{"file_id":"DOC","file_unique_id":"x","file_name":"invoice.pdf","mime_type":"application/pdf","file_size":3}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Attachments[0].Filename != "invoice.pdf" {
					t.Fatal(ev.Attachments[0])
				}
			}},
		{name: "animation wins over document", kind: inbox.KindVideo, ref: "ANIM", mime: "video/mp4",
			body: `{"update_id":6,"message":{"message_id":10,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"animation":{"file_id":"ANIM","file_unique_id":"x","width":1,"height":1,"duration":1},"document":{"file_id":"ANIM","file_unique_id":"x"}}}`},
		{name: "video", kind: inbox.KindVideo, ref: "VID", mime: "video/mp4",
			body: `{"update_id":7,"message":{"message_id":11,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"video":{"file_id":"VID","file_unique_id":"x","width":640,"height":480,"duration":5,"mime_type":"video/mp4"}}}`},
		{name: "video note", kind: inbox.KindVideo, ref: "VN", mime: "video/mp4",
			body: `{"update_id":8,"message":{"message_id":12,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"video_note":{"file_id":"VN","file_unique_id":"x","length":240,"duration":5}}}`},
		{name: "sticker", kind: inbox.KindSticker, ref: "STK", mime: "image/webp", text: "😀",
			body: `{"update_id":9,"message":{"message_id":13,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"sticker":{"file_id":"STK","file_unique_id":"x","type":"regular","width":512,"height":512,"is_animated":false,"is_video":false,"emoji":"😀"}}}`},
		{name: "location", kind: inbox.KindLocation,
			body: `{"update_id":10,"message":{"message_id":14,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"location":{"latitude":52.52,"longitude":13.405}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Location == nil || ev.Location.Latitude != 52.52 || ev.Location.Longitude != 13.405 {
					t.Fatal(ev.Location)
				}
			}},
		{name: "venue", kind: inbox.KindLocation,
			body: `{"update_id":11,"message":{"message_id":15,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"location":{"latitude":1,"longitude":2},"venue":{"location":{"latitude":1,"longitude":2},"title":"Cafe","address":"Main St 1"}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Location.Name != "Cafe" || ev.Location.Address != "Main St 1" {
					t.Fatal(ev.Location)
				}
			}},
		{name: "contact", kind: inbox.KindContacts, text: "Ana Diaz",
			body: `{"update_id":12,"message":{"message_id":16,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"contact":{"phone_number":"+15550001111","first_name":"Ana","last_name":"Diaz","user_id":99}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if !strings.Contains(string(ev.Content), `"+15550001111"`) {
					t.Fatal(string(ev.Content))
				}
			}},
		{name: "poll unsupported", kind: inbox.KindUnsupported,
			body: `{"update_id":13,"message":{"message_id":17,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"poll":{"id":"p","question":"?","options":[],"total_voter_count":0,"is_closed":false,"is_anonymous":true,"type":"regular","allows_multiple_answers":false}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if !strings.Contains(string(ev.Content), `"poll"`) {
					t.Fatal(string(ev.Content))
				}
			}},
		{name: "dice unsupported", kind: inbox.KindUnsupported,
			body: `{"update_id":14,"message":{"message_id":18,"date":1,"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"A"},"dice":{"emoji":"🎲","value":4}}}`},
		{name: "reply in group", kind: inbox.KindText, text: "yes",
			body: `{"update_id":15,"message":{"message_id":20,"date":1,"chat":{"id":-4001,"type":"group","title":"Team"},"from":{"id":7,"is_bot":false,"first_name":"B"},"reply_to_message":{"message_id":19,"date":1,"chat":{"id":-4001,"type":"group","title":"Team"},"text":"ok?"},"text":"yes"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.ReplyToID != "-4001:19" || !ev.IsGroup || ev.GroupTitle != "Team" || ev.Sender.Identifier != "7" {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "channel post uses sender_chat", kind: inbox.KindText, text: "news",
			body: `{"update_id":16,"channel_post":{"message_id":3,"date":1,"chat":{"id":-1009876543210,"type":"channel","title":"News"},"sender_chat":{"id":-1009876543210,"type":"channel","title":"News"},"text":"news"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.IsGroup || ev.Sender.Identifier != "-1009876543210" || ev.Sender.Name != "News" || ev.ChatID != "-1009876543210" {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "edited message", kind: inbox.KindText, text: "hello!", evtType: channel.EventEdit,
			body: `{"update_id":17,"edited_message":{"message_id":77,"date":1700000000,"edit_date":1700000100,"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"text":"hello!"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.ExternalID != "-1001234567890:77" || ev.TargetID != ev.ExternalID || ev.Timestamp.Unix() != 1700000100 {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "edited channel post", kind: inbox.KindText, text: "fixed", evtType: channel.EventEdit,
			body: `{"update_id":18,"edited_channel_post":{"message_id":3,"date":1,"edit_date":2,"chat":{"id":-1009876543210,"type":"channel","title":"News"},"sender_chat":{"id":-1009876543210,"type":"channel","title":"News"},"text":"fixed"}}`},
		{name: "own bot message is outbound", kind: inbox.KindText, text: "from bot",
			body: `{"update_id":19,"message":{"message_id":30,"date":1,"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":123456789,"is_bot":true,"first_name":"Parley"},"text":"from bot"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Direction != "outbound" || !ev.Sender.IsBot {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "other bot stays inbound", kind: inbox.KindText, text: "x",
			body: `{"update_id":20,"message":{"message_id":31,"date":1,"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":555,"is_bot":true,"first_name":"Other"},"text":"x"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.Direction != "inbound" {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "callback query", kind: inbox.KindInteractive, text: "opt_2",
			body: `{"update_id":21,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":4242,"is_bot":false,"first_name":"Li"},"message":{"message_id":40,"date":1,"chat":{"id":4242,"type":"private"},"from":{"id":123456789,"is_bot":true,"first_name":"Parley"},"text":"pick"},"chat_instance":"-1","data":"opt_2"}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.ReplyToID != "4242:40" || ev.ChatID != "4242" || ev.ExternalID != "callback:4382bfdwdsb323b2d9" {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "unknown update type", kind: inbox.KindUnsupported,
			body: `{"update_id":22,"my_chat_member":{"chat":{"id":4242,"type":"private"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"date":1,"old_chat_member":{"status":"member"},"new_chat_member":{"status":"kicked"}}}`,
			check: func(t *testing.T, ev channel.Event) {
				if ev.ExternalID != "update:22" || ev.ChatID != "4242" {
					t.Fatalf("%+v", ev)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := one(t, c.body)
			wantType := c.evtType
			if wantType == "" {
				wantType = channel.EventMessage
			}
			if ev.Type != wantType || ev.Kind != c.kind || ev.Text != c.text {
				t.Fatalf("type/kind/text = %s/%s/%q, want %s/%s/%q", ev.Type, ev.Kind, ev.Text, wantType, c.kind, c.text)
			}
			if c.ref != "" {
				if len(ev.Attachments) != 1 || ev.Attachments[0].ProviderRef != c.ref || ev.Attachments[0].MimeType != c.mime || ev.Attachments[0].Kind != c.kind {
					t.Fatalf("attachments %+v", ev.Attachments)
				}
			}
			if c.check != nil {
				c.check(t, ev)
			}
		})
	}
}

func TestParseReactionDiff(t *testing.T) {
	body := `{"update_id":30,"message_reaction":{"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"message_id":77,"user":{"id":4242,"is_bot":false,"first_name":"Li"},"date":1700000200,
"old_reaction":[{"type":"emoji","emoji":"\ud83d\udc4d"},{"type":"custom_emoji","custom_emoji_id":"5368324170671202286"}],
"new_reaction":[{"type":"emoji","emoji":"\ud83d\udc4d"},{"type":"emoji","emoji":"\u2764"}]}}`
	evs := parse(t, body)
	if len(evs) != 2 {
		t.Fatalf("want removal + add, got %+v", evs)
	}
	rm, add := evs[0], evs[1]
	if rm.Type != channel.EventReaction || rm.Emoji != "" || !strings.Contains(string(rm.Content), "custom_emoji:5368324170671202286") {
		t.Fatalf("removal %+v", rm)
	}
	if add.Emoji != "❤" || add.TargetID != "-1001234567890:77" || add.Sender.Identifier != "4242" {
		t.Fatalf("add %+v", add)
	}
	if rm.ExternalID == add.ExternalID {
		t.Fatal("reaction events need distinct ids")
	}
	// Everything removed.
	evs = parse(t, `{"update_id":31,"message_reaction":{"chat":{"id":1,"type":"private"},"message_id":2,"user":{"id":1,"is_bot":false,"first_name":"A"},"date":1,"old_reaction":[{"type":"emoji","emoji":"👍"}],"new_reaction":[]}}`)
	if len(evs) != 1 || evs[0].Emoji != "" || evs[0].TargetID != "1:2" {
		t.Fatalf("%+v", evs)
	}
	// Anonymous counts are ignored.
	evs = parse(t, `{"update_id":32,"message_reaction_count":{"chat":{"id":-100,"type":"channel","title":"C"},"message_id":2,"date":1,"reactions":[{"type":{"type":"emoji","emoji":"👍"},"total_count":5}]}}`)
	if len(evs) != 0 {
		t.Fatalf("%+v", evs)
	}
}

func TestParseInvalidJSON(t *testing.T) {
	if _, err := New().Parse(cfg(), channel.Request{Body: []byte(`{"update_id":`)}); err == nil {
		t.Fatal("want error")
	}
}

func TestParseBigNegativeIDsKeepPrecision(t *testing.T) {
	ev := one(t, `{"update_id":1,"message":{"message_id":2147483649,"date":1,"chat":{"id":-1009007199254740,"type":"supergroup","title":"X"},"from":{"id":7000000001,"is_bot":false,"first_name":"Z"},"text":"t"}}`)
	if ev.ExternalID != "-1009007199254740:2147483649" || ev.Sender.Identifier != "7000000001" {
		t.Fatalf("%+v", ev)
	}
}

func TestValidateConfig(t *testing.T) {
	a := New()
	ok := map[string]string{"bot_token": testToken, "webhook_secret": "abc_DEF-123"}
	if err := a.ValidateConfig(nil, ok); err != nil {
		t.Fatal(err)
	}
	bad := []map[string]string{
		{"bot_token": "nodigits", "webhook_secret": "x"},
		{"bot_token": "12:abc def", "webhook_secret": "x"},
		{"bot_token": testToken, "webhook_secret": ""},
		{"bot_token": testToken, "webhook_secret": "has space"},
		{"bot_token": testToken, "webhook_secret": strings.Repeat("a", 257)},
	}
	for i, s := range bad {
		err := a.ValidateConfig(nil, s)
		var ie *inbox.Error
		if err == nil || !inbox.IsCode(err, inbox.Invalid) {
			t.Fatalf("case %d: want invalid, got %v", i, err)
		}
		_ = ie
	}
}

func FuzzParseUpdate(f *testing.F) {
	f.Add([]byte(`{"update_id":900001,"message":{"message_id":77,"date":1700000000,"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"text":"hello"}}`))
	f.Add([]byte(`{"update_id":30,"message_reaction":{"chat":{"id":1,"type":"private"},"message_id":2,"user":{"id":1},"old_reaction":[{"type":"emoji","emoji":"x"}],"new_reaction":[]}}`))
	f.Add([]byte(`{"update_id":21,"callback_query":{"id":"q","from":{"id":1},"data":"d"}}`))
	f.Add([]byte(`{"update_id":1,"message":{"photo":[]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := New().Parse(cfg(), channel.Request{Body: body})
		if err == nil {
			for _, ev := range evs {
				if _, err := json.Marshal(ev.Content); err != nil && len(ev.Content) > 0 {
					t.Fatalf("content not JSON: %v", err)
				}
			}
		}
	})
}
