//go:build linux && amd64

package task

import (
	"encoding/binary"
	"fmt"

	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/siginfo"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// sigactions are the signal handlers. Those of an ia32 task are read and
// installed with the ia32 rt_sigaction: since Linux 4.11 the kind of
// syscall that installs a handler decides the signal frame it gets.
type sigactions struct{}

func (sigactions) Name() string { return "signal handlers" }
func (sigactions) Stage() Stage { return StageProcess }

// sigNums lists the signals in the order of task_core_entry.sigactions:
// 1..64 without SIGKILL and SIGSTOP.
func sigNums() []int {
	var out []int
	for s := 1; s <= x86.NSig; s++ {
		if s != x86.SigKill && s != x86.SigStop {
			out = append(out, s)
		}
	}
	return out
}

// rtSigaction is the task's own rt_sigaction: ia32 for an ia32 task.
func rtSigaction(t Thread) func(x86.Syscall, ...uint64) (uint64, error) {
	if t.Compat() {
		return t.Syscall32
	}
	return t.Syscall
}

func (sigactions) Collect(t Thread, e Entry) error {
	call := rtSigaction(t)
	size := x86.SigactionSize(t.Compat())
	var out []*criusa.SaEntry
	for _, sig := range sigNums() {
		if _, err := call(x86.SysRtSigaction, uint64(sig), 0, t.Scratch(), x86.SigsetBytes); err != nil {
			return fmt.Errorf("sigaction of signal %d: %w", sig, err)
		}
		b, err := t.ReadMem(t.Scratch(), size)
		if err != nil {
			return err
		}
		sa, err := x86.DecodeSigaction(b, t.Compat())
		if err != nil {
			return err
		}
		out = append(out, &criusa.SaEntry{
			Sigaction:       proto.Uint64(sa.Handler),
			Flags:           proto.Uint64(sa.Flags),
			Restorer:        proto.Uint64(sa.Restorer),
			Mask:            proto.Uint64(sa.Mask),
			CompatSigaction: proto.Bool(t.Compat()),
		})
	}
	e.Core.Tc.Sigactions = out
	return nil
}

func (sigactions) Restore(t Thread, e Entry) error {
	sas := e.Core.GetTc().GetSigactions()
	nums := sigNums()
	if len(sas) > len(nums) {
		return fmt.Errorf("%d sigactions in the image, at most %d", len(sas), len(nums))
	}
	ignored, asExec := t.ExecSignals()
	for i, sa := range sas {
		sig := nums[i]
		if asExec && isExecAction(sa, ignored&(1<<(sig-1)) != 0) {
			// The task has this action already: most are SIG_DFL, and
			// each call costs an injected syscall (two ptrace stops).
			continue
		}
		compat := sa.GetCompatSigaction()
		if compat && t.Scratch() >= 1<<32 {
			return fmt.Errorf("scratch area above 4 GiB for an ia32 sigaction")
		}
		b := x86.EncodeSigaction(x86.Sigaction{
			Handler: sa.GetSigaction(), Flags: sa.GetFlags(), Restorer: sa.GetRestorer(), Mask: sa.GetMask(),
		}, compat)
		p, err := t.Put(b)
		if err != nil {
			return err
		}
		call := t.Syscall
		if compat {
			call = t.Syscall32
		}
		if _, err := call(x86.SysRtSigaction, uint64(sig), p, 0, x86.SigsetBytes); err != nil {
			return fmt.Errorf("sigaction of signal %d: %w", sig, err)
		}
	}
	return nil
}

// isExecAction says whether sa is the action an exec leaves a signal:
// SIG_IGN if it was ignored, else SIG_DFL, with no flags, mask or
// restorer (kernel/signal.c, flush_signal_handlers).
func isExecAction(sa *criusa.SaEntry, ignored bool) bool {
	h := uint64(x86.SigDfl)
	if ignored {
		h = x86.SigIgn
	}
	return sa.GetSigaction() == h && sa.GetFlags() == 0 && sa.GetRestorer() == 0 && sa.GetMask() == 0
}

func siginfoQueue(raw [][]byte) *siginfo.SignalQueueEntry {
	q := &siginfo.SignalQueueEntry{}
	for _, r := range raw {
		q.Signals = append(q.Signals, &siginfo.SiginfoEntry{Siginfo: r})
	}
	return q
}

// queueSignal queues one dumped pending signal from inside the thread it
// was pending for, so the kernel accepts its original siginfo (si_code >= 0
// is only allowed for signals a task sends itself).
func queueSignal(t Thread, raw []byte, shared bool) error {
	if len(raw) != ptrace.SiginfoSize {
		return fmt.Errorf("siginfo of %d bytes", len(raw))
	}
	sig := uint64(binary.LittleEndian.Uint32(raw))
	p, err := t.Put(raw)
	if err != nil {
		return err
	}
	if shared {
		_, err = t.Syscall(x86.SysRtSigqueueinfo, uint64(t.VPid()), sig, p)
	} else {
		_, err = t.Syscall(x86.SysRtTgsigqueueinfo, uint64(t.VPid()), uint64(t.VTid()), sig, p)
	}
	if err != nil {
		return fmt.Errorf("queue signal %d: %w", sig, err)
	}
	return nil
}

// privateSignals are the signals pending for one thread.
type privateSignals struct{}

func (privateSignals) Name() string { return "pending signals" }
func (privateSignals) Stage() Stage { return StageThread }

func (privateSignals) Collect(t Thread, e Entry) error {
	raw, err := t.Ptrace().PeekSiginfo(false)
	if err != nil {
		return fmt.Errorf("pending signals: %w", err)
	}
	e.Core.ThreadCore.SignalsP = siginfoQueue(raw)
	return nil
}

func (privateSignals) Restore(t Thread, e Entry) error {
	for _, s := range e.Core.GetThreadCore().GetSignalsP().GetSignals() {
		if err := queueSignal(t, s.GetSiginfo(), false); err != nil {
			return err
		}
	}
	return nil
}

// sharedSignals are the signals pending for the whole process, queued
// once every thread has its credentials.
type sharedSignals struct{}

func (sharedSignals) Name() string { return "shared pending signals" }
func (sharedSignals) Stage() Stage { return StageAfterCreds }

func (sharedSignals) Collect(t Thread, e Entry) error {
	raw, err := t.Ptrace().PeekSiginfo(true)
	if err != nil {
		return fmt.Errorf("shared pending signals: %w", err)
	}
	e.Core.Tc.SignalsS = siginfoQueue(raw)
	return nil
}

func (sharedSignals) Restore(t Thread, e Entry) error {
	for _, s := range e.Core.GetTc().GetSignalsS().GetSignals() {
		if err := queueSignal(t, s.GetSiginfo(), true); err != nil {
			return err
		}
	}
	return nil
}
