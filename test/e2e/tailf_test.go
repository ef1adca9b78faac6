package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestTailFollow dumps coreutils' `tail -f` following a file (an inotify
// watch on it), appends to the file while the dump waits, restores it,
// appends again, and checks that tail goes on following: both the line
// written meanwhile and the one written after the restore show in its
// output.
func TestTailFollow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "tail -f", "native")
	tail, err := exec.LookPath("tail")
	if err != nil {
		t.Fatal("tail is not installed (coreutils)")
	}
	work := t.TempDir()
	logPath, outPath := filepath.Join(work, "followed.log"), filepath.Join(work, "tail.out")
	if err := os.WriteFile(logPath, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(tail, "-f", logPath)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(readyTimeout)
		for {
			b, _ := os.ReadFile(outPath)
			if strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail's output %q lacks %q", b, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOutput("before\n")
	// tail has read the file and waits on its inotify instance.
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(20 * time.Millisecond) {
		if l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/4"); err == nil && l == "anon_inode:inotify" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tail has no inotify instance at fd 4")
		}
	}
	img := filepath.Join(work, "img")
	if o, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img).CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, o)
	}
	_ = cmd.Wait()
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	appendLine := func(s string) {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendLine("meanwhile\n") // the file grows between dump and restore
	rc := exec.Command(ckptBin, "restore", "-D", img, "--pidfile", filepath.Join(work, "pid"))
	rc.Stdout, rc.Stderr = out, out
	_, done := restoreInBackground(t, rc, filepath.Join(work, "pid"))
	appendLine("after\n")
	waitOutput("after\n")
	if b, _ := os.ReadFile(outPath); string(b) != "before\nmeanwhile\nafter\n" {
		t.Errorf("tail's output %q, want before, meanwhile, after", b)
	}
	_ = unix.Kill(pid, unix.SIGTERM)
	select {
	case <-done:
	case <-time.After(finishTimeout):
		t.Fatal("restored tail did not end")
	}
}
