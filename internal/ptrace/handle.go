//go:build linux && amd64

package ptrace

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// Session is one run on the tracer thread (Tracer.Run): it hands out the
// handles of the threads it traces, and its undo stack records what the
// run changed, to be put back if the run fails or panics.
type Session struct {
	*Undo
	tr *Tracer
}

// Thread is a handle on one traced thread. Every ptrace request for the
// thread is a method of its handle, and a handle works only on the
// tracer thread of the session that made it: Linux accepts ptrace
// requests for a tracee only from the thread that attached it, and a
// call from any other thread fails with ErrWrongThread instead of a
// confusing ESRCH.
type Thread struct {
	Tid int
	s   *Session
}

// ErrWrongThread is a ptrace request made off the tracer thread.
var ErrWrongThread = errors.New("ptrace request off the tracer thread")

func (t Thread) check() error {
	if t.s == nil {
		return fmt.Errorf("thread %d: %w (a handle not made by a session)", t.Tid, ErrWrongThread)
	}
	if tid := unix.Gettid(); tid != t.s.tr.tid {
		return fmt.Errorf("thread %d: %w (called on OS thread %d, the tracer is %d)", t.Tid, ErrWrongThread, tid, t.s.tr.tid)
	}
	return nil
}

// Seize attaches to thread tid with PTRACE_SEIZE and the given options
// (PTRACE_O_*); the thread goes on running until interrupted.
func (s *Session) Seize(tid, options int) (Thread, error) {
	t := Thread{tid, s}
	if err := t.check(); err != nil {
		return Thread{}, err
	}
	return t, seize(tid, options)
}

// Adopt is the handle of a thread the kernel made this tracer trace: a
// thread or process created by a tracee with PTRACE_O_TRACECLONE or
// TRACEFORK set, or a child started from this thread under
// PTRACE_TRACEME.
func (s *Session) Adopt(tid int) Thread { return Thread{tid, s} }

// KillAndReap kills process pid and waits until it is gone (see
// killAndReap); with keepChild the caller's own child is left unreaped.
func (s *Session) KillAndReap(pid int, keepChild bool) error {
	if err := (Thread{pid, s}).check(); err != nil {
		return err
	}
	return killAndReap(pid, keepChild)
}

// Interrupt stops a seized thread (PTRACE_INTERRUPT).
func (t Thread) Interrupt() error { return t.do(func() error { return interrupt(t.Tid) }) }

// SetOptions sets the PTRACE_O_* options.
func (t Thread) SetOptions(options int) error {
	return t.do(func() error { return setOptions(t.Tid, options) })
}

// Detach lets the thread go, delivering sig (0 for none).
func (t Thread) Detach(sig int) error { return t.do(func() error { return detach(t.Tid, sig) }) }

// Cont resumes the thread, delivering sig (0 for none).
func (t Thread) Cont(sig int) error { return t.do(func() error { return cont(t.Tid, sig) }) }

// ContSyscall resumes the thread until its next syscall entry or exit
// (PTRACE_SYSCALL), delivering sig.
func (t Thread) ContSyscall(sig int) error {
	return t.do(func() error { return contSyscall(t.Tid, sig) })
}

// Wait waits for the thread's next stop or its end.
func (t Thread) Wait() (Stop, error) {
	if err := t.check(); err != nil {
		return Stop{}, err
	}
	return wait(t.Tid)
}

// WaitNohang reports a pending stop or end of the thread, if any.
func (t Thread) WaitNohang() (Stop, bool, error) {
	if err := t.check(); err != nil {
		return Stop{}, false, err
	}
	return waitNohang(t.Tid)
}

// WaitExit waits until the thread is gone, resuming it from every stop.
func (t Thread) WaitExit() (Stop, error) {
	if err := t.check(); err != nil {
		return Stop{}, err
	}
	return waitExit(t.Tid)
}

// GetRegs reads the general registers in the tracer's (64-bit) layout.
func (t Thread) GetRegs() (x86.Regs, error) {
	if err := t.check(); err != nil {
		return x86.Regs{}, err
	}
	return getRegs(t.Tid)
}

// SetRegs sets the general registers.
func (t Thread) SetRegs(r *x86.Regs) error { return t.do(func() error { return setRegs(t.Tid, r) }) }

// SetRegset sets register set nt (NT_*) from buf.
func (t Thread) SetRegset(nt int, buf []byte) error {
	return t.do(func() error { return setRegset(t.Tid, nt, buf) })
}

// GetXstate reads the thread's XSAVE area.
func (t Thread) GetXstate() ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return getXstate(t.Tid)
}

// GetSigmask reads the blocked signal mask.
func (t Thread) GetSigmask() (uint64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	return getSigmask(t.Tid)
}

// SetSigmask sets the blocked signal mask.
func (t Thread) SetSigmask(m uint64) error { return t.do(func() error { return setSigmask(t.Tid, m) }) }

// PeekSiginfo reads the pending signals of the thread, or with shared of
// its process, without dequeuing them.
func (t Thread) PeekSiginfo(shared bool) ([][]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return peekSiginfo(t.Tid, shared)
}

// GetThreadArea reads GDT TLS entry idx (a struct user_desc).
func (t Thread) GetThreadArea(idx int) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return getThreadArea(t.Tid, idx)
}

// SetThreadArea sets GDT TLS entry idx.
func (t Thread) SetThreadArea(idx int, desc []byte) error {
	return t.do(func() error { return setThreadArea(t.Tid, idx, desc) })
}

// GetRseqConfig reads the thread's rseq registration.
func (t Thread) GetRseqConfig() (RseqConfig, error) {
	if err := t.check(); err != nil {
		return RseqConfig{}, err
	}
	return getRseqConfig(t.Tid)
}

// ReadBytes reads n bytes of the thread's memory at addr, a word at a
// time (PTRACE_PEEKDATA: it reads any mapping, whatever its protection).
func (t Thread) ReadBytes(addr uint64, n int) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return readBytes(t.Tid, addr, n)
}

// WriteBytes writes b at addr with PTRACE_POKEDATA (into read-only code
// too).
func (t Thread) WriteBytes(addr uint64, b []byte) error {
	return t.do(func() error { return writeBytes(t.Tid, addr, b) })
}

func (t Thread) do(fn func() error) error {
	if err := t.check(); err != nil {
		return err
	}
	return fn()
}

// Child is the handle of a thread or process that t created and the
// kernel made this tracer trace (a clone or fork event of t).
func (t Thread) Child(tid int) Thread { return Thread{tid, t.s} }

// GetEventMsg reads the message of the thread's last ptrace event (the
// new task's id at a clone or fork event).
func (t Thread) GetEventMsg() (uint, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	return unix.PtraceGetEventMsg(t.Tid)
}
