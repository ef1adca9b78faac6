package x86

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"
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
	// Every combination of the seven flags.
	for bits := 0; bits < 1<<7; bits++ {
		b := func(i int) *bool { return proto.Bool(bits&(1<<i) != 0) }
		d := &core.UserDescT{
			EntryNumber: proto.Uint32(GDTEntryTLSMin + uint32(bits)%GDTEntryTLSEntries),
			BaseAddr:    proto.Uint32(0xf7d00000 + uint32(bits)), Limit: proto.Uint32(0xfffff),
			Seg_32Bit: b(0), ContentsH: b(1), ContentsL: b(2), ReadExecOnly: b(3),
			LimitInPages: b(4), SegNotPresent: b(5), Usable: b(6),
		}
		raw := EncodeUserDesc(d)
		if len(raw) != UserDescSize {
			t.Fatalf("encoded %d bytes", len(raw))
		}
		got, err := DecodeUserDesc(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, d) {
			t.Errorf("flags %#x: round trip\n got %v\nwant %v", bits, got, d)
		}
		// And through the protobuf wire format: every field is required.
		if _, err := proto.Marshal(got); err != nil {
			t.Errorf("flags %#x: marshal: %v", bits, err)
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
	if d.GetEntryNumber() != 12 || d.GetBaseAddr() != 0x12345678 || d.GetLimit() != 0xabcde ||
		!d.GetSeg_32Bit() || !d.GetContentsH() || d.GetContentsL() || d.GetReadExecOnly() ||
		!d.GetLimitInPages() || d.GetSegNotPresent() || !d.GetUsable() {
		t.Errorf("decoded %v", d)
	}
	if got := EncodeUserDesc(d); !bytes.Equal(got, raw) {
		t.Errorf("re-encoded % x, want % x", got, raw)
	}
	// An unused slot as PTRACE_GET_THREAD_AREA returns it.
	le.PutUint32(raw[4:], 0)
	le.PutUint32(raw[8:], 0)
	le.PutUint32(raw[12:], 1<<3|1<<5) // read_exec_only, seg_not_present
	if d, _ := DecodeUserDesc(raw); !UserDescEmpty(d) {
		t.Errorf("empty slot not seen as empty: %v", d)
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

// xstateSize is the size of a standard-format xsave area holding every
// component this CPU has, and at least 2696 bytes (AVX-512 without AMX).
func xstateSize() int {
	n := 2696
	for _, c := range components() {
		n = max(n, c.off+c.size)
	}
	return n
}

func TestXstateRoundTrip(t *testing.T) {
	size := xstateSize()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i*7 + 3)
	}
	le := binary.LittleEndian
	bv := uint64(0x7) // x87, SSE, AVX
	for n := range components() {
		if n < 64 {
			bv |= 1 << uint(n)
		}
	}
	le.PutUint64(buf[xstateBVOffset:], bv)

	fp, err := XstateToImage(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := fp.GetXsave().GetXstateBv(); got != bv {
		t.Errorf("xstate_bv %#x, want %#x", got, bv)
	}
	if len(fp.GetStSpace()) != 32 || len(fp.GetXmmSpace()) != 64 || len(fp.GetPadding()) != 24 {
		t.Errorf("legacy lengths st %d xmm %d pad %d", len(fp.GetStSpace()), len(fp.GetXmmSpace()), len(fp.GetPadding()))
	}
	// Through the wire format, as it would be stored.
	b, err := proto.Marshal(fp)
	if err != nil {
		t.Fatal(err)
	}
	var fp2 core.UserX86FpregsEntry
	if err := proto.Unmarshal(b, &fp2); err != nil {
		t.Fatal(err)
	}
	template := make([]byte, size)
	for i := range template {
		template[i] = 0xee
	}
	out, err := XstateFromImage(&fp2, template)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != size {
		t.Fatalf("restored buffer %d bytes, want %d", len(out), size)
	}
	// The registers of the legacy FXSAVE area survive; its reserved and
	// software-reserved tail (fx_sw_bytes, which the kernel checks) comes
	// from the template of the task being restored.
	if !bytes.Equal(out[:fxOffPad], buf[:fxOffPad]) {
		t.Error("legacy FXSAVE registers differ")
	}
	if !bytes.Equal(out[fxOffPad:xsaveLegacySize], template[fxOffPad:xsaveLegacySize]) {
		t.Error("legacy FXSAVE reserved bytes do not come from the template")
	}
	if len(fp.GetPadding()) == 0 || fp.GetPadding()[0] != binary.LittleEndian.Uint32(buf[fxOffPad:]) {
		t.Error("padding not kept in the image")
	}
	if got := le.Uint64(out[xstateBVOffset:]); got != bv {
		t.Errorf("restored xstate_bv %#x, want %#x", got, bv)
	}
	if got := le.Uint64(out[xstateBVOffset+8:]); got != 0 {
		t.Errorf("xcomp_bv %#x, want 0 (standard format)", got)
	}
	ymm, ok := components()[xfeatYMM]
	if !ok {
		t.Log("CPU without AVX: ymmh not checked")
	} else {
		if len(fp.GetXsave().GetYmmhSpace()) != ymm.size/4 {
			t.Errorf("ymmh %d words, want %d", len(fp.GetXsave().GetYmmhSpace()), ymm.size/4)
		}
		if !bytes.Equal(out[ymm.off:ymm.off+ymm.size], buf[ymm.off:ymm.off+ymm.size]) {
			t.Error("ymmh differs")
		}
	}
	for n, c := range components() {
		switch n {
		case xfeatYMM, xfeatBNDREGS, xfeatBNDCSR, xfeatOpmask, xfeatZMMHi256, xfeatHi16ZMM, xfeatPKRU:
			if !bytes.Equal(out[c.off:c.off+c.size], buf[c.off:c.off+c.size]) {
				t.Errorf("component %d differs", n)
			}
		}
	}
}

func TestXstateShortAndMissing(t *testing.T) {
	if _, err := XstateToImage(make([]byte, 575)); err == nil {
		t.Error("short xstate: no error")
	}
	if _, err := XstateFromImage(&core.UserX86FpregsEntry{}, make([]byte, 100)); err == nil {
		t.Error("short template: no error")
	}
	// No xsave part: FP and SSE only.
	out, err := XstateFromImage(&core.UserX86FpregsEntry{Mxcsr: proto.Uint32(0x1f80)}, make([]byte, 1024))
	if err != nil {
		t.Fatal(err)
	}
	if bv := binary.LittleEndian.Uint64(out[xstateBVOffset:]); bv != 3 || binary.LittleEndian.Uint32(out[24:]) != 0x1f80 {
		t.Errorf("fp-only: xstate_bv %#x", bv)
	}
	// A component this CPU lacks, marked in use, is refused.
	for _, n := range []int{xfeatHi16ZMM, xfeatBNDREGS} {
		if _, has := components()[n]; has {
			continue
		}
		fp := &core.UserX86FpregsEntry{Xsave: &core.UserX86XsaveEntry{XstateBv: proto.Uint64(1 << uint(n))}}
		switch n {
		case xfeatHi16ZMM:
			fp.Xsave.Hi16Zmm = make([]uint64, 128)
		case xfeatBNDREGS:
			fp.Xsave.BndregState = make([]uint64, 8)
		}
		if _, err := XstateFromImage(fp, make([]byte, xstateSize())); err == nil {
			t.Errorf("component %d missing on this CPU: no error", n)
		}
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
