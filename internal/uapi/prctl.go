//go:build linux && amd64

package uapi

import "encoding/binary"

// SizeofPrctlMMMap is sizeof(struct prctl_mm_map)
// (include/uapi/linux/prctl.h), what PR_SET_MM_MAP_SIZE reports.
const SizeofPrctlMMMap = 104

// PrctlMMMap is struct prctl_mm_map (include/uapi/linux/prctl.h), the
// argument of prctl(PR_SET_MM, PR_SET_MM_MAP): the mm's bounds, the saved
// auxv and the fd of the new /proc/PID/exe.
type PrctlMMMap struct {
	StartCode, EndCode uint64
	StartData, EndData uint64
	StartBrk, Brk      uint64
	StartStack         uint64
	ArgStart, ArgEnd   uint64
	EnvStart, EnvEnd   uint64
	Auxv               uint64 // address of the saved auxv
	AuxvSize           uint32 // its size in bytes
	ExeFd              uint32
}

// Append appends the struct's SizeofPrctlMMMap bytes to b.
func (m PrctlMMMap) Append(b []byte) []byte {
	le := binary.LittleEndian
	for _, v := range []uint64{
		m.StartCode, m.EndCode, m.StartData, m.EndData, m.StartBrk, m.Brk,
		m.StartStack, m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd, m.Auxv,
	} {
		b = le.AppendUint64(b, v)
	}
	b = le.AppendUint32(b, m.AuxvSize)
	return le.AppendUint32(b, m.ExeFd)
}

// Bytes returns the struct as the kernel reads it.
func (m PrctlMMMap) Bytes() []byte { return m.Append(make([]byte, 0, SizeofPrctlMMMap)) }

// Securebits of prctl(PR_SET_SECUREBITS) (include/uapi/linux/securebits.h).
const (
	SECBIT_KEEP_CAPS        = 1 << 4 // issecure_mask(SECURE_KEEP_CAPS)
	SECBIT_KEEP_CAPS_LOCKED = 1 << 5 // issecure_mask(SECURE_KEEP_CAPS_LOCKED)
)
