package httpapi

import (
	"net/http"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/realtime"
)

// ViewersResponse answers GET /conversations/{id}/viewers.
type ViewersResponse struct {
	UserIDs []string `json:"user_ids"`
}

// RealtimeRoutes mounts (for Deps.Routes) the WebSocket endpoint and the viewers list of hub.
// allowedOrigins are extra origins accepted for cookie-authenticated sockets.
func RealtimeRoutes(st inbox.Store, hub *realtime.Hub, allowedOrigins []string) []Route {
	const ws = "/api/v1/workspaces/{ws}"
	return []Route{
		{Method: "GET", Path: ws + "/ws", Access: Member, Summary: "WebSocket: changes and signals (?since=)",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := auth.FromContext(r.Context())
				hub.ServeWS(w, r, realtime.Principal{WorkspaceID: p.WorkspaceID, UserID: p.User.ID, Role: string(p.Role), CookieAuth: p.Session != nil},
					realtime.ServeOptions{Since: r.URL.Query().Get("since"), AllowedOrigins: allowedOrigins, Status: p.User.Availability})
			})},
		{Method: "GET", Path: ws + "/conversations/{id}/viewers", Access: Member, Summary: "who is viewing a conversation", Response: ViewersResponse{},
			fn: func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
				if _, err := st.GetConversation(r.Context(), p.WorkspaceID, p.User.ID, r.PathValue("id")); err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, ViewersResponse{UserIDs: nonNil(hub.Viewers(p.WorkspaceID, r.PathValue("id")))})
				return nil
			}},
	}
}
