package ptrace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Stop describes why a tracee stopped or ended.
type Stop struct {
	Status unix.WaitStatus
}

// Wait waits for a state change of pid (__WALL so threads count too).
func Wait(pid int) (Stop, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Stop{}, fmt.Errorf("wait for %d: %w", pid, err)
		}
		return Stop{ws}, nil
	}
}

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

// WaitNohang is Wait without blocking: ok is false when nothing happened yet.
func WaitNohang(pid int) (st Stop, ok bool, err error) {
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(pid, &ws, unix.WALL|unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Stop{}, false, fmt.Errorf("wait for %d: %w", pid, err)
		}
		return Stop{ws}, got == pid, nil
	}
}
