package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// AdapterFunc resolves a channel to its adapter and config (ingest.Channels.Adapter).
type AdapterFunc func(ctx context.Context, channelID string) (channel.Adapter, channel.Config, error)

// Options configure a Service.
type Options struct {
	DB        *store.DB
	Storage   Storage
	Adapter   AdapterFunc
	SecretKey []byte
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time

	MaxUploadBytes int64         // default 50 MB
	MaxFetchBytes  int64         // per provider object, default 100 MB
	CacheTTL       time.Duration // cached provider media unused this long is evicted (default 30 days)
	CacheMaxBytes  int64         // total cache size cap (default 5 GB)
	ShareTTL       time.Duration // default lifetime of a share URL (default 1 hour)
}

// Service is the media layer.
type Service struct {
	o      Options
	signer Signer

	mu     sync.Mutex
	flight map[string]*fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// New makes a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 50 << 20
	}
	if o.MaxFetchBytes <= 0 {
		o.MaxFetchBytes = 100 << 20
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 30 * 24 * time.Hour
	}
	if o.CacheMaxBytes <= 0 {
		o.CacheMaxBytes = 5 << 30
	}
	if o.ShareTTL <= 0 {
		o.ShareTTL = time.Hour
	}
	return &Service{o: o, signer: NewSigner(o.SecretKey), flight: map[string]*fetchCall{}}
}

// ---- opening (cache or provider) ----

// Open returns the bytes of an attachment of workspace wsID ("" = any: share
// URLs), fetching them from the provider on first open. Concurrent opens of
// one attachment fetch once.
func (s *Service) Open(ctx context.Context, wsID, id string) (File, int64, store.MediaAttachment, error) {
	for attempt := 0; ; attempt++ {
		att, err := s.o.DB.MediaAttachment(ctx, wsID, id)
		if err != nil {
			return nil, 0, att, err
		}
		if att.StorageKey != "" {
			f, n, err := s.o.Storage.Open(ctx, att.StorageKey)
			if err == nil {
				if err := s.o.DB.TouchAttachment(ctx, att.ID, s.o.Now()); err != nil {
					s.o.Logger.Warn("media: touch", "attachment", att.ID, "err", err)
				}
				return f, n, att, nil
			}
			if !inbox.IsCode(err, inbox.NotFound) || att.ProviderRef == "" {
				return nil, 0, att, err
			}
			// The cached file vanished: forget it and fetch again.
			if _, err := s.o.DB.ClearAttachmentFile(ctx, att.ID, att.StorageKey); err != nil {
				return nil, 0, att, err
			}
			att.StorageKey = ""
		}
		if att.ProviderRef == "" || att.ChannelID == "" {
			return nil, 0, att, inbox.Errorf(inbox.NotFound, "the file of this attachment is not available")
		}
		if attempt > 0 {
			return nil, 0, att, inbox.Errorf(inbox.Internal, "media fetch did not store the file")
		}
		if err := s.fetchOnce(ctx, att, true); err != nil {
			return nil, 0, att, err
		}
	}
}

// fetchOnce fetches att from its provider, one fetch per attachment at a
// time. With detach the fetch outlives ctx (a request that opened the file
// must not cancel it for the others waiting); without it (the prefetcher)
// it stops with ctx, so that a shutdown does not wait for it.
func (s *Service) fetchOnce(ctx context.Context, att store.MediaAttachment, detach bool) error {
	s.mu.Lock()
	if c, ok := s.flight[att.ID]; ok {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := &fetchCall{done: make(chan struct{})}
	s.flight[att.ID] = c
	s.mu.Unlock()
	// A fetch that finished between the caller's read of att and this point
	// has stored the file already (it records it before leaving the flight map).
	if cur, err := s.o.DB.MediaAttachment(ctx, "", att.ID); err == nil && cur.StorageKey != "" {
		s.mu.Lock()
		delete(s.flight, att.ID)
		s.mu.Unlock()
		close(c.done)
		return nil
	}
	fctx := ctx
	if detach {
		fctx = context.WithoutCancel(ctx)
	}
	c.err = s.fetch(fctx, att)
	s.mu.Lock()
	delete(s.flight, att.ID)
	s.mu.Unlock()
	close(c.done)
	return c.err
}

func (s *Service) fetch(ctx context.Context, att store.MediaAttachment) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ad, cfg, err := s.o.Adapter(ctx, att.ChannelID)
	if err != nil {
		return err
	}
	body, mimeType, err := ad.FetchMedia(ctx, cfg, att.ProviderRef)
	if err != nil {
		return inbox.Wrap(inbox.Internal, err, "cannot fetch the file from the provider")
	}
	defer body.Close()
	key := "cache/" + att.WorkspaceID + "/" + att.ID
	n, err := s.o.Storage.Put(ctx, key, body, s.o.MaxFetchBytes)
	if err != nil {
		return err
	}
	if att.MimeType != "" {
		mimeType = "" // keep what the provider announced in the event
	}
	return s.o.DB.SetAttachmentFile(ctx, att.ID, key, mimeType, n)
}

// ---- sending ----

// ShareURL signs a URL for att valid for ttl (the outbound worker hands it to
// providers that fetch media by URL).
func (s *Service) ShareURL(att inbox.Attachment, ttl time.Duration) (string, time.Time) {
	if ttl <= 0 {
		ttl = s.o.ShareTTL
	}
	exp := s.o.Now().Add(ttl).UTC().Truncate(time.Second)
	return strings.TrimRight(s.o.PublicURL, "/") + "/share/" + s.signer.Token(att.ID, exp), exp
}

// OpenForSend reads an attachment's bytes for an upload to a provider.
func (s *Service) OpenForSend(ctx context.Context, wsID string, att inbox.Attachment) (io.ReadCloser, error) {
	f, _, _, err := s.Open(ctx, wsID, att.ID)
	return f, err
}

// ConvertForSend makes an attachment match a channel's required format
// before it is sent: a WebM/Opus voice note recorded by a browser becomes
// Ogg/Opus (remuxed, not re-encoded) when wantMime asks for Ogg. The
// converted file replaces the stored one (Ogg/Opus plays in browsers too), so
// share URLs and later opens serve it. Other cases return att unchanged.
func (s *Service) ConvertForSend(ctx context.Context, wsID string, att inbox.Attachment, wantMime string) (inbox.Attachment, error) {
	if !strings.Contains(wantMime, "ogg") || !strings.Contains(att.MimeType, "webm") {
		return att, nil
	}
	f, _, a, err := s.Open(ctx, wsID, att.ID)
	if err != nil {
		return att, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRemuxInput+1))
	f.Close()
	if err != nil {
		return att, err
	}
	out, err := WebMToOgg(b)
	if err != nil {
		return att, inbox.Wrap(inbox.Invalid, err, "the voice note cannot be converted to Ogg/Opus")
	}
	key := a.StorageKey + ".ogg"
	n, err := s.o.Storage.Put(ctx, key, bytes.NewReader(out), 0)
	if err != nil {
		return att, err
	}
	if err := s.o.DB.SetAttachmentFile(ctx, a.ID, key, "audio/ogg", n); err != nil {
		return att, err
	}
	if a.StorageKey != "" && a.StorageKey != key {
		_ = s.o.Storage.Delete(ctx, a.StorageKey)
	}
	att.MimeType, att.Size, att.StorageKey = "audio/ogg", n, key
	if ext := path.Ext(att.Filename); ext != "" {
		att.Filename = strings.TrimSuffix(att.Filename, ext) + ".ogg"
	}
	return att, nil
}

// ---- uploads ----

// Upload stores a file from a multipart "file" part, sniffing its type.
func (s *Service) Upload(ctx context.Context, wsID, userID, filename, declaredType, kind string, r io.Reader) (inbox.Attachment, error) {
	head := make([]byte, 512)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return inbox.Attachment{}, err
	}
	head = head[:n]
	if n == 0 {
		return inbox.Attachment{}, inbox.FieldError("the file is empty", map[string]string{"file": "is empty"})
	}
	mt := sniff(head, filename, declaredType)
	id := store.NewAttachmentID()
	key := "uploads/" + wsID + "/" + id
	size, err := s.o.Storage.Put(ctx, key, io.MultiReader(bytes.NewReader(head), r), s.o.MaxUploadBytes)
	if err != nil {
		return inbox.Attachment{}, err
	}
	if kind == "" || !validKind(kind) {
		kind = kindOf(mt)
	}
	a, err := s.o.DB.CreateUpload(ctx, wsID, userID, inbox.Attachment{ID: id, Kind: kind, MimeType: mt, Filename: cleanName(filename), Size: size, StorageKey: key})
	if err != nil {
		_ = s.o.Storage.Delete(context.WithoutCancel(ctx), key)
	}
	return a, err
}

func validKind(k string) bool {
	switch k {
	case inbox.KindImage, inbox.KindAudio, inbox.KindVoice, inbox.KindVideo, inbox.KindDocument, inbox.KindSticker:
		return true
	}
	return false
}

// sniff decides a file's type from its first bytes; the client's declared
// type (or the extension) only refines what sniffing cannot tell.
func sniff(head []byte, filename, declared string) string {
	mt := http.DetectContentType(head)
	base := strings.TrimSpace(strings.SplitN(mt, ";", 2)[0])
	decl := strings.TrimSpace(strings.SplitN(declared, ";", 2)[0])
	switch {
	case base == "video/webm" && strings.HasPrefix(decl, "audio/"):
		return "audio/webm" // the same container: a recorded voice note
	case base == "application/ogg" && strings.HasPrefix(decl, "audio/"):
		return "audio/ogg"
	case base == "application/octet-stream" || base == "text/plain":
		if decl != "" && decl != "application/octet-stream" && !strings.HasPrefix(decl, "text/html") && !strings.Contains(decl, "javascript") {
			if base == "text/plain" && !strings.HasPrefix(decl, "text/") && decl != "application/json" && decl != "text/csv" {
				return mt
			}
			return decl
		}
		if t := mime.TypeByExtension(strings.ToLower(path.Ext(filename))); t != "" && !strings.HasPrefix(t, "text/html") {
			return t
		}
	}
	return mt
}

func kindOf(mt string) string {
	switch {
	case strings.HasPrefix(mt, "image/"):
		return inbox.KindImage
	case strings.HasPrefix(mt, "audio/"):
		return inbox.KindAudio
	case strings.HasPrefix(mt, "video/"):
		return inbox.KindVideo
	}
	return inbox.KindDocument
}

func cleanName(n string) string {
	n = path.Base(strings.ReplaceAll(n, `\`, "/"))
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, n)
	if n == "." || n == "/" {
		return ""
	}
	if len(n) > 200 {
		n = n[:200]
	}
	return n
}

// ---- cache cleaning ----

// Report is what a cache clean did (or would do).
type Report struct {
	Scanned    int   `json:"scanned"`
	Expired    int   `json:"expired"`
	Evicted    int   `json:"evicted"` // removed to stay under the size cap
	FreedBytes int64 `json:"freed_bytes"`
	KeptBytes  int64 `json:"kept_bytes"`
	DryRun     bool  `json:"dry_run"`
}

// Clean removes cached provider media unused for CacheTTL, then the least
// recently used until the cache fits CacheMaxBytes. Uploads are never
// removed; evicted files are fetched again on their next open.
func (s *Service) Clean(ctx context.Context, dryRun bool) (Report, error) {
	rep := Report{DryRun: dryRun}
	list, err := s.o.DB.CachedMediaList(ctx)
	if err != nil {
		return rep, err
	}
	var total int64
	for _, c := range list {
		total += c.Size
	}
	cutoff := s.o.Now().Add(-s.o.CacheTTL)
	for _, c := range list {
		rep.Scanned++
		expired := c.LastUsed.Before(cutoff)
		if !expired && total <= s.o.CacheMaxBytes {
			continue
		}
		if !dryRun {
			ok, err := s.o.DB.ClearAttachmentFile(ctx, c.ID, c.StorageKey)
			if err != nil {
				return rep, err
			}
			if ok {
				if err := s.o.Storage.Delete(ctx, c.StorageKey); err != nil {
					return rep, err
				}
			}
		}
		if expired {
			rep.Expired++
		} else {
			rep.Evicted++
		}
		rep.FreedBytes += c.Size
		total -= c.Size
	}
	rep.KeptBytes = total
	return rep, nil
}

// Janitor cleans the cache once and logs what it did (the server runs it
// periodically).
func (s *Service) Janitor(ctx context.Context) {
	if rep, err := s.Clean(ctx, false); err != nil {
		s.o.Logger.Error("media: cache clean", "err", err)
	} else if rep.Expired+rep.Evicted > 0 {
		s.o.Logger.Info("media: cache cleaned", "expired", rep.Expired, "evicted", rep.Evicted, "freed_bytes", rep.FreedBytes)
	}
}

// ---- HTTP ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code := inbox.ErrorCode(err)
	status := map[inbox.Code]int{
		inbox.Invalid: 400, inbox.Unauthorized: 401, inbox.Forbidden: 403, inbox.NotFound: 404,
		inbox.Conflict: 409, inbox.TooLarge: 413, inbox.RateLimited: 429,
	}[code]
	if status == 0 {
		status, code = 500, inbox.Internal
	}
	body := map[string]any{"code": code, "message": inbox.ErrorMessage(err)}
	var ie *inbox.Error
	if errors.As(err, &ie) && len(ie.Fields) > 0 {
		body["fields"] = ie.Fields
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// HandleUpload serves POST /uploads (multipart field "file"; optional field
// "kind", e.g. voice) → 201 {"id","kind","mime_type","size","filename"}.
// The route bounds the request body; the file itself is bounded by
// MaxUploadBytes when stored.
func (s *Service) HandleUpload(w http.ResponseWriter, r *http.Request, wsID, userID string) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeErr(w, inbox.FieldError("send the file as multipart/form-data in the field \"file\"", map[string]string{"file": "is required"}))
		return
	}
	kind := ""
	for {
		p, err := mr.NextPart()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeErr(w, inbox.Errorf(inbox.TooLarge, "the file is larger than the %d MB limit", s.o.MaxUploadBytes>>20))
				return
			}
			writeErr(w, inbox.FieldError("no file in the upload", map[string]string{"file": "is required"}))
			return
		}
		switch p.FormName() {
		case "kind":
			b, _ := io.ReadAll(io.LimitReader(p, 32))
			kind = strings.TrimSpace(string(b))
			continue
		case "file":
		default:
			continue
		}
		a, err := s.Upload(r.Context(), wsID, userID, p.FileName(), p.Header.Get("Content-Type"), kind, p)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = inbox.Errorf(inbox.TooLarge, "the file is larger than the %d MB limit", s.o.MaxUploadBytes>>20)
			}
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": a.ID, "kind": a.Kind, "mime_type": a.MimeType, "size": a.Size, "filename": a.Filename, "url": a.URL})
		return
	}
}

// ServeAttachment serves GET /attachments/{id} (authenticated by the caller).
func (s *Service) ServeAttachment(w http.ResponseWriter, r *http.Request, wsID, id string) {
	s.serve(w, r, wsID, id, "private, max-age=300")
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request, wsID, id, cacheControl string) {
	f, _, att, err := s.Open(r.Context(), wsID, id)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer f.Close()
	mt := att.MimeType
	if mt == "" {
		mt = "application/octet-stream"
	}
	// Only media types a browser cannot run are shown inline.
	disp := "attachment"
	if strings.HasPrefix(mt, "image/") && mt != "image/svg+xml" || strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/") || mt == "application/pdf" {
		disp = "inline"
	}
	name := att.Filename
	if name == "" {
		name = att.ID
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.Header().Set("Cache-Control", cacheControl)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// HandleShare serves POST /attachments/{id}/share → {"url","expires_at"}.
func (s *Service) HandleShare(w http.ResponseWriter, r *http.Request, wsID, id string) {
	att, err := s.o.DB.MediaAttachment(r.Context(), wsID, id)
	if err != nil {
		writeErr(w, err)
		return
	}
	url, exp := s.ShareURL(att.Attachment, s.o.ShareTTL)
	writeJSON(w, http.StatusOK, map[string]any{"url": url, "expires_at": exp})
}

// ServeShare serves GET /share/{token} without a session: a tampered token
// is 403, an expired one 404.
func (s *Service) ServeShare(w http.ResponseWriter, r *http.Request, token string) {
	id, err := s.signer.Verify(token, s.o.Now())
	switch {
	case errors.Is(err, errTokenExpired):
		writeErr(w, inbox.Errorf(inbox.NotFound, "this link has expired"))
		return
	case err != nil:
		writeErr(w, inbox.Errorf(inbox.Forbidden, "invalid link"))
		return
	}
	s.serve(w, r, "", id, "private, no-store")
}
