//go:build linux && amd64

package x86

import "golang.org/x/sys/unix"

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
	if restartSyscall(r) {
		r.Orig_rax = ^uint64(0)
	}
}

// RestartInImage rewinds an interrupted syscall as RewindSyscall does,
// for the image, as CRIU writes registers: orig_ax keeps the syscall
// number (it tells that the thread was in a syscall). CRIU restores the
// registers as they are, so a restart code left in ax would be the
// syscall's result in the restored program (glibc aborts on a futex
// that returns -ERESTARTSYS). RewindSyscall leaves such registers alone.
func RestartInImage(r *Regs) { restartSyscall(r) }

// restartSyscall rewinds r if it holds an interrupted syscall.
func restartSyscall(r *Regs) bool {
	if int32(r.Orig_rax) < 0 {
		return false
	}
	ax := int64(r.Rax)
	if RegsMode(r) == ModeCompat {
		ax = int64(int32(r.Rax))
	}
	switch -ax {
	case ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK:
		r.Rax = r.Orig_rax
		r.Rip -= SyscallInsnLen
		return true
	}
	return false
}
