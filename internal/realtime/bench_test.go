package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkFanout commits one change per iteration and measures the time
// until the LAST of N connected clients has received it, over real
// WebSocket connections on loopback. The clients run in a child process (the
// test binary re-executed), so the reported RSS is the server's alone and
// each side has its own file-descriptor budget.
//
// N defaults to 1000 and 10000; PARLEY_BENCH_FANOUT_N="500,2000" overrides.
// Metrics: ms/last-client (mean) and max-ms/last-client; server-cpu-ms/op
// (CPU time of the server process per fan-out, less sensitive to a busy
// machine than latency); MB-rss (server process with N connections);
// KB-heap/conn and KB-stack/conn (live heap and goroutine stacks added per
// connection, after GC).
func BenchmarkFanout(b *testing.B) {
	sizes := []int{1000, 10000}
	if s := os.Getenv("PARLEY_BENCH_FANOUT_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("bad PARLEY_BENCH_FANOUT_N %q", s)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	o := defaultOpts()
	o.QueueSize = 1024
	o.HeartbeatInterval = time.Minute
	o.NodeHeartbeat = time.Minute
	e := newEnv(b, o, nil)
	heap0, stack0 := liveMemory()

	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutClientHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"PARLEY_FANOUT_HELPER_URL="+e.wsURL(testWS, "", "agent", nil),
		"PARLEY_FANOUT_HELPER_N="+strconv.Itoa(n))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string, d time.Duration) {
		b.Helper()
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					b.Fatalf("client helper exited while waiting for %q", want)
				}
				if l == want {
					return
				}
			case <-timer.C:
				b.Fatalf("timed out waiting for %q", want)
			}
		}
	}
	waitLine("ready", 5*time.Minute)
	waitFor(b, time.Minute, "all connections live", func() bool { return e.hub.Load().Stats().Connections == n })
	rss1 := rssBytes()
	heap1, stack1 := liveMemory()
	cpu0 := cpuTime()

	data := map[string]any{"id": "m", "text": strings.Repeat("x", 200)}
	var total, worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		cs := e.log.Commit(testWS, change{entity: "message", id: strconv.Itoa(i), data: data})
		waitLine(strconv.FormatInt(cs[0].Seq, 10), time.Minute)
		d := time.Since(start)
		total += d
		worst = max(worst, d)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/last-client")
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms/last-client")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "server-cpu-ms/op")
	b.ReportMetric(float64(rss1)/(1<<20), "MB-rss")
	b.ReportMetric((float64(heap1)-float64(heap0))/1024/float64(n), "KB-heap/conn")
	b.ReportMetric((float64(stack1)-float64(stack0))/1024/float64(n), "KB-stack/conn")
}

// liveMemory returns the live heap and the goroutine stack memory after a GC.
func liveMemory() (heap, stacks uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is the resident set size of this process (VmRSS), or the Go
// runtime's total memory where /proc is unavailable.
func rssBytes() uint64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseUint(f[0], 10, 64)
					return kb * 1024
				}
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFanoutClientHelper is the client side of BenchmarkFanout, run in a
// child process; it is skipped in normal test runs. It connects N clients
// (spread over 20 users), prints "ready", then prints each seq once every
// client has received it.
func TestFanoutClientHelper(t *testing.T) {
	rawURL := os.Getenv("PARLEY_FANOUT_HELPER_URL")
	if rawURL == "" {
		t.Skip("client side of BenchmarkFanout (run by the benchmark)")
	}
	n, _ := strconv.Atoi(os.Getenv("PARLEY_FANOUT_HELPER_N"))
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	emit := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = io.WriteString(out, s+"\n")
		_ = out.Flush()
	}
	const slots = 4096
	var counts [slots]atomic.Int64
	ctx := context.Background()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, _ := url.Parse(rawURL)
			q := u.Query()
			q.Set("user", fmt.Sprintf("user%d", i%20))
			q.Set("since", "0")
			u.RawQuery = q.Encode()
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			c, _, err := websocket.Dial(dctx, u.String(), nil)
			cancel()
			<-sem
			if err != nil {
				failed.Add(1)
				fmt.Fprintln(os.Stderr, "dial:", err)
				return
			}
			c.SetReadLimit(1 << 20)
			go func() {
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						return
					}
					var f struct {
						Type string `json:"type"`
						Seq  int64  `json:"seq"`
					}
					if json.Unmarshal(b, &f) != nil || f.Type != FrameChange {
						continue
					}
					slot := &counts[f.Seq%slots]
					if slot.Add(1) == int64(n) {
						slot.Store(0)
						emit(strconv.FormatInt(f.Seq, 10))
					}
				}
			}()
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d dials failed", failed.Load())
	}
	emit("ready")
	select {} // until the benchmark kills the process
}
