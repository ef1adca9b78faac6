package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// restoreInBackground starts rc (a ckpt restore without -d that writes
// pidfile), waits until the restored task runs, and returns its host PID
// and a channel that gives ckpt's exit once the task ends.
func restoreInBackground(t *testing.T, rc *exec.Cmd, pidfile string) (int, <-chan error) {
	t.Helper()
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rc.Wait() }()
	deadline := time.Now().Add(readyTimeout)
	for {
		if b, err := os.ReadFile(pidfile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pidfile %q: %v", b, err)
			}
			return pid, done
		}
		select {
		case err := <-done:
			t.Fatalf("restore: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = rc.Process.Kill()
			t.Fatal("restore did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitCode is the exit status ckpt restore reported for the task (128+N
// for a signal), or -1 for an error that is not an exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
