//go:build linux && amd64

// Package inject runs system calls inside a stopped tracee: it writes
// "syscall; int3" and "int $0x80; int3" at a scratch address, points the
// registers at them and lets the task run until the trap. This is how
// ckpt asks a task about state only the task itself can read, and how a
// restore turns a helper into the dumped task, with no injected blob.
// A Task drives its thread through the thread's ptrace handle, which works
// only on the tracer thread that owns it.
package inject

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// codeLen is what Task writes at the scratch address: the 64-bit
// sequence at +0 and the ia32 one at +3, padded to a word.
const codeLen = 8

// Task is a stopped tracee prepared for syscall injection.
type Task struct {
	// T is the thread's ptrace handle; Pid is its id.
	T   ptrace.Thread
	Pid int
	// Orig are the registers the task had when Begin was called.
	Orig x86.Regs
	// OrigMask is the blocked mask at Begin; all signals stay blocked
	// while syscalls are injected so that none is dequeued meanwhile.
	OrigMask uint64
	// Children are the tasks that injected clone/fork calls created,
	// traced by the kernel's doing.
	Children []ptrace.Thread
	// Stack, when not 0, is the stack pointer injected calls run with
	// (sigaltstack refuses changes while sp is on the alternate stack).
	Stack uint64

	code  uint64
	saved []byte
	undo  *ptrace.Step
}

// Begin prepares a stopped task: it saves registers and the blocked mask,
// blocks every signal, and writes the syscall code at codeAddr (an
// address in an executable mapping whose bytes are put back by End).
func Begin(th ptrace.Thread, codeAddr uint64) (*Task, error) {
	t := &Task{T: th, Pid: th.Tid, code: codeAddr}
	var err error
	if t.Orig, err = th.GetRegs(); err != nil {
		return nil, fmt.Errorf("get registers: %w", err)
	}
	if t.OrigMask, err = th.GetSigmask(); err != nil {
		return nil, fmt.Errorf("get signal mask: %w", err)
	}
	if err := th.SetSigmask(^uint64(0)); err != nil {
		return nil, fmt.Errorf("block signals: %w", err)
	}
	if err := t.MoveCode(codeAddr); err != nil {
		_ = th.SetSigmask(t.OrigMask)
		return nil, err
	}
	return t, nil
}

// BeginUndo is Begin for a task that must go on as before whatever
// happens: End is pushed on u, so that a run that fails or panics puts
// back the code bytes, registers and mask. End drops it.
func BeginUndo(u *ptrace.Undo, th ptrace.Thread, codeAddr uint64) (*Task, error) {
	t, err := Begin(th, codeAddr)
	if err != nil {
		return nil, err
	}
	t.undo = u.Push(fmt.Sprintf("end injection in thread %d", th.Tid), t.End)
	return t, nil
}

// MoveCode puts back the bytes at the current scratch address and writes
// the code at addr instead.
func (t *Task) MoveCode(addr uint64) error {
	if t.saved != nil {
		if err := t.T.WriteBytes(t.code, t.saved); err != nil {
			return fmt.Errorf("put back code bytes at %#x: %w", t.code, err)
		}
		t.saved = nil
	}
	saved, err := t.T.ReadBytes(addr, codeLen)
	if err != nil {
		return fmt.Errorf("read scratch code at %#x: %w", addr, err)
	}
	code := make([]byte, codeLen)
	copy(code, x86.CodeSyscall64)
	copy(code[3:], x86.CodeSyscall32)
	copy(code[6:], saved[6:])
	if err := t.T.WriteBytes(addr, code); err != nil {
		return fmt.Errorf("write scratch code at %#x: %w", addr, err)
	}
	t.code, t.saved = addr, saved
	return nil
}

// ForgetCode drops the saved bytes without writing them back, for when the
// scratch mapping has been replaced.
func (t *Task) ForgetCode() { t.saved = nil }

// CodeAddr is the scratch address in use.
func (t *Task) CodeAddr() uint64 { return t.code }

// ErrTaskGone is returned when the task exited during an injected call.
var ErrTaskGone = errors.New("task exited")

// SyscallError is a failed injected syscall.
type SyscallError struct {
	Call  x86.Syscall
	Errno unix.Errno
}

func (e *SyscallError) Error() string { return fmt.Sprintf("%v: %v", e.Call, e.Errno) }
func (e *SyscallError) Unwrap() error { return e.Errno }

// Syscall runs a 64-bit syscall in the task and returns its result.
func (t *Task) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return t.run(s, false, args)
}

// Syscall32 runs an ia32 syscall (int $0x80) in the task. Pointers must
// be below 4 GiB.
func (t *Task) Syscall32(s x86.Syscall, args ...uint64) (uint64, error) {
	return t.run(s, true, args)
}

func (t *Task) run(s x86.Syscall, compat bool, args []uint64) (uint64, error) {
	nr := s.Number(compat)
	if nr < 0 {
		return 0, fmt.Errorf("%v has no %s syscall", s, map[bool]string{false: "x86_64", true: "ia32"}[compat])
	}
	regs := t.callRegs(nr, compat, args)
	if err := t.T.SetRegs(&regs); err != nil {
		return 0, fmt.Errorf("%v: set registers: %w", s, err)
	}
	// Syscall-enter and syscall-exit stops bracket the call. Unlike a
	// trap instruction they raise no signal, so no handler of the task
	// (SIGTRAP, SIGSEGV) is reset and no fault follows when the call
	// unmaps its own code.
	if err := t.toSyscallStop(s); err != nil {
		return 0, fmt.Errorf("%v: entering: %w", s, err)
	}
	if err := t.toSyscallStop(s); err != nil {
		return 0, fmt.Errorf("%v: leaving: %w", s, err)
	}
	out, err := t.T.GetRegs()
	if err != nil {
		return 0, fmt.Errorf("%v: get registers: %w", s, err)
	}
	if want := regs.Rip + x86.SyscallInsnLen; out.Rip != want {
		return 0, fmt.Errorf("%v: stopped at %#x, expected %#x", s, out.Rip, want)
	}
	v, errno := x86.SyscallError(out.Rax, compat)
	if errno != 0 {
		return 0, &SyscallError{Call: s, Errno: unix.Errno(errno)}
	}
	return v, nil
}

// callRegs are the registers that run syscall nr from the scratch code:
// 64-bit mode (an ia32 call goes through int $0x80, which works there
// too), no trap flag, and orig_ax -1 so that no restart rule applies.
func (t *Task) callRegs(nr int, compat bool, args []uint64) x86.Regs {
	regs := t.Orig
	regs.Cs = x86.UserCS
	regs.Ss = x86.UserDS
	regs.Eflags &^= x86.EflagsTF // a leftover TF would single-step
	regs.Orig_rax = ^uint64(0)
	regs.Rip = t.code
	if compat {
		regs.Rip = t.code + 3
	}
	if t.Stack != 0 {
		regs.Rsp = t.Stack
	}
	x86.SetSyscallArgs(&regs, nr, compat, args...)
	return regs
}

// toSyscallStop resumes the task with PTRACE_SYSCALL until its next
// syscall-enter or syscall-exit stop, noting children that clone creates.
func (t *Task) toSyscallStop(s x86.Syscall) error {
	if err := t.T.ContSyscall(0); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	for {
		st, err := t.T.Wait()
		if err != nil {
			return err
		}
		if st.Exited() {
			return fmt.Errorf("%w (%v)", ErrTaskGone, st)
		}
		if st.IsSyscallStop() {
			return nil
		}
		switch st.Event() {
		case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
			msg, err := t.T.GetEventMsg()
			if err != nil {
				return fmt.Errorf("get new child: %w", err)
			}
			t.Children = append(t.Children, t.T.Child(int(msg)))
		case unix.PTRACE_EVENT_STOP:
			// A group-stop (SIGSTOP cannot be blocked): go on.
		default:
			return fmt.Errorf("task stopped by %v during the call", st)
		}
		if err := t.T.ContSyscall(0); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
}

// Exit makes the task call exit_group(code) and waits until the tracer
// sees it gone; its parent then finds it as a zombie.
func (t *Task) Exit(code int) error {
	regs := t.callRegs(x86.SysExitGroup.Number(false), false, []uint64{uint64(code)})
	if err := t.T.SetRegs(&regs); err != nil {
		return fmt.Errorf("exit_group: set registers: %w", err)
	}
	if err := t.T.Cont(0); err != nil {
		return fmt.Errorf("exit_group: resume: %w", err)
	}
	if _, err := t.T.WaitExit(); err != nil {
		return fmt.Errorf("exit_group: %w", err)
	}
	return nil
}

// Park moves a task that sits in a syscall-exit stop into a ptrace stop
// inside signal delivery (PTRACE_INTERRUPT, then let it run to the stop).
// Only from there does the kernel apply its syscall-restart rules to the
// registers set by the tracer, when the task is released.
func (t *Task) Park() error {
	if err := t.T.Interrupt(); err != nil {
		return fmt.Errorf("interrupt: %w", err)
	}
	if err := t.T.Cont(0); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	for {
		st, err := t.T.Wait()
		if err != nil {
			return err
		}
		if st.Exited() {
			return fmt.Errorf("%w (%v)", ErrTaskGone, st)
		}
		if st.IsEventStop() {
			return nil
		}
		// A signal that is not blocked: keep it for the task.
		if err := t.T.Cont(int(st.Signal())); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
}

// End puts back the code bytes, the registers and the blocked mask, and
// leaves the task in a ptrace stop from which it goes on as before.
func (t *Task) End() error {
	t.undo.Drop()
	var errs []error
	if t.saved != nil {
		if err := t.T.WriteBytes(t.code, t.saved); err != nil {
			errs = append(errs, fmt.Errorf("put back code bytes: %w", err))
		}
		t.saved = nil
	}
	if err := t.T.SetRegs(&t.Orig); err != nil {
		errs = append(errs, fmt.Errorf("put back registers: %w", err))
	}
	if err := t.Park(); err != nil {
		errs = append(errs, fmt.Errorf("park: %w", err))
	}
	if err := t.T.SetSigmask(t.OrigMask); err != nil {
		errs = append(errs, fmt.Errorf("put back signal mask: %w", err))
	}
	return errors.Join(errs...)
}
