//go:build linux && amd64

package uapi

import "encoding/binary"

// File lock ABI: fcntl(2) record locks (POSIX and OFD) and flock(2).
// Types and commands are those of include/uapi/asm-generic/fcntl.h and
// include/uapi/linux/fcntl.h; golang.org/x/sys/unix has the native ones
// (unix.F_SETLK, unix.F_OFD_SETLK, unix.F_RDLCK, unix.LOCK_EX, ...).

// The commands of the ia32 fcntl64 call that take a struct flock64
// (asm-generic/fcntl.h, "#ifndef CONFIG_64BIT"). On x86_64 F_SETLK
// itself takes the 64-bit struct flock; x/sys's amd64 F_SETLK64 is 6,
// which in an ia32 fcntl64 call means the 32-bit-offset struct flock.
const (
	F_GETLK64_IA32  = 12
	F_SETLK64_IA32  = 13
	F_SETLKW64_IA32 = 14
)

// Flock is struct flock (asm-generic/fcntl.h) as the x86_64 fcntl takes
// it, and struct flock64 as the ia32 fcntl64 takes it (struct
// compat_flock64 in include/linux/compat.h, packed on x86 by
// __ARCH_COMPAT_FLOCK64_PACK). Start and Len are bytes from the start of
// the file (Whence SEEK_SET); Len 0 means to the end of the file,
// however far it grows.
type Flock struct {
	Type   int16 // F_RDLCK, F_WRLCK, F_UNLCK
	Whence int16
	Start  int64
	Len    int64
	Pid    int32
}

// Sizes of the two layouts: x86_64's struct flock has 4 bytes of padding
// after l_whence and after l_pid; ia32's packed struct flock64 none.
const (
	SizeofFlock        = 32
	SizeofFlock64_IA32 = 24
)

// Bytes is the x86_64 struct flock.
func (f Flock) Bytes() []byte {
	b := make([]byte, SizeofFlock)
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(f.Type))
	le.PutUint16(b[2:], uint16(f.Whence))
	le.PutUint64(b[8:], uint64(f.Start))
	le.PutUint64(b[16:], uint64(f.Len))
	le.PutUint32(b[24:], uint32(f.Pid))
	return b
}

// Bytes32 is the ia32 struct flock64.
func (f Flock) Bytes32() []byte {
	b := make([]byte, SizeofFlock64_IA32)
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(f.Type))
	le.PutUint16(b[2:], uint16(f.Whence))
	le.PutUint64(b[4:], uint64(f.Start))
	le.PutUint64(b[12:], uint64(f.Len))
	le.PutUint32(b[20:], uint32(f.Pid))
	return b
}

// DecodeFlock reads an x86_64 struct flock (len(b) == SizeofFlock) or an
// ia32 struct flock64 (len(b) == SizeofFlock64_IA32).
func DecodeFlock(b []byte) Flock {
	le := binary.LittleEndian
	f := Flock{Type: int16(le.Uint16(b[0:])), Whence: int16(le.Uint16(b[2:]))}
	if len(b) == SizeofFlock64_IA32 {
		f.Start, f.Len, f.Pid = int64(le.Uint64(b[4:])), int64(le.Uint64(b[12:])), int32(le.Uint32(b[20:]))
		return f
	}
	f.Start, f.Len, f.Pid = int64(le.Uint64(b[8:])), int64(le.Uint64(b[16:])), int32(le.Uint32(b[24:]))
	return f
}
