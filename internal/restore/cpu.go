//go:build linux && amd64

package restore

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/cpucap"
)

// checkCPU compares the dumping machine's CPU with this one.
func checkCPU(c *cpuinfo.CpuinfoEntry, mode string) error {
	if err := cpucap.Check(mode); err != nil {
		return err
	}
	if !cpucap.ComparesInstructions(mode) {
		return nil
	}
	if c == nil || len(c.GetX86Entry()) == 0 {
		return nil // a dump without cpuinfo.img
	}
	e := c.GetX86Entry()[0]
	if e.GetCapabilityVer() != x86.CapabilityVersion {
		return fmt.Errorf("cpuinfo.img: capability words of version %d, ckpt reads version %d (restore with --cpu-cap=fpu to skip the check)", e.GetCapabilityVer(), x86.CapabilityVersion)
	}
	missing := x86.MissingInstructions(e.GetCapability(), e.GetXfeaturesMask(), x86.CPUCapabilities(), x86.XFeaturesEnabled())
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("this CPU lacks %s, which the dumping CPU (%s) had: programs choose their code by CPUID when they start (glibc's string functions, for one) and could die of SIGILL here; restore with --cpu-cap=fpu to skip this check (the xsave state in use is checked all the same)",
		strings.Join(missing, ", "), e.GetModelId())
}
