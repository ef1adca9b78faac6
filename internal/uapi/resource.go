//go:build linux && amd64

package uapi

import "encoding/binary"

// SizeofRlimit64 is sizeof(struct rlimit64) (include/uapi/linux/resource.h).
const SizeofRlimit64 = 16

// Rlimit64 is struct rlimit64 (include/uapi/linux/resource.h), what
// prlimit64(2) takes for every ABI.
type Rlimit64 struct {
	Cur, Max uint64
}

// Append appends the struct's SizeofRlimit64 bytes to b.
func (r Rlimit64) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, r.Cur)
	return binary.LittleEndian.AppendUint64(b, r.Max)
}

// Bytes returns the struct as prlimit64 reads it.
func (r Rlimit64) Bytes() []byte { return r.Append(make([]byte, 0, SizeofRlimit64)) }
