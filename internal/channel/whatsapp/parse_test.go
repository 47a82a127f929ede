package whatsapp

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

const pnid = "106540352242922"

// wrap puts messages/statuses JSON (already escaped like Meta) into a full webhook body.
func wrap(value string) []byte {
	return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + pnid + `"},` + value + `},"field":"messages"}]}]}`)
}

func parse(t *testing.T, body []byte) []channel.Event {
	t.Helper()
	evs, err := Parse(body, pnid)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func TestParseBatchFile(t *testing.T) {
	body, err := os.ReadFile("testdata/batch.json")
	if err != nil {
		t.Fatal(err)
	}
	evs := parse(t, body)
	if len(evs) != 5 {
		t.Fatalf("got %d events, want 5 (2 messages, 3 statuses; other number skipped): %+v", len(evs), evs)
	}
	// contact names are matched by wa_id, not by index (contacts are in the other order)
	m0 := evs[0]
	if m0.Type != channel.EventMessage || m0.Kind != inbox.KindText {
		t.Fatalf("event 0: %+v", m0)
	}
	if m0.Sender.Name != "José 🚀" || m0.ChatID != "16505551234" || m0.Sender.Phone != "+16505551234" {
		t.Errorf("sender = %+v chat %q", m0.Sender, m0.ChatID)
	}
	if m0.Text != "Olá! 😀 see https://example.com/a?b=1" {
		t.Errorf("text = %q", m0.Text)
	}
	if m0.ExternalID != "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=" {
		t.Errorf("external id = %q", m0.ExternalID)
	}
	if !m0.Timestamp.Equal(time.Unix(1739321024, 0)) || m0.Timestamp.Location() != time.UTC {
		t.Errorf("timestamp = %v", m0.Timestamp)
	}
	if m0.Direction != "inbound" || len(m0.Raw) == 0 || strings.Contains(string(m0.Raw), "4915112345678") {
		t.Errorf("direction %q raw %s", m0.Direction, m0.Raw)
	}
	m1 := evs[1]
	if m1.Sender.Name != "Björn" || m1.Kind != inbox.KindImage || m1.Text != "Rechnung €" {
		t.Errorf("event 1: %+v", m1)
	}
	if len(m1.Attachments) != 1 || m1.Attachments[0].ProviderRef != "1003383421387256" || m1.Attachments[0].MimeType != "image/jpeg" || m1.Attachments[0].Caption != "Rechnung €" {
		t.Errorf("attachments: %+v", m1.Attachments)
	}
	// statuses arrive out of order and are reported as they come
	st := evs[2:]
	if st[0].Type != channel.EventStatus || st[0].Status != inbox.MsgRead || st[0].TargetID != "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QjRFMDhGQUFGMkY5MkUyNkEA" {
		t.Errorf("status 0: %+v", st[0])
	}
	if st[1].Status != inbox.MsgDelivered || st[0].ExternalID == st[1].ExternalID {
		t.Errorf("status 1: %+v (ids must differ per status)", st[1])
	}
	if st[2].Status != inbox.MsgFailed || !strings.Contains(st[2].Error, "131047") || !strings.Contains(st[2].Error, "more than 24 hours") {
		t.Errorf("failed status: %+v", st[2])
	}
	if st[2].ChatID != "16505551234" || !st[2].Timestamp.Equal(time.Unix(1739321101, 0)) {
		t.Errorf("failed status chat/time: %q %v", st[2].ChatID, st[2].Timestamp)
	}
}

func TestParseMessageTypes(t *testing.T) {
	type check func(t *testing.T, e channel.Event)
	contact := `"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],`
	msg := func(m string) []byte { return wrap(contact + `"messages":[` + m + `]`) }
	tests := []struct {
		name string
		body []byte
		want check
	}{
		{"document", msg(`{"from":"16505551234","id":"wamid.DOC","timestamp":"1739321024","type":"document","document":{"caption":"Lucky Shrub Invoice","filename":"lucky-shrub-invoice.pdf","mime_type":"application\/pdf","sha256":"799Jqjq0t+M3\/DnR9KdCGxeMpYpzN\/TKCPNJUlsTlhU=","id":"1376223850470265"}}`),
			func(t *testing.T, e channel.Event) {
				a := e.Attachments
				if e.Kind != inbox.KindDocument || len(a) != 1 || a[0].Filename != "lucky-shrub-invoice.pdf" || a[0].MimeType != "application/pdf" || a[0].ProviderRef != "1376223850470265" || e.Text != "Lucky Shrub Invoice" {
					t.Errorf("%+v", e)
				}
			}},
		{"voice note", msg(`{"from":"16505551234","id":"wamid.VOICE","timestamp":"1739321024","type":"audio","audio":{"mime_type":"audio\/ogg; codecs=opus","sha256":"xyz","id":"1003383421387256","voice":true}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindVoice || e.Attachments[0].Kind != inbox.KindVoice || e.Attachments[0].MimeType != "audio/ogg; codecs=opus" {
					t.Errorf("%+v", e)
				}
			}},
		{"audio file", msg(`{"from":"16505551234","id":"wamid.AUDIO","timestamp":"1739321024","type":"audio","audio":{"mime_type":"audio\/mpeg","sha256":"xyz","id":"77","voice":false}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindAudio || e.Attachments[0].Kind != inbox.KindAudio {
					t.Errorf("%+v", e)
				}
			}},
		{"video", msg(`{"from":"16505551234","id":"wamid.VIDEO","timestamp":"1739321024","type":"video","video":{"caption":"clip","mime_type":"video\/mp4","sha256":"x","id":"88"}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindVideo || e.Attachments[0].ProviderRef != "88" || e.Text != "clip" {
					t.Errorf("%+v", e)
				}
			}},
		{"sticker", msg(`{"from":"16505551234","id":"wamid.STICKER","timestamp":"1739321024","type":"sticker","sticker":{"mime_type":"image\/webp","sha256":"x","id":"99","animated":false}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindSticker || e.Attachments[0].Kind != inbox.KindSticker {
					t.Errorf("%+v", e)
				}
			}},
		{"location", msg(`{"from":"16505551234","id":"wamid.LOC","timestamp":"1739321024","location":{"address":"1 Hacker Way, Menlo Park, CA 94025","latitude":37.483307,"longitude":-122.148981,"name":"Main Office","url":"https:\/\/www.meta.com"},"type":"location"}`),
			func(t *testing.T, e channel.Event) {
				l := e.Location
				if e.Kind != inbox.KindLocation || l == nil || l.Latitude != 37.483307 || l.Longitude != -122.148981 || l.Name != "Main Office" || l.URL != "https://www.meta.com" {
					t.Errorf("%+v %+v", e, l)
				}
			}},
		{"contacts card", msg(`{"from":"16505551234","id":"wamid.CARD","timestamp":"1739321024","type":"contacts","contacts":[{"name":{"first_name":"Barbara","last_name":"Johnson","formatted_name":"Barbara J. Johnson"},"phones":[{"phone":"+1 (940) 555-1234","wa_id":"19405551234","type":"HOME"}],"emails":[{"email":"bjohnson@example.com","type":"HOME"}]}]}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindContacts || !strings.Contains(e.Text, "Barbara J. Johnson") || !strings.Contains(e.Text, "+1 (940) 555-1234") || !json.Valid(e.Content) || !strings.Contains(string(e.Content), "bjohnson@example.com") {
					t.Errorf("%+v", e)
				}
			}},
		{"button reply", msg(`{"context":{"from":"15550783881","id":"wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"},"from":"16505551234","id":"wamid.BTN","timestamp":"1739321024","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"cancel-button","title":"Cancel"}}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindInteractive || e.Text != "Cancel" || e.ReplyToID != "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA" || !strings.Contains(string(e.Content), "cancel-button") {
					t.Errorf("%+v", e)
				}
			}},
		{"list reply", msg(`{"context":{"from":"15550783881","id":"wamid.LIST"},"from":"16505551234","id":"wamid.LR","timestamp":"1739321024","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"priority_express","title":"Express Shipping","description":"Next Day to 2 Days"}}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindInteractive || e.Text != "Express Shipping" {
					t.Errorf("%+v", e)
				}
			}},
		{"template quick reply", msg(`{"context":{"from":"15550783881","id":"wamid.TPL"},"from":"16505551234","id":"wamid.QR","timestamp":"1739321024","type":"button","button":{"payload":"Unsubscribe","text":"Stop promotions"}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindInteractive || e.Text != "Stop promotions" || e.ReplyToID != "wamid.TPL" || !strings.Contains(string(e.Content), "Unsubscribe") {
					t.Errorf("%+v", e)
				}
			}},
		{"reaction", msg(`{"from":"16505551234","id":"wamid.REACT","timestamp":"1739321024","reaction":{"message_id":"wamid.TARGET","emoji":"\ud83d\ude00"},"type":"reaction"}`),
			func(t *testing.T, e channel.Event) {
				if e.Type != channel.EventReaction || e.Emoji != "😀" || e.TargetID != "wamid.TARGET" || e.ExternalID != "wamid.REACT" || e.ChatID != "16505551234" {
					t.Errorf("%+v", e)
				}
			}},
		{"reaction removed (emoji omitted)", msg(`{"from":"16505551234","id":"wamid.UNREACT","timestamp":"1739321024","reaction":{"message_id":"wamid.TARGET"},"type":"reaction"}`),
			func(t *testing.T, e channel.Event) {
				if e.Type != channel.EventReaction || e.Emoji != "" || e.TargetID != "wamid.TARGET" || e.ExternalID != "wamid.UNREACT" {
					t.Errorf("%+v", e)
				}
			}},
		{"reaction removed (empty emoji)", msg(`{"from":"16505551234","id":"wamid.UNREACT2","timestamp":"1739321024","reaction":{"message_id":"wamid.TARGET","emoji":""},"type":"reaction"}`),
			func(t *testing.T, e channel.Event) {
				if e.Type != channel.EventReaction || e.Emoji != "" {
					t.Errorf("%+v", e)
				}
			}},
		{"reply and forwarded", msg(`{"context":{"from":"15550783881","id":"wamid.QUOTED","forwarded":true},"from":"16505551234","id":"wamid.FWD","timestamp":"1739321024","text":{"body":"fw"},"type":"text"}`),
			func(t *testing.T, e channel.Event) {
				if e.ReplyToID != "wamid.QUOTED" || !e.Forwarded {
					t.Errorf("%+v", e)
				}
			}},
		{"frequently forwarded", msg(`{"context":{"frequently_forwarded":true},"from":"16505551234","id":"wamid.FFWD","timestamp":"1739321024","text":{"body":"fw"},"type":"text"}`),
			func(t *testing.T, e channel.Event) {
				if !e.Forwarded || e.ReplyToID != "" {
					t.Errorf("%+v", e)
				}
			}},
		{"unsupported", msg(`{"from":"16505551234","id":"wamid.UNSUP","timestamp":"1739321024","errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}],"type":"unsupported","unsupported":{"type":"edit"}}`),
			func(t *testing.T, e channel.Event) {
				if e.Type != channel.EventMessage || e.Kind != inbox.KindUnsupported || !strings.Contains(e.Text, "131051") || !strings.Contains(e.Error, "not supported") || !json.Valid(e.Content) || e.ExternalID != "wamid.UNSUP" || e.Sender.Name != "Sheena Nelson" {
					t.Errorf("%+v", e)
				}
			}},
		{"unknown (older error shape)", msg(`{"from":"16505551234","id":"wamid.UNK","timestamp":"1739321024","errors":[{"code":131051,"details":"Message type is not currently supported","title":"Unsupported message type"}],"type":"unknown"}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindUnsupported || !strings.Contains(e.Error, "not currently supported") || !strings.Contains(e.Text, "Unsupported message type") {
					t.Errorf("%+v", e)
				}
			}},
		{"unknown new type", msg(`{"from":"16505551234","id":"wamid.NEW","timestamp":"1739321024","type":"hologram","hologram":{"x":1}}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindUnsupported || !strings.Contains(string(e.Content), "hologram") {
					t.Errorf("%+v", e)
				}
			}},
		{"type says image but object missing", msg(`{"from":"16505551234","id":"wamid.BROKEN","timestamp":"1739321024","type":"image"}`),
			func(t *testing.T, e channel.Event) {
				if e.Kind != inbox.KindUnsupported || len(e.Attachments) != 0 {
					t.Errorf("%+v", e)
				}
			}},
		{"timestamp as number", msg(`{"from":"16505551234","id":"wamid.NUM","timestamp":1739321024,"text":{"body":"x"},"type":"text"}`),
			func(t *testing.T, e channel.Event) {
				if !e.Timestamp.Equal(time.Unix(1739321024, 0)) {
					t.Errorf("%v", e.Timestamp)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := parse(t, tc.body)
			if len(evs) != 1 {
				t.Fatalf("got %d events: %+v", len(evs), evs)
			}
			if evs[0].ChatID != "16505551234" {
				t.Errorf("chat id %q", evs[0].ChatID)
			}
			tc.want(t, evs[0])
		})
	}
}

func TestParseUsernameUser(t *testing.T) {
	// BSUID user without a phone number: no "from", no wa_id.
	body := wrap(`"contacts":[{"profile":{"name":"Pat","username":"@pat.dev"},"user_id":"US.13491208655302741918"}],"messages":[{"from_user_id":"US.13491208655302741918","id":"wamid.BSUID","timestamp":"1739321024","text":{"body":"hi"},"type":"text"}]`)
	evs := parse(t, body)
	if len(evs) != 1 {
		t.Fatalf("%+v", evs)
	}
	e := evs[0]
	if e.ChatID != "US.13491208655302741918" || e.Sender.Identifier != "US.13491208655302741918" || e.Sender.Name != "Pat" || e.Sender.Phone != "" {
		t.Errorf("%+v", e)
	}
	// With both: the phone-based wa_id wins, the name still matches.
	body = wrap(`"contacts":[{"profile":{"name":"Zed"},"wa_id":"16505550000","user_id":"US.1"},{"profile":{"name":"Pat"},"wa_id":"16505551234","user_id":"US.2"}],"messages":[{"from":"16505551234","from_user_id":"US.2","id":"wamid.BOTH","timestamp":"1739321024","text":{"body":"hi"},"type":"text"}]`)
	e = parse(t, body)[0]
	if e.ChatID != "16505551234" || e.Sender.Name != "Pat" {
		t.Errorf("%+v", e)
	}
}

func TestParseRouting(t *testing.T) {
	body := wrap(`"contacts":[{"profile":{"name":"A"},"wa_id":"1"}],"messages":[{"from":"1","id":"wamid.A","timestamp":"1","text":{"body":"x"},"type":"text"}]`)
	if evs, _ := Parse(body, "someone-else"); len(evs) != 0 {
		t.Errorf("events for another phone number must be skipped: %+v", evs)
	}
	if evs, _ := Parse(body, ""); len(evs) != 1 {
		t.Errorf("unconfigured phone number accepts all: %+v", evs)
	}
}

func TestParseValueErrorsAndGarbage(t *testing.T) {
	// value.errors[] is a channel error (not an authorization change), named
	// by a hash of the errors piece, carrying it as Raw.
	errs := `[{"code":131000,"title":"Something went wrong","message":"Something went wrong","error_data":{"details":"Unknown error"}}]`
	body := wrap(`"errors":` + errs)
	evs := parse(t, body)
	if len(evs) != 1 || evs[0].Type != channel.EventChannelError || evs[0].AuthState != "" ||
		evs[0].Error != "(#131000) Something went wrong: Unknown error" || string(evs[0].Raw) != errs ||
		!strings.HasPrefix(evs[0].ExternalID, "errors:") {
		t.Errorf("%+v", evs)
	}
	if again := parse(t, body); again[0].ExternalID != evs[0].ExternalID {
		t.Errorf("id not stable: %q then %q", evs[0].ExternalID, again[0].ExternalID)
	}
	unsup := parse(t, wrap(`"errors":[{"code":131051,"title":"Unsupported message type","message":"Unsupported message type","error_data":{"details":"Message type is not currently supported"}}]`))
	if len(unsup) != 1 || unsup[0].ExternalID == evs[0].ExternalID || !strings.Contains(unsup[0].Error, "#131051") || !strings.Contains(unsup[0].Error, "Unsupported message type") {
		t.Errorf("%+v", unsup)
	}
	if _, err := Parse([]byte(`{"object":`), pnid); !inbox.IsCode(err, inbox.Invalid) {
		t.Errorf("truncated body: err = %v", err)
	}
	if _, err := Parse([]byte(`{"object":"page","entry":[]}`), pnid); err == nil {
		t.Error("foreign object must be refused")
	}
	// a template status update (other field) carries no conversation
	other := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"event":"APPROVED","message_template_id":1,"message_template_name":"x"},"field":"message_template_status_update"}]}]}`)
	if evs := parse(t, other); len(evs) != 0 {
		t.Errorf("%+v", evs)
	}
	// a statuses element that is not an object does not break the rest
	mixed := wrap(`"statuses":[42,{"id":"wamid.S","status":"sent","timestamp":"1739321024","recipient_id":"1"},{"id":"wamid.S","status":"weird","timestamp":"1"}]`)
	if evs := parse(t, mixed); len(evs) != 1 || evs[0].Status != inbox.MsgSent {
		t.Errorf("%+v", evs)
	}
}

func TestParseEchoes(t *testing.T) {
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + pnid + `"},"message_echoes":[{"from":"15550783881","to":"16505551234","id":"wamid.ECHO","timestamp":"1739321024","type":"text","text":{"body":"sent from the phone app"}}]},"field":"smb_message_echoes"}]}]}`)
	evs := parse(t, body)
	if len(evs) != 1 || evs[0].Direction != "outbound" || evs[0].ChatID != "16505551234" || evs[0].Text != "sent from the phone app" {
		t.Errorf("%+v", evs)
	}
}

func FuzzParseWhatsApp(f *testing.F) {
	if b, err := os.ReadFile("testdata/batch.json"); err == nil {
		f.Add(b)
	}
	f.Add(wrap(`"messages":[{"from":"1","id":"w","timestamp":"x","type":"reaction","reaction":{}}]`))
	f.Add(wrap(`"statuses":[{"id":"w","status":"failed","errors":[{"code":"x"}]}]`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":null}]}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Parse(body, "")
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.Type == "" {
				t.Fatalf("event without type: %+v", e)
			}
		}
	})
}

// A message that does not fit the expected shape is kept as a placeholder
// named by what can still be read of it: its wamid (else a hash of the
// piece), its sender (the recipient for an echo) and its time.
func TestParseUnreadableMessage(t *testing.T) {
	contact := `"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],`
	cases := []struct {
		name       string
		body       []byte
		piece      string
		id         string // "" = a hash
		sender     string
		senderName string
		chat       string
		direction  string
	}{
		{"text body of another type",
			wrap(contact + `"messages":[{"from":"16505551234","id":"wamid.BADTEXT","timestamp":"1739321024","type":"text","text":{"body":12345}}]`),
			`{"from":"16505551234","id":"wamid.BADTEXT","timestamp":"1739321024","type":"text","text":{"body":12345}}`,
			"wamid.BADTEXT", "16505551234", "Sheena Nelson", "16505551234", "inbound"},
		{"no id, numeric from",
			wrap(contact + `"messages":[{"from":16505551234,"timestamp":1739321024,"type":["text"]}]`),
			`{"from":16505551234,"timestamp":1739321024,"type":["text"]}`,
			"", "16505551234", "Sheena Nelson", "16505551234", "inbound"},
		{"not an object",
			wrap(`"messages":[42]`), `42`, "", "", "", "", "inbound"},
		{"echo",
			[]byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + pnid + `"},"message_echoes":[{"from":"15550783881","to":"16505551234","id":"wamid.BADECHO","timestamp":"1739321024","type":"text","text":{"body":true}}]},"field":"smb_message_echoes"}]}]}`),
			`{"from":"15550783881","to":"16505551234","id":"wamid.BADECHO","timestamp":"1739321024","type":"text","text":{"body":true}}`,
			"wamid.BADECHO", pnid, "", "16505551234", "outbound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := parse(t, c.body)
			if len(evs) != 1 {
				t.Fatalf("%+v", evs)
			}
			e := evs[0]
			if e.Type != channel.EventMessage || e.Kind != inbox.KindUnsupported || string(e.Raw) != c.piece || string(e.Content) != c.piece {
				t.Fatalf("%+v", e)
			}
			if c.id != "" && e.ExternalID != c.id || c.id == "" && !strings.HasPrefix(e.ExternalID, "unparsed:") {
				t.Fatalf("id %q, want %q", e.ExternalID, c.id)
			}
			if again := parse(t, c.body); again[0].ExternalID != e.ExternalID {
				t.Fatalf("id not stable: %q then %q", e.ExternalID, again[0].ExternalID)
			}
			if e.Sender.Identifier != c.sender || e.Sender.Name != c.senderName || e.ChatID != c.chat || e.Direction != c.direction {
				t.Fatalf("sender %+v chat %q direction %q", e.Sender, e.ChatID, e.Direction)
			}
			if c.sender != "" && !e.Timestamp.Equal(time.Unix(1739321024, 0)) {
				t.Fatalf("timestamp %v", e.Timestamp)
			}
			if c.direction == "outbound" && e.Recipient.Identifier != "16505551234" {
				t.Fatalf("recipient %+v", e.Recipient)
			}
		})
	}
}
