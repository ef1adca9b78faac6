package testsupport

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// statFields returns the fields of /proc/PID/stat after the command name:
// the first is the state (field 3 of proc(5)).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// State is the state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0
// if there is none.
func State(pid int) byte {
	f := statFields(pid)
	if len(f) == 0 || f[0] == "" {
		return 0
	}
	return f[0][0]
}

// exitStatus is the exit status of a zombie in waitpid's form (field 52 of
// /proc/PID/stat), or 0 if it cannot be read.
func exitStatus(pid int) uint32 {
	f := statFields(pid)
	if len(f) < 52-2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[52-3], 10, 32)
	return uint32(n)
}

// Comm is the command name of pid, or "" if there is none.
func Comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// Describe names pid for a message: its PID, command name and state.
func Describe(pid int) string {
	return fmt.Sprintf("%d (%s, state %q)", pid, Comm(pid), State(pid))
}

// WaitGone waits until /proc/PID no longer exists: the task ended and was
// reaped, so that its PID is free for a restore.
func WaitGone(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %d still exists %v after the dump (state %q)", pid, timeout, State(pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SetSubreaper makes this process a child subreaper: orphans of anything
// it starts (a restored tree whose ckpt exited, a restore's helpers)
// become its children, so that it can reap them and Children sees them.
func SetSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// Children lists the children of every thread of this process: a Go
// program forks from whichever thread runs the goroutine, and adopted
// orphans go to the main thread.
func Children() []int {
	var pids []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, tk := range tasks {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/self/task/%s/children", tk.Name()))
		for _, f := range strings.Fields(string(kids)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// KillAndReap sends SIGKILL to every pid, children of this process, and
// reaps them, giving up after timeout (another goroutine's wait may reap
// some first).
func KillAndReap(pids []int, timeout time.Duration) {
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			var ws unix.WaitStatus
			got, err := unix.Wait4(pid, &ws, unix.WALL|unix.WNOHANG, nil)
			if err == unix.EINTR || (err == nil && got == 0) {
				time.Sleep(time.Millisecond)
				continue
			}
			break
		}
	}
}

// NoInheritedFds marks every fd above 2 that this process inherited
// close-on-exec, so that programs a test starts do not get them: they
// would be part of what ckpt dumps (a pipe to whoever runs the tests is
// refused as a pipe to the outside).
func NoInheritedFds() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
