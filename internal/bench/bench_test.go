package bench

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"two p50 is the lower", ms(1, 2), 50, time.Millisecond},
		{"two p99 is the upper", ms(1, 2), 99, 2 * time.Millisecond},
		{"odd median", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"even median", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"1..100 p1", hundred, 1, time.Millisecond},
		{"tiny p is the first", ms(3, 4, 5), 0.0001, 3 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{5 * time.Second, time.Second, 3 * time.Second, 2 * time.Second, 4 * time.Second}
	s := Summarize(in)
	if s.N != 5 || s.P50 != 3*time.Second || s.P99 != 5*time.Second || s.Max != 5*time.Second || s.Mean != 3*time.Second {
		t.Fatalf("Summarize = %+v", s)
	}
	if in[0] != 5*time.Second {
		t.Fatal("Summarize sorted its input in place")
	}
	if Summarize(nil).String() != "no samples" {
		t.Fatal("empty summary")
	}
	if got := s.String(); got != "p50 3.00 s   p99 5.00 s   max 5.00 s" {
		t.Fatalf("String = %q", got)
	}
}

func TestFormatMS(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond: "1.50 ms", 12340 * time.Microsecond: "12.3 ms",
		456 * time.Millisecond: "456 ms", 1200 * time.Millisecond: "1.20 s", 12 * time.Second: "12.00 s",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tparley\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n"
	if kb, err := parseVmRSS(strings.NewReader(status)); err != nil || kb != 51234 {
		t.Fatalf("parseVmRSS = %d, %v", kb, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n"} {
		if _, err := parseVmRSS(strings.NewReader(bad)); err == nil {
			t.Errorf("parseVmRSS(%q) succeeded", bad)
		}
	}
	if runtime.GOOS == "linux" {
		if kb, err := rssKB(1); err != nil && kb != 0 {
			t.Fatalf("rssKB(1) = %d, %v", kb, err)
		}
	}
}

func TestRatesFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"200,1000", "200,1000", false},
		{" 5 , 10 ,", "5,10", false},
		{"50", "50", false},
		{"", "", true},
		{",", "", true},
		{"0", "", true},
		{"-5", "", true},
		{"fast", "", true},
		{"10,1e3", "", true},
		{"100001", "", true},
	}
	for _, tc := range tests {
		var r rates
		err := r.Set(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("Set(%q) error %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && r.String() != tc.want {
			t.Errorf("Set(%q) = %s, want %s", tc.in, r.String(), tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	var errb bytes.Buffer
	o, err := parseIngest(nil, &errb)
	if err != nil || o.n != 20000 || o.concurrency != 64 || o.target != "" || o.timeout != 5*time.Minute {
		t.Fatalf("ingest defaults: %+v %v", o, err)
	}
	o, err = parseIngest([]string{"--n", "200", "-concurrency=8", "--database", "postgres://u@127.0.0.1/db", "--rate", "5000"}, &errb)
	if err != nil || o.n != 200 || o.concurrency != 8 || o.database != "postgres://u@127.0.0.1/db" || o.rate != 5000 {
		t.Fatalf("ingest flags: %+v %v", o, err)
	}
	r, err := parseRealtime([]string{"--rate", "50,75", "--duration", "2s", "--clients", "3"}, &errb)
	if err != nil || r.rates.String() != "50,75" || r.duration != 2*time.Second || r.clients != 3 || r.fanout != 0 {
		t.Fatalf("realtime flags: %+v %v", r, err)
	}
	r, err = parseRealtime([]string{"--fanout", "10000", "--target", "http://127.0.0.1:8080/", "--token", "t"}, &errb)
	if err != nil || r.fanout != 10000 || r.target != "http://127.0.0.1:8080" || r.rates.String() != "200,1000" {
		t.Fatalf("realtime fanout flags: %+v %v", r, err)
	}
	bad := [][]string{
		{"--n", "0"}, {"--concurrency", "0"}, {"--customers", "0"}, {"--n", "x"}, {"extra"},
		{"--target", "ftp://x"}, {"--target", "http://127.0.0.1:1"}, // no token
		{"--token", "t"}, {"--target", "http://127.0.0.1:1", "--token", "t", "--database", "postgres://x"},
		{"--timeout", "0s"}, {"--rate", "-1"},
	}
	for _, args := range bad {
		if _, err := parseIngest(args, &errb); err == nil {
			t.Errorf("ingest %v accepted", args)
		}
	}
	for _, args := range [][]string{{"--rate", "0"}, {"--duration", "0s"}, {"--clients", "0"}, {"--fanout", "-1"},
		{"--events", "0"}, {"--users", "0"}, {"--rate", "100000", "--duration", "1h"}} {
		if _, err := parseRealtime(args, &errb); err == nil {
			t.Errorf("realtime %v accepted", args)
		}
	}
	if err := Main(context.Background(), []string{"frobnicate"}, &errb, &errb); err == nil {
		t.Fatal("unknown benchmark accepted")
	}
	if err := Main(context.Background(), nil, &errb, &errb); err == nil {
		t.Fatal("no benchmark accepted")
	}
}

// TestSmoke runs both benchmarks, small, against a server started from a
// freshly built parley binary.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the smoke run (builds the parley binary)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "parley")
	bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(bctx, goBin, "build", "-o", bin, "github.com/parleyhq/parley/cmd/parley").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var out, errb bytes.Buffer
	if err := Main(ctx, []string{"ingest", "--n", "200", "--rate", "400", "--concurrency", "8", "--customers", "20", "--binary", bin, "--timeout", "60s"}, &out, &errb); err != nil {
		t.Fatalf("bench ingest: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	t.Logf("bench ingest:\n%s", out.String())
	for _, re := range []string{
		`200 webhooks, 400/s on schedule, up to 8 in flight`,
		`acknowledged\s+200 of 200 \(0 failed\)`,
		`webhooks/s acknowledged\s+\d+`,
		`ack latency\s+p50 [\d.]+ m?s\s+p99 [\d.]+ m?s\s+max [\d.]+ m?s`,
		`visible via the API\s+200 of 200`,
		`messages/s processed\s+\d+`,
		`ack → visible\s+p50 [\d.]+ m?s\s+p99 [\d.]+ m?s`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("ingest output lacks %s", re)
		}
	}

	out.Reset()
	errb.Reset()
	if err := Main(ctx, []string{"realtime", "--rate", "20,50", "--duration", "1s", "--clients", "2", "--binary", bin}, &out, &errb); err != nil {
		t.Fatalf("bench realtime: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	t.Logf("bench realtime:\n%s", out.String())
	for _, re := range []string{
		`20/s sent\s+20 webhooks`, `50/s sent\s+50 webhooks`,
		`20/s POST → client\s+p50 [\d.]+ m?s\s+p99 [\d.]+ m?s\s+max [\d.]+ m?s\s+\(40 deliveries, 0 missing\)`,
		`50/s POST → client\s+p50 .*\(100 deliveries, 0 missing\)`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("realtime output lacks %s", re)
		}
	}

	out.Reset()
	errb.Reset()
	if err := Main(ctx, []string{"realtime", "--fanout", "50", "--events", "3", "--interval", "50ms", "--users", "2", "--binary", bin}, &out, &errb); err != nil {
		t.Fatalf("bench realtime --fanout: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	t.Logf("bench realtime --fanout:\n%s", out.String())
	for _, re := range []string{
		`connected\s+50 in`, `POST → last client\s+p50 .*\(3 of 3 messages reached every client\)`,
		`\(150 deliveries, 0 missing, 0 duplicate\)`, `server RSS\s+[\d.]+ MiB idle, [\d.]+ MiB connected`,
		`server CPU\s+[\d.]+ m?s per message`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("fan-out output lacks %s", re)
		}
	}
}

func TestFanoutParse(t *testing.T) {
	f := &fanout{idPrefix: []byte(`"external_id":"wamid.fan.ab12.`), sent: make([]atomic.Int64, 20)}
	for _, tc := range []struct {
		frame    string
		seq      int64
		msg      int
		isChange bool
	}{
		{`{"type":"change","seq":42,"entity":"message","op":"upsert","id":"m1","data":{"id":"m1","external_id":"wamid.fan.ab12.7","text":"x"},"at":"2026-01-01T00:00:00Z"}`, 42, 7, true},
		{`{"type":"change","seq":43,"entity":"conversation","op":"upsert","id":"c1","data":{"id":"c1"}}`, 43, -1, true},
		{`{"type":"change","seq":44,"entity":"message","op":"upsert","id":"m2","data":{"external_id":"wamid.fan.zz99.3"}}`, 44, -1, true},
		{`{"type":"change","seq":45,"entity":"message","op":"delete","id":"m1","data":null}`, 45, -1, true},
		{`{"type":"change","seq":46,"entity":"message","op":"upsert","data":{"external_id":"wamid.fan.ab12.12x"}}`, 46, -1, true},
		// another field order: decoded as JSON
		{`{"seq":47,"type":"change","op":"upsert","entity":"message","data":{"external_id":"wamid.fan.ab12.3"}}`, 47, 3, true},
		{`{"type":"hello","cursor":"5"}`, 0, 0, false},
		{`{"type":"presence","user_id":"u","status":"online"}`, 0, 0, false},
	} {
		seq, msg, ok := f.parse([]byte(tc.frame))
		if ok != tc.isChange || (ok && (seq != tc.seq || msg != tc.msg)) {
			t.Errorf("parse(%s) = %d, %d, %v; want %d, %d, %v", tc.frame, seq, msg, ok, tc.seq, tc.msg, tc.isChange)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "1234 (parley serve) S 1 1234 1234 0 -1 4194560 2000 0 0 0 150 25 0 0 39 19 12 0 100 0 0"
	if d, err := parseStatCPU(stat); err != nil || d != 1750*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v", d, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Fatal("garbage accepted")
	}
}

// rawWS, the fan-out bench's client, against a standard WebSocket server:
// messages of every length class and fragmented ones arrive whole, pings are
// answered, and the close code is reported.
func TestRawWS(t *testing.T) {
	sizes := []int{0, 5, 125, 126, 65535, 65536, 200000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"parley.v1"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(context.Background()) // handles the pong and the close answer
		for _, n := range sizes {
			if err := c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte{'a' + byte(n%26)}, n)); err != nil {
				return
			}
		}
		wr, err := c.Writer(ctx, websocket.MessageText)
		if err != nil {
			return
		}
		_, _ = wr.Write([]byte("frag"))
		_, _ = wr.Write([]byte("mented"))
		_ = wr.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := c.Ping(pctx); err != nil {
			_ = c.Close(websocket.StatusInternalError, "no pong")
			return
		}
		_ = c.Close(4002, "resync: take a new snapshot")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialRawWS(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?since=1", []string{"parley.v1", "bearer.x"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	for _, n := range sizes {
		b, err := c.next()
		if err != nil || len(b) != n || (n > 0 && (b[0] != 'a'+byte(n%26) || b[n-1] != b[0])) {
			t.Fatalf("message of %d bytes: got %d bytes, %v", n, len(b), err)
		}
	}
	if b, err := c.next(); err != nil || string(b) != "fragmented" {
		t.Fatalf("fragmented message: %q %v", b, err)
	}
	_, err = c.next()
	var ce wsCloseError
	if !errors.As(err, &ce) || ce.code != 4002 || ce.reason != "resync: take a new snapshot" {
		t.Fatalf("close: %v (the ping must have been answered first)", err)
	}
}
