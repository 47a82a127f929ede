package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
)

// Webhooks receives provider webhooks (the ingest pipeline).
type Webhooks interface {
	ServeWebhook(w http.ResponseWriter, r *http.Request, channelID string)
}

// Media serves uploads, attachments and signed share URLs (the media service).
type Media interface {
	HandleUpload(w http.ResponseWriter, r *http.Request, wsID, userID string)
	ServeAttachment(w http.ResponseWriter, r *http.Request, wsID, id string)
	HandleShare(w http.ResponseWriter, r *http.Request, wsID, id string)
	ServeShare(w http.ResponseWriter, r *http.Request, token string)
}

// Authorization is a QR-authorized channel's state as GET /channels/{id}/authorization shows it.
type Authorization struct {
	ChannelID string    `json:"channel_id"`
	Required  bool      `json:"required"` // false: the channel is not QR-authorized
	State     string    `json:"state"`    // authorized|unauthorized|pending|error
	QR        string    `json:"qr,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// Pipeline is what the messaging pipeline adds to the API.
type Pipeline struct {
	Store         inbox.Store
	Webhooks      Webhooks
	Media         Media
	Retry         func(ctx context.Context, wsID, messageID string) (inbox.Message, error)
	Authorization func(ctx context.Context, ch inbox.Channel) (Authorization, error)
	MaxUpload     int64
}

// UploadResponse documents POST /uploads.
type UploadResponse struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
	Filename string `json:"filename"`
}

// ShareResponse documents POST /attachments/{id}/share.
type ShareResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PipelineRoutes are the webhook, upload, attachment, retry and authorization routes.
func PipelineRoutes(pl Pipeline) []Route {
	const ws = "/api/v1/workspaces/{ws}"
	raw := func(h func(w http.ResponseWriter, r *http.Request, p *auth.Principal)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, auth.FromContext(r.Context())) })
	}
	webhook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pl.Webhooks.ServeWebhook(w, r, r.PathValue("channel_id"))
	})
	return []Route{
		{Method: "GET", Path: "/webhooks/{channel_id}", Access: Public, Summary: "provider webhook handshake (Meta hub.challenge)", Handler: webhook},
		{Method: "POST", Path: "/webhooks/{channel_id}", Access: Public, Summary: "provider webhook: verified, logged durably, acknowledged", Handler: webhook},
		{Method: "GET", Path: "/share/{token}", Access: Public, Summary: "a file behind a signed share URL",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pl.Media.ServeShare(w, r, r.PathValue("token")) })},
		{Method: "POST", Path: ws + "/uploads", Access: Member, Summary: "upload a file (multipart field file) to attach to a message",
			Response: UploadResponse{}, Status: http.StatusCreated, MaxBody: pl.MaxUpload + 1<<20, // the file plus its multipart envelope
			Handler: raw(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
				pl.Media.HandleUpload(w, r, p.WorkspaceID, p.User.ID)
			})},
		{Method: "GET", Path: ws + "/attachments/{id}", Access: Member, Summary: "an attachment's bytes (fetched from the provider on first open)",
			Handler: raw(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
				pl.Media.ServeAttachment(w, r, p.WorkspaceID, r.PathValue("id"))
			})},
		{Method: "POST", Path: ws + "/attachments/{id}/share", Access: Member, Summary: "a signed URL for an attachment that works without a session",
			Response: ShareResponse{},
			Handler: raw(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
				pl.Media.HandleShare(w, r, p.WorkspaceID, r.PathValue("id"))
			})},
		{Method: "POST", Path: ws + "/messages/{id}/retry", Access: Member, Summary: "re-queue a failed message", Response: inbox.Message{}, Status: http.StatusAccepted,
			fn: func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
				m, err := pl.Retry(r.Context(), p.WorkspaceID, r.PathValue("id"))
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusAccepted, m)
				return nil
			}},
		{Method: "GET", Path: ws + "/channels/{id}/authorization", Access: Member, Summary: "a QR-authorized channel's QR image and state", Response: Authorization{},
			fn: func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
				ch, err := pl.Store.GetChannel(r.Context(), p.WorkspaceID, r.PathValue("id"))
				if err != nil {
					return err
				}
				a, err := pl.Authorization(r.Context(), ch)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, a)
				return nil
			}},
	}
}
