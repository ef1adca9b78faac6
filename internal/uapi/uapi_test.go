package uapi

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

var le = binary.LittleEndian

func TestPrctlMMMap(t *testing.T) {
	m := PrctlMMMap{
		StartCode: 0x1001, EndCode: 0x1002, StartData: 0x1003, EndData: 0x1004,
		StartBrk: 0x1005, Brk: 0x1006, StartStack: 0x1007, ArgStart: 0x1008,
		ArgEnd: 0x1009, EnvStart: 0x100a, EnvEnd: 0x100b, Auxv: 0x100c,
		AuxvSize: 0x2001, ExeFd: 0x2002,
	}
	b := m.Bytes()
	if len(b) != SizeofPrctlMMMap || SizeofPrctlMMMap != 104 {
		t.Fatalf("%d bytes, want 104", len(b))
	}
	// Eleven u64 bounds and the auxv pointer at 8*i, then two u32.
	for i := 0; i < 12; i++ {
		if got := le.Uint64(b[8*i:]); got != 0x1001+uint64(i) {
			t.Errorf("u64 at %d: %#x", 8*i, got)
		}
	}
	if le.Uint32(b[96:]) != 0x2001 || le.Uint32(b[100:]) != 0x2002 {
		t.Errorf("auxv_size/exe_fd at 96/100: % x", b[96:])
	}
}

func TestCloneArgs(t *testing.T) {
	a := CloneArgs{
		Flags: 1, Pidfd: 2, ChildTid: 3, ParentTid: 4, ExitSignal: 5, Stack: 6,
		StackSize: 7, TLS: 8, SetTid: 9, SetTidSize: 10, Cgroup: 11,
	}
	b := a.Bytes()
	if len(b) != 88 || SizeofCloneArgs != 88 {
		t.Fatalf("%d bytes, want 88 (CLONE_ARGS_SIZE_VER2)", len(b))
	}
	for i := 0; i < 11; i++ {
		if got := le.Uint64(b[8*i:]); got != uint64(i+1) {
			t.Errorf("u64 at %d: %d, want %d", 8*i, got, i+1)
		}
	}
	// set_tid at 64, set_tid_size at 72, exit_signal at 32.
	w := CloneArgs{Flags: unix.CLONE_PARENT, ExitSignal: uint64(unix.SIGCHLD)}.WithSetTid(0x7000, 4242, 1)
	if len(w) != 88+8 {
		t.Fatalf("with set_tid: %d bytes", len(w))
	}
	if le.Uint64(w[0:]) != unix.CLONE_PARENT || le.Uint64(w[32:]) != uint64(unix.SIGCHLD) {
		t.Errorf("flags/exit_signal: % x", w[:40])
	}
	if le.Uint64(w[64:]) != 0x7000+88 || le.Uint64(w[72:]) != 2 {
		t.Errorf("set_tid %#x set_tid_size %d", le.Uint64(w[64:]), le.Uint64(w[72:]))
	}
	if le.Uint32(w[88:]) != 4242 || le.Uint32(w[92:]) != 1 {
		t.Errorf("set_tid array: % x", w[88:])
	}
}

func TestCapability(t *testing.T) {
	h := CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: -2}.Bytes()
	if len(h) != SizeofCapUserHeader || le.Uint32(h) != 0x20080522 || le.Uint32(h[4:]) != 0xfffffffe {
		t.Errorf("header % x", h)
	}
	d := CapDataV3(0x11_00000001, 0x22_00000002, 0x33_00000003)
	var b []byte
	for _, x := range d {
		b = x.Append(b)
	}
	if len(b) != 2*SizeofCapUserData || SizeofCapUserData != 12 {
		t.Fatalf("data %d bytes", len(b))
	}
	// effective, permitted, inheritable; the low words first.
	for i, want := range []uint32{1, 2, 3, 0x11, 0x22, 0x33} {
		if got := le.Uint32(b[4*i:]); got != want {
			t.Errorf("u32 at %d: %#x, want %#x", 4*i, got, want)
		}
	}
}

func TestItimerspec(t *testing.T) {
	b := Itimerspec{Interval: Timespec{1, 2}, Value: Timespec{3, -1}}.Bytes()
	if len(b) != SizeofItimerspec || SizeofItimerspec != 32 {
		t.Fatalf("%d bytes", len(b))
	}
	// it_interval then it_value, each tv_sec then tv_nsec.
	if le.Uint64(b[0:]) != 1 || le.Uint64(b[8:]) != 2 || le.Uint64(b[16:]) != 3 || le.Uint64(b[24:]) != ^uint64(0) {
		t.Errorf("itimerspec % x", b)
	}
}

func TestEpollEvent(t *testing.T) {
	b := EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Data: 0x1122334455667788}.Bytes()
	if len(b) != SizeofEpollEvent || SizeofEpollEvent != 12 {
		t.Fatalf("%d bytes, want 12 (packed)", len(b))
	}
	if le.Uint32(b) != unix.EPOLLIN|unix.EPOLLET || le.Uint64(b[4:]) != 0x1122334455667788 {
		t.Errorf("epoll_event % x", b)
	}
}

func TestRlimit64(t *testing.T) {
	b := Rlimit64{Cur: 5, Max: unix.RLIM_INFINITY}.Bytes()
	if len(b) != SizeofRlimit64 || le.Uint64(b) != 5 || le.Uint64(b[8:]) != ^uint64(0) {
		t.Errorf("rlimit64 % x", b)
	}
}

func TestConstants(t *testing.T) {
	if TFD_IOC_SET_TICKS != 0x40085400 {
		t.Errorf("TFD_IOC_SET_TICKS %#x", TFD_IOC_SET_TICKS)
	}
	if SECBIT_KEEP_CAPS != 0x10 || SECBIT_KEEP_CAPS_LOCKED != 0x20 {
		t.Errorf("securebits %#x %#x", SECBIT_KEEP_CAPS, SECBIT_KEEP_CAPS_LOCKED)
	}
	if KCMP_FILE != 0 || KCMP_VM != 1 || KCMP_FILES != 2 || KCMP_FS != 3 || KCMP_SIGHAND != 4 {
		t.Error("kcmp types")
	}
	if KCMP_EPOLL_TFD != 7 {
		t.Error("KCMP_EPOLL_TFD")
	}
	if b := (KcmpEpollSlot{Efd: 3, Tfd: 0x40, Toff: 2}).Bytes(); string(b) != "\x03\x00\x00\x00\x40\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("kcmp_epoll_slot % x", b)
	}
}

// The kernel agrees on the size of struct prctl_mm_map where
// CONFIG_CHECKPOINT_RESTORE is on.
func TestPrctlMMMapSizeOfKernel(t *testing.T) {
	var size uint32
	if err := unix.Prctl(unix.PR_SET_MM, unix.PR_SET_MM_MAP_SIZE, uintptr(unsafe.Pointer(&size)), 0, 0); err != nil {
		t.Skipf("PR_SET_MM_MAP_SIZE: %v", err)
	}
	if size != SizeofPrctlMMMap {
		t.Errorf("kernel says %d", size)
	}
}

func TestItimerval(t *testing.T) {
	v := Itimerval{Interval: Timeval{1, 2}, Value: Timeval{3, -4}}
	b := v.Bytes(false)
	if len(b) != SizeofItimerval || uintptr(len(b)) != unsafe.Sizeof(unix.Itimerval{}) {
		t.Fatalf("native itimerval of %d bytes", len(b))
	}
	b32 := v.Bytes(true)
	if len(b32) != SizeofItimerval32 || le.Uint32(b32[12:]) != 0xfffffffc {
		t.Fatalf("ia32 itimerval % x", b32)
	}
	for _, compat := range []bool{false, true} {
		if got, err := DecodeItimerval(v.Bytes(compat), compat); err != nil || got != v {
			t.Errorf("compat %v: round trip %+v, %v", compat, got, err)
		}
	}
	its := Itimerspec{Interval: Timespec{5, 6}, Value: Timespec{7, 8}}
	if got, err := DecodeItimerspec(its.Bytes()); err != nil || got != its {
		t.Errorf("itimerspec round trip %+v, %v", got, err)
	}
}

func TestSigevent(t *testing.T) {
	b := Sigevent{Value: 0x1122334455, Signo: 34, Notify: SIGEV_SIGNAL | SIGEV_THREAD_ID, Tid: 77}.Bytes()
	if len(b) != SizeofSigevent || le.Uint64(b) != 0x1122334455 || le.Uint32(b[8:]) != 34 || le.Uint32(b[12:]) != 4 || le.Uint32(b[16:]) != 77 {
		t.Errorf("sigevent % x", b)
	}
}

// The userfaultfd ioctl numbers as include/uapi/linux/userfaultfd.h
// makes them on x86_64.
func TestUffdIoctls(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"UFFDIO_API", UFFDIO_API, 0xc018aa3f},
		{"UFFDIO_REGISTER", UFFDIO_REGISTER, 0xc020aa00},
		{"UFFDIO_UNREGISTER", UFFDIO_UNREGISTER, 0x8010aa01},
		{"UFFDIO_WAKE", UFFDIO_WAKE, 0x8010aa02},
		{"UFFDIO_COPY", UFFDIO_COPY, 0xc028aa03},
		{"UFFDIO_ZEROPAGE", UFFDIO_ZEROPAGE, 0xc020aa04},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestParseUffdMsg(t *testing.T) {
	msg := func(ev byte, words ...uint64) []byte {
		b := make([]byte, SizeofUffdMsg)
		b[0] = ev
		for i, w := range words {
			binary.LittleEndian.PutUint64(b[8+8*i:], w)
		}
		return b
	}
	if m := ParseUffdMsg(msg(UFFD_EVENT_PAGEFAULT, UFFD_PAGEFAULT_FLAG_WRITE, 0x7f0000001234, 42)); m.Event != UFFD_EVENT_PAGEFAULT || m.Flags != 1 || m.Address != 0x7f0000001234 || m.Ptid != 42 {
		t.Errorf("pagefault: %+v", m)
	}
	if m := ParseUffdMsg(msg(UFFD_EVENT_FORK, 7)); m.Ufd != 7 {
		t.Errorf("fork: %+v", m)
	}
	if m := ParseUffdMsg(msg(UFFD_EVENT_REMAP, 0x1000, 0x9000, 0x2000)); m.From != 0x1000 || m.To != 0x9000 || m.Len != 0x2000 {
		t.Errorf("remap: %+v", m)
	}
	for _, ev := range []byte{UFFD_EVENT_REMOVE, UFFD_EVENT_UNMAP} {
		if m := ParseUffdMsg(msg(ev, 0x4000, 0x6000)); m.Start != 0x4000 || m.End != 0x6000 {
			t.Errorf("event %#x: %+v", ev, m)
		}
	}
}

func TestGroupReqFilter(t *testing.T) {
	if SizeofGroupReq != 136 || GroupFilterSize(0) != 144 || GroupFilterSize(2) != 400 {
		t.Fatalf("sizes %d %d %d, want 136 144 400", SizeofGroupReq, GroupFilterSize(0), GroupFilterSize(2))
	}
	r, err := GroupReq(7, []byte{239, 1, 2, 3})
	if err != nil || len(r) != 136 || le.Uint32(r) != 7 || le.Uint16(r[8:]) != unix.AF_INET || string(r[12:16]) != "\xef\x01\x02\x03" {
		t.Errorf("group_req %x %v", r[:16], err)
	}
	g6 := []byte{0xff, 0x15, 14: 7, 15: 1}
	s1, s2 := []byte{0x20, 1, 0xd, 0xb8, 15: 5}, []byte{0x20, 1, 0xd, 0xb8, 15: 6}
	f, err := GroupFilter(3, g6, unix.MCAST_INCLUDE, [][]byte{s1, s2})
	if err != nil || len(f) != 400 {
		t.Fatalf("group_filter: %d bytes, %v", len(f), err)
	}
	if le.Uint32(f) != 3 || le.Uint16(f[8:]) != unix.AF_INET6 || string(f[16:32]) != string(g6) || le.Uint32(f[136:]) != 1 || le.Uint32(f[140:]) != 2 {
		t.Errorf("group_filter header %x", f[:144])
	}
	if le.Uint16(f[144:]) != unix.AF_INET6 || string(f[152:168]) != string(s1) || string(f[272+8:272+24]) != string(s2) {
		t.Errorf("group_filter sources")
	}
	mode, n, srcs, err := ParseGroupFilter(f)
	if err != nil || mode != unix.MCAST_INCLUDE || n != 2 || len(srcs) != 2 || string(srcs[1]) != string(s2) {
		t.Errorf("parse: %d %d %x %v", mode, n, srcs, err)
	}
	// The kernel says how many sources there are even when fewer fit.
	mode, n, srcs, err = ParseGroupFilter(f[:GroupFilterSize(1)])
	if err != nil || n != 2 || len(srcs) != 1 {
		t.Errorf("short: %d %d %x %v", mode, n, srcs, err)
	}
	if _, _, _, err := ParseGroupFilter(f[:100]); err == nil {
		t.Error("short header: no error")
	}
	f[144] = 99
	if _, _, _, err := ParseGroupFilter(f); err == nil {
		t.Error("bad source family: no error")
	}
	if _, err := GroupReq(1, []byte{1, 2, 3}); err == nil {
		t.Error("3-byte group: no error")
	}
}
