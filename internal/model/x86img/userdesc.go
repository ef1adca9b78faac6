//go:build linux && amd64

package x86img

import (
	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// UserDescToImage converts a TLS entry to CRIU's user_desc_t, which has
// no lm bit (TLS entries are never 64-bit code segments).
func UserDescToImage(d x86.UserDesc) *core.UserDescT {
	return &core.UserDescT{
		EntryNumber:   proto.Uint32(d.EntryNumber),
		BaseAddr:      proto.Uint32(d.BaseAddr),
		Limit:         proto.Uint32(d.Limit),
		Seg_32Bit:     proto.Bool(d.Seg32Bit),
		ContentsH:     proto.Bool(d.Contents&2 != 0),
		ContentsL:     proto.Bool(d.Contents&1 != 0),
		ReadExecOnly:  proto.Bool(d.ReadExecOnly),
		LimitInPages:  proto.Bool(d.LimitInPages),
		SegNotPresent: proto.Bool(d.SegNotPresent),
		Usable:        proto.Bool(d.Useable),
	}
}

// UserDescFromImage is the inverse of UserDescToImage.
func UserDescFromImage(e *core.UserDescT) x86.UserDesc {
	var contents uint8
	if e.GetContentsH() {
		contents |= 2
	}
	if e.GetContentsL() {
		contents |= 1
	}
	return x86.UserDesc{
		EntryNumber:   e.GetEntryNumber(),
		BaseAddr:      e.GetBaseAddr(),
		Limit:         e.GetLimit(),
		Seg32Bit:      e.GetSeg_32Bit(),
		Contents:      contents,
		ReadExecOnly:  e.GetReadExecOnly(),
		LimitInPages:  e.GetLimitInPages(),
		SegNotPresent: e.GetSegNotPresent(),
		Useable:       e.GetUsable(),
	}
}
