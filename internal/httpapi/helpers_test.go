package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
)

// testAdapter is a channel kind for API tests: it requires the secret
// "token" and, when given, a string config "region".
type testAdapter struct{}

func (testAdapter) Kind() string                                 { return "test" }
func (testAdapter) Verify(channel.Config, channel.Request) error { return nil }
func (testAdapter) Handshake(channel.Config, channel.Request) (int, string, bool) {
	return 0, "", false
}
func (testAdapter) Parse(channel.Config, channel.Request) ([]channel.Event, error) { return nil, nil }
func (testAdapter) Ack() (string, []byte)                                          { return "text/plain", nil }
func (testAdapter) Send(context.Context, channel.Config, channel.Outgoing) (channel.SendResult, error) {
	return channel.SendResult{}, errors.New("test adapter does not send")
}
func (testAdapter) FetchMedia(context.Context, channel.Config, string) (io.ReadCloser, string, error) {
	return nil, "", errors.New("no media")
}
func (testAdapter) Rules(channel.Config) channel.Rules { return channel.Rules{} }
func (testAdapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	v.Check(secrets["token"] != "", "secrets.token", "is required")
	if r, ok := config["region"]; ok {
		_, isString := r.(string)
		v.Check(isString, "config.region", "must be a string")
	}
	return v.Err()
}

func newEnv(t testing.TB, opts apitest.Options) *apitest.Env {
	t.Helper()
	if opts.Channels == nil {
		opts.Channels = channel.NewRegistry(testAdapter{})
	}
	return apitest.New(t, opts)
}

// fixture is one workspace with one object of every kind.
type fixture struct {
	ws           string
	agent        inbox.Member
	token        string // token id
	team, label  string
	account      string
	channel      string
	contact      string
	conversation string
	message      string
}

func seed(t testing.TB, e *apitest.Env, owner *apitest.Client, ws string, tag string) fixture {
	t.Helper()
	f := fixture{ws: ws}
	p := func(s string) string { return "/api/v1/workspaces/" + ws + s }
	var m inbox.Member
	owner.MustDo("POST", p("/members"), map[string]string{"email": "agent-" + tag + "@example.com", "name": "Agent " + tag,
		"password": apitest.Password, "role": "agent"}, http.StatusCreated, &m)
	f.agent = m
	var obj struct {
		ID string `json:"id"`
	}
	owner.MustDo("POST", p("/tokens"), map[string]string{"name": "ci"}, http.StatusCreated, &obj)
	f.token = obj.ID
	owner.MustDo("POST", p("/teams"), map[string]any{"name": "Support " + tag, "member_ids": []string{m.ID}}, http.StatusCreated, &obj)
	f.team = obj.ID
	owner.MustDo("POST", p("/labels"), map[string]string{"name": "VIP " + tag, "color": "#ff0000"}, http.StatusCreated, &obj)
	f.label = obj.ID
	owner.MustDo("POST", p("/provider-accounts"), map[string]any{"provider": "wappi", "name": "Wappi " + tag,
		"secrets": map[string]string{"api_token": "tok-" + tag}}, http.StatusCreated, &obj)
	f.account = obj.ID
	owner.MustDo("POST", p("/channels"), map[string]any{"kind": "test", "name": "Test " + tag,
		"secrets": map[string]string{"token": "secret-" + tag}}, http.StatusCreated, &obj)
	f.channel = obj.ID
	owner.MustDo("POST", p("/contacts"), map[string]any{"name": "Carol " + tag, "phones": []string{"+14155550100"}}, http.StatusCreated, &obj)
	f.contact = obj.ID
	owner.MustDo("POST", p("/conversations"), map[string]string{"contact_id": f.contact, "channel_id": f.channel}, http.StatusCreated, &obj)
	f.conversation = obj.ID
	owner.MustDo("POST", p("/conversations/"+f.conversation+"/messages"), map[string]any{"text": "note " + tag, "private": true}, http.StatusAccepted, &obj)
	f.message = obj.ID
	return f
}
