package x86

import (
	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Regs is the tracer's (64-bit) view of a thread's general registers:
// struct user_regs_struct of arch/x86/include/asm/user_64.h, as
// PTRACE_GETREGS fills it for native and compat tracees alike. For a
// compat thread cs is 0x23 and the 32-bit registers are zero-extended.
type Regs = unix.PtraceRegs

// RegsMode returns the mode the thread was caught in.
func RegsMode(r *Regs) Mode { return ModeOfCS(r.Cs) }

// SetSyscallArgs loads a syscall number and up to six arguments into r
// for the given ABI: rdi,rsi,rdx,r10,r8,r9 for x86_64 (syscall) and
// ebx,ecx,edx,esi,edi,ebp for ia32 (int $0x80).
func SetSyscallArgs(r *Regs, nr int, compat bool, args ...uint64) {
	var a [6]uint64
	copy(a[:], args)
	r.Rax = uint64(nr)
	if compat {
		r.Rbx, r.Rcx, r.Rdx, r.Rsi, r.Rdi, r.Rbp = a[0], a[1], a[2], a[3], a[4], a[5]
		return
	}
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = a[0], a[1], a[2], a[3], a[4], a[5]
}

// RewindSyscall rewrites dumped registers so that a syscall the task was
// interrupted in runs again once it is restored: ax gets the syscall
// number back and ip points at the syscall instruction, as the kernel
// does for -ERESTARTSYS, -ERESTARTNOINTR and -ERESTARTNOHAND when no
// handler runs. -ERESTART_RESTARTBLOCK would go through restart_syscall,
// whose state (the restart_block) lives in the kernel and is not
// restored; the original syscall runs again with its original arguments
// instead. Values of a compat thread are compared as 32 bits.
func RewindSyscall(r *Regs) {
	if int32(r.Orig_rax) < 0 {
		return
	}
	ax := int64(r.Rax)
	if RegsMode(r) == ModeCompat {
		ax = int64(int32(r.Rax))
	}
	switch -ax {
	case ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK:
		r.Rax = r.Orig_rax
		r.Rip -= SyscallInsnLen
		r.Orig_rax = ^uint64(0)
	}
}

// RegsToImage converts registers to CRIU's user_x86_regs_entry. The mode
// field records the CPU mode the thread was caught in.
func RegsToImage(r *Regs) *core.UserX86RegsEntry {
	mode := core.UserX86RegsMode_NATIVE
	if RegsMode(r) == ModeCompat {
		mode = core.UserX86RegsMode_COMPAT
	}
	u := proto.Uint64
	return &core.UserX86RegsEntry{
		R15: u(r.R15), R14: u(r.R14), R13: u(r.R13), R12: u(r.R12),
		Bp: u(r.Rbp), Bx: u(r.Rbx), R11: u(r.R11), R10: u(r.R10),
		R9: u(r.R9), R8: u(r.R8), Ax: u(r.Rax), Cx: u(r.Rcx),
		Dx: u(r.Rdx), Si: u(r.Rsi), Di: u(r.Rdi), OrigAx: u(r.Orig_rax),
		Ip: u(r.Rip), Cs: u(r.Cs), Flags: u(r.Eflags), Sp: u(r.Rsp),
		Ss: u(r.Ss), FsBase: u(r.Fs_base), GsBase: u(r.Gs_base),
		Ds: u(r.Ds), Es: u(r.Es), Fs: u(r.Fs), Gs: u(r.Gs),
		Mode: mode.Enum(),
	}
}

// RegsFromImage is the inverse of RegsToImage. A compat entry written by
// another tool may carry only 32-bit values; they are used as they are.
func RegsFromImage(e *core.UserX86RegsEntry) Regs {
	r := Regs{
		R15: e.GetR15(), R14: e.GetR14(), R13: e.GetR13(), R12: e.GetR12(),
		Rbp: e.GetBp(), Rbx: e.GetBx(), R11: e.GetR11(), R10: e.GetR10(),
		R9: e.GetR9(), R8: e.GetR8(), Rax: e.GetAx(), Rcx: e.GetCx(),
		Rdx: e.GetDx(), Rsi: e.GetSi(), Rdi: e.GetDi(), Orig_rax: e.GetOrigAx(),
		Rip: e.GetIp(), Cs: e.GetCs(), Eflags: e.GetFlags(), Rsp: e.GetSp(),
		Ss: e.GetSs(), Fs_base: e.GetFsBase(), Gs_base: e.GetGsBase(),
		Ds: e.GetDs(), Es: e.GetEs(), Fs: e.GetFs(), Gs: e.GetGs(),
	}
	if e.GetMode() == core.UserX86RegsMode_COMPAT {
		// A 32-bit orig_eax of -1 must stay "no syscall" in 64 bits.
		if int32(r.Orig_rax) == -1 {
			r.Orig_rax = ^uint64(0)
		}
	}
	return r
}
