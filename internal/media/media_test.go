package media

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/outbound"
	"github.com/parleyhq/parley/internal/store"
)

func TestSigner(t *testing.T) {
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Unix(1_800_000_000, 0)
	tok := s.Token("att-1", now.Add(time.Hour))
	if id, err := s.Verify(tok, now); err != nil || id != "att-1" {
		t.Fatalf("valid: %q %v", id, err)
	}
	if _, err := s.Verify(tok, now.Add(2*time.Hour)); !errors.Is(err, errTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	b := []byte(tok)
	b[3] ^= 1
	tests := map[string]string{
		"flipped":   string(b),
		"empty":     "",
		"not b64":   "!!!",
		"short":     tok[:10],
		"other key": NewSigner([]byte("another key")).Token("att-1", now.Add(time.Hour)),
		"other id":  strings.Replace(tok, tok[:4], "AAAA", 1),
	}
	for name, bad := range tests {
		if _, err := s.Verify(bad, now); !errors.Is(err, errTokenInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// fileProvider serves media over HTTP; its handler waits for release.
type fileProvider struct {
	fetches atomic.Int64
	release chan struct{}
	body    []byte
	srv     *httptest.Server
}

type mediaAdapter struct{ base string }

func (mediaAdapter) Kind() string                                 { return "mediatest" }
func (mediaAdapter) Verify(channel.Config, channel.Request) error { return nil }
func (mediaAdapter) Handshake(channel.Config, channel.Request) (int, string, bool) {
	return 0, "", false
}
func (mediaAdapter) Parse(channel.Config, channel.Request) ([]channel.Event, error) { return nil, nil }
func (mediaAdapter) Ack() (string, []byte)                                          { return "", nil }
func (mediaAdapter) Send(context.Context, channel.Config, channel.Outgoing) (channel.SendResult, error) {
	return channel.SendResult{}, errors.New("no")
}
func (mediaAdapter) Rules(channel.Config) channel.Rules                     { return channel.Rules{} }
func (mediaAdapter) ValidateConfig(map[string]any, map[string]string) error { return nil }
func (a mediaAdapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", a.base+"/media/"+ref, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, "", errors.New(resp.Status)
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

type mediaEnv struct {
	db   *store.DB
	ws   string
	ch   inbox.Channel
	prov *fileProvider
	svc  *Service
	now  atomic.Int64
	dir  string
}

func newMediaEnv(t *testing.T, o Options) *mediaEnv {
	t.Helper()
	ctx := context.Background()
	e := &mediaEnv{dir: t.TempDir()}
	e.now.Store(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix())
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(e.dir, "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e.ws = ws.ID
	if e.ch, err = db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "mediatest", Name: "M"}); err != nil {
		t.Fatal(err)
	}
	e.prov = &fileProvider{release: make(chan struct{}), body: bytes.Repeat([]byte("jpegdata"), 100)}
	close(e.prov.release)
	e.prov.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.prov.fetches.Add(1)
		<-e.prov.release
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(e.prov.body)
	}))
	t.Cleanup(e.prov.srv.Close)
	o.DB = db
	o.Storage = LocalStorage{Dir: filepath.Join(e.dir, "media")}
	o.SecretKey = []byte("k")
	o.PublicURL = "https://parley.example"
	o.Now = func() time.Time { return time.Unix(e.now.Load(), 0) }
	o.Adapter = func(ctx context.Context, id string) (channel.Adapter, channel.Config, error) {
		return mediaAdapter{base: e.prov.srv.URL}, channel.Config{ChannelID: id}, nil
	}
	e.svc = New(o)
	return e
}

// providerAttachment stores an inbound message with one provider-hosted image.
func (e *mediaEnv) providerAttachment(t *testing.T, ref string) string {
	t.Helper()
	ctx := context.Background()
	_, err := e.db.ApplyInbound(ctx, store.InboundEntry{ID: "e-" + ref, ReceivedAt: time.Now()}, e.ch, []channel.Event{{Type: channel.EventMessage,
		ExternalID: "m-" + ref, ChatID: "1", Direction: "inbound", Kind: inbox.KindImage, Sender: channel.Party{Identifier: "1"},
		Attachments: []channel.Media{{Kind: inbox.KindImage, MimeType: "image/jpeg", ProviderRef: ref}}}})
	if err != nil {
		t.Fatal(err)
	}
	convs, _ := e.db.ListConversations(ctx, e.ws, inbox.ConversationFilter{View: inbox.ViewAll})
	page, _ := e.db.ListMessages(ctx, e.ws, convs.Items[0].ID, "", 100)
	for _, m := range page.Items {
		if m.ExternalID == "m-"+ref {
			return m.Attachments[0].ID
		}
	}
	t.Fatal("attachment not found")
	return ""
}

func readAll(t *testing.T, f File) []byte {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSingleFlightFetch(t *testing.T) {
	e := newMediaEnv(t, Options{})
	e.prov.release = make(chan struct{})
	id := e.providerAttachment(t, "ref1")
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, _, _, err := e.svc.Open(context.Background(), e.ws, id)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			if !bytes.Equal(b, e.prov.body) {
				errs <- errors.New("wrong bytes")
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let (most) opens pile up on the in-flight fetch; late ones must hit the cache
	close(e.prov.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.prov.fetches.Load(); got != 1 {
		t.Fatalf("%d provider fetches for %d concurrent opens, want 1", got, n)
	}
	// Another workspace cannot open it.
	if _, _, _, err := e.svc.Open(context.Background(), "other", id); !inbox.IsCode(err, inbox.NotFound) {
		t.Fatalf("cross-workspace open: %v", err)
	}
}

func TestFetchSizeLimit(t *testing.T) {
	e := newMediaEnv(t, Options{MaxFetchBytes: 100})
	id := e.providerAttachment(t, "big")
	if _, _, _, err := e.svc.Open(context.Background(), e.ws, id); !inbox.IsCode(err, inbox.TooLarge) {
		t.Fatalf("got %v, want TooLarge", err)
	}
	a, _ := e.db.MediaAttachment(context.Background(), e.ws, id)
	if a.StorageKey != "" {
		t.Fatal("an oversized file was recorded")
	}
}

func TestCacheClean(t *testing.T) {
	ctx := context.Background()
	e := newMediaEnv(t, Options{CacheTTL: 24 * time.Hour, CacheMaxBytes: 1000})
	ids := []string{e.providerAttachment(t, "a"), e.providerAttachment(t, "b"), e.providerAttachment(t, "c")}
	day := int64(24 * 3600)
	// a: used 3 days ago (expired); b: 2 hours ago; c: now. Each is 800 bytes.
	for i, age := range []int64{3 * day, 7200, 0} {
		e.now.Store(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).Unix() - age)
		f, _, _, err := e.svc.Open(ctx, e.ws, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, f)
	}
	e.now.Store(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).Unix())
	upload, err := e.svc.Upload(ctx, e.ws, "", "n.txt", "text/plain", "", strings.NewReader(strings.Repeat("u", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.svc.Clean(ctx, true)
	if err != nil || rep.Expired != 1 || rep.Evicted != 1 || rep.KeptBytes != 800 || !rep.DryRun {
		t.Fatalf("dry run %v %+v", err, rep)
	}
	if a, _ := e.db.MediaAttachment(ctx, e.ws, ids[0]); a.StorageKey == "" {
		t.Fatal("dry run removed a file")
	}
	rep, err = e.svc.Clean(ctx, false)
	if err != nil || rep.Expired != 1 || rep.Evicted != 1 || rep.FreedBytes != 1600 {
		t.Fatalf("%v %+v", err, rep)
	}
	for i, want := range []bool{false, false, true} {
		a, _ := e.db.MediaAttachment(ctx, e.ws, ids[i])
		if (a.StorageKey != "") != want {
			t.Errorf("attachment %d cached=%v, want %v", i, a.StorageKey != "", want)
		}
	}
	if a, _ := e.db.MediaAttachment(ctx, e.ws, upload.ID); a.StorageKey == "" {
		t.Fatal("an upload was evicted")
	}
	before := e.prov.fetches.Load()
	f, _, _, err := e.svc.Open(ctx, e.ws, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, f)
	if e.prov.fetches.Load() != before+1 {
		t.Fatal("an evicted file was not fetched again")
	}
}

func TestUploadShareAndServe(t *testing.T) {
	e := newMediaEnv(t, Options{MaxUploadBytes: 1 << 20})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /uploads", func(w http.ResponseWriter, r *http.Request) { e.svc.HandleUpload(w, r, e.ws, "u1") })
	mux.HandleFunc("GET /attachments/{id}", func(w http.ResponseWriter, r *http.Request) { e.svc.ServeAttachment(w, r, e.ws, r.PathValue("id")) })
	mux.HandleFunc("POST /attachments/{id}/share", func(w http.ResponseWriter, r *http.Request) { e.svc.HandleShare(w, r, e.ws, r.PathValue("id")) })
	mux.HandleFunc("GET /share/{token}", func(w http.ResponseWriter, r *http.Request) { e.svc.ServeShare(w, r, r.PathValue("token")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 100)...)
	upload := func(name, ctype string, data []byte) (*http.Response, map[string]any) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + name + `"`}
		h["Content-Type"] = []string{ctype}
		pw, _ := mw.CreatePart(h)
		pw.Write(data)
		mw.Close()
		resp, err := http.Post(srv.URL+"/uploads", mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, out := upload("evil.html", "text/html", png)
	if resp.StatusCode != 201 || out["mime_type"] != "image/png" || out["kind"] != "image" || out["size"] != float64(len(png)) {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	id := out["id"].(string)
	if resp, _ := upload("big.bin", "application/octet-stream", make([]byte, 2<<20)); resp.StatusCode != 413 {
		t.Fatalf("oversize upload: %d", resp.StatusCode)
	}

	get := func(url string) (int, []byte, http.Header) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	st, b, h := get(srv.URL + "/attachments/" + id)
	if st != 200 || !bytes.Equal(b, png) || h.Get("Content-Type") != "image/png" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v", st, h)
	}
	resp, err := http.Post(srv.URL+"/attachments/"+id+"/share", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var share struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	json.NewDecoder(resp.Body).Decode(&share)
	resp.Body.Close()
	if !strings.HasPrefix(share.URL, "https://parley.example/share/") || share.ExpiresAt.IsZero() {
		t.Fatalf("%+v", share)
	}
	token := strings.TrimPrefix(share.URL, "https://parley.example/share/")
	if st, b, _ := get(srv.URL + "/share/" + token); st != 200 || !bytes.Equal(b, png) {
		t.Fatalf("share: %d", st)
	}
	tampered := []byte(token)
	tampered[len(tampered)-3] ^= 2
	if st, _, _ := get(srv.URL + "/share/" + string(tampered)); st != 403 {
		t.Fatalf("tampered: %d", st)
	}
	e.now.Add(2 * 3600)
	if st, _, _ := get(srv.URL + "/share/" + token); st != 404 {
		t.Fatalf("expired: %d", st)
	}
	if st, _, _ := get(srv.URL + "/attachments/nope"); st != 404 {
		t.Fatalf("unknown: %d", st)
	}
}

func TestOpenForSendRemuxesVoice(t *testing.T) {
	e := newMediaEnv(t, Options{})
	webm := muxWebM(muxOpts{codecPrivate: testOpusHead(312, 1)}, [][]byte{el(idClusterTimecode, u(0)), simpleBlock(1, 0, 0, pkt(40, 1))})
	a, err := e.svc.Upload(context.Background(), e.ws, "", "voice.webm", "audio/webm;codecs=opus", "voice", bytes.NewReader(webm))
	if err != nil {
		t.Fatal(err)
	}
	if a.MimeType != "audio/webm" || a.Kind != inbox.KindVoice {
		t.Fatalf("%+v", a)
	}
	conv, err := e.svc.ConvertForSend(context.Background(), e.ws, a, "audio/ogg; codecs=opus")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.svc.OpenForSend(context.Background(), e.ws, conv)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if conv.MimeType != "audio/ogg" || !bytes.HasPrefix(b, []byte("OggS")) {
		t.Fatalf("%+v %q", conv, b[:8])
	}
	if stored, _ := e.db.MediaAttachment(context.Background(), e.ws, a.ID); stored.MimeType != "audio/ogg" || stored.Size != int64(len(b)) {
		t.Fatalf("stored %+v", stored)
	}
	_, pk := readOgg(t, b)
	if len(pk) != 3 || !bytes.Equal(pk[2], pkt(40, 1)) {
		t.Fatalf("packets %d", len(pk))
	}
}

func FuzzShareToken(f *testing.F) {
	s := NewSigner([]byte("key"))
	now := time.Unix(1_800_000_000, 0)
	f.Add(s.Token("att-1", now.Add(time.Hour)))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := s.Verify(tok, now)
		if err != nil {
			return
		}
		// Whatever verifies must be exactly what we would have signed.
		b, _ := base64.RawURLEncoding.DecodeString(tok)
		exp := time.Unix(int64(binary.BigEndian.Uint64(b[len(id):len(id)+8])), 0)
		if s.Token(id, exp) != tok {
			t.Fatalf("forged token accepted: %q", tok)
		}
	})
}

// The media service is what the outbound worker sends files with.
var _ outbound.Media = (*Service)(nil)
