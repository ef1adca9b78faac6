//go:build linux && amd64

package task

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/rseq"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
)

// This file holds the per-thread attributes other than credentials and
// signals: the alternate signal stack, the robust futex list, the
// parent-death signal, seccomp, rseq and the clear-tid address.

// altstack is the alternate signal stack (sigaltstack(2)).
type altstack struct{}

func (altstack) Name() string { return "alternate signal stack" }
func (altstack) Stage() Stage { return StageThread }

func (altstack) Collect(t Thread, e Entry) error {
	if _, err := t.Syscall(x86.SysSigaltstack, 0, t.Scratch()); err != nil {
		return fmt.Errorf("sigaltstack: %w", err)
	}
	b, err := t.ReadMem(t.Scratch(), x86.StackSize64)
	if err != nil {
		return err
	}
	st, err := x86.DecodeStack(b)
	if err != nil {
		return err
	}
	e.Core.ThreadCore.Sas = &criucore.ThreadSasEntry{
		SsSp: proto.Uint64(st.Sp), SsSize: proto.Uint64(st.Size), SsFlags: proto.Uint32(st.Flags),
	}
	return nil
}

func (altstack) Restore(t Thread, e Entry) error {
	sas := e.Core.GetThreadCore().GetSas()
	if sas == nil {
		return nil
	}
	st := x86.Stack{Sp: sas.GetSsSp(), Size: sas.GetSsSize(), Flags: sas.GetSsFlags() &^ x86.SSOnStack}
	if st.Flags&x86.SSDisable != 0 {
		st = x86.Stack{Flags: x86.SSDisable}
	}
	p, err := t.Put(x86.EncodeStack(st))
	if err != nil {
		return err
	}
	if _, err := t.Syscall(x86.SysSigaltstack, p, 0); err != nil {
		return fmt.Errorf("sigaltstack %#x+%d: %w", st.Sp, st.Size, err)
	}
	return nil
}

// robustList is the robust futex list head (set_robust_list(2)). An ia32
// task keeps its own in compat_robust_list, apart from the native one,
// which only the ia32 calls reach.
type robustList struct{}

func (robustList) Name() string { return "robust futex list" }
func (robustList) Stage() Stage { return StageThread }

func (robustList) Collect(t Thread, e Entry) error {
	var head, n uint64
	if t.Compat() {
		// ia32 get_robust_list(0, &head, &len) with a compat_uptr_t and
		// a compat_size_t (kernel/futex/syscalls.c).
		if _, err := t.Syscall32(x86.SysGetRobustList, 0, t.Scratch(), t.Scratch()+4); err != nil {
			return fmt.Errorf("ia32 get_robust_list: %w", err)
		}
		b, err := t.ReadMem(t.Scratch(), 8)
		if err != nil {
			return err
		}
		head, n = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[4:]))
	} else if _, _, e := unix.Syscall(unix.SYS_GET_ROBUST_LIST, uintptr(t.Tid()), uintptr(unsafe.Pointer(&head)), uintptr(unsafe.Pointer(&n))); e != 0 {
		// get_robust_list(2) reads another task's native list head.
		return fmt.Errorf("get_robust_list: %w", e)
	}
	e.Core.ThreadCore.FutexRla = proto.Uint64(head)
	e.Core.ThreadCore.FutexRlaLen = proto.Uint32(uint32(n))
	return nil
}

func (robustList) Restore(t Thread, e Entry) error {
	tc := e.Core.GetThreadCore()
	head := tc.GetFutexRla()
	if head == 0 {
		return nil
	}
	set := t.Syscall
	if t.Compat() {
		set = t.Syscall32
	}
	if _, err := set(x86.SysSetRobustList, head, uint64(tc.GetFutexRlaLen())); err != nil {
		return fmt.Errorf("set_robust_list %#x: %w", head, err)
	}
	return nil
}

// pdeathsig is the parent-death signal, set after the credentials, whose
// change resets it.
type pdeathsig struct{}

func (pdeathsig) Name() string { return "parent-death signal" }
func (pdeathsig) Stage() Stage { return StageThread }

func (pdeathsig) Collect(t Thread, e Entry) error {
	v, err := readU32(t, func(addr uint64) error {
		_, err := t.Syscall(x86.SysPrctl, unix.PR_GET_PDEATHSIG, addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_PDEATHSIG): %w", err)
	}
	e.Core.ThreadCore.PdeathSig = proto.Uint32(v)
	return nil
}

func (pdeathsig) Restore(t Thread, e Entry) error {
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_SET_PDEATHSIG, uint64(e.Core.GetThreadCore().GetPdeathSig())); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	return nil
}

// seccomp is the seccomp mode: a task under seccomp is refused.
type seccomp struct{}

func (seccomp) Name() string { return "seccomp" }
func (seccomp) Stage() Stage { return StageThread }

func (seccomp) Collect(t Thread, e Entry) error {
	mode := t.Status().Seccomp
	if mode != 0 {
		return ckerr.Unsupported(t.Pid(), fmt.Sprintf("seccomp mode %d", mode), "the task runs under seccomp, which is not supported yet")
	}
	e.Core.ThreadCore.SeccompMode = criucore.SeccompMode(mode).Enum()
	return nil
}

func (seccomp) Restore(t Thread, e Entry) error { return nil }

// rseqReg is the thread's rseq registration, made again late, so that no
// injected call runs under it.
type rseqReg struct{}

func (rseqReg) Name() string { return "rseq" }
func (rseqReg) Stage() Stage { return StageLate }

func (rseqReg) Collect(t Thread, e Entry) error {
	c, err := t.Ptrace().GetRseqConfig()
	if err != nil {
		return fmt.Errorf("rseq configuration: %w", err)
	}
	if c.Addr != 0 {
		e.Core.ThreadCore.RseqEntry = &rseq.RseqEntry{
			RseqAbiPointer: proto.Uint64(c.Addr),
			RseqAbiSize:    proto.Uint32(c.Len),
			Signature:      proto.Uint32(c.Signature),
		}
	}
	return nil
}

func (rseqReg) Restore(t Thread, e Entry) error {
	r := e.Core.GetThreadCore().GetRseqEntry()
	if r == nil || r.GetRseqAbiPointer() == 0 {
		return nil
	}
	if _, err := t.Syscall(x86.SysRseq, r.GetRseqAbiPointer(), uint64(r.GetRseqAbiSize()), 0, uint64(r.GetSignature())); err != nil {
		return fmt.Errorf("rseq %#x: %w", r.GetRseqAbiPointer(), err)
	}
	return nil
}

// clearTid is the address the kernel clears and wakes at the thread's
// exit (set_tid_address(2)).
type clearTid struct{}

func (clearTid) Name() string { return "clear-tid address" }
func (clearTid) Stage() Stage { return StageLate }

func (clearTid) Collect(t Thread, e Entry) error {
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_GET_TID_ADDRESS, t.Scratch()); err != nil {
		return fmt.Errorf("prctl(PR_GET_TID_ADDRESS): %w", err)
	}
	b, err := t.ReadMem(t.Scratch(), 8)
	if err != nil {
		return err
	}
	e.Core.ThreadInfo.ClearTidAddr = proto.Uint64(binary.LittleEndian.Uint64(b))
	return nil
}

func (clearTid) Restore(t Thread, e Entry) error {
	if _, err := t.Syscall(x86.SysSetTidAddress, e.Core.GetThreadInfo().GetClearTidAddr()); err != nil {
		return fmt.Errorf("set_tid_address: %w", err)
	}
	return nil
}
