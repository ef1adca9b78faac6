package restore

import (
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/cpucap"
)

func TestCheckCPU(t *testing.T) {
	entry := func(caps []uint32, xf uint64, ver uint32) *cpuinfo.CpuinfoEntry {
		return &cpuinfo.CpuinfoEntry{X86Entry: []*cpuinfo.CpuinfoX86Entry{{
			VendorId: cpuinfo.CpuinfoX86Entry_INTEL.Enum(), CpuFamily: proto.Uint32(6), Model: proto.Uint32(1),
			Stepping: proto.Uint32(1), CapabilityVer: proto.Uint32(ver), Capability: caps,
			ModelId: proto.String("test CPU"), XfeaturesMask: proto.Uint64(xf),
		}}}
	}
	same := entry(x86.CPUCapabilities(), x86.XFeaturesEnabled(), x86.CapabilityVersion)
	if err := checkCPU(same, ""); err != nil {
		t.Errorf("this CPU against itself: %v", err)
	}
	all := make([]uint32, x86.NumCapWords)
	for i := range all {
		all[i] = ^uint32(0)
	}
	every := entry(all, ^uint64(0), x86.CapabilityVersion)
	err := checkCPU(every, cpucap.Ins)
	if err == nil || !strings.Contains(err.Error(), "this CPU lacks") || !strings.Contains(err.Error(), "test CPU") || !strings.Contains(err.Error(), "--cpu-cap=fpu") {
		t.Errorf("a CPU with every feature: %v", err)
	}
	for _, mode := range []string{cpucap.FPU, cpucap.None} {
		if err := checkCPU(every, mode); err != nil {
			t.Errorf("--cpu-cap=%s: %v", mode, err)
		}
	}
	if err := checkCPU(entry(all, 0, 99), ""); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("unknown capability version: %v", err)
	}
	if err := checkCPU(nil, ""); err != nil {
		t.Errorf("a dump without cpuinfo.img: %v", err)
	}
	if err := checkCPU(same, "bogus"); err == nil || !strings.Contains(err.Error(), "want one of") {
		t.Errorf("bad mode: %v", err)
	}
}
