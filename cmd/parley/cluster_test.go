package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/metasim"
	"github.com/parleyhq/parley/internal/realtime/client"
)

// TestCluster runs three `parley serve` processes on one PostgreSQL schema
// and NATS: a webhook ingested on one node and a note written on another
// reach WebSocket clients on every node, and a client whose node stops
// resumes on another node from its cursor without gaps or duplicates.
func TestCluster(t *testing.T) {
	natsURL := os.Getenv("PARLEY_TEST_NATS_URL")
	if natsURL == "" {
		t.Skip("PARLEY_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222); skipping the three-node cluster test")
	}
	if os.Getenv("PARLEY_TEST_POSTGRES_URL") == "" {
		t.Skip("PARLEY_TEST_POSTGRES_URL is not set; skipping the three-node cluster test")
	}
	if testing.Short() {
		t.Skip("-short: skipping the three-node cluster test (builds the binary)")
	}
	pg := apitest.PostgresURL(t) // a fresh schema, dropped at cleanup
	bin := buildParley(t)
	env := map[string]string{
		"PARLEY_ADDR": "127.0.0.1:0", "PARLEY_DATABASE_URL": pg, "PARLEY_NATS_URL": natsURL,
		"PARLEY_SECRET_KEY": strings.Repeat("5a", 32), "PARLEY_SHUTDOWN_TIMEOUT": "5s",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	a := startNode(t, bin, "A", env) // first alone: it applies the migrations
	if a == nil {
		t.FailNow()
	}
	var b, c *clusterNode
	var wg sync.WaitGroup
	wg.Go(func() { b = startNode(t, bin, "B", env) })
	c = startNode(t, bin, "C", env)
	wg.Wait()
	if b == nil || c == nil {
		t.FailNow()
	}

	// Workspace, token and a WhatsApp channel, through node A.
	ea := &apitest.Env{T: t, URL: a.url}
	var setup httpapi.SetupResponse
	ea.NewClient().MustDo("POST", "/api/v1/setup", map[string]string{"workspace": "Acme", "name": "Olive Owner",
		"email": "owner@example.com", "password": apitest.Password}, http.StatusCreated, &setup)
	ea.Workspace = setup.Workspace
	owner := ea.Login("owner@example.com", apitest.Password)
	token := ea.Token(owner, setup.Workspace.ID).Token
	apiA := ea.Bearer(token)
	apiB := (&apitest.Env{T: t, URL: b.url}).Bearer(token)
	const appSecret, phoneID = "cluster-app-secret", "106540352242922"
	var ch inbox.Channel
	apiA.MustDo("POST", ea.WS("/channels"), map[string]any{"kind": "whatsapp", "name": "Support",
		"config":  map[string]any{"phone_number_id": phoneID, "waba_id": "102290129340398"},
		"secrets": map[string]string{"access_token": "EAAG-cluster", "app_secret": appSecret, "verify_token": "verify-me"}},
		http.StatusCreated, &ch)
	var snap inbox.Snapshot
	apiA.MustDo("GET", ea.WS("/sync/snapshot"), nil, http.StatusOK, &snap)
	start := snap.Cursor

	wsPath := "/api/v1/workspaces/" + setup.Workspace.ID + "/ws"
	ca := dialCollector(ctx, t, "A", a.url+wsPath, token, start)
	cb := dialCollector(ctx, t, "B", b.url+wsPath, token, start)
	cc := dialCollector(ctx, t, "C", c.url+wsPath, token, start)

	webhook := func(wamid, from, text string) {
		t.Helper()
		body := metasim.WhatsAppPayload(metasim.WAEntry{WABAID: "102290129340398", Values: []metasim.WAValue{{
			PhoneNumberID: phoneID, DisplayPhone: "15550001111",
			Contacts: []metasim.WAContact{{WaID: from, Name: "Customer " + from}},
			Messages: []metasim.M{metasim.WAText(from, wamid, time.Now().Unix(), text)},
		}}})
		r := apiA.DoHeaders("POST", "/webhooks/"+ch.ID, body, metasim.Headers(appSecret, body))
		if r.Status != http.StatusOK {
			t.Fatalf("webhook %s on node A: %d %s", wamid, r.Status, r.Body)
		}
	}

	// 1. A webhook ingested on A reaches the clients on A, B and C.
	webhook("wamid.cluster.1", "15551230001", "Hello from WhatsApp")
	var convID string
	for _, col := range []*collector{ca, cb, cc} {
		f := col.waitFor(t, 20*time.Second, "the ingested message", func(f client.Frame) bool {
			return f.Entity == inbox.EntityMessage && f.Op == inbox.OpUpsert && messageOf(f).ExternalID == "wamid.cluster.1"
		})
		m := messageOf(f)
		if m.Text != "Hello from WhatsApp" || m.Direction != "inbound" || m.ConversationID == "" {
			t.Fatalf("%s: message data %s", col.name, f.Data)
		}
		convID = m.ConversationID
	}

	// 2. A private note written through B reaches A and C.
	note := func(api *apitest.Client, text string) string {
		t.Helper()
		var m inbox.Message
		api.MustDo("POST", ea.WS("/conversations/"+convID+"/messages"), map[string]any{"text": text, "private": true}, http.StatusAccepted, &m)
		return m.ID
	}
	noteID := note(apiB, "internal: VIP customer")
	for _, col := range []*collector{ca, cc} {
		f := col.waitFor(t, 15*time.Second, "the note written on B", func(f client.Frame) bool {
			return f.Entity == inbox.EntityMessage && f.ID == noteID
		})
		if m := messageOf(f); !m.Private || m.Text != "internal: VIP customer" {
			t.Fatalf("%s: note data %s", col.name, f.Data)
		}
	}

	// 3. Node C stops; its client resumes on B from its cursor while A keeps writing.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("node C did not stop after SIGTERM:\n%s", c.logs.String())
	}
	cc.close()
	cursor := cc.lastSeq()
	if got := cc.c.Cursor(); got != strconv.FormatInt(cursor, 10) {
		t.Fatalf("C's client cursor %s, last change consumed %d", got, cursor)
	}
	if cursor == 0 {
		t.Fatal("C's client saw no change")
	}

	want := map[string]bool{} // message ids or external ids the resumed client must see
	for i := 2; i <= 4; i++ {
		wamid := fmt.Sprintf("wamid.cluster.%d", i)
		webhook(wamid, fmt.Sprintf("1555123000%d", i%3+1), fmt.Sprintf("message %d", i))
		want[wamid] = true
	}
	want[note(apiA, "note 1 while C is down")] = true
	want[note(apiA, "note 2 while C is down")] = true

	cr := dialCollector(ctx, t, "C→B", b.url+wsPath, token, strconv.FormatInt(cursor, 10))
	for i := 5; i <= 6; i++ { // and more while it replays and goes live
		wamid := fmt.Sprintf("wamid.cluster.%d", i)
		webhook(wamid, "15551239999", fmt.Sprintf("message %d", i))
		want[wamid] = true
	}
	want[note(apiA, "note 3 after the resume")] = true

	seen := func(fs []client.Frame) map[string]bool {
		got := map[string]bool{}
		for _, f := range fs {
			if f.Entity == inbox.EntityMessage {
				m := messageOf(f)
				if want[m.ExternalID] {
					got[m.ExternalID] = true
				}
				if want[f.ID] {
					got[f.ID] = true
				}
			}
		}
		return got
	}
	deadline := time.Now().Add(25 * time.Second)
	for len(seen(cr.frames())) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("resumed client saw %v of %d expected messages", seen(cr.frames()), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Every client's stream equals the change log: each seq once, in order, no gap.
	for _, col := range []*collector{ca, cb, cr} {
		fs := col.frames()
		from := start
		if col == cr {
			from = strconv.FormatInt(cursor, 10)
		}
		upto := fs[len(fs)-1].Seq
		log := syncChanges(t, apiA, ea.WS("/sync"), from, upto)
		got := make([]int64, len(fs))
		for i, f := range fs {
			got[i] = f.Seq
		}
		wantSeqs := make([]int64, len(log))
		for i, ch := range log {
			wantSeqs[i] = ch.Seq
		}
		if fmt.Sprint(got) != fmt.Sprint(wantSeqs) {
			t.Fatalf("%s: received seqs %v\nchange log       %v", col.name, got, wantSeqs)
		}
		t.Logf("client %s: %d changes after cursor %s, each once, in order, equal to the change log", col.name, len(got), from)
		first, _ := strconv.ParseInt(from, 10, 64)
		for i, s := range got {
			if s != first+int64(i)+1 {
				t.Fatalf("%s: seq %d at position %d after cursor %d: not contiguous: %v", col.name, s, i, first, got)
			}
		}
	}
	// The resumed client repeated nothing C's client had already consumed.
	if fs := cr.frames(); fs[0].Seq != cursor+1 {
		t.Fatalf("resumed client started at seq %d, cursor was %d", fs[0].Seq, cursor)
	}
}

// buildParley builds the parley binary into a temp dir.
func buildParley(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot build the parley binary")
	}
	bin := filepath.Join(t.TempDir(), "parley")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type clusterNode struct {
	name   string
	cmd    *exec.Cmd
	url    string
	logs   *syncBuffer
	exited chan struct{}
}

// startNode starts `parley serve` with env (plus its own data dir) and waits
// for its listening line; the process is killed at cleanup.
func startNode(t *testing.T, bin, name string, env map[string]string) *clusterNode {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PARLEY_DATA_DIR="+t.TempDir())
	n := &clusterNode{name: name, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = n.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`parley listening on (http://\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = cmd.Process.Kill()
			select {
			case <-n.exited:
			case <-time.After(10 * time.Second):
			}
		}
		if t.Failed() {
			t.Logf("node %s log:\n%s", name, n.logs.String())
		}
	})
	select {
	case n.url = <-urls:
	case <-n.exited:
		t.Errorf("node %s exited before listening:\n%s", name, n.logs.String())
		return nil
	case <-time.After(30 * time.Second):
		t.Errorf("node %s did not start:\n%s", name, n.logs.String())
		return nil
	}
	return n
}

// collector keeps the change frames a realtime client receives.
type collector struct {
	name string
	c    *client.Client
	mu   sync.Mutex
	fs   []client.Frame
	done chan struct{}
}

func dialCollector(ctx context.Context, t *testing.T, name, httpURL, token, since string) *collector {
	t.Helper()
	wsURL := "ws" + strings.TrimPrefix(httpURL, "http")
	c, err := client.Dial(ctx, wsURL, client.Options{Token: token, Since: since, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	col := &collector{name: name, c: c, done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			f, err := c.Next(ctx)
			if err != nil {
				return
			}
			if f.Type == "change" {
				col.mu.Lock()
				col.fs = append(col.fs, f)
				col.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { col.close() })
	return col
}

// close stops the client and waits until every buffered frame was consumed.
func (col *collector) close() {
	_ = col.c.Close()
	<-col.done
}

func (col *collector) frames() []client.Frame {
	col.mu.Lock()
	defer col.mu.Unlock()
	return append([]client.Frame(nil), col.fs...)
}

func (col *collector) lastSeq() int64 {
	fs := col.frames()
	if len(fs) == 0 {
		return 0
	}
	return fs[len(fs)-1].Seq
}

func (col *collector) waitFor(t *testing.T, timeout time.Duration, what string, match func(client.Frame) bool) client.Frame {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, f := range col.frames() {
			if match(f) {
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("client on %s: %s did not arrive within %s (%d changes seen)", col.name, what, timeout, len(col.frames()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func messageOf(f client.Frame) inbox.Message {
	var m inbox.Message
	_ = json.Unmarshal(f.Data, &m)
	return m
}

// syncChanges reads the change log after since up to seq upto via GET /sync.
func syncChanges(t *testing.T, api *apitest.Client, path, since string, upto int64) []inbox.Change {
	t.Helper()
	var out []inbox.Change
	for range 100 {
		var batch inbox.ChangeBatch
		api.MustDo("GET", path+"?limit=1000&since="+since, nil, http.StatusOK, &batch)
		for _, c := range batch.Changes {
			if c.Seq <= upto {
				out = append(out, c)
			}
		}
		if !batch.More || len(batch.Changes) == 0 || batch.Changes[len(batch.Changes)-1].Seq >= upto {
			return out
		}
		since = batch.Cursor
	}
	t.Fatal("change log did not end after 100 pages")
	return nil
}
