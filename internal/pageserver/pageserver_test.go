package pageserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Op: OpHello, Offset: Version},
		{Op: OpOpen, Handle: 7, Len: 11},
		{Op: OpData, Handle: 1, Len: MaxData, Offset: 1 << 40},
		{Op: OpClose, Handle: 3, Offset: 4096},
		{Op: OpFinish}, {Op: OpDone},
		{Op: OpError, Len: MaxMessage},
	} {
		b := h.Marshal()
		got, err := ParseHeader(b[:])
		if err != nil || got != h {
			t.Errorf("%+v: got %+v, %v", h, got, err)
		}
	}
}

func TestHeaderCorrupt(t *testing.T) {
	good := Header{Op: OpData, Handle: 1, Len: 4096, Offset: 8192}.Marshal()
	mod := func(f func(b []byte)) []byte {
		b := good
		f(b[:])
		return b[:]
	}
	for name, b := range map[string][]byte{
		"short":         good[:HeaderSize-1],
		"empty":         nil,
		"magic":         mod(func(b []byte) { b[0] = 'X' }),
		"op zero":       mod(func(b []byte) { binary.LittleEndian.PutUint16(b[4:], 0) }),
		"op unknown":    mod(func(b []byte) { binary.LittleEndian.PutUint16(b[4:], uint16(opEnd)) }),
		"flags":         mod(func(b []byte) { b[6] = 1 }),
		"data too long": mod(func(b []byte) { binary.LittleEndian.PutUint32(b[12:], MaxData+1) }),
		"offset":        mod(func(b []byte) { binary.LittleEndian.PutUint64(b[16:], MaxFileSize) }),
		"offset wraps":  mod(func(b []byte) { binary.LittleEndian.PutUint64(b[16:], ^uint64(0)) }),
		"hello payload": mod(func(b []byte) { binary.LittleEndian.PutUint16(b[4:], uint16(OpHello)) }),
		"name too long": mod(func(b []byte) {
			binary.LittleEndian.PutUint16(b[4:], uint16(OpOpen))
			binary.LittleEndian.PutUint32(b[12:], MaxName+1)
		}),
		"name empty": mod(func(b []byte) {
			binary.LittleEndian.PutUint16(b[4:], uint16(OpOpen))
			binary.LittleEndian.PutUint32(b[12:], 0)
		}),
		"message long": mod(func(b []byte) {
			binary.LittleEndian.PutUint16(b[4:], uint16(OpError))
			binary.LittleEndian.PutUint32(b[12:], MaxMessage+1)
		}),
	} {
		if _, err := ParseHeader(b); err == nil || !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", name, err)
		}
	}
}

func TestReadTruncated(t *testing.T) {
	frame := AppendFrame(nil, Header{Op: OpOpen, Handle: 1}, []byte("pages-1.img"))
	for n := 0; n < len(frame); n++ {
		r := bytes.NewReader(frame[:n])
		h, err := ReadHeader(r)
		if err == nil {
			_, err = ReadPayload(r, h)
		}
		if err == nil {
			t.Fatalf("%d of %d bytes read whole", n, len(frame))
		}
		if n == 0 && err != io.EOF {
			t.Errorf("nothing: %v, want EOF", err)
		}
		if n > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d bytes: %v, want ErrUnexpectedEOF", n, err)
		}
	}
}

// FuzzParseHeader: any bytes are a header or an error, never a panic.
func FuzzParseHeader(f *testing.F) {
	b := Header{Op: OpData, Len: 5, Offset: 3}.Marshal()
	f.Add(b[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil {
			m := h.Marshal()
			if !bytes.Equal(m[:], b[:HeaderSize]) {
				t.Fatalf("%x parsed as %+v", b, h)
			}
		}
	})
}

func TestCheckName(t *testing.T) {
	for _, n := range []string{"pages-1.img", "inventory.img", "a"} {
		if err := CheckName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "../x", "a/b", ".ckpt-pagesrv-1", "a\x00b", strings.Repeat("a", MaxName+1)} {
		if err := CheckName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

// serve runs a server on a loopback port and returns its address and the
// channel its result arrives on.
func serve(t *testing.T, dir string) (string, chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- (&Server{Dir: dir, IdleTimeout: 10 * time.Second}).ServeConn(c)
	}()
	return l.Addr().String(), done
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSession(t *testing.T) {
	dir := t.TempDir()
	addr, done := serve(t, dir)
	c, err := Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pages := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	h, err := c.Open("pages-1.img")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAt(h, pages[:4096], 0); err != nil {
		t.Fatal(err)
	}
	// The rest through a pipe, spliced into the socket.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	pw := os.NewFile(uintptr(p[1]), "pipe")
	go func() { pw.Write(pages[4096:]); pw.Close() }()
	if err := c.SpliceAt(h, p[0], len(pages)-4096, 4096); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(h, int64(len(pages))); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "inventory.img")
	if err := os.WriteFile(src, []byte("inv"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.SendFile("inventory.img", src); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listDir(t, dir), " "); got != "inventory.img pages-1.img" {
		t.Errorf("directory holds %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pages-1.img")); !bytes.Equal(b, pages) {
		t.Errorf("pages-1.img holds %d bytes, not those sent", len(b))
	}
}

// raw sends bytes to a server after a hello and returns its result: a
// broken stream is an error, and nothing is left in the directory.
func raw(t *testing.T, stream []byte) error {
	t.Helper()
	dir := t.TempDir()
	addr, done := serve(t, dir)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(AppendFrame(nil, Header{Op: OpHello, Offset: Version}, nil))
	c.Write(stream)
	c.(*net.TCPConn).CloseWrite()
	err = <-done
	c.Close()
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("the failed session left %v", names)
	}
	return err
}

func TestServerBrokenStreams(t *testing.T) {
	open := AppendFrame(nil, Header{Op: OpOpen, Handle: 1}, []byte("pages-1.img"))
	data := AppendFrame(nil, Header{Op: OpData, Handle: 1, Offset: 0}, make([]byte, 100))
	closeF := AppendFrame(nil, Header{Op: OpClose, Handle: 1, Offset: 100}, nil)
	finish := AppendFrame(nil, Header{Op: OpFinish}, nil)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, c := range map[string]struct {
		stream []byte
		want   string
	}{
		"no finish":       {cat(open, data, closeF), "ended before it finished"},
		"truncated data":  {cat(open, data[:len(data)-10]), "ended in the middle of pages-1.img"},
		"truncated head":  {cat(open, data[:10]), "ended before it finished"},
		"data not open":   {cat(data), "not open"},
		"wrong size":      {cat(open, data, AppendFrame(nil, Header{Op: OpClose, Handle: 1, Offset: 99}, nil), finish), "holds 100 bytes"},
		"not closed":      {cat(open, data, finish), "not closed"},
		"bad name":        {cat(AppendFrame(nil, Header{Op: OpOpen, Handle: 1}, []byte("../x")), finish), "not a plain name"},
		"opened twice":    {cat(open, open), "opened twice"},
		"garbage":         {bytes.Repeat([]byte{0xff}, 100), "bad magic"},
		"second hello":    {AppendFrame(nil, Header{Op: OpHello, Offset: Version}, nil), "unexpected hello"},
		"server's frame":  {AppendFrame(nil, Header{Op: OpDone}, nil), "unexpected done"},
		"huge data frame": {cat(open, Header{Op: OpData, Handle: 1, Len: MaxData + 1}.marshalRaw()), "at most"},
	} {
		t.Run(name, func(t *testing.T) {
			err := raw(t, c.stream)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error naming %q", err, c.want)
			}
		})
	}
}

// marshalRaw encodes h with no check of its length (Marshal does none
// either; named apart for what the test means).
func (h Header) marshalRaw() []byte { b := h.Marshal(); return b[:] }

// TestClientSeesServerError: a dump whose frames the server refuses gets
// the server's message.
func TestClientSeesServerError(t *testing.T) {
	dir := t.TempDir()
	addr, done := serve(t, dir)
	c, err := Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := c.Open("pages-1.img")
	_ = c.WriteAt(h, make([]byte, 10), 0)
	_ = c.Close(h, 11) // wrong size
	err = c.Finish(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "holds 10 bytes") {
		t.Errorf("finish: %v", err)
	}
	if err := <-done; err == nil {
		t.Error("server succeeded")
	}
}

func TestDialNobody(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if _, err := Dial(addr, 2*time.Second); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dial a closed port: %v", err)
	}
}
