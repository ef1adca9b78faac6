package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// pythonBin is Debian's python3 (a pyenv or venv one would bring its
// own libraries and start method defaults).
const pythonBin = "/usr/bin/python3"

// TestPythonMultiprocessing checkpoints a real Python program built on
// multiprocessing (testdata/python/mp_pool.py): a Pool of two forked
// workers (pipes between them and the parent, the parent's handler
// threads), a multiprocessing.Queue (a pipe and a feeder thread), a Lock
// and a Semaphore (POSIX semaphores in /dev/shm, unlinked while mapped).
// It works before the dump; after the restore it maps over new inputs
// with the same pool, takes the lock and the semaphore and goes through
// the queue, and prints PASS only if every result is right.
func TestPythonMultiprocessing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "Python multiprocessing pool, queue, lock and semaphore", "native")
	if _, err := os.Stat(pythonBin); err != nil {
		t.Fatalf("%s is not installed (apt-get install python3; scripts/setup.sh does it)", pythonBin)
	}
	script, err := filepath.Abs("testdata/python/mp_pool.py")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	logPath := filepath.Join(work, "python.log")
	logF, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	cmd := exec.Command(pythonBin, script)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("python: %v: %s", err, log)
	}
	pid := cmd.Process.Pid
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	}()
	workers := procChildren(pid)
	if len(workers) < 2 {
		t.Fatalf("the pool has %d worker processes, want 2", len(workers))
	}

	img := filepath.Join(work, "img")
	dumpServer(t, cmd, img)
	// The killed workers come to this subreaper, which reaps them: the
	// restore needs their PIDs.
	for _, w := range workers {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(w, &ws, unix.WALL, nil)
	}
	pidfile := filepath.Join(work, "pid")
	rc := exec.Command(ckptBin, "restore", "-D", img, "--pidfile", pidfile)
	rc.Stdout, rc.Stderr = logF, logF
	rpid, done := restoreInBackground(t, rc, pidfile)
	if rpid != pid {
		t.Errorf("restored as %d, dumped as %d", rpid, pid)
	}
	if got := procChildren(rpid); len(got) != len(workers) {
		t.Errorf("restored with %d worker processes, dumped with %d", len(got), len(workers))
	}
	if err := unix.Kill(rpid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		log, _ := os.ReadFile(logPath)
		if err != nil || !strings.Contains(string(log), "\nPASS\n") {
			t.Fatalf("restored python: %v; its output:\n%s", err, log)
		}
		t.Logf("output:\n%s", log)
	case <-time.After(finishTimeout):
		_ = unix.Kill(rpid, unix.SIGKILL)
		log, _ := os.ReadFile(logPath)
		t.Fatalf("restored python did not end after SIGTERM; its output:\n%s", log)
	}
}
