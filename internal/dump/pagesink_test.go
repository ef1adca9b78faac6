//go:build linux && amd64

package dump

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pipeOf returns a pipe that holds b.
func pipeOf(t *testing.T, b []byte) int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]) })
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, len(b)); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Write(p[1], b); err != nil || n != len(b) {
		t.Fatalf("fill pipe: %d, %v", n, err)
	}
	unix.Close(p[1])
	return p[0]
}

// pattern returns n bytes that differ from page to page.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/4096) + byte(i%251)
	}
	return b
}

// TestSecondWriter: the second writer makes the image long enough, both
// writers fill their parts of it, in any order, and a part that is not
// whole pages goes through splice.
func TestSecondWriter(t *testing.T) {
	for _, sync := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "pages-1.img")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var rw *os.File
		s := &fileSink{f: f, sync: sync, rw: func() *os.File {
			if rw == nil {
				rw, _ = os.OpenFile(path, os.O_RDWR, 0)
			}
			return rw
		}}
		const part = 64 << 10
		w, err := s.second(3*part + 100)
		if err != nil || w == nil {
			t.Fatalf("second: %v, %v", w != nil, err)
		}
		if fi, _ := os.Stat(path); fi.Size() != 3*part+100 {
			t.Fatalf("image is %d bytes before the copy, want %d", fi.Size(), 3*part+100)
		}
		a, b, c, d := pattern(part, 1), pattern(part, 2), pattern(part, 3), pattern(100, 4)
		// Out of order, as two goroutines finish them.
		if err := w(pipeOf(t, c), part, 2*part); err != nil {
			t.Fatal(err)
		}
		if err := s.spliceAt(pipeOf(t, a), part, 0); err != nil {
			t.Fatal(err)
		}
		if err := w(pipeOf(t, b), part, part); err != nil {
			t.Fatal(err)
		}
		if err := w(pipeOf(t, d), 100, 3*part); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Join([][]byte{a, b, c, d}, nil)
		if !bytes.Equal(got, want) {
			t.Errorf("sync=%v: the image differs from what the pipes held (%d bytes, want %d)", sync, len(got), len(want))
		}
		rw.Close()
	}
}

// TestSecondWriterShortPipe: a pipe that holds less than asked for is an
// error, not a hang or a short image taken for whole.
func TestSecondWriterShortPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages-1.img")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &fileSink{f: f, rw: func() *os.File { return f }}
	w, err := s.second(2 * 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := w(pipeOf(t, pattern(4096, 1)), 2*4096, 0); err == nil {
		t.Error("a pipe with one page of two gave no error")
	}
}

// TestSecondWriterNone: no second writer with O_DIRECT, nor where the
// image cannot be opened for a mapping.
func TestSecondWriterNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages-1.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, s := range map[string]*fileSink{
		"direct": {f: f, direct: f, rw: func() *os.File { return f }},
		"no rw":  {f: f, rw: func() *os.File { return nil }},
	} {
		if w, err := s.second(4096); w != nil || err != nil {
			t.Errorf("%s: second gave a writer (%v) or an error (%v)", name, w != nil, err)
		}
	}
}

// TestPageWritersEnv: CKPT_PAGE_WRITERS takes 1, 2 or auto, and names
// what it refuses.
func TestPageWritersEnv(t *testing.T) {
	for v, want := range map[string]pageWriters{"1": {n: 1}, "2": {n: 2, always: true}} {
		t.Setenv("CKPT_PAGE_WRITERS", v)
		if got, err := pageWritersEnv(); got != want || err != nil {
			t.Errorf("CKPT_PAGE_WRITERS=%s: %+v, %v; want %+v", v, got, err, want)
		}
	}
	t.Setenv("CKPT_PAGE_WRITERS", "3")
	if _, err := pageWritersEnv(); err == nil || !strings.Contains(err.Error(), "want 1, 2 or auto") {
		t.Errorf("CKPT_PAGE_WRITERS=3: %v, want a refusal that names the values", err)
	}
	for _, v := range []string{"", "auto"} {
		t.Setenv("CKPT_PAGE_WRITERS", v)
		got, err := pageWritersEnv()
		if want := min(runtime.NumCPU(), 2); got.n != want || got.always || err != nil {
			t.Errorf("CKPT_PAGE_WRITERS=%q: %+v, %v; want %d writers, the second only when splice is slow", v, got, err, want)
		}
	}
}

// TestSecondWriterDiskFull: a full file system fails a write through the
// mapping with a fault; the error says the disk is full.
func TestSecondWriterDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("ckpt-full", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, 0)
	path := filepath.Join(dir, "pages-1.img")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &fileSink{f: f, rw: func() *os.File { return f }}
	const n = 256 << 10
	w, err := s.second(n)
	if err != nil {
		t.Fatal(err)
	}
	err = w(pipeOf(t, pattern(n, 1)), n, 0)
	if err == nil || !errors.Is(err, unix.ENOSPC) {
		t.Errorf("256 KiB into a 64 KiB file system: %v, want no space left", err)
	}
}
