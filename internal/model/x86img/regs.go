//go:build linux && amd64

package x86img

import (
	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// RegsToImage converts registers to CRIU's user_x86_regs_entry. The mode
// field records the CPU mode the thread was caught in.
func RegsToImage(r *x86.Regs) *core.UserX86RegsEntry {
	mode := core.UserX86RegsMode_NATIVE
	if x86.RegsMode(r) == x86.ModeCompat {
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
func RegsFromImage(e *core.UserX86RegsEntry) x86.Regs {
	r := x86.Regs{
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
