package main

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/realtime/client"
)

// TestRealtimeMetrics: the hub's statistics are in /metrics.
func TestRealtimeMetrics(t *testing.T) {
	env := envFor(map[string]string{"PARLEY_DATA_DIR": t.TempDir(), "PARLEY_ADDR": "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startServe(ctx, t, env)
	e := &apitest.Env{T: t, URL: srv.base}
	var setup httpapi.SetupResponse
	e.NewClient().MustDo("POST", "/api/v1/setup", map[string]string{"workspace": "Acme", "name": "Olive Owner",
		"email": "owner@example.com", "password": apitest.Password}, http.StatusCreated, &setup)
	e.Workspace = setup.Workspace
	owner := e.Login("owner@example.com", apitest.Password)
	token := e.Token(owner, setup.Workspace.ID).Token

	wsURL := "ws" + strings.TrimPrefix(srv.base, "http") + "/api/v1/workspaces/" + setup.Workspace.ID + "/ws"
	c, err := client.Dial(ctx, wsURL, client.Options{Token: token, Since: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if f, err := c.Next(ctx); err != nil || f.Type != "hello" {
		t.Fatalf("first frame %+v, %v", f, err)
	}
	if err := c.Send(ctx, map[string]string{"type": "typing", "conversation_id": "c1", "state": "on"}); err != nil {
		t.Fatal(err)
	}

	value := func(metrics, name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(metrics)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	for {
		metrics = string(e.NewClient().MustDo("GET", "/metrics", nil, http.StatusOK, nil).Body)
		if value(metrics, `parley_realtime_signals_total{kind="typing"}`) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("typing signal not counted:\n%s", metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, want := range map[string]float64{
		"parley_realtime_connections": 1, "parley_realtime_connections_accepted_total": 1,
		"parley_realtime_frames_sent_total": 1, "parley_realtime_workspaces": 1,
		"parley_realtime_slow_consumer_disconnects_total": 0, "parley_realtime_queued_frames": 0,
		"parley_realtime_write_queue_connections": 0, `parley_realtime_signals_total{kind="presence"}`: 0,
		"parley_realtime_repaired_changes_total": 0,
	} {
		if v := value(metrics, name); v < want {
			t.Errorf("%s = %v, want >= %v", name, v, want)
		}
	}
}
