// Package apiclient is a small JSON client of Parley's own HTTP API, used by
// the tools that drive a running server (parley sim, parley bench).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
)

// Client calls the API with a bearer Token, or with the cookie session of a
// login (kept in HTTP's jar) and its CSRF token.
type Client struct {
	Base  string // e.g. http://127.0.0.1:8080 (no trailing slash)
	Token string
	CSRF  string
	HTTP  *http.Client
}

// New returns a client of base; hc (copied) gets a cookie jar for logins.
func New(base string, hc *http.Client) *Client {
	c := *hc
	c.Jar, _ = cookiejar.New(nil)
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &c}
}

// Error is an answer with an unexpected status.
type Error struct {
	Method, Path string
	Status       int
	Body         string // the start of the body
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: parley answered HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Do sends in as JSON (nil: no body) and decodes the answer into out (nil:
// discarded). The status must be one of want, or any 2xx when want is empty.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, want ...int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	} else if c.CSRF != "" {
		req.Header.Set("X-CSRF-Token", c.CSRF)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	ok := resp.StatusCode/100 == 2
	if len(want) > 0 {
		ok = slices.Contains(want, resp.StatusCode)
	}
	if !ok {
		return &Error{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(data[:min(len(data), 500)]))}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}
