//go:build linux && amd64

package uapi

import "encoding/binary"

// FOwnerEx is struct f_owner_ex (include/uapi/linux/fcntl.h), the
// argument of F_GETOWN_EX and F_SETOWN_EX: the owner of an open file,
// who gets its SIGIO and SIGURG. Type is F_OWNER_TID, F_OWNER_PID or
// F_OWNER_PGRP. The same layout for ia32.
type FOwnerEx struct {
	Type int32
	Pid  int32
}

// SizeofFOwnerEx is sizeof(struct f_owner_ex).
const SizeofFOwnerEx = 8

// Bytes is the struct as the kernel reads it.
func (o FOwnerEx) Bytes() []byte {
	b := make([]byte, SizeofFOwnerEx)
	binary.LittleEndian.PutUint32(b, uint32(o.Type))
	binary.LittleEndian.PutUint32(b[4:], uint32(o.Pid))
	return b
}

// DecodeFOwnerEx reads a struct f_owner_ex.
func DecodeFOwnerEx(b []byte) FOwnerEx {
	return FOwnerEx{Type: int32(binary.LittleEndian.Uint32(b)), Pid: int32(binary.LittleEndian.Uint32(b[4:]))}
}
