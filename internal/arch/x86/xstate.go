package x86

import (
	"encoding/binary"
	"fmt"
	"sync"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"
)

// The user-ABI xsave area that PTRACE_GETREGSET NT_X86_XSTATE returns uses
// the standard (non-compacted) format of the Intel SDM vol. 1 ch. 13: a
// 512-byte legacy FXSAVE region, a 64-byte header at 512, then each state
// component at the offset CPUID leaf 0xD sub-leaf N reports in EBX.
const (
	xsaveLegacySize = 512
	xsaveHeaderSize = 64
	fxOffST         = 32  // st_space: 8 x87 registers, 16 bytes each
	fxOffXMM        = 160 // xmm_space: 16 XMM registers
	fxOffPad        = 416 // rest of the legacy region (incl. sw_reserved)
	xstateBVOffset  = 512
)

// State components stored in CRIU's user_x86_xsave_entry.
const (
	xfeatYMM      = 2
	xfeatBNDREGS  = 3
	xfeatBNDCSR   = 4
	xfeatOpmask   = 5
	xfeatZMMHi256 = 6
	xfeatHi16ZMM  = 7
	xfeatPKRU     = 9
)

// xfeatNames names the xsave components, for errors.
var xfeatNames = map[int]string{
	xfeatYMM: "AVX", xfeatBNDREGS: "MPX bound registers", xfeatBNDCSR: "MPX bound config",
	xfeatOpmask: "AVX-512 opmask", xfeatZMMHi256: "AVX-512 ZMM upper halves", xfeatHi16ZMM: "AVX-512 ZMM16-31",
	xfeatPKRU: "protection keys",
}

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

type xcomp struct{ off, size int }

var (
	xcompOnce sync.Once
	xcomps    map[int]xcomp
)

// components returns the standard-format offset and size of each state
// component this CPU supports, from CPUID leaf 0xD.
func components() map[int]xcomp {
	xcompOnce.Do(func() {
		xcomps = map[int]xcomp{}
		maxLeaf, _, _, _ := cpuid(0, 0)
		if maxLeaf < 0xd {
			return
		}
		lo, _, _, hi := cpuid(0xd, 0)
		mask := uint64(hi)<<32 | uint64(lo)
		for i := 2; i < 64; i++ {
			if mask&(1<<uint(i)) == 0 {
				continue
			}
			size, off, _, _ := cpuid(0xd, uint32(i))
			if size != 0 {
				xcomps[i] = xcomp{int(off), int(size)}
			}
		}
	})
	return xcomps
}

func getU32s(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[i*4:])
	}
	return out
}

func getU64s(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	return out
}

func putU32s(b []byte, v []uint32) {
	for i := 0; i < len(v) && (i+1)*4 <= len(b); i++ {
		binary.LittleEndian.PutUint32(b[i*4:], v[i])
	}
}

func putU64s(b []byte, v []uint64) {
	for i := 0; i < len(v) && (i+1)*8 <= len(b); i++ {
		binary.LittleEndian.PutUint64(b[i*8:], v[i])
	}
}

// XstateToImage splits an NT_X86_XSTATE buffer into CRIU's fpregs entry.
func XstateToImage(buf []byte) (*core.UserX86FpregsEntry, error) {
	if len(buf) < xsaveLegacySize+xsaveHeaderSize {
		return nil, fmt.Errorf("xstate buffer of %d bytes is shorter than the xsave header", len(buf))
	}
	le := binary.LittleEndian
	fp := &core.UserX86FpregsEntry{
		Cwd:       proto.Uint32(uint32(le.Uint16(buf[0:]))),
		Swd:       proto.Uint32(uint32(le.Uint16(buf[2:]))),
		Twd:       proto.Uint32(uint32(le.Uint16(buf[4:]))),
		Fop:       proto.Uint32(uint32(le.Uint16(buf[6:]))),
		Rip:       proto.Uint64(le.Uint64(buf[8:])),
		Rdp:       proto.Uint64(le.Uint64(buf[16:])),
		Mxcsr:     proto.Uint32(le.Uint32(buf[24:])),
		MxcsrMask: proto.Uint32(le.Uint32(buf[28:])),
		StSpace:   getU32s(buf[fxOffST:fxOffXMM]),
		XmmSpace:  getU32s(buf[fxOffXMM:fxOffPad]),
		Padding:   getU32s(buf[fxOffPad:xsaveLegacySize]),
	}
	xs := &core.UserX86XsaveEntry{XstateBv: proto.Uint64(le.Uint64(buf[xstateBVOffset:]))}
	comp := func(n int) []byte {
		c, ok := components()[n]
		if !ok || c.off+c.size > len(buf) {
			return nil
		}
		return buf[c.off : c.off+c.size]
	}
	xs.YmmhSpace = getU32s(comp(xfeatYMM))
	xs.BndregState = getU64s(comp(xfeatBNDREGS))
	xs.BndcsrState = getU64s(comp(xfeatBNDCSR))
	xs.OpmaskReg = getU64s(comp(xfeatOpmask))
	xs.ZmmUpper = getU64s(comp(xfeatZMMHi256))
	xs.Hi16Zmm = getU64s(comp(xfeatHi16ZMM))
	xs.Pkru = getU32s(comp(xfeatPKRU))
	fp.Xsave = xs
	return fp, nil
}

// XstateFromImage writes a CRIU fpregs entry into template, an
// NT_X86_XSTATE buffer read from the task being restored (so that its
// size and software-reserved bytes fit this CPU and kernel). Features the
// CPU lacks make it fail: the image needs a CPU like the one it came from.
func XstateFromImage(fp *core.UserX86FpregsEntry, template []byte) ([]byte, error) {
	if len(template) < xsaveLegacySize+xsaveHeaderSize {
		return nil, fmt.Errorf("xstate template of %d bytes is too short", len(template))
	}
	buf := append([]byte(nil), template...)
	le := binary.LittleEndian
	le.PutUint16(buf[0:], uint16(fp.GetCwd()))
	le.PutUint16(buf[2:], uint16(fp.GetSwd()))
	le.PutUint16(buf[4:], uint16(fp.GetTwd()))
	le.PutUint16(buf[6:], uint16(fp.GetFop()))
	le.PutUint64(buf[8:], fp.GetRip())
	le.PutUint64(buf[16:], fp.GetRdp())
	le.PutUint32(buf[24:], fp.GetMxcsr())
	le.PutUint32(buf[28:], fp.GetMxcsrMask())
	putU32s(buf[fxOffST:fxOffXMM], fp.GetStSpace())
	putU32s(buf[fxOffXMM:fxOffPad], fp.GetXmmSpace())
	xs := fp.GetXsave()
	if xs == nil {
		// FP and SSE only.
		le.PutUint64(buf[xstateBVOffset:], 3)
		return buf, nil
	}
	bv := xs.GetXstateBv()
	type part struct {
		n   int
		set func([]byte)
		has bool
	}
	parts := []part{
		{xfeatYMM, func(b []byte) { putU32s(b, xs.GetYmmhSpace()) }, len(xs.GetYmmhSpace()) > 0},
		{xfeatBNDREGS, func(b []byte) { putU64s(b, xs.GetBndregState()) }, len(xs.GetBndregState()) > 0},
		{xfeatBNDCSR, func(b []byte) { putU64s(b, xs.GetBndcsrState()) }, len(xs.GetBndcsrState()) > 0},
		{xfeatOpmask, func(b []byte) { putU64s(b, xs.GetOpmaskReg()) }, len(xs.GetOpmaskReg()) > 0},
		{xfeatZMMHi256, func(b []byte) { putU64s(b, xs.GetZmmUpper()) }, len(xs.GetZmmUpper()) > 0},
		{xfeatHi16ZMM, func(b []byte) { putU64s(b, xs.GetHi16Zmm()) }, len(xs.GetHi16Zmm()) > 0},
		{xfeatPKRU, func(b []byte) { putU32s(b, xs.GetPkru()) }, len(xs.GetPkru()) > 0},
	}
	for _, p := range parts {
		if !p.has {
			continue
		}
		c, ok := components()[p.n]
		if !ok || c.off+c.size > len(buf) {
			if bv&(1<<uint(p.n)) != 0 {
				return nil, fmt.Errorf("the task was using xsave component %d (%s), which this CPU does not have: restore it on a CPU that has it", p.n, xfeatNames[p.n])
			}
			continue
		}
		p.set(buf[c.off : c.off+c.size])
	}
	le.PutUint64(buf[xstateBVOffset:], bv)
	le.PutUint64(buf[xstateBVOffset+8:], 0) // xcomp_bv: standard format
	return buf, nil
}
