package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	api "github.com/parleyhq/parley/internal/channel/api"
	"github.com/parleyhq/parley/internal/inbox"
)

// TestRealAPIAdapter runs the pipeline with the real generic "api" channel
// adapter: its signature scheme, its parser and its ack.
func TestRealAPIAdapter(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	sealed, _ := json.Marshal(map[string]string{"hmac_secret": "api-secret"})
	ch, err := e.db.CreateChannel(ctx, e.ws, inbox.Channel{Kind: "api", Name: "API", SecretsEnc: sealed})
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.extra = []channel.Adapter{api.New()}
	e.startWith(t, e.db, true)

	post := func(body []byte, sig string) (int, string) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+ch.ID, bytes.NewReader(body))
		if sig != "" {
			req.Header.Set(api.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	body := []byte(`{"external_id":"crm-1","contact":{"identifier":"cust-9","name":"Dana","email":"Dana@Example.com"},
		"text":"Order \u00e9t\u00e9 #5","attachments":[{"url":"https://files.example/a.pdf","mime_type":"application/pdf","filename":"a.pdf"}],
		"timestamp":"2026-04-01T10:00:00Z"}`)
	if st, _ := post(body, api.Sign("wrong", body)); st != 401 {
		t.Fatalf("bad signature: %d", st)
	}
	st, ack := post(body, api.Sign("api-secret", body))
	if st != 200 || ack != `{"status":"ok"}` {
		t.Fatalf("%d %s", st, ack)
	}
	post(body, api.Sign("api-secret", body)) // provider retry
	eventually(t, "processing", e.allDone(t, 2))
	ms := e.messages(t)
	if len(ms) != 1 || ms[0].Text != "Order été #5" || ms[0].ExternalID != "crm-1" || len(ms[0].Attachments) != 1 {
		t.Fatalf("%+v", ms)
	}
	if !ms[0].CreatedAt.Equal(time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("created_at %v", ms[0].CreatedAt)
	}
	c, err := e.db.ContactByIdentity(ctx, e.ws, ch.ID, "cust-9")
	if err != nil || c.Name != "Dana" || len(c.Emails) != 1 || c.Emails[0] != "dana@example.com" {
		t.Fatalf("%v %+v", err, c)
	}
	a, err := e.db.MediaAttachment(ctx, e.ws, ms[0].Attachments[0].ID)
	if err != nil || a.ProviderRef != "https://files.example/a.pdf" || a.StorageKey != "" {
		t.Fatalf("%v %+v", err, a)
	}
}
