//go:build !unix

package realtime

import "net"

// rawWriter is unavailable here: every batch is written on the slow path.
type rawWriter struct{}

func newRawWriter(net.Conn) rawWriter { return rawWriter{} }

func (rawWriter) ok() bool { return false }

func (rawWriter) tryWrite([]byte) (int, error) { return 0, nil }
