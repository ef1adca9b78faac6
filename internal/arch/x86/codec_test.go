package x86

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestSyscallError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ret    uint64
		compat bool
		value  uint64
		errno  int
	}{
		{"native 0", 0, false, 0, 0},
		{"native -1", neg(1), false, 0, 1},
		{"native -4095", neg(4095), false, 0, 4095},
		{"native -4096 is a value", neg(4096), false, neg(4096), 0},
		{"native high address", 0xffff800000000000, false, 0xffff800000000000, 0},
		{"native mmap result", 0x7f1234567000, false, 0x7f1234567000, 0},
		{"compat 0", 0, true, 0, 0},
		{"compat -1 sign-extended", neg(1), true, 0, 1},
		{"compat -1 32-bit", neg32(1), true, 0, 1},
		{"compat -4095", neg32(4095), true, 0, 4095},
		{"compat -4096 is a value", neg32(4096), true, 0xfffff000, 0},
		{"compat mmap above 2 GiB", 0xf7000000, true, 0xf7000000, 0},
		{"compat mmap above 2 GiB, sign-extended", 0xfffffffff7000000, true, 0xf7000000, 0},
		{"compat upper half ignored", 0x1_00000005, true, 5, 0},
	} {
		v, errno := SyscallError(tc.ret, tc.compat)
		if v != tc.value || errno != tc.errno {
			t.Errorf("%s: SyscallError(%#x, %v) = %#x, %d; want %#x, %d", tc.name, tc.ret, tc.compat, v, errno, tc.value, tc.errno)
		}
	}
}

func TestUserDescRoundTrip(t *testing.T) {
	// Every combination of the eight flag bits and of the 2-bit contents.
	for f := uint32(0); f < 1<<8; f++ {
		raw := make([]byte, UserDescSize)
		le := binary.LittleEndian
		le.PutUint32(raw[0:], GDTEntryTLSMin+f%GDTEntryTLSEntries)
		le.PutUint32(raw[4:], 0xf7d00000+f)
		le.PutUint32(raw[8:], 0xfffff)
		le.PutUint32(raw[12:], f)
		d, err := DecodeUserDesc(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodeUserDesc(d); !bytes.Equal(got, raw) {
			t.Errorf("flags %#x: round trip % x, want % x (%+v)", f, got, raw, d)
		}
	}
}

// The bit layout is that of struct user_desc: seg_32bit:1, contents:2,
// read_exec_only:1, limit_in_pages:1, seg_not_present:1, useable:1, lm:1.
func TestUserDescLayout(t *testing.T) {
	raw := make([]byte, UserDescSize)
	le := binary.LittleEndian
	le.PutUint32(raw[0:], 12)
	le.PutUint32(raw[4:], 0x12345678)
	le.PutUint32(raw[8:], 0xabcde)
	le.PutUint32(raw[12:], 1|2<<1|1<<4|1<<6) // seg_32bit, contents=2 (code), limit_in_pages, useable
	d, err := DecodeUserDesc(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := UserDesc{EntryNumber: 12, BaseAddr: 0x12345678, Limit: 0xabcde, Seg32Bit: true, Contents: 2, LimitInPages: true, Useable: true}
	if d != want {
		t.Errorf("decoded %+v, want %+v", d, want)
	}
	if got := EncodeUserDesc(d); !bytes.Equal(got, raw) {
		t.Errorf("re-encoded % x, want % x", got, raw)
	}
	for bit, d := range map[int]UserDesc{
		0: {Seg32Bit: true}, 1: {Contents: 1}, 2: {Contents: 2}, 3: {ReadExecOnly: true},
		4: {LimitInPages: true}, 5: {SegNotPresent: true}, 6: {Useable: true}, 7: {LM: true},
	} {
		if f := le.Uint32(EncodeUserDesc(d)[12:]); f != 1<<bit {
			t.Errorf("%+v: flags %#x, want bit %d", d, f, bit)
		}
	}
	// An unused slot as PTRACE_GET_THREAD_AREA returns it.
	le.PutUint32(raw[4:], 0)
	le.PutUint32(raw[8:], 0)
	le.PutUint32(raw[12:], 1<<3|1<<5) // read_exec_only, seg_not_present
	if d, _ := DecodeUserDesc(raw); !d.Empty() {
		t.Errorf("empty slot not seen as empty: %+v", d)
	}
	if _, err := DecodeUserDesc(raw[:15]); err == nil {
		t.Error("short user_desc: no error")
	}
}

func TestSigactionRoundTrip(t *testing.T) {
	native := Sigaction{Handler: 0x5555_5555_1234, Flags: SaRestorer | 0x10000000 | 0x4, Restorer: 0x7f00_0000_5678, Mask: 0x8000_0000_0000_1001}
	b := EncodeSigaction(native, false)
	if len(b) != SigactionSize64 || SigactionSize(false) != 32 {
		t.Fatalf("native size %d", len(b))
	}
	le := binary.LittleEndian
	if le.Uint64(b[0:]) != native.Handler || le.Uint64(b[8:]) != native.Flags || le.Uint64(b[16:]) != native.Restorer || le.Uint64(b[24:]) != native.Mask {
		t.Errorf("native layout % x", b)
	}
	if got, err := DecodeSigaction(b, false); err != nil || got != native {
		t.Errorf("native round trip %+v, %v", got, err)
	}

	compat := Sigaction{Handler: 0x0804_9abc, Flags: SaRestorer | 0x4, Restorer: 0xf7f0_1234, Mask: 0x8000_0000_0000_4002}
	b = EncodeSigaction(compat, true)
	if len(b) != SigactionSize32 || SigactionSize(true) != 20 {
		t.Fatalf("compat size %d", len(b))
	}
	// struct compat_sigaction: handler, flags, restorer (32 bits each), then the 64-bit mask.
	if le.Uint32(b[0:]) != uint32(compat.Handler) || le.Uint32(b[4:]) != uint32(compat.Flags) ||
		le.Uint32(b[8:]) != uint32(compat.Restorer) || le.Uint64(b[12:]) != compat.Mask {
		t.Errorf("compat layout % x", b)
	}
	if got, err := DecodeSigaction(b, true); err != nil || got != compat {
		t.Errorf("compat round trip %+v, %v", got, err)
	}
	// SIG_IGN and SIG_DFL survive both.
	for _, h := range []uint64{0, 1} {
		for _, c := range []bool{false, true} {
			sa := Sigaction{Handler: h}
			if got, _ := DecodeSigaction(EncodeSigaction(sa, c), c); got != sa {
				t.Errorf("handler %d compat %v: %+v", h, c, got)
			}
		}
	}
	if _, err := DecodeSigaction(make([]byte, 31), false); err == nil {
		t.Error("short native sigaction: no error")
	}
	if _, err := DecodeSigaction(make([]byte, 19), true); err == nil {
		t.Error("short compat sigaction: no error")
	}
}

func TestStackRoundTrip(t *testing.T) {
	s := Stack{Sp: 0x7f0000100000, Flags: SSDisable, Size: 65536}
	if got, err := DecodeStack(EncodeStack(s)); err != nil || got != s {
		t.Errorf("stack_t round trip %+v, %v", got, err)
	}
	if _, err := DecodeStack(make([]byte, StackSize64-1)); err == nil {
		t.Error("short stack_t: no error")
	}
}

// The legacy region is struct user_i387_struct: cwd swd twd fop, rip,
// rdp, mxcsr, mxcsr_mask at 24 and 28, st_space at 32, xmm_space at 160,
// padding at 416; xstate_bv at 512 and xcomp_bv at 520.
func TestXsaveAreaLayout(t *testing.T) {
	a := make(XsaveArea, 1024)
	for i := range a {
		a[i] = byte(i*7 + 3)
	}
	le := binary.LittleEndian
	fx := a.FX()
	if fx.Cwd != le.Uint16(a[0:]) || fx.Swd != le.Uint16(a[2:]) || fx.Twd != le.Uint16(a[4:]) || fx.Fop != le.Uint16(a[6:]) ||
		fx.Rip != le.Uint64(a[8:]) || fx.Rdp != le.Uint64(a[16:]) || fx.Mxcsr != le.Uint32(a[24:]) || fx.MxcsrMask != le.Uint32(a[28:]) {
		t.Errorf("legacy header fields %+v", fx)
	}
	if fx.StSpace[0] != le.Uint32(a[32:]) || fx.XmmSpace[0] != le.Uint32(a[160:]) || fx.Padding[0] != le.Uint32(a[416:]) || fx.Padding[23] != le.Uint32(a[508:]) {
		t.Error("st_space, xmm_space or padding at the wrong offset")
	}
	b := make(XsaveArea, 1024)
	b.SetFX(&fx)
	if !bytes.Equal(b[:XsaveLegacySize], a[:XsaveLegacySize]) || b[XsaveLegacySize] != 0 {
		t.Error("SetFX does not write back the 512 bytes it read, or writes past them")
	}
	b.SetXstateBV(0x1122334455667788)
	b.SetXcompBV(0x99)
	if le.Uint64(b[512:]) != 0x1122334455667788 || b.XstateBV() != 0x1122334455667788 || le.Uint64(b[520:]) != 0x99 {
		t.Errorf("xsave header % x", b[512:528])
	}
	if XsaveMinSize != 576 {
		t.Errorf("XsaveMinSize %d", XsaveMinSize)
	}
	for n, c := range XsaveComponents() {
		if n < 2 || c.Size == 0 || c.Offset < XsaveMinSize {
			t.Errorf("component %d at %d+%d", n, c.Offset, c.Size)
		}
		if got := a.Component(n); c.Offset+c.Size <= len(a) && len(got) != c.Size {
			t.Errorf("component %d: %d bytes, want %d", n, len(got), c.Size)
		}
		if got := a[:XsaveMinSize].Component(n); got != nil {
			t.Errorf("component %d found in a buffer too short for it", n)
		}
	}
	if a.Component(1) != nil || a.Component(63) != nil {
		t.Error("a component this CPU cannot have")
	}
}

// elfHeader returns a bare ELF header of the given class and machine.
func elfHeader(class elf.Class, machine elf.Machine) []byte {
	size := 64
	if class == elf.ELFCLASS32 {
		size = 52
	}
	b := make([]byte, size)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(class)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(machine))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	if class == elf.ELFCLASS32 {
		le.PutUint16(b[40:], 52) // e_ehsize
	} else {
		le.PutUint16(b[52:], 64)
	}
	return b
}

func TestExecutableABI(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		abi  ABI
		err  string
	}{
		{"x86_64", elfHeader(elf.ELFCLASS64, elf.EM_X86_64), ABI64, ""},
		{"ia32", elfHeader(elf.ELFCLASS32, elf.EM_386), ABI32, ""},
		{"x32", elfHeader(elf.ELFCLASS32, elf.EM_X86_64), ABIX32, ""},
		{"aarch64", elfHeader(elf.ELFCLASS64, elf.EM_AARCH64), ABIUnknown, "not an x86 program"},
		{"garbage", []byte("#!/bin/sh\necho not an ELF file at all, just a script\n"), ABIUnknown, "ELF header"},
		{"empty", nil, ABIUnknown, "ELF header"},
		{"truncated", elfHeader(elf.ELFCLASS64, elf.EM_X86_64)[:20], ABIUnknown, "ELF header"},
	} {
		abi, err := ExecutableABI(bytes.NewReader(tc.b))
		if abi != tc.abi {
			t.Errorf("%s: ABI %v, want %v", tc.name, abi, tc.abi)
		}
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
	if !strings.Contains(ErrX32.Error(), "x32 tasks are not supported") {
		t.Errorf("ErrX32 = %q", ErrX32)
	}
	if !errors.Is(ErrX32, ErrX32) {
		t.Error("ErrX32 is not itself")
	}
	for abi, name := range map[ABI]string{ABIUnknown: "unknown", ABI64: "x86_64", ABI32: "ia32", ABIX32: "x32"} {
		if abi.String() != name {
			t.Errorf("ABI %d String %q, want %q", abi, abi.String(), name)
		}
	}
	// This test binary is an x86_64 program.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if abi, err := ExecutableABI(f); abi != ABI64 || err != nil {
		t.Errorf("test binary: %v, %v", abi, err)
	}
}

func TestSyscallNumbers(t *testing.T) {
	for _, tc := range []struct {
		s        Syscall
		name     string
		n64, n32 int
	}{
		{SysGetpid, "getpid", 39, 20},
		{SysMmap, "mmap", 9, 192},
		{SysMunmap, "munmap", 11, 91},
		{SysRtSigaction, "rt_sigaction", 13, 174},
		{SysArchPrctl, "arch_prctl", 158, 384},
		{SysSetThreadArea, "set_thread_area", 205, 243},
		{SysClone3, "clone3", 435, 435},
		{SysExitGroup, "exit_group", 231, 252},
		{SysPrctl, "prctl", 157, 172},
		{SysRseq, "rseq", 334, 386},
		{SysCloseRange, "close_range", 436, 436},
		{SysMembarrier, "membarrier", 324, 375},
		{SysVmsplice, "vmsplice", 278, 316},
		{SysPreadv, "preadv", 295, 333},
		{SysClone, "clone", 56, 120},
		{SysMunlock, "munlock", 150, 151},
	} {
		if got := tc.s.Number(false); got != tc.n64 {
			t.Errorf("%v x86_64: %d, want %d", tc.s, got, tc.n64)
		}
		if got := tc.s.Number(true); got != tc.n32 {
			t.Errorf("%v ia32: %d, want %d", tc.s, got, tc.n32)
		}
		if tc.s.String() != tc.name {
			t.Errorf("%d: name %q, want %q", tc.s, tc.s.String(), tc.name)
		}
	}
	if Syscall(-1).String() != "syscall?" || numSyscalls.String() != "syscall?" {
		t.Error("out-of-range syscall has a name")
	}
	// No two calls share a number within an ABI, and every call has a name.
	for _, compat := range []bool{false, true} {
		seen := map[int]Syscall{}
		for s := Syscall(0); s < numSyscalls; s++ {
			n := s.Number(compat)
			if n < 0 {
				continue
			}
			if o, dup := seen[n]; dup {
				t.Errorf("compat %v: %v and %v are both %d", compat, o, s, n)
			}
			seen[n] = s
			if s.String() == "" || s.String() == "syscall?" {
				t.Errorf("syscall %d has no name", s)
			}
		}
	}
}
