package x86

import (
	"encoding/binary"
	"fmt"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"
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

// DecodeUserDesc converts a struct user_desc (as PTRACE_GET_THREAD_AREA
// returns it) into CRIU's user_desc_t.
func DecodeUserDesc(b []byte) (*core.UserDescT, error) {
	if len(b) < UserDescSize {
		return nil, fmt.Errorf("user_desc: %d bytes, want %d", len(b), UserDescSize)
	}
	le := binary.LittleEndian
	f := le.Uint32(b[12:])
	contents := (f >> 1) & 3
	return &core.UserDescT{
		EntryNumber:   proto.Uint32(le.Uint32(b[0:])),
		BaseAddr:      proto.Uint32(le.Uint32(b[4:])),
		Limit:         proto.Uint32(le.Uint32(b[8:])),
		Seg_32Bit:     proto.Bool(f&udSeg32Bit != 0),
		ContentsH:     proto.Bool(contents&2 != 0),
		ContentsL:     proto.Bool(contents&1 != 0),
		ReadExecOnly:  proto.Bool(f&udReadExecOnly != 0),
		LimitInPages:  proto.Bool(f&udLimitInPages != 0),
		SegNotPresent: proto.Bool(f&udSegNotPresent != 0),
		Usable:        proto.Bool(f&udUseable != 0),
	}, nil
}

// EncodeUserDesc is the inverse of DecodeUserDesc.
func EncodeUserDesc(d *core.UserDescT) []byte {
	b := make([]byte, UserDescSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], d.GetEntryNumber())
	le.PutUint32(b[4:], d.GetBaseAddr())
	le.PutUint32(b[8:], d.GetLimit())
	var f uint32
	set := func(c bool, bit uint32) {
		if c {
			f |= bit
		}
	}
	set(d.GetSeg_32Bit(), udSeg32Bit)
	set(d.GetContentsL(), udContents0)
	set(d.GetContentsH(), udContents1)
	set(d.GetReadExecOnly(), udReadExecOnly)
	set(d.GetLimitInPages(), udLimitInPages)
	set(d.GetSegNotPresent(), udSegNotPresent)
	set(d.GetUsable(), udUseable)
	le.PutUint32(b[12:], f)
	return b
}

// UserDescEmpty reports whether a descriptor is the cleared state that
// an unused TLS slot reads back as.
func UserDescEmpty(d *core.UserDescT) bool {
	return d.GetBaseAddr() == 0 && d.GetLimit() == 0 && d.GetSegNotPresent() && d.GetReadExecOnly()
}
