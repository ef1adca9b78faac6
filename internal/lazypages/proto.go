//go:build linux && amd64

// Package lazypages is lazy restore, CRIU's lazy-pages: a server (Serve,
// `ckpt lazy-pages -D DIR`) that puts a restored task's private
// anonymous memory in place through userfaultfd, page by page as the
// task touches it and in the background for the rest, and the client a
// restore (`ckpt restore --lazy-pages`) uses to hand it each task's
// userfaultfd. The restore registers the areas; this package never
// touches a task by ptrace.
//
// The two talk over a SOCK_SEQPACKET unix socket in the images
// directory (SocketName): one JSON message per packet, a task's
// userfaultfd beside its message (SCM_RIGHTS), one answer per message.
// One server serves one restore, as CRIU's: `ckpt lazy-pages -D DIR`
// first, then `ckpt restore -D DIR --lazy-pages`; a restore that finds
// no server fails, naming what to start (it does not start one itself:
// the server must outlive a `restore -d`, and its log and exit status
// are the user's to see).
//
// Failure rules (checked on Linux 6.18). Once the restore has handed a
// task over, only the server holds its userfaultfd. When it closes it
// (every page in), the kernel unregisters the areas. When it dies
// before that, the same happens: the areas are unregistered and a
// page not yet in reads as zeros, silently, rather than hanging the
// task. So the server kills the tasks whose pages are not all in when
// it is stopped (a signal to `ckpt lazy-pages`, Options.Context) or
// meets an error; nothing can when it is killed with SIGKILL. A task
// forked after the restore is known to the server only by its
// userfaultfd (the fork event gives no PID): it is not killed. A restore
// that fails kills its tasks (its undo steps); the server sees them go
// (ESRCH), then the connection close, and exits with an error.
package lazypages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SocketName is the server's socket, in the images directory.
const SocketName = "lazy-pages.socket"

// SocketPath is the server's socket for the images in dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Op values of a request.
const (
	opTask = "task" // a task's userfaultfd, with the areas it has registered
	opDone = "done" // the restore is over: no more tasks come
)

// request is one message of the restore to the server.
type request struct {
	Op string `json:"op"`
	// Pid is the task's dumped PID (which names its images); HostPid its
	// PID here, for messages and for killing it should the server have
	// to give up.
	Pid     int `json:"pid,omitempty"`
	HostPid int `json:"host_pid,omitempty"`
	// Areas are the registered ranges, [start, end) page-aligned.
	Areas [][2]uint64 `json:"areas,omitempty"`
}

// reply is the server's answer to one request.
type reply struct {
	Error string `json:"error,omitempty"`
}

// maxMsg bounds one message (a task with many areas).
const maxMsg = 1 << 20

// Client is a restore's connection to a lazy-pages server.
type Client struct {
	c *net.UnixConn
}

// ErrNoServer is returned by Dial when no server listens on the socket.
var ErrNoServer = errors.New("no lazy-pages server")

// Dial connects to the server for the images in dir. With none there,
// the error says what to start.
func Dial(dir string) (*Client, error) {
	path := SocketPath(dir)
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("%w at %s (%v): start `ckpt lazy-pages -D %s` first, then restore with --lazy-pages", ErrNoServer, path, err, dir)
	}
	return &Client{c: c}, nil
}

// Send hands the server the userfaultfd uffd of the task dumped as pid
// (hostPid here), with the areas registered on it. The caller keeps its
// own copy of uffd and closes it.
func (cl *Client) Send(pid, hostPid int, areas [][2]uint64, uffd int) error {
	return cl.call(request{Op: opTask, Pid: pid, HostPid: hostPid, Areas: areas}, unix.UnixRights(uffd))
}

// Done tells the server that the restore is over and closes the
// connection: the server exits once every page is in.
func (cl *Client) Done() error {
	err := cl.call(request{Op: opDone}, nil)
	if cerr := cl.c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close drops the connection (a restore that failed: the server goes
// once the tasks it serves are gone).
func (cl *Client) Close() error { return cl.c.Close() }

func (cl *Client) call(req request, oob []byte) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, _, err := cl.c.WriteMsgUnix(b, oob, nil); err != nil {
		return fmt.Errorf("lazy-pages server: send %s: %w", req.Op, err)
	}
	buf := make([]byte, 4096)
	n, err := cl.c.Read(buf)
	if err != nil {
		return fmt.Errorf("lazy-pages server: answer to %s: %w", req.Op, err)
	}
	if n == 0 {
		return fmt.Errorf("lazy-pages server: closed the connection at %s", req.Op)
	}
	var r reply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		return fmt.Errorf("lazy-pages server: answer to %s: %w", req.Op, err)
	}
	if r.Error != "" {
		return fmt.Errorf("lazy-pages server: %s", r.Error)
	}
	return nil
}

// readRequest reads one request and the fds passed with it.
func readRequest(c *net.UnixConn) (request, []int, error) {
	buf := make([]byte, maxMsg)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if errors.Is(err, io.EOF) {
		return request{}, nil, errEOF
	}
	if err != nil {
		return request{}, nil, err
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return request{}, nil, err
		}
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n == 0 {
		closeAll(fds)
		return request{}, nil, errEOF
	}
	var r request
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		closeAll(fds)
		return request{}, nil, fmt.Errorf("bad request: %w", err)
	}
	return r, fds, nil
}

var errEOF = errors.New("connection closed")

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func writeReply(c *net.UnixConn, err error) error {
	var r reply
	if err != nil {
		r.Error = err.Error()
	}
	b, _ := json.Marshal(r)
	_, werr := c.Write(b)
	return werr
}

// stale removes a socket file that no server listens on any more.
func stale(path string) error {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err == nil {
		c.Close()
		return fmt.Errorf("a lazy-pages server already listens on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
