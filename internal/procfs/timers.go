//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PosixTimer is one POSIX timer (timer_create(2)) as /proc/PID/timers
// shows it (show_timer in kernel/time/posix-timers.c):
//
//	ID: 3
//	signal: 34/0000000000001234
//	notify: signal/tid.4711
//	ClockID: 1
type PosixTimer struct {
	ID int32
	// Signo is sigev_signo; SigevValue is sigev_value, the user's int or
	// pointer that the signal carries (printed with %px).
	Signo      int
	SigevValue uint64
	// Notify is the kernel's it_sigev_notify: SIGEV_SIGNAL (0),
	// SIGEV_NONE (1) or SIGEV_THREAD (2), with SIGEV_THREAD_ID (4) or'ed
	// in when the signal goes to one thread.
	Notify int
	// NotifyPid is the process (or with SIGEV_THREAD_ID the thread) the
	// signal goes to, as the PID namespace of the reader's /proc names it.
	NotifyPid int
	// ClockID is the clock; negative for a CPU-time clock of a given
	// process or thread.
	ClockID int32
}

// sigevThreadID is SIGEV_THREAD_ID (include/uapi/asm-generic/siginfo.h).
const sigevThreadID = 4

// notifyNames are show_timer's names of it_sigev_notify & ~SIGEV_THREAD_ID.
var notifyNames = map[string]int{"signal": 0, "none": 1, "thread": 2}

// ParseTimers parses /proc/PID/timers: four lines per timer, newest
// first as the kernel lists them.
func ParseTimers(data []byte) ([]PosixTimer, error) {
	var out []PosixTimer
	it := lineIter{data: data}
	keys := []string{"ID", "signal", "notify", "ClockID"}
	for {
		var t PosixTimer
		for i, want := range keys {
			line, ok := it.next()
			if !ok {
				if i == 0 {
					return out, nil
				}
				return nil, fmt.Errorf("timers: line %d: missing %s line", it.n+1, want)
			}
			k, v, ok := splitKV(line)
			if !ok || k != want {
				return nil, fmt.Errorf("timers: line %d: want %s, got %q", it.n, want, clip(line))
			}
			if err := t.set(k, v); err != nil {
				return nil, fmt.Errorf("timers: line %d: %w", it.n, err)
			}
		}
		out = append(out, t)
	}
}

func (t *PosixTimer) set(k, v string) error {
	switch k {
	case "ID":
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("timer id %q", clip(v))
		}
		t.ID = int32(n)
	case "signal":
		sig, val, ok := strings.Cut(v, "/")
		if !ok {
			return fmt.Errorf("signal %q: no '/'", clip(v))
		}
		n, err := strconv.ParseUint(sig, 10, 8)
		if err != nil {
			return fmt.Errorf("signal %q", clip(v))
		}
		p, err := strconv.ParseUint(val, 16, 64)
		if err != nil {
			return fmt.Errorf("signal value %q", clip(v))
		}
		t.Signo, t.SigevValue = int(n), p
	case "notify":
		how, who, ok := strings.Cut(v, "/")
		n, known := notifyNames[how]
		if !ok || !known {
			return fmt.Errorf("notify %q", clip(v))
		}
		kind, id, ok := strings.Cut(who, ".")
		switch {
		case !ok:
			return fmt.Errorf("notify %q: no target", clip(v))
		case kind == "tid":
			n |= sigevThreadID
		case kind != "pid":
			return fmt.Errorf("notify %q: target %q", clip(v), clip(kind))
		}
		pid, err := strconv.ParseUint(id, 10, 31)
		if err != nil {
			return fmt.Errorf("notify %q: target id", clip(v))
		}
		t.Notify, t.NotifyPid = n, int(pid)
	case "ClockID":
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("clock id %q", clip(v))
		}
		t.ClockID = int32(n)
	}
	return nil
}

// Format renders t as /proc/PID/timers does.
func (t PosixTimer) Format() string {
	how := "signal"
	for k, v := range notifyNames {
		if v == t.Notify&^sigevThreadID {
			how = k
		}
	}
	who := "pid"
	if t.Notify&sigevThreadID != 0 {
		who = "tid"
	}
	return fmt.Sprintf("ID: %d\nsignal: %d/%016x\nnotify: %s/%s.%d\nClockID: %d\n", t.ID, t.Signo, t.SigevValue, how, who, t.NotifyPid, t.ClockID)
}

// ReadTimers reads and parses /proc/PID/timers (it needs
// PTRACE_MODE_READ access to the task).
func ReadTimers(pid int) ([]PosixTimer, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/timers", pid))
	if err != nil {
		return nil, err
	}
	ts, err := ParseTimers(data)
	if err != nil {
		return nil, fmt.Errorf("/proc/%d/timers: %w", pid, err)
	}
	return ts, nil
}
