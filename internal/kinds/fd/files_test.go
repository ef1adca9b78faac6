//go:build linux && amd64

package fd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/model"
)

// A FIFO held by a process other than ckpt and the tree is held outside;
// once that process counts as the tree, it is not.
func TestHeldOutside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	none := func(int) bool { return false }
	if out, err := heldOutside(none, st.Dev, st.Ino); err != nil || out {
		t.Fatalf("held only by ckpt itself: outside %v, %v", out, err)
	}
	cmd := exec.Command("sleep", "30")
	cmd.Stdin = f
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if out, err := heldOutside(none, st.Dev, st.Ino); err != nil || !out {
		t.Errorf("held by another process: outside %v, %v", out, err)
	}
	child := func(pid int) bool { return pid == cmd.Process.Pid }
	if out, err := heldOutside(child, st.Dev, st.Ino); err != nil || out {
		t.Errorf("held by the tree: outside %v, %v", out, err)
	}
}

// An unlinked file over the limit is refused naming its size and the
// option; a FIFO has no contents and is never over it.
func TestCheckGhost(t *testing.T) {
	st := unix.Stat_t{Mode: unix.S_IFREG | 0o600, Size: 3 << 20}
	err := CheckGhost(7, "fd 3, file /tmp/x (deleted)", &st, 0)
	if err == nil || !strings.Contains(err.Error(), "3145728 bytes") || !strings.Contains(err.Error(), "--ghost-limit") || !strings.Contains(err.Error(), "/tmp/x") {
		t.Errorf("3 MiB file, default limit: %v", err)
	}
	if err := CheckGhost(7, "x", &st, 4<<20); err != nil {
		t.Errorf("3 MiB file, limit 4 MiB: %v", err)
	}
	fifo := unix.Stat_t{Mode: unix.S_IFIFO | 0o600}
	if err := CheckGhost(7, "x", &fifo, 1); err != nil {
		t.Errorf("FIFO: %v", err)
	}
	dev := unix.Stat_t{Mode: unix.S_IFCHR | 0o600}
	if err := CheckGhost(7, "x", &dev, 0); err == nil {
		t.Error("unlinked device node accepted")
	}
}

// A ghost made again has the dumped contents and mode, is unlinked, and
// leaves a file that took its name in place.
func TestMakeGhost(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	d := &model.Dump{}
	if err := os.WriteFile(name, []byte("new file"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := unix.Stat_t{Mode: unix.S_IFREG | 0o640, Size: 5, Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("ghost"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SaveGhost(d, 1, src, &st); err != nil {
		t.Fatal(err)
	}
	f, err := makeGhost(name, d.Ghosts[1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &got); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	n, _ := f.ReadAt(b, 0)
	if got.Nlink != 0 || got.Mode != unix.S_IFREG|0o640 || string(b[:n]) != "ghost" {
		t.Errorf("ghost: nlink %d mode %o contents %q", got.Nlink, got.Mode, b[:n])
	}
	if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); link != name+" (deleted)" {
		t.Errorf("ghost's link %q, want %q", link, name+" (deleted)")
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "new file" {
		t.Errorf("the file that took the name: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d entries left in the directory, want 2 (f, src)", len(ents))
	}
}
