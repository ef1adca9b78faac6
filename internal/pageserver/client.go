package pageserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WriteTimeout bounds the sending of one frame (at most MaxData bytes):
// a server that stopped reading, or a network gone silent, fails the
// dump instead of holding the tree frozen for ever.
var WriteTimeout = 2 * time.Minute

// sockBuf is the send buffer size the client asks for.
const sockBuf = 8 << 20

// Client is the dump's side of a connection to a page server. Its
// methods may be called from several goroutines: each frame goes out
// whole, under one lock. The first error sticks: every later call
// returns it.
type Client struct {
	addr string
	conn *net.TCPConn
	raw  syscall.RawConn

	mu     sync.Mutex
	err    error
	next   uint32 // next file handle
	closed bool
	sent   uint64 // payload bytes sent
}

// Dial connects to the page server at addr (host:port) and exchanges
// hellos, within timeout: a dump calls it before it touches the tree,
// so that a server that is not there fails the dump at once.
func Dial(addr string, timeout time.Duration) (*Client, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("page server %s: %w", addr, err)
	}
	tc := c.(*net.TCPConn)
	// Room for a pipe's worth of pages (8 MiB) in flight; the kernel
	// caps it at net.core.wmem_max.
	// (The server leaves its receive buffer to the kernel's autotuning,
	// whose ceiling, tcp_rmem, is higher.)
	_ = tc.SetWriteBuffer(sockBuf)
	cl := &Client{addr: addr, conn: tc}
	if cl.raw, err = tc.SyscallConn(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("page server %s: %w", addr, err)
	}
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if _, err := tc.Write(AppendFrame(nil, Header{Op: OpHello, Offset: Version}, nil)); err != nil {
		tc.Close()
		return nil, fmt.Errorf("page server %s: hello: %w", addr, err)
	}
	h, err := cl.readAnswer()
	if err == nil && (h.Op != OpHello || h.Offset != Version) {
		err = fmt.Errorf("%w: answered hello with %v version %d", ErrProtocol, h.Op, h.Offset)
	}
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("page server %s: hello: %w", addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	return cl, nil
}

// Addr is the server's address as dialled.
func (c *Client) Addr() string { return c.addr }

// Sent is the number of file bytes sent so far.
func (c *Client) Sent() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// readAnswer reads one frame from the server; an OpError is returned as
// an error carrying the server's message.
func (c *Client) readAnswer() (Header, error) {
	h, err := ReadHeader(c.conn)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return h, fmt.Errorf("the server closed the connection")
		}
		return h, err
	}
	if h.Op == OpError {
		msg, err := ReadPayload(c.conn, h)
		if err != nil {
			return h, err
		}
		return h, fmt.Errorf("the server failed: %s", msg)
	}
	return h, nil
}

// fail makes err sticky. A write that failed because the server ended
// the connection is replaced by the server's own message, when it sent
// one.
func (c *Client) fail(err error) error {
	if c.err != nil {
		return c.err
	}
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, aerr := c.readAnswer(); aerr != nil && !errors.Is(aerr, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w (%v)", err, aerr)
		}
	}
	c.err = fmt.Errorf("page server %s: %w", c.addr, err)
	return c.err
}

// check returns the sticky error, if any, and sets the deadline of the
// frame about to be sent.
func (c *Client) check() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return fmt.Errorf("page server %s: connection closed", c.addr)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	return nil
}

// Open starts the file name on the server and returns its handle.
func (c *Client) Open(name string) (uint32, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(); err != nil {
		return 0, err
	}
	h := c.next
	c.next++
	if _, err := c.conn.Write(AppendFrame(nil, Header{Op: OpOpen, Handle: h}, []byte(name))); err != nil {
		return 0, c.fail(fmt.Errorf("open %s: %w", name, err))
	}
	return h, nil
}

// WriteAt sends b, to be written into file h at off.
func (c *Client) WriteAt(h uint32, b []byte, off int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) > 0 {
		if err := c.check(); err != nil {
			return err
		}
		n := min(len(b), MaxData)
		hdr := Header{Op: OpData, Handle: h, Len: uint32(n), Offset: uint64(off)}.Marshal()
		bufs := net.Buffers{hdr[:], b[:n]}
		if _, err := bufs.WriteTo(c.conn); err != nil {
			return c.fail(fmt.Errorf("send %d bytes at %d: %w", n, off, err))
		}
		c.sent += uint64(n)
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// SpliceAt sends n bytes read from the pipe pipeFd (blocking), to be written into
// file h at off: splice(2) moves them from the pipe into the socket,
// with no copy through user memory.
func (c *Client) SpliceAt(h uint32, pipeFd, n int, off int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n > 0 {
		if err := c.check(); err != nil {
			return err
		}
		m := min(n, MaxData)
		hdr := Header{Op: OpData, Handle: h, Len: uint32(m), Offset: uint64(off)}.Marshal()
		if _, err := c.conn.Write(hdr[:]); err != nil {
			return c.fail(fmt.Errorf("send %d bytes at %d: %w", m, off, err))
		}
		left := m
		var serr error
		werr := c.raw.Write(func(fd uintptr) bool {
			for left > 0 {
				// Without SPLICE_F_NONBLOCK: a pipe that is
				// not full yet is waited for (it is not
				// pollable here); the socket is non-blocking
				// (O_NONBLOCK, Go's), and EAGAIN means it is
				// full: the poller waits until it is writable.
				k, err := unix.Splice(pipeFd, nil, int(fd), nil, left, unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
				switch {
				case err == unix.EINTR:
					continue
				case err == unix.EAGAIN:
					return false
				case err != nil:
					serr = err
					return true
				case k == 0:
					serr = fmt.Errorf("pipe empty with %d bytes to go", left)
					return true
				}
				left -= int(k)
			}
			return true
		})
		if werr == nil {
			werr = serr
		}
		if werr != nil {
			return c.fail(fmt.Errorf("splice %d bytes at %d: %w", m, off, werr))
		}
		c.sent += uint64(m)
		n -= m
		off += int64(m)
	}
	return nil
}

// Close ends file h, whose size is size: the server checks it and
// syncs the file.
func (c *Client) Close(h uint32, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(); err != nil {
		return err
	}
	if _, err := c.conn.Write(AppendFrame(nil, Header{Op: OpClose, Handle: h, Offset: uint64(size)}, nil)); err != nil {
		return c.fail(fmt.Errorf("close file %d: %w", h, err))
	}
	return nil
}

// SendFile sends the local file path as name: open, data (sendfile(2)
// from the file into the socket), close.
func (c *Client) SendFile(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := c.Open(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	var off int64
	for off < fi.Size() {
		if err := c.check(); err != nil {
			c.mu.Unlock()
			return err
		}
		n := min(fi.Size()-off, MaxData)
		hdr := Header{Op: OpData, Handle: h, Len: uint32(n), Offset: uint64(off)}.Marshal()
		if _, err := c.conn.Write(hdr[:]); err != nil {
			c.mu.Unlock()
			return c.fail(fmt.Errorf("send %s: %w", name, err))
		}
		// TCPConn.ReadFrom of a (limited) file is sendfile(2).
		var m int64
		_, err := f.Seek(off, io.SeekStart)
		if err == nil {
			m, err = c.conn.ReadFrom(io.LimitReader(f, n))
		}
		if err == nil && m != n {
			err = fmt.Errorf("%s ended at %d of %d bytes", path, off+m, fi.Size())
		}
		if err != nil {
			c.mu.Unlock()
			return c.fail(fmt.Errorf("send %s: %w", name, err))
		}
		c.sent += uint64(n)
		off += n
	}
	c.mu.Unlock()
	return c.Close(h, fi.Size())
}

// Finish tells the server the dump is done and waits, up to timeout, for
// its answer: nil once every file is synced in the server's directory.
func (c *Client) Finish(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(); err != nil {
		return err
	}
	if _, err := c.conn.Write(AppendFrame(nil, Header{Op: OpFinish}, nil)); err != nil {
		return c.fail(fmt.Errorf("finish: %w", err))
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := c.readAnswer()
	if err == nil && h.Op != OpDone {
		err = fmt.Errorf("%w: answered finish with %v", ErrProtocol, h.Op)
	}
	if err != nil {
		c.err = fmt.Errorf("page server %s: finish: %w", c.addr, err)
		return c.err
	}
	c.closed = true
	c.conn.Close()
	return nil
}

// Abort ends the connection without finishing: the server keeps
// nothing of this dump.
func (c *Client) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.conn.Close()
	}
}
