//go:build linux && amd64

package ptrace

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Stop describes why a tracee stopped or ended.
type Stop struct {
	Status unix.WaitStatus
}

// Wait4 is wait4(2) retried on EINTR, the one loop of ckpt around it.
func Wait4(pid int, flags int) (int, unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(pid, &ws, flags, nil)
		if err != unix.EINTR {
			return got, ws, err
		}
	}
}

// wait waits for a state change of pid (__WALL so threads count too).
func wait(pid int) (Stop, error) {
	_, ws, err := Wait4(pid, unix.WALL)
	if err != nil {
		return Stop{}, fmt.Errorf("wait for %d: %w", pid, err)
	}
	return Stop{ws}, nil
}

// waitExit waits until tracee pid is gone, resuming it from every stop
// reported on the way (a stop that was pending when it was killed, the
// exit_group of Inject's Exit). It returns the last status; a pid that
// is no longer ours to wait for (ECHILD) counts as gone.
func waitExit(pid int) (Stop, error) {
	for {
		st, err := wait(pid)
		if errors.Is(err, unix.ECHILD) {
			return st, nil
		}
		if err != nil || st.Exited() {
			return st, err
		}
		_ = cont(pid, 0)
	}
}

// killAndReap kills process pid with SIGKILL and waits until it is gone:
// first every thread of it that this tracer traces (the kernel reports
// a traced thread's end to the tracer, and the leader's only after all
// of them are collected), then the leader.
//
// With keepChild, a leader that is the caller's own child is not
// reaped: its zombie, and its exit status, stay for the caller's own
// wait (a library user who started the task, then dumped it). Its end
// is awaited with waitid(WNOWAIT), which reports without reaping. Any
// other task is collected with a plain wait: for a traced task that is
// not our child that only ends the tracing, and its parent reaps it.
func killAndReap(pid int, keepChild bool) error {
	// The pidfd is taken before the kill: the pid cannot name another
	// process yet.
	pidfd, perr := unix.PidfdOpen(pid, 0)
	_ = unix.Kill(pid, unix.SIGKILL)
	if perr == nil {
		// process_mrelease frees the dying task's memory on this
		// thread's CPU while its own exit frees it on another: a large
		// task is gone sooner. Best effort (Linux 5.15+; EINVAL for
		// memory another live process shares).
		_, _, _ = unix.Syscall(unix.SYS_PROCESS_MRELEASE, uintptr(pidfd), 0, 0)
		unix.Close(pidfd)
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var errs []error
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid == pid {
			continue
		}
		if _, err := waitExit(tid); err != nil {
			errs = append(errs, err)
		}
	}
	if keepChild && isOwnChild(pid) {
		errs = append(errs, waitExitNoReap(pid))
	} else if _, err := waitExit(pid); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isOwnChild reports whether pid's parent is this process.
func isOwnChild(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 1 && f[1] == strconv.Itoa(os.Getpid())
}

// waitExitNoReap waits until pid has ended and leaves it a zombie. A
// ptrace stop reported on the way is consumed with a waitid without
// WEXITED, which cannot reap, and the task resumed.
func waitExitNoReap(pid int) error {
	for {
		var si unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &si, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT|unix.WALL, nil)
		switch {
		case err == unix.EINTR:
			continue
		case errors.Is(err, unix.ECHILD):
			return nil
		case err != nil:
			return fmt.Errorf("wait for %d: %w", pid, err)
		}
		switch si.Code {
		case cldExited, cldKilled, cldDumped:
			return nil
		}
		for {
			err = unix.Waitid(unix.P_PID, pid, &si, unix.WSTOPPED|unix.WALL, nil)
			if err != unix.EINTR {
				break
			}
		}
		_ = cont(pid, 0)
	}
}

// si_code values of SIGCHLD (include/uapi/asm-generic/siginfo.h).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// Exited reports whether the task is gone (exited or killed).
func (s Stop) Exited() bool { return s.Status.Exited() || s.Status.Signaled() }

// Signal is the stop signal, or 0 when the task did not stop.
func (s Stop) Signal() unix.Signal {
	if !s.Status.Stopped() {
		return 0
	}
	return s.Status.StopSignal()
}

// Event is the PTRACE_EVENT_* of the stop, 0 for none. It is read from
// bits 16-23 of the status for any stop signal: a group-stop of a seized
// tracee is a PTRACE_EVENT_STOP with SIGSTOP or SIGTSTP, which x/sys's
// TrapCause (SIGTRAP only) misses.
func (s Stop) Event() int {
	if !s.Status.Stopped() {
		return 0
	}
	return int(uint32(s.Status)>>16) & 0xff
}

// IsSyscallStop reports a syscall-enter or -exit stop (the tracee must
// have PTRACE_O_TRACESYSGOOD set).
func (s Stop) IsSyscallStop() bool {
	return s.Status.Stopped() && s.Status.StopSignal() == unix.SIGTRAP|0x80
}

// IsEventStop reports a PTRACE_EVENT_STOP (group-stop or interrupt of a
// seized tracee).
func (s Stop) IsEventStop() bool { return s.Event() == unix.PTRACE_EVENT_STOP }

func (s Stop) String() string {
	switch {
	case s.Status.Exited():
		return fmt.Sprintf("exited with status %d", s.Status.ExitStatus())
	case s.Status.Signaled():
		return fmt.Sprintf("killed by %v", s.Status.Signal())
	case s.Status.Stopped():
		if ev := s.Event(); ev != 0 {
			return fmt.Sprintf("stopped by %v (event %d)", s.Signal(), ev)
		}
		return fmt.Sprintf("stopped by %v", s.Signal())
	}
	return fmt.Sprintf("status %#x", uint32(s.Status))
}

// waitNohang is Wait without blocking: ok is false when nothing happened yet.
func waitNohang(pid int) (st Stop, ok bool, err error) {
	got, ws, err := Wait4(pid, unix.WALL|unix.WNOHANG)
	if err != nil {
		return Stop{}, false, fmt.Errorf("wait for %d: %w", pid, err)
	}
	return Stop{ws}, got == pid, nil
}
