//go:build linux

package progress

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSize(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1 << 10, "1.0 KiB"},
		{512 << 10, "512 KiB"},
		{412 << 20, "412 MiB"},
		{1 << 30, "1.0 GiB"},
		{3<<30 + 512<<20, "3.5 GiB"},
		{64 << 20, "64 MiB"},
	} {
		if got := Size(c.n); got != c.want {
			t.Errorf("Size(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	if got, want := Format("dump", 412<<20, 1<<30, 830<<20), "dump: 412 MiB of 1.0 GiB, 830 MiB/s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := Format("restore", 0, 64<<20, 0), "restore: 0 B of 64 MiB"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMeter(t *testing.T) {
	var m Meter
	m.AddTotal(100)
	m.Add(10)
	var probe uint64 = 5
	end := m.Track(func() uint64 { return probe })
	if d, tot := m.Snapshot(); d != 15 || tot != 100 {
		t.Fatalf("snapshot %d of %d, want 15 of 100", d, tot)
	}
	probe = 30
	end()
	probe = 1000 // no longer asked
	if d, _ := m.Snapshot(); d != 40 {
		t.Fatalf("done %d after the step, want 40", d)
	}
	endW := m.Watch(func() uint64 { return 20 })
	if d, _ := m.Snapshot(); d != 60 {
		t.Fatalf("done %d while watching, want 60", d)
	}
	endW()
	if d, _ := m.Snapshot(); d != 40 {
		t.Fatalf("done %d after watching, want 40: Watch counts nothing", d)
	}
	m.Add(500)
	if d, tot := m.Snapshot(); d != 100 || tot != 100 {
		t.Fatalf("snapshot %d of %d, want done capped at the total", d, tot)
	}
	// A nil meter counts nothing and does not panic.
	var nm *Meter
	nm.Add(1)
	nm.AddTotal(1)
	nm.Track(func() uint64 { return 1 })()
	nm.Watch(func() uint64 { return 1 })()
	if d, tot := nm.Snapshot(); d != 0 || tot != 0 {
		t.Fatal("nil meter counted")
	}
}

// syncBuf is a bytes.Buffer safe for the drawing goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestShowDrawsAndErases(t *testing.T) {
	var m Meter
	m.AddTotal(1 << 30)
	m.Add(1 << 20)
	var w syncBuf
	stop := show(&w, "dump", &m, 0, time.Millisecond)
	for i := 0; i < 200 && !strings.Contains(w.String(), "of 1.0 GiB"); i++ {
		time.Sleep(time.Millisecond)
		m.Add(1 << 20)
	}
	stop()
	stop() // twice is harmless
	out := w.String()
	if !strings.HasPrefix(out, "\rdump: ") || !strings.Contains(out, " of 1.0 GiB") {
		t.Fatalf("no progress line drawn: %q", out)
	}
	if !strings.HasSuffix(out, "\r\x1b[K") {
		t.Fatalf("line not erased at the end: %q", out)
	}
	if strings.Contains(out, "\n") {
		t.Fatalf("the line must update in place, not scroll: %q", out)
	}
}

func TestShowNothingBeforeDelay(t *testing.T) {
	var m Meter
	m.AddTotal(100)
	var w syncBuf
	stop := show(&w, "dump", &m, time.Hour, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	stop()
	if w.String() != "" {
		t.Fatalf("a short copy drew %q", w.String())
	}
}

// Not a terminal: Show starts nothing and writes nothing.
func TestShowSilentWhenNotATerminal(t *testing.T) {
	r, wp, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, out := range []*os.File{wp, f} {
		if IsTerminal(out) {
			t.Fatalf("%s taken for a terminal", out.Name())
		}
		var m Meter
		m.AddTotal(1 << 30)
		m.Add(1 << 29)
		stop := Show(out, "dump", &m)
		time.Sleep(Delay + 3*Interval)
		stop()
	}
	wp.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if got.Len() != 0 {
		t.Fatalf("wrote %q to a pipe", got.String())
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("wrote %d bytes to a file (%v)", fi.Size(), err)
	}
}

// A pty is a terminal: Show draws on it.
func TestShowOnTerminal(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	defer slave.Close()
	if !IsTerminal(slave) {
		t.Fatal("a pty is not taken for a terminal")
	}
	var m Meter
	m.AddTotal(1 << 30)
	m.Add(1 << 29)
	stop := Show(slave, "restore", &m)
	time.Sleep(Delay + 3*Interval)
	stop()
	buf := make([]byte, 4096)
	k, err := master.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:k]); !strings.Contains(got, "restore: 512 MiB of 1.0 GiB") {
		t.Fatalf("terminal got %q", got)
	}
}
