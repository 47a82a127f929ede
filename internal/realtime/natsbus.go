package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSBus is the Bus of a cluster: core NATS publish/subscribe. Messages lost
// while a node is disconnected are repaired by the hub from the change log.
type NATSBus struct {
	nc  *nats.Conn
	log *slog.Logger
}

// DialNATS connects to the NATS server at url (reconnecting forever) and
// returns a bus that owns the connection.
func DialNATS(url string, logger *slog.Logger) (*NATSBus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	nc, err := nats.Connect(url,
		nats.Name("parley"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("realtime: nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) { logger.Info("realtime: nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Warn("realtime: nats error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("realtime: connect nats: %w", err)
	}
	return &NATSBus{nc: nc, log: logger}, nil
}

// Publish implements Bus.
func (b *NATSBus) Publish(_ context.Context, subject string, data []byte) error {
	if err := b.nc.Publish(subject, data); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return ErrBusClosed
		}
		return fmt.Errorf("realtime: nats publish: %w", err)
	}
	return nil
}

// Subscribe implements Bus. It flushes so that the server has registered the
// subscription when it returns.
func (b *NATSBus) Subscribe(subject string, fn func(data []byte)) (func(), error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("realtime: nats subscribe: %w", err)
	}
	if err := sub.SetPendingLimits(1<<16, 256<<20); err != nil {
		b.log.Warn("realtime: nats pending limits", "err", err)
	}
	if err := b.nc.FlushTimeout(5 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("realtime: nats subscribe flush: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Close implements Bus.
func (b *NATSBus) Close() error {
	b.nc.Close()
	return nil
}

// Check reports whether the NATS connection is up (for /readyz).
func (b *NATSBus) Check(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("realtime: nats not connected (%s)", b.nc.Status())
	}
	d := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	return b.nc.FlushTimeout(d)
}
