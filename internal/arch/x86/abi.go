//go:build linux && amd64

// Package x86 holds the x86_64 and ia32 ("compat") ABI facts that ckpt
// needs: segment selectors, register sets, the xsave layout, user_desc,
// sigaction layouts, syscall numbers for both ABIs and the syscall restart
// rules, with the byte layouts the kernel reads and writes. It is pure data
// and codecs: nothing here touches a process, and nothing knows the image
// format (internal/model/x86img converts to and from CRIU's messages).
package x86

// Segment selectors, from arch/x86/include/asm/segment.h.
const (
	UserCS   = 0x33 // __USER_CS: 64-bit code segment
	User32CS = 0x23 // __USER32_CS: 32-bit (compat) code segment
	UserDS   = 0x2b // __USER_DS, also __USER32_DS
)

// Mode is the CPU mode a thread was caught in, read from its CS.
type Mode int

// Modes; the values equal user_x86_regs_mode in CRIU's core-x86.proto.
const (
	ModeNative Mode = 1
	ModeCompat Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeNative:
		return "native"
	case ModeCompat:
		return "compat"
	}
	return "unknown"
}

// ModeOfCS classifies a code segment selector.
func ModeOfCS(cs uint64) Mode {
	if cs == User32CS {
		return ModeCompat
	}
	return ModeNative
}

// Kernel-internal restart codes a stopped task can show in ax after an
// interrupted syscall (include/linux/errno.h).
const (
	ERESTARTSYS           = 512
	ERESTARTNOINTR        = 513
	ERESTARTNOHAND        = 514
	ERESTART_RESTARTBLOCK = 516
)

// EflagsTF is X86_EFLAGS_TF, the trap flag
// (arch/x86/include/uapi/asm/processor-flags.h): set, the task single-steps.
const EflagsTF = 1 << 8

// arch_prctl codes (arch/x86/include/uapi/asm/prctl.h).
const (
	ArchMapVDSOX32 = 0x2001
	ArchMapVDSO32  = 0x2002
	ArchMapVDSO64  = 0x2003
)

// Instruction bytes that ckpt writes at a scratch address to run one
// syscall in a stopped task and trap right after it.
var (
	CodeSyscall64 = []byte{0x0f, 0x05, 0xcc} // syscall; int3
	CodeSyscall32 = []byte{0xcd, 0x80, 0xcc} // int $0x80; int3
)

// SyscallInsnLen is the length of both syscall and int $0x80, which the
// kernel subtracts from ip when it restarts a syscall.
const SyscallInsnLen = 2

// PageSize is the only page size on x86.
const PageSize = 4096

// TLS GDT entries used by ia32 set_thread_area (GDT_ENTRY_TLS_MIN..MAX in
// arch/x86/include/asm/segment.h for 64-bit kernels).
const (
	GDTEntryTLSMin     = 12
	GDTEntryTLSEntries = 3
)

// Signal numbers and sigaction flags (arch/x86/include/uapi/asm/signal.h).
const (
	NSig        = 64
	SigKill     = 9
	SigStop     = 19
	SaRestorer  = 0x04000000
	SaIA32ABI   = 0x02000000 // kernel-internal, never visible to user space
	SigsetBytes = 8
)

// The two handlers that are not addresses
// (include/uapi/asm-generic/signal-defs.h).
const (
	SigDfl = 0
	SigIgn = 1
)
