//go:build linux && amd64

// Package cpucap names the values of --cpu-cap, CRIU's CPU option, and
// what each means to ckpt's dump and restore. Package ckpt exports them.
//
// At dump, every value but None records this machine's CPU in
// cpuinfo.img; None leaves the file out, as CRIU does, and a restore of
// that dump cannot compare CPUs. At restore, Ins (the default), CPU and
// All refuse a dump from a CPU with instruction-set features or xsave
// components this one lacks; FPU and None skip that comparison. The
// xsave state the threads were using is checked whatever the value: it
// could not be restored otherwise.
package cpucap

import (
	"fmt"
	"slices"
	"strings"
)

// The values of --cpu-cap.
const (
	// Ins compares the instruction-set features. The default.
	Ins = "ins"
	// FPU checks only the xsave state in use.
	FPU = "fpu"
	// CPU is taken as Ins.
	CPU = "cpu"
	// All is taken as Ins.
	All = "all"
	// None is taken as FPU at restore; at dump it leaves out cpuinfo.img.
	None = "none"
)

// Values are the values --cpu-cap takes, the default first.
var Values = []string{Ins, FPU, CPU, All, None}

// Check refuses a value that is not one of Values; empty means Ins.
func Check(mode string) error {
	if mode == "" || slices.Contains(Values, mode) {
		return nil
	}
	return fmt.Errorf("--cpu-cap=%s: want one of %s", mode, strings.Join(Values, ", "))
}

// Records reports whether a dump with this value writes cpuinfo.img.
func Records(mode string) bool { return mode != None }

// ComparesInstructions reports whether a restore with this value refuses
// a dump from a CPU with features this one lacks.
func ComparesInstructions(mode string) bool { return mode != FPU && mode != None }
