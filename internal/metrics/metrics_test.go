package metrics

import (
	"database/sql"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	m := New()
	c := m.Counter("webhook_unverified_total", "Webhooks that failed verification.", "kind")
	if m.Counter("webhook_unverified_total", "ignored") != c {
		t.Fatal("Counter did not return the registered vector")
	}
	c.WithLabelValues("whatsapp").Add(2)
	m.HTTPDuration.WithLabelValues("GET /healthz", "GET", "200").Observe(0.01)
	m.DBStats(func() map[string]sql.DBStats {
		return map[string]sql.DBStats{"main": {OpenConnections: 3, InUse: 1, Idle: 2}}
	})

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`parley_webhook_unverified_total{kind="whatsapp"} 2`,
		`parley_http_request_duration_seconds_count{method="GET",route="GET /healthz",status="200"} 1`,
		`parley_db_open_connections{pool="main"} 3`,
		`parley_db_in_use_connections{pool="main"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}
