//go:build linux && amd64

package uapi

import "encoding/binary"

// LINUX_CAPABILITY_U32S_3 is _LINUX_CAPABILITY_U32S_3
// (include/uapi/linux/capability.h): the number of CapUserData that
// capget and capset take with unix.LINUX_CAPABILITY_VERSION_3.
const LINUX_CAPABILITY_U32S_3 = 2

// Sizes of the capget/capset structs (include/uapi/linux/capability.h).
const (
	SizeofCapUserHeader = 8
	SizeofCapUserData   = 12
)

// CapUserHeader is struct __user_cap_header_struct
// (include/uapi/linux/capability.h).
type CapUserHeader struct {
	Version uint32 // unix.LINUX_CAPABILITY_VERSION_3
	Pid     int32  // 0: the calling thread
}

// Append appends the header's SizeofCapUserHeader bytes to b.
func (h CapUserHeader) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, h.Version)
	return binary.LittleEndian.AppendUint32(b, uint32(h.Pid))
}

// Bytes returns the header as capset reads it.
func (h CapUserHeader) Bytes() []byte { return h.Append(make([]byte, 0, SizeofCapUserHeader)) }

// CapUserData is struct __user_cap_data_struct
// (include/uapi/linux/capability.h): 32 capabilities of each set.
type CapUserData struct {
	Effective, Permitted, Inheritable uint32
}

// Append appends the struct's SizeofCapUserData bytes to b.
func (d CapUserData) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, d.Effective)
	b = le.AppendUint32(b, d.Permitted)
	return le.AppendUint32(b, d.Inheritable)
}

// CapDataV3 splits 64-bit capability sets into the
// LINUX_CAPABILITY_U32S_3 structs of version 3, low words first.
func CapDataV3(effective, permitted, inheritable uint64) [LINUX_CAPABILITY_U32S_3]CapUserData {
	var d [LINUX_CAPABILITY_U32S_3]CapUserData
	for i := range d {
		sh := uint(32 * i)
		d[i] = CapUserData{uint32(effective >> sh), uint32(permitted >> sh), uint32(inheritable >> sh)}
	}
	return d
}
