package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestPtyLeaveRunning dumps pty programs with --leave-running: the dump
// reads the bytes queued in their pty pairs, which it must put back at
// once, so that the programs, going on, find them all (complete lines,
// a line ended by ^D, a partial line, echo; both directions).
func TestPtyLeaveRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, prog := range []string{"pty_canon.64", "pty.32"} {
		t.Run(prog, func(t *testing.T) {
			work := t.TempDir()
			bin, _ := filepath.Abs(filepath.Join(progsDir, "build", prog))
			logPath := filepath.Join(work, "prog.log")
			logF, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logF.Close()
			cmd := exec.Command(bin)
			cmd.Dir = work
			cmd.Stdout, cmd.Stderr = logF, logF
			if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
			if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", filepath.Join(work, "img"), "-R").CombinedOutput(); err != nil {
				t.Fatalf("dump -R: %v: %s", err, out)
			}
			_ = unix.Kill(pid, unix.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err := verdict(logPath, testsupport.ExitCode(err), ""); err != nil {
					t.Error(err)
				}
			case <-time.After(finishTimeout):
				t.Fatal("the program did not end")
			}
		})
	}
}
