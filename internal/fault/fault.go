//go:build linux && amd64

// Package fault reads CKPT_FAULT, the fault injection switch that tests
// set in the environment of `ckpt restore` and `ckpt dump` to take paths
// this machine would not take by itself. It is the only reader of
// CKPT_FAULT.
//
// CKPT_FAULT is a comma-separated list of faults:
//
//	vdso-trampolines      take the vDSO trampoline path even when this
//	                      kernel's vDSO is the dumped one
//	vdso-drop=NAME        act as if this kernel's vDSO lacked symbol NAME
//	                      (may be given more than once)
//	clocks-behind=DUR     act as if this machine's CLOCK_MONOTONIC and
//	                      CLOCK_BOOTTIME were DUR (a time.ParseDuration
//	                      string, e.g. 1h) behind the dumped values
//	no-sockbpf            act as if this kernel could not run ckpt's BPF
//	                      iterators (package sockbpf)
//	panic-at=STEP         panic at the named step of a dump or restore,
//	                      to prove that the undo of a run leaves every
//	                      dumped task as it was and nothing of a failed
//	                      restore behind (the steps are listed in Steps)
//	lazy-slow             (for `ckpt lazy-pages`) push pages in the
//	                      background at a crawl, about 32 MiB/s, so that
//	                      a lazily restored program runs while most of
//	                      its pages are missing
//
// A name not in this list is refused by Check, so that a typo does not
// pass for a test of a path that was never taken.
package fault

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Env is the environment variable read.
const Env = "CKPT_FAULT"

// The faults, as named in CKPT_FAULT.
const (
	// VDSOTrampolines forces the vDSO trampoline path.
	VDSOTrampolines = "vdso-trampolines"
	// VDSODrop=NAME takes symbol NAME out of this kernel's vDSO.
	VDSODrop = "vdso-drop"
	// ClocksBehind=DURATION puts this machine's clocks behind by DURATION.
	ClocksBehind = "clocks-behind"
	// PanicAt=STEP panics at step STEP (one of Steps).
	PanicAt = "panic-at"
	// NoSockBPF makes package sockbpf fail as on a kernel without BTF.
	NoSockBPF = "no-sockbpf"
	// NoPagemapScan makes the write-tracking probe (kerndat.MemTracking)
	// fail as on a kernel without PAGEMAP_SCAN (before Linux 6.7).
	NoPagemapScan = "no-pagemap-scan"
	// LazySlow slows the lazy-pages server's background push.
	LazySlow = "lazy-slow"
)

// The steps of panic-at. Each is named where it is checked, once per run
// (the first time the run gets there).
const (
	// DumpFrozen: every task of the tree is seized and stopped.
	DumpFrozen = "dump-frozen"
	// DumpInjecting: syscall injection began in a thread and its
	// scratch data page is mapped.
	DumpInjecting = "dump-injecting"
	// DumpMemory: the pages of one memory area are written, others not.
	DumpMemory = "dump-memory"
	// RestoreHelper: the helper process is started.
	RestoreHelper = "restore-helper"
	// RestoreCloned: the root task exists with its PID, the helper is gone.
	RestoreCloned = "restore-cloned"
	// RestoreRebuild: the middle of a task's rebuild (its memory and
	// threads exist, its registers are not set).
	RestoreRebuild = "restore-rebuild"
	// RestoreLeaders: the root's temporary session leader (and group
	// leader) exist, the root does not yet.
	RestoreLeaders = "restore-leaders"
	// RestoreMemberLeaders: a tree member's temporary session leader
	// exists, the member does not yet.
	RestoreMemberLeaders = "restore-member-leaders"
)

// Steps are the steps panic-at knows.
var Steps = []string{DumpFrozen, DumpInjecting, DumpMemory, RestoreHelper, RestoreCloned, RestoreRebuild,
	RestoreLeaders, RestoreMemberLeaders}

// known maps each fault to whether it takes a value.
var known = map[string]bool{VDSOTrampolines: false, VDSODrop: true, ClocksBehind: true, PanicAt: true, NoSockBPF: false, LazySlow: false, NoPagemapScan: false}

// items returns the entries of CKPT_FAULT as name, value, hasValue.
func items() [][3]string {
	var out [][3]string
	for _, v := range strings.Split(os.Getenv(Env), ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		k, val, ok := strings.Cut(v, "=")
		has := ""
		if ok {
			has = "="
		}
		out = append(out, [3]string{k, val, has})
	}
	return out
}

// Check refuses a CKPT_FAULT that names an unknown fault, gives a value
// to a fault that takes none or none to one that needs it, or has a
// clocks-behind that is not a duration.
func Check() error {
	for _, it := range items() {
		takes, ok := known[it[0]]
		switch {
		case !ok:
			return fmt.Errorf("%s: unknown fault %q (known: %s, %s=NAME, %s=DURATION, %s=STEP, %s, %s)", Env, it[0], VDSOTrampolines, VDSODrop, ClocksBehind, PanicAt, NoSockBPF, LazySlow)
		case takes && it[2] == "":
			return fmt.Errorf("%s: fault %s needs a value (%s=...)", Env, it[0], it[0])
		case !takes && it[2] != "":
			return fmt.Errorf("%s: fault %s takes no value", Env, it[0])
		}
	}
	for _, v := range Values(PanicAt) {
		if !slices.Contains(Steps, v) {
			return fmt.Errorf("%s: %s=%s: unknown step (known: %s)", Env, PanicAt, v, strings.Join(Steps, ", "))
		}
	}
	_, err := Behind()
	return err
}

// Panic panics if CKPT_FAULT has panic-at=step. Call it only at the
// steps of Steps, on the tracer thread of a run.
func Panic(step string) {
	if slices.Contains(Values(PanicAt), step) {
		panic(fmt.Sprintf("%s %s=%s", Env, PanicAt, step))
	}
}

// On reports whether CKPT_FAULT names the fault name (one without a value).
func On(name string) bool {
	for _, it := range items() {
		if it[0] == name && it[2] == "" {
			return true
		}
	}
	return false
}

// Values returns the values given to fault name (name=VALUE), in order.
func Values(name string) []string {
	var out []string
	for _, it := range items() {
		if it[0] == name && it[2] != "" {
			out = append(out, it[1])
		}
	}
	return out
}

// Behind returns the clocks-behind duration, 0 if not set; the last one
// given counts.
func Behind() (time.Duration, error) {
	v := Values(ClocksBehind)
	if len(v) == 0 {
		return 0, nil
	}
	d, err := time.ParseDuration(v[len(v)-1])
	if err != nil {
		return 0, fmt.Errorf("%s=%s=%s: %w", Env, ClocksBehind, v[len(v)-1], err)
	}
	return d, nil
}
