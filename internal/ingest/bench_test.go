package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
}

// BenchmarkWebhookAck measures signed webhooks acknowledged through the real
// handler on an HTTP server with SQLite: "ack-only" is a node that only
// acknowledges (Workers -1); "with-workers" processes at the same time.
func BenchmarkWebhookAck(b *testing.B) {
	b.Run("ack-only", func(b *testing.B) { benchAck(b, -1) })
	b.Run("with-workers", func(b *testing.B) { benchAck(b, 0) })
	b.Run("with-1-worker", func(b *testing.B) { benchAck(b, 1) })
}

// BenchmarkPipelineUnderLoad is the combined figure on one SQLite node:
// signed webhooks acknowledged (rate and p99) WHILE the workers process them,
// and the rate at which messages become visible (b.N webhooks over 500
// chats, from the first request until the last entry is applied).
func BenchmarkPipelineUnderLoad(b *testing.B) {
	cpu0 := cpuTime()
	e := benchAck(b, 0)
	start := time.Now().Add(-e.ackElapsed)
	for {
		c, err := e.db.InboundCounts(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if c[store.InboundDone] >= b.N {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	// CPU of the whole process (HTTP client included) per webhook, from ack
	// to applied: comparable between runs on a busy machine, unlike rates.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type ackRun struct {
	*env
	ackElapsed time.Duration
}

func benchAck(b *testing.B, workers int) ackRun {
	e := newEnvWorkers(b, true, workers)
	client := benchClient()
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			i := seq.Add(1)
			body := payload(testEvent{ID: fmt.Sprint("b", i), From: fmt.Sprint(i % 500), Text: "benchmark message"})
			req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+e.ch.ID, bytes.NewReader(body))
			req.Header.Set("X-Test-Signature", sign(testSecret, body))
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "webhooks/s")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	return ackRun{env: e, ackElapsed: elapsed}
}

// BenchmarkPipeline measures webhook → message visible in the store
// (acknowledged, parsed, applied) for b.N webhooks over 50 chats.
func BenchmarkPipeline(b *testing.B) {
	e := newEnv(b, true)
	client := benchClient()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			body := payload(testEvent{ID: fmt.Sprint("p", i), From: fmt.Sprint(i % 50), Text: "pipeline"})
			req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+e.ch.ID, bytes.NewReader(body))
			req.Header.Set("X-Test-Signature", sign(testSecret, body))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}(i)
	}
	wg.Wait()
	acked := time.Since(start)
	for {
		c, err := e.db.InboundCounts(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if c[store.InboundDone] == b.N {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/acked.Seconds(), "acks/s")
}
