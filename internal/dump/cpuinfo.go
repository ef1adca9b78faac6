//go:build linux && amd64

package dump

import (
	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// cpuEntry describes this machine's CPU for cpuinfo.img, so that a restore
// elsewhere can tell whether the tree's code may use instructions the
// other CPU lacks.
func cpuEntry() *cpuinfo.CpuinfoEntry {
	vendor, family, model, stepping := x86.CPUVendorModel()
	v := cpuinfo.CpuinfoX86Entry_UNKNOWN
	switch vendor {
	case "GenuineIntel":
		v = cpuinfo.CpuinfoX86Entry_INTEL
	case "AuthenticAMD":
		v = cpuinfo.CpuinfoX86Entry_AMD
	}
	return &cpuinfo.CpuinfoEntry{X86Entry: []*cpuinfo.CpuinfoX86Entry{{
		VendorId:      v.Enum(),
		CpuFamily:     proto.Uint32(family),
		Model:         proto.Uint32(model),
		Stepping:      proto.Uint32(stepping),
		CapabilityVer: proto.Uint32(x86.CapabilityVersion),
		Capability:    x86.CPUCapabilities(),
		ModelId:       proto.String(x86.CPUBrand()),
		XfeaturesMask: proto.Uint64(x86.XFeaturesEnabled()),
	}}}
}
