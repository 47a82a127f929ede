package apichannel

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

const secret = "topsecret-hmac"

func cfg(cb string) channel.Config {
	return channel.Config{Kind: Kind, Config: map[string]any{"callback_url": cb}, Secrets: map[string]string{"hmac_secret": secret}}
}

func TestVerify(t *testing.T) {
	a := New()
	body := []byte(`{"external_id":"e1","contact":{"identifier":"u1"},"text":"hi"}`)
	good := Sign(secret, body)
	cases := []struct {
		name string
		sig  string
		body []byte
		ok   bool
	}{
		{"good", good, body, true},
		{"uppercase hex", "sha256=" + strings.ToUpper(good[7:]), body, true},
		{"tampered body", good, []byte(strings.Replace(string(body), "hi", "ho", 1)), false},
		{"no prefix", good[7:], body, false},
		{"wrong secret", Sign("other", body), body, false},
		{"missing", "", body, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.sig != "" {
				h.Set(SignatureHeader, c.sig)
			}
			err := a.Verify(cfg(""), channel.Request{Header: h, Body: c.body})
			if (err == nil) != c.ok || (err != nil && !inbox.IsCode(err, inbox.Unauthorized)) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		err   bool
		check func(t *testing.T, evs []channel.Event)
	}{
		{name: "documented shape, RFC 3339", body: `{"external_id":"ext-1","contact":{"identifier":"crm-42","name":"Jürgen","email":"j@example.com","phone":"+4915112345678"},"text":"Hallo \u00fc","attachments":[{"url":"https://files.example/a.png","mime_type":"image/png","filename":"a.png"}],"timestamp":"2026-01-02T03:04:05Z"}`,
			check: func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.ExternalID != "ext-1" || ev.ChatID != "crm-42" || ev.Sender.Name != "Jürgen" || ev.Sender.Email != "j@example.com" ||
					ev.Text != "Hallo ü" || ev.Kind != inbox.KindImage || ev.Attachments[0].ProviderRef != "https://files.example/a.png" ||
					!ev.Timestamp.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "unix seconds", body: `{"external_id":"e","contact":{"identifier":"u"},"text":"x","timestamp":1700000000}`,
			check: func(t *testing.T, evs []channel.Event) {
				if evs[0].Timestamp.Unix() != 1700000000 {
					t.Fatal(evs[0].Timestamp)
				}
			}},
		{name: "unix seconds as string", body: `{"external_id":"e","contact":{"identifier":"u"},"text":"x","timestamp":"1700000000"}`,
			check: func(t *testing.T, evs []channel.Event) {
				if evs[0].Timestamp.Unix() != 1700000000 {
					t.Fatal(evs[0].Timestamp)
				}
			}},
		{name: "no external id is content keyed", body: `{"contact":{"email":"a@b.c"},"text":"x"}`,
			check: func(t *testing.T, evs []channel.Event) {
				if !strings.HasPrefix(evs[0].ExternalID, "sha256:") || evs[0].ChatID != "a@b.c" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{name: "batch", body: `[{"external_id":"1","contact":{"identifier":"u"},"text":"a"},{"external_id":"2","contact":{"identifier":"u"},"text":"b"}]`,
			check: func(t *testing.T, evs []channel.Event) {
				if len(evs) != 2 || evs[1].Text != "b" {
					t.Fatalf("%+v", evs)
				}
			}},
		{name: "missing contact", body: `{"external_id":"e","text":"x"}`, err: true},
		{name: "bad timestamp", body: `{"contact":{"identifier":"u"},"text":"x","timestamp":"yesterday"}`, err: true},
		{name: "not json", body: `hello`, err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := New().Parse(cfg(""), channel.Request{Body: []byte(c.body)})
			if c.err {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, evs)
		})
	}
}

func TestSend(t *testing.T) {
	var got outBody
	var sigOK bool
	status := 200
	reply := `{"external_id":"crm-msg-9"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sigOK = r.Header.Get(SignatureHeader) == Sign(secret, body)
		_ = json.Unmarshal(body, &got)
		if status == 429 {
			w.Header().Set("Retry-After", "4")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(reply))
	}))
	defer srv.Close()
	a := New()
	c := cfg(srv.URL + "/hook")
	c.HTTPClient = srv.Client()
	res, err := a.Send(context.Background(), c, channel.Outgoing{MessageID: "m1", To: "crm-42", Text: "Hi", ReplyToID: "ext-1",
		Attachments: []channel.OutMedia{{URL: "https://share.example/x", MimeType: "application/pdf", Filename: "x.pdf"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !sigOK || got.MessageID != "m1" || got.To != "crm-42" || got.Text != "Hi" || got.ReplyTo != "ext-1" || len(got.Attachments) != 1 || got.Attachments[0].Filename != "x.pdf" {
		t.Fatalf("%+v sig %v", got, sigOK)
	}
	if res.ExternalID != "crm-msg-9" {
		t.Fatal(res)
	}
	reply = ``
	res, err = a.Send(context.Background(), c, channel.Outgoing{MessageID: "m2", To: "crm-42", Text: "Hi"})
	if err != nil || res.ExternalID != "m2" {
		t.Fatal(err, res)
	}
	var se *channel.SendError
	status = 429
	if _, err := a.Send(context.Background(), c, channel.Outgoing{MessageID: "m3", To: "u", Text: "x"}); !errors.As(err, &se) || !se.Retryable || se.RetryAfter != 4*time.Second {
		t.Fatalf("%#v", err)
	}
	status = 400
	if _, err := a.Send(context.Background(), c, channel.Outgoing{MessageID: "m4", To: "u", Text: "x"}); !errors.As(err, &se) || se.Retryable {
		t.Fatalf("%#v", err)
	}
	status = 502
	if _, err := a.Send(context.Background(), c, channel.Outgoing{MessageID: "m5", To: "u", Text: "x"}); !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("%#v", err)
	}
}

func TestFetchMedia(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("png"))
	}))
	defer srv.Close()
	c := cfg("")
	c.HTTPClient = srv.Client()
	body, ct, err := New().FetchMedia(context.Background(), c, srv.URL+"/a.png")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	if string(b) != "png" || ct != "image/png" {
		t.Fatal(string(b), ct)
	}
	if _, _, err := New().FetchMedia(context.Background(), c, srv.URL+"/missing"); err == nil {
		t.Fatal("404 must fail")
	}
	if _, _, err := New().FetchMedia(context.Background(), c, "file:///etc/passwd"); err == nil {
		t.Fatal("file URL must fail")
	}
}

func TestValidateConfig(t *testing.T) {
	a := New()
	if err := a.ValidateConfig(map[string]any{"callback_url": "https://crm.example/hook"}, map[string]string{"hmac_secret": "s"}); err != nil {
		t.Fatal(err)
	}
	if err := a.ValidateConfig(map[string]any{"callback_url": "ftp://x"}, map[string]string{"hmac_secret": "s"}); !inbox.IsCode(err, inbox.Invalid) {
		t.Fatal(err)
	}
	if err := a.ValidateConfig(map[string]any{}, map[string]string{}); !inbox.IsCode(err, inbox.Invalid) {
		t.Fatal(err)
	}
}

func FuzzParseAPI(f *testing.F) {
	f.Add([]byte(`{"external_id":"ext-1","contact":{"identifier":"crm-42"},"text":"hi","timestamp":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`[{"contact":{"identifier":"u"},"timestamp":1e99}]`))
	f.Add([]byte(`{"timestamp":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := New().Parse(cfg(""), channel.Request{Body: body})
		if err == nil {
			for _, ev := range evs {
				if ev.ExternalID == "" || ev.ChatID == "" {
					t.Fatalf("event without ids: %+v", ev)
				}
			}
		}
	})
}
