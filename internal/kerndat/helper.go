//go:build linux && amd64

package kerndat

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ptrace"
)

// helperTimeout bounds the life of every helper process: when it expires
// the helper is killed, which ends any wait for it.
const helperTimeout = 5 * time.Second

// helperArgv is the command line of a helper. A helper stops at its exec
// and never runs; should it run anyway, these arguments make ckpt refuse
// an unknown flag and a Go test binary run no test.
var helperArgv = []string{"ckpt-kerndat-helper", "-test.run=^$"}

// seizeOptions are the ptrace options of a seized helper: it dies with
// the tracer, and syscall stops are told apart from SIGTRAP, as
// internal/inject needs.
const seizeOptions = unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACESYSGOOD

// errTimeout is returned when a helper was killed by its watchdog.
var errTimeout = errors.New("timed out")

// helper is a child process traced by the tracer thread.
type helper struct {
	pid      int
	th       ptrace.Thread
	s        *ptrace.Session
	timer    *time.Timer
	mu       sync.Mutex
	reaped   bool
	timedOut atomic.Bool
}

// seizeError is a failure of PTRACE_SEIZE or PTRACE_INTERRUPT on a helper.
type seizeError struct{ err error }

func (e *seizeError) Error() string { return e.err.Error() }
func (e *seizeError) Unwrap() error { return e.err }

// startHelper starts a helper and attaches to it the way a dump attaches
// to a task (PTRACE_SEIZE, PTRACE_INTERRUPT), before it has run any of
// its own code. It must be called on the tracer thread, which becomes
// the tracer. An error of the seize step is a *seizeError.
func startHelper(s *ptrace.Session) (*helper, error) {
	h, err := execHelper(s)
	if err != nil {
		return nil, err
	}
	if err := h.reseize(); err != nil {
		h.kill()
		return nil, &seizeError{h.explain(err)}
	}
	return h, nil
}

// execHelper starts /proc/self/exe under PTRACE_TRACEME and waits for
// the SIGTRAP stop that follows its exec, before any of its code runs.
func execHelper(s *ptrace.Session) (*helper, error) {
	attr := &syscall.ProcAttr{
		Env: []string{},
		Sys: &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL},
	}
	pid, err := syscall.ForkExec("/proc/self/exe", helperArgv, attr)
	if err != nil {
		return nil, fmt.Errorf("start helper: %w", err)
	}
	h := &helper{pid: pid, th: s.Adopt(pid), s: s}
	h.timer = time.AfterFunc(helperTimeout, h.expire)
	st, err := h.th.Wait()
	if err != nil {
		h.kill()
		return nil, h.explain(fmt.Errorf("helper %d: %w", pid, err))
	}
	if st.Signal() != unix.SIGTRAP {
		h.kill()
		return nil, h.explain(fmt.Errorf("helper %d: %v instead of the stop at exec", pid, st))
	}
	return h, nil
}

// expire is the watchdog: it kills a helper that outlived helperTimeout.
func (h *helper) expire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.reaped {
		h.timedOut.Store(true)
		_ = unix.Kill(h.pid, unix.SIGKILL)
	}
}

// explain turns an error caused by the watchdog's kill into errTimeout.
func (h *helper) explain(err error) error {
	if err != nil && h.timedOut.Load() {
		return fmt.Errorf("%w after %v (%v)", errTimeout, helperTimeout, err)
	}
	return err
}

// kill kills and reaps the helper. It is safe to call more than once.
func (h *helper) kill() {
	h.timer.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reaped {
		return
	}
	_ = h.s.KillAndReap(h.pid, false)
	h.reaped = true
}

// reseize turns the helper, stopped at exec under PTRACE_TRACEME, into a
// seized tracee: it detaches leaving the helper in a group-stop (so it
// still runs none of its code), attaches with PTRACE_SEIZE and stops it
// with PTRACE_INTERRUPT. Finally SIGCONT ends the group-stop while the
// helper stays in its ptrace stop, so that it is in the state of an
// interrupted running task: its later stops are not group-stops.
// (PTRACE_INTERRUPT and thus inject.Task.End need a seized tracee.)
func (h *helper) reseize() error {
	if err := h.th.Detach(int(unix.SIGSTOP)); err != nil {
		return fmt.Errorf("PTRACE_DETACH: %w", err)
	}
	_, ws, err := ptrace.Wait4(h.pid, unix.WALL|unix.WUNTRACED)
	if err != nil {
		return h.explain(fmt.Errorf("wait for group-stop: %w", err))
	}
	if !ws.Stopped() {
		return h.explain(fmt.Errorf("helper did not stop (status %#x)", uint32(ws)))
	}
	if h.th, err = h.s.Seize(h.pid, seizeOptions); err != nil {
		return fmt.Errorf("PTRACE_SEIZE: %w", err)
	}
	if err := h.th.Interrupt(); err != nil {
		return fmt.Errorf("PTRACE_INTERRUPT: %w", err)
	}
	for {
		st, err := h.th.Wait()
		if err != nil {
			return h.explain(err)
		}
		if st.Exited() {
			return h.explain(fmt.Errorf("helper %v", st))
		}
		if isEventStop(st.Status) {
			if st.Status.StopSignal() != unix.SIGTRAP {
				// The SIGCONT stays pending (injection blocks it) and
				// is never delivered: the helper is killed.
				if err := unix.Kill(h.pid, unix.SIGCONT); err != nil {
					return fmt.Errorf("end group-stop: %w", err)
				}
			}
			return nil
		}
		return fmt.Errorf("helper: %v (status %#x) instead of PTRACE_EVENT_STOP", st, uint32(st.Status))
	}
}

// isEventStop reports a PTRACE_EVENT_STOP whatever its signal: SIGTRAP
// for PTRACE_INTERRUPT, the stop signal for a group-stop. (wait(2)
// status: 0x7f, the signal in bits 8-15, the event in bits 16-23.)
func isEventStop(ws unix.WaitStatus) bool {
	return ws.Stopped() && int(ws>>16)&0xff == unix.PTRACE_EVENT_STOP
}
