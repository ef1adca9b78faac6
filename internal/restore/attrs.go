//go:build linux && amd64

package restore

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	attrs "github.com/ckpt/ckpt/internal/kinds/task"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/model/x86img"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// restoreMM sets the mm fields, saved auxv and exe link with PR_SET_MM_MAP.
func (r *restorer) restoreMM() error {
	m := r.im.MM
	// The bytes /proc/PID/auxv showed (an ia32 task's in 32-bit words).
	auxv, err := model.SavedAuxv(m)
	if err != nil {
		return err
	}
	if len(auxv) > 2*x86.PageSize-uapi.SizeofPrctlMMMap {
		return fmt.Errorf("saved auxv of %d bytes is too large", len(auxv))
	}
	auxvAddr, err := r.put(x86.PageSize, auxv)
	if err != nil {
		return err
	}
	exePath, err := r.putString(0, r.im.ExePath)
	if err != nil {
		return err
	}
	exeFd, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, exePath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exe %s: %w", r.im.ExePath, err)
	}
	defer r.inj.Syscall(x86.SysClose, exeFd)
	b := uapi.PrctlMMMap{
		StartCode: m.GetMmStartCode(), EndCode: m.GetMmEndCode(),
		StartData: m.GetMmStartData(), EndData: m.GetMmEndData(),
		StartBrk: m.GetMmStartBrk(), Brk: m.GetMmBrk(), StartStack: m.GetMmStartStack(),
		ArgStart: m.GetMmArgStart(), ArgEnd: m.GetMmArgEnd(),
		EnvStart: m.GetMmEnvStart(), EnvEnd: m.GetMmEnvEnd(),
		Auxv: auxvAddr, AuxvSize: uint32(len(auxv)), ExeFd: uint32(exeFd),
	}.Bytes()
	mapAddr, err := r.put(2*x86.PageSize, b)
	if err != nil {
		return err
	}
	if _, err := r.inj.Syscall(x86.SysPrctl, unix.PR_SET_MM, unix.PR_SET_MM_MAP, mapAddr, uapi.SizeofPrctlMMMap, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_MM_MAP): %w", err)
	}
	return nil
}

// leaderStage sets the task attributes of stage s in the leader.
func (r *restorer) leaderStage(s attrs.Stage) func() error {
	return func() error {
		th := r.threads[0]
		return attrs.RestoreStage(s, r.attrThread(th), attrs.Entry{Core: th.core, MM: r.im.MM})
	}
}

// threadStage sets the task attributes of stage s in one thread.
func (r *restorer) threadStage(s attrs.Stage) func(*thread) error {
	return func(th *thread) error {
		return attrs.RestoreStage(s, r.attrThread(th), attrs.Entry{Core: th.core, MM: r.im.MM})
	}
}

// attrThread is a thread being restored as task attributes see it.
func (r *restorer) attrThread(th *thread) attrs.Thread { return restoringThread{r, th} }

// restoringThread is a thread being restored (attrs.Thread).
type restoringThread struct {
	r  *restorer
	th *thread
}

func (t restoringThread) Pid() int               { return t.r.pid }
func (t restoringThread) Tid() int               { return t.th.h.Tid }
func (t restoringThread) VPid() int              { return t.r.im.VPid() }
func (t restoringThread) VTid() int              { return t.th.vtid }
func (t restoringThread) Leader() bool           { return t.th.h.Tid == t.r.pid }
func (t restoringThread) Compat() bool           { return t.r.im.Compat }
func (t restoringThread) Scratch() uint64        { return t.r.data(0) }
func (t restoringThread) Status() *procfs.Status { return nil }
func (t restoringThread) Ptrace() ptrace.Thread  { return t.th.h }

// ExecSignals: every task of a restore is cloned, directly or through
// its restored parent, from the helper, stopped at its exec before it ran
// an instruction, and no action is set in any of them (other than back
// to SIG_DFL or SIG_IGN, dropSigchld, dieBy) before its own are restored
// (StageProcess, once every process exists): the actions are the exec's.
// The task's status confirms that none has a handler.
func (t restoringThread) ExecSignals() (uint64, bool) {
	st, err := procfs.ReadStatus(t.r.pid)
	if err != nil || st.SigCgt != 0 {
		return 0, false
	}
	return st.SigIgn, true
}

func (t restoringThread) Put(b []byte) (uint64, error) {
	return t.r.put(0, b)
}

func (t restoringThread) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return t.th.inj.Syscall(s, args...)
}

func (t restoringThread) Syscall32(s x86.Syscall, args ...uint64) (uint64, error) {
	return t.th.inj.Syscall32(s, args...)
}

func (t restoringThread) ReadMem(addr uint64, n int) ([]byte, error) {
	return t.r.readTask(addr, addr+uint64(n))
}

// removeScratch unmaps the scratch area from inside the leader; the
// syscall-exit stop still comes after the call unmapped its own code.
func (r *restorer) removeScratch() error {
	if _, err := r.inj.Syscall(x86.SysMunmap, r.scratch, scratchPages*x86.PageSize); err != nil {
		return fmt.Errorf("munmap scratch %#x: %w", r.scratch, err)
	}
	for _, th := range r.threads {
		th.inj.ForgetCode()
	}
	return nil
}

// setRegisters sets TLS, FPU/xstate, general registers and the blocked
// mask as dumped.
func (r *restorer) setRegisters(th *thread) error {
	ti := th.core.GetThreadInfo()
	h := th.h
	var tls []x86.UserDesc
	for _, d := range ti.GetTls() {
		ud := x86img.UserDescFromImage(d)
		tls = append(tls, ud)
		if err := h.SetThreadArea(int(d.GetEntryNumber()), x86.EncodeUserDesc(ud)); err != nil {
			return fmt.Errorf("TLS entry %d: %w", d.GetEntryNumber(), err)
		}
	}
	tmpl, err := h.GetXstate()
	if err != nil {
		return fmt.Errorf("read xstate: %w", err)
	}
	xs, err := x86img.XstateFromImage(ti.GetFpregs(), tmpl)
	if err != nil {
		return err
	}
	if err := h.SetRegset(unix.NT_X86_XSTATE, xs); err != nil {
		return fmt.Errorf("set xstate: %w", err)
	}
	regs := x86img.RegsFromImage(ti.GetGpregs())
	tlsBases(&regs, tls)
	// The task leaves a syscall-exit stop, where the kernel applies no
	// restart rules: rewind an interrupted syscall here.
	x86.RewindSyscall(&regs)
	if err := h.SetRegs(&regs); err != nil {
		return fmt.Errorf("set registers (ip %#x cs %#x): %w", regs.Rip, regs.Cs, err)
	}
	// The leader's mask is the task core's, as CRIU reads it (CRIU
	// writes the leader's only there); other threads' are in their
	// thread cores.
	mask := th.core.GetThreadCore().GetBlkSigset()
	if tc := th.core.GetTc(); tc != nil {
		mask = tc.GetBlkSigset()
	}
	if err := h.SetSigmask(mask); err != nil {
		return fmt.Errorf("set signal mask: %w", err)
	}
	return nil
}

// tlsBases makes fs_base and gs_base those of the GDT TLS entries that
// the fs and gs selectors name, where the image's base is 0 or the
// thread runs 32-bit code (which cannot set a base other than through a
// selector): CRIU dumps an ia32 task with bases of 0 and its TLS in the
// GDT entries only, and the kernel, which restores the base after the
// selector on a CPU with FSGSBASE, would leave gs_base 0 (model/criu.go).
func tlsBases(regs *x86.Regs, tls []x86.UserDesc) {
	compat := regs.Cs == x86.User32CS
	if b, ok := x86.TLSSelectorBase(regs.Gs, tls); ok && (compat || regs.Gs_base == 0) {
		regs.Gs_base = b
	}
	if b, ok := x86.TLSSelectorBase(regs.Fs, tls); ok && (compat || regs.Fs_base == 0) {
		regs.Fs_base = b
	}
}
