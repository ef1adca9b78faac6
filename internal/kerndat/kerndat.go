//go:build linux && amd64

// Package kerndat finds out what the running kernel lets ckpt do. Each
// probe is a small, time-bounded experiment (a syscall, a /proc file, a
// traced helper process) whose result says plainly why a feature is not
// supported. Results are computed once per process and cached.
//
// Helper processes are started from /proc/self/exe under PTRACE_TRACEME,
// so they stop at their exec before running a single instruction of their
// own; every helper is killed and reaped before its probe returns, even
// when the probe fails or times out.
//
// This package must not change the state of ckpt's own process beyond
// reading it; everything that could break something runs in a helper.
package kerndat

import (
	"fmt"
	"sort"
	"sync"
)

// Result is the outcome of one probe.
type Result struct {
	// Name says what was probed, e.g. "ptrace seize/interrupt".
	Name string
	// OK is true when the feature works.
	OK bool
	// Detail is what was found: a version, an address, or, when OK is
	// false, why the feature is not supported.
	Detail string
	// Required is true when checkpoint/restore of any task cannot work
	// without the feature.
	Required bool
}

// String formats the result as one line of `ckpt check`:
// "ok    NAME: DETAIL" or "FAIL  NAME: DETAIL".
func (r Result) String() string {
	s := "ok    "
	if !r.OK {
		s = "FAIL  "
	}
	s += r.Name
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// CompatProbe names the probe that turns a helper into a compat task and
// runs an ia32 syscall: when it passes, ia32 checkpoint/restore can work.
const CompatProbe = "compat self-test"

// RequiredOK reports whether every required probe in rs passed.
func RequiredOK(rs []Result) bool {
	for _, r := range rs {
		if r.Required && !r.OK {
			return false
		}
	}
	return true
}

var (
	probeOnce sync.Once
	probed    []Result
)

// Probe runs every probe once per process and returns the results in a
// fixed order; later calls return the cached results.
func Probe() []Result {
	probeOnce.Do(func() { probed = runAll() })
	return append([]Result(nil), probed...)
}

func ok(name, detail string, required bool) Result {
	return Result{Name: name, OK: true, Detail: detail, Required: required}
}

func fail(name string, required bool, format string, args ...any) Result {
	return Result{Name: name, OK: false, Detail: fmt.Sprintf(format, args...), Required: required}
}

// criuFeatures maps the names of `criu check --feature NAME` that a probe
// of ckpt answers to that probe's name.
var criuFeatures = map[string]string{
	"compat_cr":      nameCompat,
	"timens":         nameTimeNS,
	"clone3_set_tid": nameClone3,
	"get_rseq_conf":  nameRseq,
	"can_map_vdso":   nameVDSO64,
}

// FeatureNames lists, sorted, the CRIU feature names Feature answers.
func FeatureNames() []string {
	out := make([]string, 0, len(criuFeatures))
	for n := range criuFeatures {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Feature runs the probes and returns the result of the one that
// answers CRIU's feature name; ok is false for a name no probe answers.
func Feature(name string) (r Result, ok bool) {
	probe, ok := criuFeatures[name]
	if !ok {
		return Result{}, false
	}
	for _, r := range Probe() {
		if r.Name == probe {
			return r, true
		}
	}
	return Result{}, false
}
