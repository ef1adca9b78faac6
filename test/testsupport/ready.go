package testsupport

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The test programs (testdata/progs/ckpt_test.h, test/bench/testdata)
// write "READY" on a line of their own, or "READY " and what the test
// needs to know, once their state is set up, and "FAIL: reason" when
// something goes wrong.

// WaitReady polls the log at path until it has a complete READY line and
// returns that line. A FAIL line first ends the wait with that line as the
// error, and so does the end of pid, a child of this process, which is
// left unreaped for its owner (exec.Cmd.Wait).
func WaitReady(path string, timeout time.Duration, pid int) (string, error) {
	deadline := time.Now().Add(timeout)
	scan := func() (string, []byte, error) {
		b, _ := os.ReadFile(path)
		lines := strings.Split(string(b), "\n")
		for _, l := range lines[:len(lines)-1] { // complete lines only
			if l == "READY" || strings.HasPrefix(l, "READY ") {
				return l, b, nil
			}
			if strings.HasPrefix(l, "FAIL") {
				return "", b, errors.New(l)
			}
		}
		return "", b, nil
	}
	for {
		l, b, err := scan()
		if l != "" || err != nil {
			return l, err
		}
		if State(pid) == 'Z' {
			// A daemon's launcher exits once its daemon wrote READY,
			// maybe just after the log was read: read it once more.
			if l, b, err = scan(); l != "" || err != nil {
				return l, err
			}
			return "", fmt.Errorf("program ended (status %#x) before READY: %s", exitStatus(pid), LastLines(string(b), 2))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no READY within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// StartReady starts cmd, whose output goes to the log at logPath, and
// waits for its READY line (WaitReady). If it does not come, cmd is killed
// and reaped.
func StartReady(cmd *exec.Cmd, logPath string, timeout time.Duration) (string, error) {
	if err := cmd.Start(); err != nil {
		return "", err
	}
	line, err := WaitReady(logPath, timeout, cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", err
	}
	return line, nil
}

// EndedError is WaitPidfile's error when the process that was to write the
// pidfile ended first; Err is what its exec.Cmd.Wait returned.
type EndedError struct{ Err error }

func (e *EndedError) Error() string {
	return fmt.Sprintf("ended before writing its pidfile: %v", e.Err)
}

func (e *EndedError) Unwrap() error { return e.Err }

// WaitPidfile polls path, the --pidfile of a ckpt restore, until it holds
// a PID and its newline (ckpt writes it once the restored tree runs), and
// returns the PID. exited delivers the restore's end (exec.Cmd.Wait): if
// it comes first, the error is an *EndedError. The caller kills the
// restore on any other error.
func WaitPidfile(path string, timeout time.Duration, exited <-chan error) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return 0, fmt.Errorf("pidfile %s: %q: %v", path, b, err)
			}
			return pid, nil
		}
		select {
		case err := <-exited:
			return 0, &EndedError{Err: err}
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no pid in %s within %v", path, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// LastLines is the last n lines of s joined by " | ", for a message.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
