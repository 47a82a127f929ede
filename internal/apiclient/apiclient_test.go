package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/login":
			http.SetCookie(w, &http.Cookie{Name: "parley_session", Value: "s1"})
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"csrf_token":"c1"}`))
		case r.URL.Path == "/write" && r.Header.Get("X-CSRF-Token") == "c1":
			if ck, err := r.Cookie("parley_session"); err != nil || ck.Value != "s1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusCreated)
		case r.URL.Path == "/bearer" && r.Header.Get("Authorization") == "Bearer t1":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"code":"forbidden"}}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL+"/", srv.Client())
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	if err := c.Do(ctx, "POST", "/login", map[string]string{"email": "a"}, &me); err != nil || me.CSRF != "c1" {
		t.Fatalf("login: %v %+v", err, me)
	}
	c.CSRF = me.CSRF
	if err := c.Do(ctx, "POST", "/write", nil, nil, http.StatusCreated); err != nil {
		t.Fatalf("cookie + CSRF write: %v", err)
	}
	if err := c.Do(ctx, "POST", "/write", nil, nil, http.StatusOK); err == nil {
		t.Fatal("a status outside want was accepted")
	}
	c.Token = "t1"
	if err := c.Do(ctx, "GET", "/bearer", nil, nil); err != nil {
		t.Fatalf("bearer: %v", err)
	}
	var apiErr *Error
	if err := c.Do(ctx, "GET", "/nope", nil, nil); !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Body != `{"error":{"code":"forbidden"}}` {
		t.Fatalf("error: %v", err)
	}
}
