package e2e

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/ckpt/ckpt/test/testsupport"
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
	pid, err := testsupport.WaitPidfile(pidfile, readyTimeout, done)
	if ended := (*testsupport.EndedError)(nil); errors.As(err, &ended) {
		t.Fatalf("restore: %v", ended.Err)
	} else if err != nil {
		_ = rc.Process.Kill()
		t.Fatalf("restore did not finish: %v", err)
	}
	return pid, done
}
