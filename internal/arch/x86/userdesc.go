//go:build linux && amd64

package x86

import (
	"encoding/binary"
	"fmt"
)

// UserDescSize is sizeof(struct user_desc) (arch/x86/include/uapi/asm/ldt.h).
const UserDescSize = 16

// user_desc flag bits, in the order of the bitfield after limit.
const (
	udSeg32Bit = 1 << iota
	udContents0
	udContents1
	udReadExecOnly
	udLimitInPages
	udSegNotPresent
	udUseable
	udLM
)

// UserDesc is struct user_desc (arch/x86/include/uapi/asm/ldt.h), a GDT
// TLS entry as PTRACE_GET_THREAD_AREA and PTRACE_SET_THREAD_AREA pass it.
type UserDesc struct {
	EntryNumber uint32
	BaseAddr    uint32
	Limit       uint32
	Seg32Bit    bool
	// Contents is the 2-bit segment type: 0 data, 1 expand-down data
	// (stack), 2 code.
	Contents      uint8
	ReadExecOnly  bool
	LimitInPages  bool
	SegNotPresent bool
	Useable       bool
	LM            bool // 64-bit code segment; ignored for TLS entries
}

// DecodeUserDesc reads a struct user_desc.
func DecodeUserDesc(b []byte) (UserDesc, error) {
	if len(b) < UserDescSize {
		return UserDesc{}, fmt.Errorf("user_desc: %d bytes, want %d", len(b), UserDescSize)
	}
	le := binary.LittleEndian
	f := le.Uint32(b[12:])
	return UserDesc{
		EntryNumber:   le.Uint32(b[0:]),
		BaseAddr:      le.Uint32(b[4:]),
		Limit:         le.Uint32(b[8:]),
		Seg32Bit:      f&udSeg32Bit != 0,
		Contents:      uint8(f>>1) & 3,
		ReadExecOnly:  f&udReadExecOnly != 0,
		LimitInPages:  f&udLimitInPages != 0,
		SegNotPresent: f&udSegNotPresent != 0,
		Useable:       f&udUseable != 0,
		LM:            f&udLM != 0,
	}, nil
}

// EncodeUserDesc lays out d as a struct user_desc.
func EncodeUserDesc(d UserDesc) []byte {
	b := make([]byte, UserDescSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], d.EntryNumber)
	le.PutUint32(b[4:], d.BaseAddr)
	le.PutUint32(b[8:], d.Limit)
	f := uint32(d.Contents&3) << 1
	set := func(c bool, bit uint32) {
		if c {
			f |= bit
		}
	}
	set(d.Seg32Bit, udSeg32Bit)
	set(d.ReadExecOnly, udReadExecOnly)
	set(d.LimitInPages, udLimitInPages)
	set(d.SegNotPresent, udSegNotPresent)
	set(d.Useable, udUseable)
	set(d.LM, udLM)
	le.PutUint32(b[12:], f)
	return b
}

// Empty reports whether d is the cleared state that an unused TLS slot
// reads back as.
func (d UserDesc) Empty() bool {
	return d.BaseAddr == 0 && d.Limit == 0 && d.SegNotPresent && d.ReadExecOnly
}

// TLSSelectorBase returns the base of the GDT TLS entry that segment
// selector sel names (index GDTEntryTLSMin.. in bits 3-15, table
// indicator bit 2 clear: the GDT; arch/x86/include/asm/segment.h), taken
// from descs; ok is false for any other selector, or an entry descs lack
// or hold empty. A selector loaded from the GDT gets its base from the
// entry, so the entry is what the base was: a tool that dumps an ia32
// task without fs_base/gs_base (CRIU writes 0) leaves it there.
func TLSSelectorBase(sel uint64, descs []UserDesc) (base uint64, ok bool) {
	idx := sel >> 3
	if sel&4 != 0 || idx < GDTEntryTLSMin || idx >= GDTEntryTLSMin+GDTEntryTLSEntries || sel > 0xffff {
		return 0, false
	}
	for _, d := range descs {
		if uint64(d.EntryNumber) == idx && !d.Empty() {
			return uint64(d.BaseAddr), true
		}
	}
	return 0, false
}
