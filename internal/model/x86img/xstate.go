//go:build linux && amd64

package x86img

import (
	"encoding/binary"
	"fmt"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// words32 and words64 read a component as the little-endian words that
// user_x86_xsave_entry stores; put32 and put64 write as many words as fit.
func words32(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	binary.Decode(b, binary.LittleEndian, out)
	return out
}

func words64(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	binary.Decode(b, binary.LittleEndian, out)
	return out
}

func put32(b []byte, v []uint32) {
	binary.Encode(b, binary.LittleEndian, v[:min(len(v), len(b)/4)])
}

func put64(b []byte, v []uint64) {
	binary.Encode(b, binary.LittleEndian, v[:min(len(v), len(b)/8)])
}

// XstateToImage splits an NT_X86_XSTATE buffer into CRIU's fpregs entry.
func XstateToImage(buf []byte) (*core.UserX86FpregsEntry, error) {
	if len(buf) < x86.XsaveMinSize {
		return nil, fmt.Errorf("xstate buffer of %d bytes is shorter than the xsave header", len(buf))
	}
	a := x86.XsaveArea(buf)
	fx := a.FX()
	fp := &core.UserX86FpregsEntry{
		Cwd:       proto.Uint32(uint32(fx.Cwd)),
		Swd:       proto.Uint32(uint32(fx.Swd)),
		Twd:       proto.Uint32(uint32(fx.Twd)),
		Fop:       proto.Uint32(uint32(fx.Fop)),
		Rip:       proto.Uint64(fx.Rip),
		Rdp:       proto.Uint64(fx.Rdp),
		Mxcsr:     proto.Uint32(fx.Mxcsr),
		MxcsrMask: proto.Uint32(fx.MxcsrMask),
		StSpace:   fx.StSpace[:],
		XmmSpace:  fx.XmmSpace[:],
		Padding:   fx.Padding[:],
	}
	xs := &core.UserX86XsaveEntry{XstateBv: proto.Uint64(a.XstateBV())}
	xs.YmmhSpace = words32(a.Component(x86.XfeatYMM))
	xs.BndregState = words64(a.Component(x86.XfeatBNDREGS))
	xs.BndcsrState = words64(a.Component(x86.XfeatBNDCSR))
	xs.OpmaskReg = words64(a.Component(x86.XfeatOpmask))
	xs.ZmmUpper = words64(a.Component(x86.XfeatZMMHi256))
	xs.Hi16Zmm = words64(a.Component(x86.XfeatHi16ZMM))
	xs.Pkru = words32(a.Component(x86.XfeatPKRU))
	fp.Xsave = xs
	return fp, nil
}

// XstateFromImage writes a CRIU fpregs entry into template, an
// NT_X86_XSTATE buffer read from the task being restored (so that its
// size and software-reserved bytes fit this CPU and kernel). Features the
// CPU lacks make it fail: the image needs a CPU like the one it came from.
func XstateFromImage(fp *core.UserX86FpregsEntry, template []byte) ([]byte, error) {
	if len(template) < x86.XsaveMinSize {
		return nil, fmt.Errorf("xstate template of %d bytes is too short", len(template))
	}
	a := x86.XsaveArea(append([]byte(nil), template...))
	// The registers of the legacy region come from the image, its
	// reserved and software-reserved tail from the template.
	fx := a.FX()
	fx.Cwd, fx.Swd, fx.Twd, fx.Fop = uint16(fp.GetCwd()), uint16(fp.GetSwd()), uint16(fp.GetTwd()), uint16(fp.GetFop())
	fx.Rip, fx.Rdp = fp.GetRip(), fp.GetRdp()
	fx.Mxcsr, fx.MxcsrMask = fp.GetMxcsr(), fp.GetMxcsrMask()
	copy(fx.StSpace[:], fp.GetStSpace())
	copy(fx.XmmSpace[:], fp.GetXmmSpace())
	a.SetFX(&fx)
	xs := fp.GetXsave()
	if xs == nil {
		// FP and SSE only.
		a.SetXstateBV(3)
		return a, nil
	}
	bv := xs.GetXstateBv()
	type part struct {
		n   int
		set func([]byte)
		has bool
	}
	parts := []part{
		{x86.XfeatYMM, func(b []byte) { put32(b, xs.GetYmmhSpace()) }, len(xs.GetYmmhSpace()) > 0},
		{x86.XfeatBNDREGS, func(b []byte) { put64(b, xs.GetBndregState()) }, len(xs.GetBndregState()) > 0},
		{x86.XfeatBNDCSR, func(b []byte) { put64(b, xs.GetBndcsrState()) }, len(xs.GetBndcsrState()) > 0},
		{x86.XfeatOpmask, func(b []byte) { put64(b, xs.GetOpmaskReg()) }, len(xs.GetOpmaskReg()) > 0},
		{x86.XfeatZMMHi256, func(b []byte) { put64(b, xs.GetZmmUpper()) }, len(xs.GetZmmUpper()) > 0},
		{x86.XfeatHi16ZMM, func(b []byte) { put64(b, xs.GetHi16Zmm()) }, len(xs.GetHi16Zmm()) > 0},
		{x86.XfeatPKRU, func(b []byte) { put32(b, xs.GetPkru()) }, len(xs.GetPkru()) > 0},
	}
	for _, p := range parts {
		if !p.has {
			continue
		}
		c := a.Component(p.n)
		if c == nil {
			if bv&(1<<uint(p.n)) != 0 {
				return nil, fmt.Errorf("the task was using xsave component %d (%s), which this CPU does not have: restore it on a CPU that has it", p.n, x86.XfeatName(p.n))
			}
			continue
		}
		p.set(c)
	}
	a.SetXstateBV(bv)
	a.SetXcompBV(0) // standard format
	return a, nil
}
