//go:build linux && amd64

package x86

import (
	"sort"
	"strconv"
	"strings"
)

// CPUID feature words, numbered as the kernel numbers its capability
// words (arch/x86/include/asm/cpufeatures.h). Only the words that hold
// instruction-set bits user code tests are read; the others stay zero.
const (
	CapWord1EDX       = 0  // CPUID 0x00000001 EDX
	CapWordExt1EDX    = 1  // CPUID 0x80000001 EDX
	CapWord1ECX       = 4  // CPUID 0x00000001 ECX
	CapWordExt1ECX    = 6  // CPUID 0x80000001 ECX
	CapWord7EBX       = 9  // CPUID 0x00000007.0 EBX
	CapWordXsaveEAX   = 10 // CPUID 0x0000000d.1 EAX
	CapWord7ECX       = 16 // CPUID 0x00000007.0 ECX
	CapWord7EDX       = 18 // CPUID 0x00000007.0 EDX
	NumCapWords       = 21 // NCAPINTS of Linux 6.x
	CapabilityVersion = 1  // ckpt's version of this layout
)

// insFeature is an instruction-set feature: a CPUID bit that programs test
// to choose code (glibc's ifuncs, the Go runtime, JITs).
type insFeature struct {
	name      string
	word, bit int
}

// insFeatures are the user-visible instruction-set bits, named as
// /proc/cpuinfo names them.
var insFeatures = []insFeature{
	{"cmov", CapWord1EDX, 15}, {"mmx", CapWord1EDX, 23}, {"fxsr", CapWord1EDX, 24},
	{"sse", CapWord1EDX, 25}, {"sse2", CapWord1EDX, 26},
	{"rdtscp", CapWordExt1EDX, 27},
	{"pni", CapWord1ECX, 0}, {"pclmulqdq", CapWord1ECX, 1}, {"ssse3", CapWord1ECX, 9},
	{"fma", CapWord1ECX, 12}, {"cx16", CapWord1ECX, 13}, {"sse4_1", CapWord1ECX, 19},
	{"sse4_2", CapWord1ECX, 20}, {"movbe", CapWord1ECX, 22}, {"popcnt", CapWord1ECX, 23},
	{"aes", CapWord1ECX, 25}, {"xsave", CapWord1ECX, 26}, {"avx", CapWord1ECX, 28},
	{"f16c", CapWord1ECX, 29}, {"rdrand", CapWord1ECX, 30},
	{"lahf_lm", CapWordExt1ECX, 0}, {"abm", CapWordExt1ECX, 5}, {"sse4a", CapWordExt1ECX, 6},
	{"3dnowprefetch", CapWordExt1ECX, 8}, {"xop", CapWordExt1ECX, 11}, {"fma4", CapWordExt1ECX, 16},
	{"tbm", CapWordExt1ECX, 21},
	{"fsgsbase", CapWord7EBX, 0}, {"bmi1", CapWord7EBX, 3}, {"hle", CapWord7EBX, 4},
	{"avx2", CapWord7EBX, 5}, {"bmi2", CapWord7EBX, 8}, {"erms", CapWord7EBX, 9},
	{"rtm", CapWord7EBX, 11}, {"avx512f", CapWord7EBX, 16}, {"avx512dq", CapWord7EBX, 17},
	{"rdseed", CapWord7EBX, 18}, {"adx", CapWord7EBX, 19}, {"avx512ifma", CapWord7EBX, 21},
	{"clflushopt", CapWord7EBX, 23}, {"clwb", CapWord7EBX, 24}, {"avx512pf", CapWord7EBX, 26},
	{"avx512er", CapWord7EBX, 27}, {"avx512cd", CapWord7EBX, 28}, {"sha_ni", CapWord7EBX, 29},
	{"avx512bw", CapWord7EBX, 30}, {"avx512vl", CapWord7EBX, 31},
	{"xsaveopt", CapWordXsaveEAX, 0}, {"xsavec", CapWordXsaveEAX, 1}, {"xgetbv1", CapWordXsaveEAX, 2},
	{"avx512vbmi", CapWord7ECX, 1}, {"pku", CapWord7ECX, 3}, {"waitpkg", CapWord7ECX, 5},
	{"avx512_vbmi2", CapWord7ECX, 6}, {"gfni", CapWord7ECX, 8}, {"vaes", CapWord7ECX, 9},
	{"vpclmulqdq", CapWord7ECX, 10}, {"avx512_vnni", CapWord7ECX, 11}, {"avx512_bitalg", CapWord7ECX, 12},
	{"avx512_vpopcntdq", CapWord7ECX, 14}, {"rdpid", CapWord7ECX, 22}, {"movdiri", CapWord7ECX, 27},
	{"movdir64b", CapWord7ECX, 28},
	{"avx512_4vnniw", CapWord7EDX, 2}, {"avx512_4fmaps", CapWord7EDX, 3}, {"fsrm", CapWord7EDX, 4},
	{"avx512_vp2intersect", CapWord7EDX, 8}, {"serialize", CapWord7EDX, 14}, {"amx_bf16", CapWord7EDX, 22},
	{"avx512_fp16", CapWord7EDX, 23}, {"amx_tile", CapWord7EDX, 24}, {"amx_int8", CapWord7EDX, 25},
}

func (f insFeature) in(words []uint32) bool {
	return f.word < len(words) && words[f.word]&(1<<uint(f.bit)) != 0
}

// InstructionFeatures names the instruction-set features set in caps.
func InstructionFeatures(caps []uint32) []string {
	var out []string
	for _, f := range insFeatures {
		if f.in(caps) {
			out = append(out, f.name)
		}
	}
	return out
}

// CPUCapabilities reads this CPU's feature words (NumCapWords long).
func CPUCapabilities() []uint32 {
	w := make([]uint32, NumCapWords)
	maxLeaf, _, _, _ := cpuid(0, 0)
	_, _, w[CapWord1ECX], w[CapWord1EDX] = cpuid(1, 0)
	if maxLeaf >= 7 {
		_, w[CapWord7EBX], w[CapWord7ECX], w[CapWord7EDX] = cpuid(7, 0)
	}
	if maxLeaf >= 0xd {
		w[CapWordXsaveEAX], _, _, _ = cpuid(0xd, 1)
	}
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt >= 0x80000001 {
		_, _, w[CapWordExt1ECX], w[CapWordExt1EDX] = cpuid(0x80000001, 0)
	}
	return w
}

// CPUVendorModel returns the CPUID vendor string, family, model and
// stepping (leaf 0 and leaf 1 EAX, with the extended family and model).
func CPUVendorModel() (vendor string, family, model, stepping uint32) {
	_, b, c, d := cpuid(0, 0)
	v := make([]byte, 0, 12)
	for _, r := range []uint32{b, d, c} {
		v = append(v, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	a, _, _, _ := cpuid(1, 0)
	family = a >> 8 & 0xf
	model = a >> 4 & 0xf
	if family == 0xf {
		family += a >> 20 & 0xff
	}
	if family >= 6 {
		model |= (a >> 16 & 0xf) << 4
	}
	return string(v), family, model, a & 0xf
}

// CPUBrand is the processor brand string (CPUID 0x80000002-0x80000004).
func CPUBrand() string {
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt < 0x80000004 {
		return ""
	}
	var b []byte
	for leaf := uint32(0x80000002); leaf <= 0x80000004; leaf++ {
		a, bx, c, d := cpuid(leaf, 0)
		for _, r := range []uint32{a, bx, c, d} {
			b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
		}
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

// XFeaturesEnabled is XCR0: the xsave state components the kernel enabled.
func XFeaturesEnabled() uint64 {
	if _, _, c, _ := cpuid(1, 0); c&(1<<27) == 0 { // OSXSAVE
		return 0
	}
	return xgetbv0()
}

func xgetbv0() uint64

// MissingInstructions lists, by name, the instruction-set features and
// xsave components that the dumped CPU (caps, xfeatures) had and this one
// (hereCaps, hereXfeatures) lacks.
func MissingInstructions(caps []uint32, xfeatures uint64, hereCaps []uint32, hereXfeatures uint64) []string {
	var out []string
	for _, f := range insFeatures {
		if f.in(caps) && !f.in(hereCaps) {
			out = append(out, f.name)
		}
	}
	var comps []string
	for i := 0; i < 64; i++ {
		if xfeatures&(1<<uint(i)) != 0 && hereXfeatures&(1<<uint(i)) == 0 {
			name := xfeatNames[i]
			if name == "" {
				name = "component " + strconv.Itoa(i)
			}
			comps = append(comps, "xsave "+name)
		}
	}
	sort.Strings(comps)
	return append(out, comps...)
}
