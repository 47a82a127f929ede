// Package metrics owns Parley's Prometheus registry: HTTP request durations,
// database pool statistics and counters other packages register by name.
package metrics

import (
	"database/sql"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one registry. Create one per process (or per test server).
type Metrics struct {
	Registry     *prometheus.Registry
	HTTPDuration *prometheus.HistogramVec

	mu       sync.Mutex
	counters map[string]*prometheus.CounterVec
}

// New returns a registry with Go runtime, process and HTTP metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_http_request_duration_seconds",
		Help:    "HTTP request duration by route pattern, method and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method", "status"})
	reg.MustRegister(h)
	return &Metrics{Registry: reg, HTTPDuration: h, counters: map[string]*prometheus.CounterVec{}}
}

// Counter returns the counter vector named parley_<name>, registering it on
// first use. Later calls with the same name return the same vector (their
// help and labels are ignored).
func (m *Metrics) Counter(name, help string, labels ...string) *prometheus.CounterVec {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.counters[name]; ok {
		return c
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_" + name, Help: help}, labels)
	m.Registry.MustRegister(c)
	m.counters[name] = c
	return c
}

// DBStats registers connection pool gauges read from stats at scrape time.
// stats returns one sql.DBStats per pool name (e.g. SQLite's "write" and "read").
func (m *Metrics) DBStats(stats func() map[string]sql.DBStats) {
	m.Registry.MustRegister(&dbCollector{stats: stats})
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

var (
	descOpen  = prometheus.NewDesc("parley_db_open_connections", "Open database connections.", []string{"pool"}, nil)
	descInUse = prometheus.NewDesc("parley_db_in_use_connections", "Database connections in use.", []string{"pool"}, nil)
	descIdle  = prometheus.NewDesc("parley_db_idle_connections", "Idle database connections.", []string{"pool"}, nil)
	descWait  = prometheus.NewDesc("parley_db_wait_count_total", "Connections waited for.", []string{"pool"}, nil)
	descWaitS = prometheus.NewDesc("parley_db_wait_seconds_total", "Time spent waiting for connections.", []string{"pool"}, nil)
	descMax   = prometheus.NewDesc("parley_db_max_open_connections", "Maximum open connections.", []string{"pool"}, nil)
)

type dbCollector struct {
	stats func() map[string]sql.DBStats
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpen, descInUse, descIdle, descWait, descWaitS, descMax} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	for pool, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(s.OpenConnections), pool)
		ch <- prometheus.MustNewConstMetric(descInUse, prometheus.GaugeValue, float64(s.InUse), pool)
		ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, float64(s.Idle), pool)
		ch <- prometheus.MustNewConstMetric(descWait, prometheus.CounterValue, float64(s.WaitCount), pool)
		ch <- prometheus.MustNewConstMetric(descWaitS, prometheus.CounterValue, s.WaitDuration.Seconds(), pool)
		ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(s.MaxOpenConnections), pool)
	}
}
