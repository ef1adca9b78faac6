package x86img

import (
	"bytes"
	"encoding/binary"
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// Offsets in the legacy region: its padding (reserved, then
// sw_reserved) at 416, and xstate_bv, xcomp_bv after it.
const (
	fxOffPad      = 416
	xstateBVOff   = 512
	xcompBVOff    = 520
	legacyRegSize = 512
)

// xstateSize is the size of a standard-format xsave area holding every
// component this CPU has, and at least 2696 bytes (AVX-512 without AMX).
func xstateSize() int {
	n := 2696
	for _, c := range x86.XsaveComponents() {
		n = max(n, c.Offset+c.Size)
	}
	return n
}

func TestXstateRoundTrip(t *testing.T) {
	size := xstateSize()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i*7 + 3)
	}
	le := binary.LittleEndian
	bv := uint64(0x7) // x87, SSE, AVX
	for n := range x86.XsaveComponents() {
		if n < 64 {
			bv |= 1 << uint(n)
		}
	}
	le.PutUint64(buf[xstateBVOff:], bv)

	fp, err := XstateToImage(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := fp.GetXsave().GetXstateBv(); got != bv {
		t.Errorf("xstate_bv %#x, want %#x", got, bv)
	}
	if len(fp.GetStSpace()) != 32 || len(fp.GetXmmSpace()) != 64 || len(fp.GetPadding()) != 24 {
		t.Errorf("legacy lengths st %d xmm %d pad %d", len(fp.GetStSpace()), len(fp.GetXmmSpace()), len(fp.GetPadding()))
	}
	if fp.GetMxcsr() != le.Uint32(buf[24:]) || fp.GetRip() != le.Uint64(buf[8:]) || fp.GetStSpace()[0] != le.Uint32(buf[32:]) || fp.GetXmmSpace()[0] != le.Uint32(buf[160:]) {
		t.Error("legacy fields read from the wrong offsets")
	}
	// Through the wire format, as it would be stored.
	b, err := proto.Marshal(fp)
	if err != nil {
		t.Fatal(err)
	}
	var fp2 core.UserX86FpregsEntry
	if err := proto.Unmarshal(b, &fp2); err != nil {
		t.Fatal(err)
	}
	template := make([]byte, size)
	for i := range template {
		template[i] = 0xee
	}
	out, err := XstateFromImage(&fp2, template)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != size {
		t.Fatalf("restored buffer %d bytes, want %d", len(out), size)
	}
	// The registers of the legacy FXSAVE area survive; its reserved and
	// software-reserved tail (fx_sw_bytes, which the kernel checks) comes
	// from the template of the task being restored.
	if !bytes.Equal(out[:fxOffPad], buf[:fxOffPad]) {
		t.Error("legacy FXSAVE registers differ")
	}
	if !bytes.Equal(out[fxOffPad:legacyRegSize], template[fxOffPad:legacyRegSize]) {
		t.Error("legacy FXSAVE reserved bytes do not come from the template")
	}
	if len(fp.GetPadding()) == 0 || fp.GetPadding()[0] != le.Uint32(buf[fxOffPad:]) {
		t.Error("padding not kept in the image")
	}
	if got := le.Uint64(out[xstateBVOff:]); got != bv {
		t.Errorf("restored xstate_bv %#x, want %#x", got, bv)
	}
	if got := le.Uint64(out[xcompBVOff:]); got != 0 {
		t.Errorf("xcomp_bv %#x, want 0 (standard format)", got)
	}
	ymm, ok := x86.XsaveComponents()[x86.XfeatYMM]
	if !ok {
		t.Log("CPU without AVX: ymmh not checked")
	} else {
		if len(fp.GetXsave().GetYmmhSpace()) != ymm.Size/4 {
			t.Errorf("ymmh %d words, want %d", len(fp.GetXsave().GetYmmhSpace()), ymm.Size/4)
		}
		if !bytes.Equal(out[ymm.Offset:ymm.Offset+ymm.Size], buf[ymm.Offset:ymm.Offset+ymm.Size]) {
			t.Error("ymmh differs")
		}
	}
	for n, c := range x86.XsaveComponents() {
		switch n {
		case x86.XfeatYMM, x86.XfeatBNDREGS, x86.XfeatBNDCSR, x86.XfeatOpmask, x86.XfeatZMMHi256, x86.XfeatHi16ZMM, x86.XfeatPKRU:
			if !bytes.Equal(out[c.Offset:c.Offset+c.Size], buf[c.Offset:c.Offset+c.Size]) {
				t.Errorf("component %d differs", n)
			}
		}
	}
}

// Short st_space or xmm_space words of an image (from another tool)
// overwrite only their own bytes: the rest comes from the template.
func TestXstateFromImageShortWords(t *testing.T) {
	template := bytes.Repeat([]byte{0xee}, 1024)
	fp := &core.UserX86FpregsEntry{StSpace: []uint32{0x11111111}, XmmSpace: make([]uint32, 100)}
	out, err := XstateFromImage(fp, template)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(out[32:]) != 0x11111111 || le.Uint32(out[36:]) != 0xeeeeeeee {
		t.Errorf("st_space % x", out[32:40])
	}
	if !bytes.Equal(out[160:fxOffPad], make([]byte, fxOffPad-160)) || out[fxOffPad] != 0xee {
		t.Error("xmm_space of 100 words: not 64 zero words followed by the template's padding")
	}
}

func TestXstateShortAndMissing(t *testing.T) {
	if _, err := XstateToImage(make([]byte, 575)); err == nil {
		t.Error("short xstate: no error")
	}
	if _, err := XstateFromImage(&core.UserX86FpregsEntry{}, make([]byte, 100)); err == nil {
		t.Error("short template: no error")
	}
	// No xsave part: FP and SSE only.
	out, err := XstateFromImage(&core.UserX86FpregsEntry{Mxcsr: proto.Uint32(0x1f80)}, make([]byte, 1024))
	if err != nil {
		t.Fatal(err)
	}
	if bv := binary.LittleEndian.Uint64(out[xstateBVOff:]); bv != 3 || binary.LittleEndian.Uint32(out[24:]) != 0x1f80 {
		t.Errorf("fp-only: xstate_bv %#x", bv)
	}
	// A component this CPU lacks, marked in use, is refused.
	for _, n := range []int{x86.XfeatHi16ZMM, x86.XfeatBNDREGS} {
		if _, has := x86.XsaveComponents()[n]; has {
			continue
		}
		fp := &core.UserX86FpregsEntry{Xsave: &core.UserX86XsaveEntry{XstateBv: proto.Uint64(1 << uint(n))}}
		switch n {
		case x86.XfeatHi16ZMM:
			fp.Xsave.Hi16Zmm = make([]uint64, 128)
		case x86.XfeatBNDREGS:
			fp.Xsave.BndregState = make([]uint64, 8)
		}
		if _, err := XstateFromImage(fp, make([]byte, xstateSize())); err == nil {
			t.Errorf("component %d missing on this CPU: no error", n)
		}
	}
}
