package x86img

import (
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// neg returns the two's complement of v as a 64-bit register value.
func neg(v int64) uint64 { return uint64(-v) }

func sampleRegs() x86.Regs {
	// Every field distinct, so that a swapped field shows.
	return x86.Regs{
		R15: 0x1515, R14: 0x1414, R13: 0x1313, R12: 0x1212, Rbp: 0xb0b0, Rbx: 0xbbbb,
		R11: 0x1111, R10: 0x1010, R9: 0x0909, R8: 0x0808, Rax: 0xaaaa, Rcx: 0xcccc,
		Rdx: 0xdddd, Rsi: 0x5151, Rdi: 0xd1d1, Orig_rax: 7, Rip: 0x7f0000401000,
		Cs: x86.UserCS, Eflags: 0x246, Rsp: 0x7ffd00001000, Ss: x86.UserDS,
		Fs_base: 0x7f00000fb000, Gs_base: 0x6b, Ds: 0, Es: 0, Fs: 0, Gs: 0,
	}
}

// roundTrip converts registers to the image entry, through the protobuf
// wire format (which checks that every required field is set), and back.
func roundTrip(t *testing.T, r x86.Regs) (x86.Regs, *core.UserX86RegsEntry) {
	t.Helper()
	e := RegsToImage(&r)
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var e2 core.UserX86RegsEntry
	if err := proto.Unmarshal(b, &e2); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return RegsFromImage(&e2), e
}

func TestRegsRoundTrip(t *testing.T) {
	native := sampleRegs()
	nativeNoSys := native
	nativeNoSys.Orig_rax = ^uint64(0)
	compat := sampleRegs()
	compat.Cs = x86.User32CS
	compat.Rip, compat.Rsp = 0x08049000, 0xffffd000
	compat.Fs_base, compat.Gs_base = 0, 0
	compat.Ds, compat.Es, compat.Fs, compat.Gs = x86.UserDS, x86.UserDS, 0, 0x63
	compatNoSys := compat
	compatNoSys.Orig_rax = ^uint64(0)
	compatInSys := compat
	compatInSys.Orig_rax, compatInSys.Rax = 162, neg(x86.ERESTART_RESTARTBLOCK)

	for _, tc := range []struct {
		name string
		r    x86.Regs
		mode core.UserX86RegsMode
	}{
		{"native", native, core.UserX86RegsMode_NATIVE},
		{"native orig_ax -1", nativeNoSys, core.UserX86RegsMode_NATIVE},
		{"compat", compat, core.UserX86RegsMode_COMPAT},
		{"compat orig_ax -1", compatNoSys, core.UserX86RegsMode_COMPAT},
		{"compat in syscall", compatInSys, core.UserX86RegsMode_COMPAT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, e := roundTrip(t, tc.r)
			if e.GetMode() != tc.mode {
				t.Errorf("mode %v, want %v", e.GetMode(), tc.mode)
			}
			if got != tc.r {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tc.r)
			}
		})
	}
}

// Another tool may store a compat thread's orig_eax of -1 as the 32-bit
// value; it must read back as "not in a syscall".
func TestRegsFromImageCompat32BitOrigAx(t *testing.T) {
	r := sampleRegs()
	r.Cs = x86.User32CS
	e := RegsToImage(&r)
	e.OrigAx = proto.Uint64(0xffffffff)
	got := RegsFromImage(e)
	if got.Orig_rax != ^uint64(0) {
		t.Fatalf("orig_ax %#x, want -1", got.Orig_rax)
	}
	got.Rax = neg(x86.ERESTARTSYS)
	before := got
	if x86.RewindSyscall(&got); got != before {
		t.Fatal("orig_eax -1 read back as a syscall to rewind")
	}
	// The same value in a native entry is a (bogus) syscall number and
	// is kept as it is.
	e.Mode = core.UserX86RegsMode_NATIVE.Enum()
	if got := RegsFromImage(e); got.Orig_rax != 0xffffffff {
		t.Fatalf("native orig_ax %#x changed", got.Orig_rax)
	}
}

func TestModeValues(t *testing.T) {
	if int(core.UserX86RegsMode_NATIVE) != int(x86.ModeNative) || int(core.UserX86RegsMode_COMPAT) != int(x86.ModeCompat) {
		t.Error("x86.Mode values differ from user_x86_regs_mode")
	}
}
