package main

import (
	"context"

	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/realtime"
)

// wireRealtime starts the bus (NATS when PARLEY_NATS_URL is set, else in
// process) and the WebSocket hub, feeds it every commit and mounts its routes.
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
	a.OnCommit(hub.PublishChanges)
	a.beforeShutdown = append(a.beforeShutdown, hub.Shutdown)
	a.deps.Ready["bus"] = bus.Check
	a.deps.Routes = append(a.deps.Routes, httpapi.RealtimeRoutes(a.store, hub, nil)...)
	return nil
}
