package x86

import "testing"

// neg returns the two's complement of v as a 64-bit register value.
func neg(v int64) uint64 { return uint64(-v) }

// neg32 returns the two's complement of v as a zero-extended 32-bit value.
func neg32(v int64) uint64 { return uint64(uint32(int32(-v))) }

func sampleRegs() Regs {
	// Every field distinct, so that a swapped field shows.
	return Regs{
		R15: 0x1515, R14: 0x1414, R13: 0x1313, R12: 0x1212, Rbp: 0xb0b0, Rbx: 0xbbbb,
		R11: 0x1111, R10: 0x1010, R9: 0x0909, R8: 0x0808, Rax: 0xaaaa, Rcx: 0xcccc,
		Rdx: 0xdddd, Rsi: 0x5151, Rdi: 0xd1d1, Orig_rax: 7, Rip: 0x7f0000401000,
		Cs: UserCS, Eflags: 0x246, Rsp: 0x7ffd00001000, Ss: UserDS,
		Fs_base: 0x7f00000fb000, Gs_base: 0x6b, Ds: 0, Es: 0, Fs: 0, Gs: 0,
	}
}

func TestRegsMode(t *testing.T) {
	if m := ModeOfCS(UserCS); m != ModeNative || m.String() != "native" {
		t.Errorf("cs 0x33: %v", m)
	}
	if m := ModeOfCS(User32CS); m != ModeCompat || m.String() != "compat" {
		t.Errorf("cs 0x23: %v", m)
	}
}

func TestSetSyscallArgs(t *testing.T) {
	var r Regs
	SetSyscallArgs(&r, 9, false, 1, 2, 3, 4, 5, 6)
	if r.Rax != 9 || r.Rdi != 1 || r.Rsi != 2 || r.Rdx != 3 || r.R10 != 4 || r.R8 != 5 || r.R9 != 6 {
		t.Errorf("x86_64 args: %+v", r)
	}
	r = Regs{}
	SetSyscallArgs(&r, 192, true, 1, 2, 3, 4, 5, 6)
	if r.Rax != 192 || r.Rbx != 1 || r.Rcx != 2 || r.Rdx != 3 || r.Rsi != 4 || r.Rdi != 5 || r.Rbp != 6 {
		t.Errorf("ia32 args: %+v", r)
	}
}

func TestRewindSyscall(t *testing.T) {
	const nr = 7 // poll; any number will do
	// Every restart code rewinds the call, ERESTART_RESTARTBLOCK included
	// (to the original syscall, not restart_syscall).
	for _, code := range []int64{ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK} {
		// Native.
		r := sampleRegs()
		r.Orig_rax, r.Rax = nr, neg(code)
		want := r
		want.Rax, want.Rip, want.Orig_rax = nr, r.Rip-SyscallInsnLen, ^uint64(0)
		RewindSyscall(&r)
		if r != want {
			t.Errorf("native -%d:\n got %+v\nwant %+v", code, r, want)
		}
		// Compat, ax as the 64-bit tracer reads it (sign-extended) and as
		// a 32-bit value (zero-extended).
		for _, ax := range []uint64{neg(code), neg32(code)} {
			r := sampleRegs()
			r.Cs, r.Rip = User32CS, 0x08049010
			r.Orig_rax, r.Rax = nr, ax
			want := r
			want.Rax, want.Rip, want.Orig_rax = nr, 0x08049010-SyscallInsnLen, ^uint64(0)
			RewindSyscall(&r)
			if r != want {
				t.Errorf("compat -%d (ax %#x):\n got %+v\nwant %+v", code, ax, r, want)
			}
		}
	}
	// Not in a syscall: ax is a user value and must stay whatever it is,
	// whether orig_ax -1 is read as 64 or as 32 bits.
	for _, cs := range []uint64{UserCS, User32CS} {
		for _, orig := range []uint64{^uint64(0), 0xffffffff} {
			for _, ax := range []uint64{neg(ERESTART_RESTARTBLOCK), neg32(ERESTART_RESTARTBLOCK), neg(ERESTARTSYS), 0, 42} {
				r := sampleRegs()
				r.Cs, r.Orig_rax, r.Rax = cs, orig, ax
				before := r
				RewindSyscall(&r)
				if r != before {
					t.Errorf("cs %#x not in syscall (orig_ax %#x), ax %#x: registers changed (ax %#x)", cs, orig, ax, r.Rax)
				}
			}
		}
	}
	// A syscall that finished, or failed with an ordinary error such as
	// -EINTR, is left as it is.
	for _, cs := range []uint64{UserCS, User32CS} {
		for _, ax := range []uint64{5, neg(4), neg32(4), neg(515)} {
			r := sampleRegs()
			r.Cs, r.Orig_rax, r.Rax = cs, nr, ax
			before := r
			RewindSyscall(&r)
			if r != before {
				t.Errorf("cs %#x finished syscall, ax %#x: registers changed", cs, ax)
			}
		}
	}
}

func TestTLSSelectorBase(t *testing.T) {
	descs := []UserDesc{
		{EntryNumber: 12, BaseAddr: 0xf7d8a740, Limit: 0xfffff, Seg32Bit: true, LimitInPages: true, Useable: true},
		{EntryNumber: 13, SegNotPresent: true, ReadExecOnly: true},
	}
	for _, c := range []struct {
		sel  uint64
		base uint64
		ok   bool
	}{
		{12<<3 | 3, 0xf7d8a740, true}, // glibc's %gs in an ia32 task: 0x63
		{13<<3 | 3, 0, false},         // an empty entry
		{14<<3 | 3, 0, false},         // not in descs
		{12<<3 | 4 | 3, 0, false},     // LDT
		{0x2b, 0, false},              // __USER_DS
		{0, 0, false},
	} {
		base, ok := TLSSelectorBase(c.sel, descs)
		if base != c.base || ok != c.ok {
			t.Errorf("TLSSelectorBase(%#x) = %#x, %v; want %#x, %v", c.sel, base, ok, c.base, c.ok)
		}
	}
}

func TestRestartInImage(t *testing.T) {
	restart := int64(-ERESTARTSYS)
	r := Regs{Orig_rax: 202, Rax: uint64(restart), Rip: 0x401002, Cs: UserCS}
	RestartInImage(&r)
	if r.Rax != 202 || r.Rip != 0x401000 || r.Orig_rax != 202 {
		t.Errorf("after RestartInImage: ax %d ip %#x orig_ax %d; want 202, 0x401000, 202", r.Rax, r.Rip, int64(r.Orig_rax))
	}
	// Restored by ckpt: already rewound, left alone.
	RewindSyscall(&r)
	if r.Rax != 202 || r.Rip != 0x401000 {
		t.Errorf("RewindSyscall rewound twice: ax %d ip %#x", r.Rax, r.Rip)
	}
	// Not interrupted: unchanged.
	r = Regs{Orig_rax: 0, Rax: 5, Rip: 0x401002, Cs: UserCS}
	RestartInImage(&r)
	if r.Rax != 5 || r.Rip != 0x401002 {
		t.Errorf("a finished syscall was changed: ax %d ip %#x", r.Rax, r.Rip)
	}
}
