package main

import (
	"context"

	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/realtime"
	"github.com/prometheus/client_golang/prometheus"
)

// wireRealtime starts the bus (NATS when PARLEY_NATS_URL is set, else in
// process) and the WebSocket hub, feeds it every commit, mounts its routes
// and exports its statistics in /metrics.
func wireRealtime(_ context.Context, a *app) error {
	var bus interface {
		realtime.Bus
		Check(context.Context) error
	}
	if a.cfg.NATSURL != "" {
		nb, err := realtime.DialNATS(a.cfg.NATSURL, a.log)
		if err != nil {
			return err
		}
		bus = nb
	} else {
		bus = realtime.NewMemoryBus(a.log, 0)
	}
	a.closers = append(a.closers, bus.Close)
	hub, err := realtime.NewHub(realtime.HubOptions{Bus: bus, Changes: a.store, Logger: a.log})
	if err != nil {
		return err
	}
	if err := a.metrics.Registry.Register(realtimeCollector{hub.Stats}); err != nil {
		return err
	}
	a.OnCommit(hub.PublishChanges)
	a.beforeShutdown = append(a.beforeShutdown, hub.Shutdown)
	a.deps.Ready["bus"] = bus.Check
	a.deps.Routes = append(a.deps.Routes, httpapi.RealtimeRoutes(a.store, hub, nil)...)
	return nil
}

var (
	descRTConns = prometheus.NewDesc("parley_realtime_connections",
		"Open realtime WebSocket connections on this node.", nil, nil)
	descRTAccepted = prometheus.NewDesc("parley_realtime_connections_accepted_total",
		"Realtime WebSocket connections accepted.", nil, nil)
	descRTFrames = prometheus.NewDesc("parley_realtime_frames_sent_total",
		"WebSocket frames written by the realtime hub (changes, signals, hellos, pongs, pings).", nil, nil)
	descRTSlow = prometheus.NewDesc("parley_realtime_slow_consumer_disconnects_total",
		"Connections closed with 4000 because their send queue filled up.", nil, nil)
	descRTSignals = prometheus.NewDesc("parley_realtime_signals_total",
		"Ephemeral signals fanned out to this node's connections, by kind.", []string{"kind"}, nil)
	descRTQueued = prometheus.NewDesc("parley_realtime_queued_frames",
		"Frames queued in the hub for connections and not yet written.", nil, nil)
	descRTWriteQueue = prometheus.NewDesc("parley_realtime_write_queue_connections",
		"Connections with queued frames waiting for a hub writer.", nil, nil)
	descRTRepaired = prometheus.NewDesc("parley_realtime_repaired_changes_total",
		"Changes the hub read from the change log to fill a gap or in the safety poll.", nil, nil)
	descRTWorkspaces = prometheus.NewDesc("parley_realtime_workspaces",
		"Workspaces with realtime connections on this node.", nil, nil)
)

// realtimeCollector reads the hub's statistics at scrape time.
type realtimeCollector struct{ stats func() realtime.Stats }

func (realtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRTConns, descRTAccepted, descRTFrames, descRTSlow, descRTSignals,
		descRTQueued, descRTWriteQueue, descRTRepaired, descRTWorkspaces} {
		ch <- d
	}
}

func (c realtimeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descRTConns, float64(s.Connections))
	counter(descRTAccepted, s.Accepted)
	counter(descRTFrames, s.FramesSent)
	counter(descRTSlow, s.SlowConsumers)
	counter(descRTSignals, s.TypingSignals, "typing")
	counter(descRTSignals, s.PresenceSignals, "presence")
	counter(descRTSignals, s.ViewersSignals, "viewers")
	gauge(descRTQueued, float64(s.QueuedFrames))
	gauge(descRTWriteQueue, float64(s.WriteQueue))
	counter(descRTRepaired, s.Repaired)
	gauge(descRTWorkspaces, float64(s.Workspaces))
}
