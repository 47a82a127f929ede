//go:build unix

package realtime

import (
	"errors"
	"net"
	"syscall"
)

// rawWriter writes to a socket without waiting for it to become writable.
type rawWriter struct{ rc syscall.RawConn }

func newRawWriter(c net.Conn) rawWriter {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rawWriter{rc}
		}
	}
	return rawWriter{}
}

func (w rawWriter) ok() bool { return w.rc != nil }

// tryWrite writes as much of b as the socket buffer takes now.
func (w rawWriter) tryWrite(b []byte) (int, error) {
	n := 0
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			switch {
			case err == nil:
				if m <= 0 {
					return true
				}
			case errors.Is(err, syscall.EINTR):
			case errors.Is(err, syscall.EAGAIN):
				return true
			default:
				werr = err
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
