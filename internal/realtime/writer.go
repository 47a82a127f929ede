package realtime

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The write side of the connections costs no goroutine while a connection
// has nothing to send. Server frames are unmasked, so a frame is the same
// bytes on every connection: the hub encodes each WebSocket frame once
// (wsFrame) and queues the encoded bytes, shared, on every connection that
// may see it. A connection with queued frames is scheduled on the hub's
// writer pool (a few goroutines, started on demand); a worker takes a batch
// and writes it with ONE non-blocking write to the socket. A connection
// whose socket is full (a slow reader) gets a goroutine of its own that
// finishes the write with a deadline, so the workers never wait for a peer.
//
// The WebSocket library (github.com/coder/websocket) does the handshake,
// reads and the control frames: pongs, the close handshake. Its writes are
// whole frames of at most 127 bytes, each a single Write on the netConn
// (writeBufSize holds one), which the netConn serialises with the hub's
// writes, so frames never interleave.
//
// At most one goroutine writes a connection's frames at a time: the
// connection is "owned" by the ServeWS handler during the hello and the
// replay, then by a pool worker, a slow-path writer or the finisher. Only
// the owner takes from the queue.

const (
	// readBufSize and writeBufSize are the buffers the WebSocket library gets
	// on a hijacked connection (instead of net/http's 4 KiB each): client
	// frames are small, and the library only writes control frames.
	readBufSize  = 512
	writeBufSize = 256
	// maxBatchBytes bounds the frames one worker turn takes from a queue.
	maxBatchBytes = 64 << 10
	// maxPooledBatch keeps batch buffers that grew large out of the pool.
	maxPooledBatch = 256 << 10
)

// WebSocket opcodes the hub writes itself.
const (
	opText = 0x1
	opPing = 0x9
)

// wsFrame encodes payload as one final, unmasked WebSocket frame (RFC 6455
// section 5.2).
func wsFrame(op byte, payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n <= 125:
		b = make([]byte, 2, 2+n)
		b[1] = byte(n)
	case n <= 0xFFFF:
		b = make([]byte, 4, 4+n)
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10, 10+n)
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[0] = 0x80 | op
	return append(b, payload...)
}

// textFrame encodes a text message.
func textFrame(payload []byte) []byte { return wsFrame(opText, payload) }

var batchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 8<<10)
	return &b
}}

// netConn is the hijacked connection under the WebSocket library; the hub
// writes its encoded frames to it directly.
type netConn struct {
	net.Conn
	pre []byte // bytes the HTTP server had read past the handshake request
	raw rawWriter

	// mu serialises writes to the socket. A slow-path write holds it until
	// the rest of the batch is written (writeRest unlocks it).
	mu   sync.Mutex
	buf  *[]byte // pooled batch buffer of a pending write
	rest []byte  // unwritten tail of a batch (slow path)

	// frames is a batch that writeFrames could not start because the socket
	// was busy (the library writing a control frame to a full socket). Only
	// the connection's write owner uses it.
	frames [][]byte
}

func (c *netConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Write is the library's: whole control frames.
func (c *netConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *netConn) releaseLocked() {
	c.rest = nil
	if b := c.buf; b != nil {
		c.buf = nil
		if cap(*b) <= maxPooledBatch {
			*b = (*b)[:0]
			batchPool.Put(b)
		}
	}
}

// batchLocked returns frames as one byte slice: the frame itself when there
// is one (shared: only read), else a pooled buffer.
func (c *netConn) batchLocked(frames [][]byte) []byte {
	if len(frames) == 1 {
		return frames[0]
	}
	c.buf = batchPool.Get().(*[]byte)
	for _, f := range frames {
		*c.buf = append(*c.buf, f...)
	}
	return *c.buf
}

// writeFrames writes encoded frames as far as the socket takes them now, in
// one write, without waiting. When it returns pending, the caller must call
// writeRest (on a goroutine that may wait) to write the rest.
func (c *netConn) writeFrames(frames [][]byte) (pending bool, err error) {
	if !c.mu.TryLock() {
		c.frames = frames
		return true, nil
	}
	b := c.batchLocked(frames)
	n := 0 // without the file descriptor, the slow path writes everything
	if c.raw.ok() {
		n, err = c.raw.tryWrite(b)
	}
	if err != nil || n == len(b) {
		c.releaseLocked()
		c.mu.Unlock()
		return false, err
	}
	c.rest = b[n:] // mu stays locked: nothing may come between the parts
	return true, nil
}

// writeRest writes what writeFrames left, within timeout.
func (c *netConn) writeRest(timeout time.Duration) error {
	if frames := c.frames; frames != nil {
		c.frames = nil
		c.mu.Lock()
		c.rest = c.batchLocked(frames)
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.Conn.Write(c.rest)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	c.releaseLocked()
	c.mu.Unlock()
	return err
}

// hijackWriter wraps the ResponseWriter given to websocket.Accept: the
// hijacked connection becomes a netConn with small library buffers.
type hijackWriter struct {
	http.ResponseWriter
	nc *netConn
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	raw, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw != nil && brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			_ = raw.Close()
			return nil, nil, err
		}
	}
	nc := &netConn{Conn: raw, raw: newRawWriter(raw)}
	if brw != nil {
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			nc.pre = append([]byte(nil), b...)
		}
	}
	w.nc = nc
	return nc, bufio.NewReadWriter(bufio.NewReaderSize(nc, readBufSize), bufio.NewWriterSize(nc, writeBufSize)), nil
}

// sendQueue is a connection's bounded FIFO of frames. It holds memory only
// for the frames it holds, and a frame list shared by many connections (one
// fan-out) is queued without copying while the queue is empty.
type sendQueue struct {
	mu    sync.Mutex
	items [][]byte
	max   int
	owned bool // a writer owns the connection's write side
	dead  bool // the connection was killed: the owner finishes it
}

// writerPool runs queued connections' writes on a few goroutines, started
// on demand and gone when there is nothing to write.
type writerPool struct {
	mu      sync.Mutex
	q       []turner
	head    int
	running int
	max     int
	waiting atomic.Int64 // connections in q (stats)
}

// turner is a connection as the pool sees it.
type turner interface{ writeTurn() }

func newWriterPool() *writerPool {
	return &writerPool{max: max(2, runtime.GOMAXPROCS(0))}
}

// add schedules c, which the caller owns on its behalf.
func (p *writerPool) add(c turner) {
	p.mu.Lock()
	p.q = append(p.q, c)
	p.waiting.Add(1)
	spawn := p.running < p.max
	if spawn {
		p.running++
	}
	p.mu.Unlock()
	if spawn {
		go p.work()
	}
}

func (p *writerPool) work() {
	for {
		p.mu.Lock()
		if p.head == len(p.q) {
			if cap(p.q) > 1<<16 {
				p.q = nil // give back an unusual burst's memory
			} else {
				p.q = p.q[:0]
			}
			p.head = 0
			p.running--
			p.mu.Unlock()
			return
		}
		c := p.q[p.head]
		p.q[p.head] = nil
		p.head++
		if p.head >= 4096 && 2*p.head >= len(p.q) { // never drained: drop the consumed front
			n := copy(p.q, p.q[p.head:])
			clear(p.q[n:])
			p.q, p.head = p.q[:n], 0
		}
		p.waiting.Add(-1)
		p.mu.Unlock()
		c.writeTurn()
	}
}
