//go:build linux && amd64

package x86

import (
	"encoding/binary"
	"fmt"
)

// Sigaction is a kernel sigaction in ABI-neutral form.
type Sigaction struct {
	Handler, Flags, Restorer, Mask uint64
}

// Sizes of struct sigaction as rt_sigaction(2) reads it: the x86_64
// struct kernel_sigaction (include/linux/signal_types.h) and the ia32
// struct compat_sigaction (include/linux/compat.h: three compat_uptr_t or
// compat_ulong_t, then a 64-bit compat_sigset_t).
const (
	SigactionSize64 = 32
	SigactionSize32 = 20
)

// SigactionSize returns the size for the ABI.
func SigactionSize(compat bool) int {
	if compat {
		return SigactionSize32
	}
	return SigactionSize64
}

// EncodeSigaction lays out sa for rt_sigaction of the given ABI.
func EncodeSigaction(sa Sigaction, compat bool) []byte {
	le := binary.LittleEndian
	if compat {
		b := make([]byte, SigactionSize32)
		le.PutUint32(b[0:], uint32(sa.Handler))
		le.PutUint32(b[4:], uint32(sa.Flags))
		le.PutUint32(b[8:], uint32(sa.Restorer))
		le.PutUint64(b[12:], sa.Mask)
		return b
	}
	b := make([]byte, SigactionSize64)
	le.PutUint64(b[0:], sa.Handler)
	le.PutUint64(b[8:], sa.Flags)
	le.PutUint64(b[16:], sa.Restorer)
	le.PutUint64(b[24:], sa.Mask)
	return b
}

// DecodeSigaction reads a struct written by rt_sigaction of the given ABI.
func DecodeSigaction(b []byte, compat bool) (Sigaction, error) {
	le := binary.LittleEndian
	if len(b) < SigactionSize(compat) {
		return Sigaction{}, fmt.Errorf("sigaction: %d bytes, want %d", len(b), SigactionSize(compat))
	}
	if compat {
		return Sigaction{
			Handler:  uint64(le.Uint32(b[0:])),
			Flags:    uint64(le.Uint32(b[4:])),
			Restorer: uint64(le.Uint32(b[8:])),
			Mask:     le.Uint64(b[12:]),
		}, nil
	}
	return Sigaction{
		Handler:  le.Uint64(b[0:]),
		Flags:    le.Uint64(b[8:]),
		Restorer: le.Uint64(b[16:]),
		Mask:     le.Uint64(b[24:]),
	}, nil
}

// Stack is a stack_t for sigaltstack(2) in ABI-neutral form.
type Stack struct {
	Sp    uint64
	Flags uint32
	Size  uint64
}

// StackSize64 is sizeof(stack_t) on x86_64: ss_sp, ss_flags (padded), ss_size.
const StackSize64 = 24

// EncodeStack lays out a 64-bit stack_t.
func EncodeStack(s Stack) []byte {
	b := make([]byte, StackSize64)
	binary.LittleEndian.PutUint64(b[0:], s.Sp)
	binary.LittleEndian.PutUint32(b[8:], s.Flags)
	binary.LittleEndian.PutUint64(b[16:], s.Size)
	return b
}

// DecodeStack reads a 64-bit stack_t.
func DecodeStack(b []byte) (Stack, error) {
	if len(b) < StackSize64 {
		return Stack{}, fmt.Errorf("stack_t: %d bytes, want %d", len(b), StackSize64)
	}
	return Stack{
		Sp:    binary.LittleEndian.Uint64(b[0:]),
		Flags: binary.LittleEndian.Uint32(b[8:]),
		Size:  binary.LittleEndian.Uint64(b[16:]),
	}, nil
}

// sigaltstack ss_flags (include/uapi/linux/signal.h).
const (
	SSOnStack = 1
	SSDisable = 2
)
