package uapi

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestFlockNative(t *testing.T) {
	f := Flock{Type: unix.F_WRLCK, Whence: 0, Start: 0x1122334455, Len: 0x66778899aa, Pid: 4242}
	b := f.Bytes()
	// The layout of x/sys's unix.Flock_t, which the amd64 kernel reads.
	if len(b) != SizeofFlock || unsafe.Sizeof(unix.Flock_t{}) != SizeofFlock {
		t.Fatalf("%d bytes, unix.Flock_t %d", len(b), unsafe.Sizeof(unix.Flock_t{}))
	}
	u := (*unix.Flock_t)(unsafe.Pointer(&b[0]))
	if u.Type != f.Type || u.Whence != f.Whence || u.Start != f.Start || u.Len != f.Len || u.Pid != f.Pid {
		t.Errorf("decoded by unix.Flock_t: %+v", *u)
	}
	if g := DecodeFlock(b); g != f {
		t.Errorf("round trip: %+v", g)
	}
}

func TestFlock64IA32(t *testing.T) {
	f := Flock{Type: unix.F_RDLCK, Whence: 1, Start: -2, Len: 0x0102030405060708, Pid: -1}
	b := f.Bytes32()
	if len(b) != 24 {
		t.Fatalf("%d bytes, want 24 (packed compat_flock64)", len(b))
	}
	// short l_type, short l_whence, then l_start at 4, l_len at 12, l_pid at 20.
	if le.Uint16(b) != 0 || le.Uint16(b[2:]) != 1 || int64(le.Uint64(b[4:])) != -2 || le.Uint64(b[12:]) != 0x0102030405060708 || int32(le.Uint32(b[20:])) != -1 {
		t.Errorf("layout: % x", b)
	}
	if g := DecodeFlock(b); g != f {
		t.Errorf("round trip: %+v", g)
	}
}
