package pageserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Server receives the images of one dump into Dir.
type Server struct {
	// Dir receives the images; it is created if missing.
	Dir string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// IdleTimeout bounds the wait for the next frame (0: no bound): a
	// dump whose machine vanished without closing the connection ends
	// the session instead of holding it forever.
	IdleTimeout time.Duration
}

// stagePrefix names the directory inside Dir where a session keeps the
// files until the dump finishes.
const stagePrefix = ".ckpt-pagesrv-"

// inventoryName is the image that marks a whole dump: moved in last.
const inventoryName = "inventory.img"

// maxOpen bounds the files one session may have open at once.
const maxOpen = 1 << 12

type srvFile struct {
	name string
	f    *os.File
}

// session is the state of one connection.
type session struct {
	s      *Server
	conn   net.Conn
	stage  string
	open   map[uint32]*srvFile
	done   map[string]bool // names closed, complete
	bytes  uint64
	frames uint64
	moved  bool // files were moved into Dir
}

// ServeConn receives one dump on conn: the files it sends are kept in a
// directory of their own inside Dir until it sends OpFinish, then synced
// and moved into Dir (inventory.img last), and OpDone is the answer. On
// any error (a broken frame, a connection that ends before OpFinish, a
// failed write) nothing of the session is left in Dir, the client is
// sent the error when it can be, and the error is returned.
func (s *Server) ServeConn(conn net.Conn) (err error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("page server: images directory: %w", err)
	}
	stage, err := os.MkdirTemp(s.Dir, stagePrefix)
	if err != nil {
		return fmt.Errorf("page server: images directory: %w", err)
	}
	ss := &session{s: s, conn: conn, stage: stage, open: map[uint32]*srvFile{}, done: map[string]bool{}}
	defer func() {
		for _, f := range ss.open {
			f.f.Close()
		}
		os.RemoveAll(stage)
		if err != nil {
			// Best effort: the client may be gone.
			msg := err.Error()
			if len(msg) > MaxMessage {
				msg = msg[:MaxMessage]
			}
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write(AppendFrame(nil, Header{Op: OpError}, []byte(msg)))
			if ss.moved {
				err = fmt.Errorf("page server: %w", err)
			} else {
				err = fmt.Errorf("page server: %w; nothing of this dump was kept", err)
			}
		}
	}()
	return ss.run()
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (ss *session) next() (Header, error) {
	if ss.s.IdleTimeout > 0 {
		_ = ss.conn.SetReadDeadline(time.Now().Add(ss.s.IdleTimeout))
	}
	h, err := ReadHeader(ss.conn)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h, fmt.Errorf("the dump's connection ended before it finished (after %d frames, %d bytes)", ss.frames, ss.bytes)
		}
		return h, fmt.Errorf("read frame: %w", err)
	}
	ss.frames++
	return h, nil
}

func (ss *session) run() error {
	h, err := ss.next()
	if err != nil {
		return err
	}
	if h.Op != OpHello {
		return fmt.Errorf("%w: first frame is %v, not hello", ErrProtocol, h.Op)
	}
	if h.Offset != Version {
		return fmt.Errorf("%w: the dump speaks version %d, this server %d", ErrProtocol, h.Offset, Version)
	}
	if _, err := ss.conn.Write(AppendFrame(nil, Header{Op: OpHello, Offset: Version}, nil)); err != nil {
		return fmt.Errorf("answer hello: %w", err)
	}
	for {
		h, err := ss.next()
		if err != nil {
			return err
		}
		switch h.Op {
		case OpOpen:
			err = ss.openFile(h)
		case OpData:
			err = ss.data(h)
		case OpClose:
			err = ss.closeFile(h)
		case OpFinish:
			return ss.finish()
		default:
			err = fmt.Errorf("%w: unexpected %v frame from the dump", ErrProtocol, h.Op)
		}
		if err != nil {
			return err
		}
	}
}

func (ss *session) openFile(h Header) error {
	b, err := ReadPayload(ss.conn, h)
	if err != nil {
		return err
	}
	name := string(b)
	if err := CheckName(name); err != nil {
		return err
	}
	if _, ok := ss.open[h.Handle]; ok {
		return fmt.Errorf("%w: file handle %d opened twice", ErrProtocol, h.Handle)
	}
	if len(ss.open) >= maxOpen {
		return fmt.Errorf("%w: more than %d files open", ErrProtocol, maxOpen)
	}
	if ss.done[name] {
		return fmt.Errorf("%w: %s sent twice", ErrProtocol, name)
	}
	for _, f := range ss.open {
		if f.name == name {
			return fmt.Errorf("%w: %s opened twice", ErrProtocol, name)
		}
	}
	f, err := os.OpenFile(filepath.Join(ss.stage, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	ss.open[h.Handle] = &srvFile{name: name, f: f}
	return nil
}

func (ss *session) file(h Header) (*srvFile, error) {
	f, ok := ss.open[h.Handle]
	if !ok {
		return nil, fmt.Errorf("%w: %v frame for file handle %d, which is not open", ErrProtocol, h.Op, h.Handle)
	}
	return f, nil
}

// data writes a frame's payload into its file. From a TCP connection
// os.File.ReadFrom splices (socket to pipe to file, no copy through
// user memory).
func (ss *session) data(h Header) error {
	f, err := ss.file(h)
	if err != nil {
		return err
	}
	if _, err := f.f.Seek(int64(h.Offset), io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	n, err := f.f.ReadFrom(io.LimitReader(ss.conn, int64(h.Len)))
	ss.bytes += uint64(n)
	if err != nil {
		return fmt.Errorf("write %s at %d: %w", f.name, h.Offset, err)
	}
	if n != int64(h.Len) {
		return fmt.Errorf("the dump's connection ended in the middle of %s (%d of %d bytes at %d)", f.name, n, h.Len, h.Offset)
	}
	if n >= 1<<20 {
		// Start writing it to disk now (no wait), as the dump does
		// for a local image: the sync at OpClose then finds little
		// left. Only a hint: an error shows again at the sync.
		_ = unix.SyncFileRange(int(f.f.Fd()), int64(h.Offset), n, unix.SYNC_FILE_RANGE_WRITE)
	}
	return nil
}

// closeFile checks the file's size against the dump's and syncs it.
func (ss *session) closeFile(h Header) error {
	f, err := ss.file(h)
	if err != nil {
		return err
	}
	delete(ss.open, h.Handle)
	fi, err := f.f.Stat()
	if err == nil && uint64(fi.Size()) != h.Offset {
		err = fmt.Errorf("holds %d bytes, the dump sent %d", fi.Size(), h.Offset)
	}
	if err == nil {
		err = f.f.Sync()
	}
	if err != nil {
		f.f.Close()
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.name, err)
	}
	ss.done[f.name] = true
	return nil
}

// finish moves every file into Dir, inventory.img last and an earlier
// dump's inventory.img removed first (the directory never looks like a
// whole dump made of two), syncs the directory and answers OpDone.
func (ss *session) finish() error {
	if len(ss.open) > 0 {
		var names []string
		for _, f := range ss.open {
			names = append(names, f.name)
		}
		sort.Strings(names)
		return fmt.Errorf("%w: the dump finished with files not closed: %v", ErrProtocol, names)
	}
	dir := ss.s.Dir
	names := make([]string, 0, len(ss.done))
	for n := range ss.done {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i] == inventoryName, names[j] == inventoryName
		if a != b {
			return b
		}
		return names[i] < names[j]
	})
	if ss.done[inventoryName] {
		if err := os.Remove(filepath.Join(dir, inventoryName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the earlier dump's %s: %w", inventoryName, err)
		}
	}
	ss.moved = true
	for _, n := range names {
		if n == inventoryName {
			if err := syncDir(dir); err != nil {
				return err
			}
		}
		if err := os.Rename(filepath.Join(ss.stage, n), filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("move %s into %s: %w", n, dir, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if _, err := ss.conn.Write(AppendFrame(nil, Header{Op: OpDone}, nil)); err != nil {
		// The files are in: the dump will not know, and fails.
		return fmt.Errorf("answer the dump's finish: %w", err)
	}
	ss.s.logf("page server: received %d files, %d bytes, into %s", len(names), ss.bytes, dir)
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
