//go:build linux && amd64

package x86

import (
	"encoding/binary"
	"sync"
)

// The user-ABI xsave area that PTRACE_GETREGSET NT_X86_XSTATE returns uses
// the standard (non-compacted) format of the Intel SDM vol. 1 ch. 13: a
// 512-byte legacy FXSAVE region, a 64-byte header at 512, then each state
// component at the offset CPUID leaf 0xD sub-leaf N reports in EBX.
const (
	XsaveLegacySize = 512 // the FXSAVE region: FXRegs
	XsaveHeaderSize = 64  // xstate_bv, xcomp_bv, reserved
	XsaveMinSize    = XsaveLegacySize + XsaveHeaderSize
	xstateBVOffset  = XsaveLegacySize
	xcompBVOffset   = XsaveLegacySize + 8
)

// State components of the xsave area beyond x87 (0) and SSE (1): enum
// xfeature of arch/x86/include/asm/fpu/types.h.
const (
	XfeatYMM      = 2 // AVX: the upper halves of YMM0-15
	XfeatBNDREGS  = 3 // MPX bound registers
	XfeatBNDCSR   = 4 // MPX bound config and status
	XfeatOpmask   = 5 // AVX-512 k0-7
	XfeatZMMHi256 = 6 // AVX-512: the upper halves of ZMM0-15
	XfeatHi16ZMM  = 7 // AVX-512 ZMM16-31
	XfeatPKRU     = 9 // protection keys
)

var xfeatNames = map[int]string{
	XfeatYMM: "AVX", XfeatBNDREGS: "MPX bound registers", XfeatBNDCSR: "MPX bound config",
	XfeatOpmask: "AVX-512 opmask", XfeatZMMHi256: "AVX-512 ZMM upper halves", XfeatHi16ZMM: "AVX-512 ZMM16-31",
	XfeatPKRU: "protection keys",
}

// XfeatName names state component n, for errors.
func XfeatName(n int) string { return xfeatNames[n] }

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// XsaveComponent is where a state component lies in the standard-format
// xsave area.
type XsaveComponent struct{ Offset, Size int }

var (
	xcompOnce sync.Once
	xcomps    map[int]XsaveComponent
)

// XsaveComponents returns the standard-format offset and size of each
// state component from 2 up that this CPU supports, from CPUID leaf 0xD.
// The map is shared: do not change it.
func XsaveComponents() map[int]XsaveComponent {
	xcompOnce.Do(func() {
		xcomps = map[int]XsaveComponent{}
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
				xcomps[i] = XsaveComponent{int(off), int(size)}
			}
		}
	})
	return xcomps
}

// FXRegs is the legacy FXSAVE region at the start of the xsave area:
// struct user_i387_struct of arch/x86/include/asm/user_64.h (struct
// fxregs_state in asm/fpu/types.h), XsaveLegacySize bytes.
type FXRegs struct {
	Cwd, Swd, Twd, Fop uint16
	Rip, Rdp           uint64
	Mxcsr, MxcsrMask   uint32
	StSpace            [32]uint32 // 8 x87 registers, 16 bytes each
	XmmSpace           [64]uint32 // 16 XMM registers
	// Padding is reserved, then sw_reserved (struct
	// _fpx_sw_bytes), which the kernel checks on PTRACE_SETREGSET.
	Padding [24]uint32
}

// XsaveArea is the user-ABI xsave area that PTRACE_GETREGSET and
// PTRACE_SETREGSET NT_X86_XSTATE pass, in standard format. Its methods
// need at least XsaveMinSize bytes.
type XsaveArea []byte

// FX returns the legacy region.
func (a XsaveArea) FX() FXRegs {
	var fx FXRegs
	if _, err := binary.Decode(a[:XsaveLegacySize], binary.LittleEndian, &fx); err != nil {
		panic(err) // FXRegs is XsaveLegacySize bytes
	}
	return fx
}

// SetFX writes the legacy region.
func (a XsaveArea) SetFX(fx *FXRegs) {
	if _, err := binary.Encode(a[:XsaveLegacySize], binary.LittleEndian, fx); err != nil {
		panic(err) // FXRegs is XsaveLegacySize bytes
	}
}

// XstateBV returns xstate_bv of the xsave header: the components in use.
func (a XsaveArea) XstateBV() uint64 {
	return binary.LittleEndian.Uint64(a[xstateBVOffset:])
}

// SetXstateBV sets xstate_bv.
func (a XsaveArea) SetXstateBV(bv uint64) {
	binary.LittleEndian.PutUint64(a[xstateBVOffset:], bv)
}

// SetXcompBV sets xcomp_bv, which is 0 in the standard format.
func (a XsaveArea) SetXcompBV(v uint64) {
	binary.LittleEndian.PutUint64(a[xcompBVOffset:], v)
}

// Component returns the bytes of state component n in a, or nil when
// this CPU lacks it or a is too short to hold it.
func (a XsaveArea) Component(n int) []byte {
	c, ok := XsaveComponents()[n]
	if !ok || c.Offset+c.Size > len(a) {
		return nil
	}
	return a[c.Offset : c.Offset+c.Size]
}
