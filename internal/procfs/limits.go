//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Rlimit is one resource limit: the soft (Cur) and hard (Max) values.
// RLIM_INFINITY ("unlimited" in the file) is ^uint64(0), as in unix.Rlimit.
type Rlimit struct{ Cur, Max uint64 }

// RlimInfinity is the value of an "unlimited" limit (RLIM_INFINITY).
const RlimInfinity = ^uint64(0)

// limitRows lists the row names of /proc/PID/limits (the lnames[] table in
// fs/proc/base.c) in kernel order, with their resource numbers for
// getrlimit(2)/prlimit(2).
var limitRows = []struct {
	name string
	res  int
}{
	{"Max cpu time", unix.RLIMIT_CPU},
	{"Max file size", unix.RLIMIT_FSIZE},
	{"Max data size", unix.RLIMIT_DATA},
	{"Max stack size", unix.RLIMIT_STACK},
	{"Max core file size", unix.RLIMIT_CORE},
	{"Max resident set", unix.RLIMIT_RSS},
	{"Max processes", unix.RLIMIT_NPROC},
	{"Max open files", unix.RLIMIT_NOFILE},
	{"Max locked memory", unix.RLIMIT_MEMLOCK},
	{"Max address space", unix.RLIMIT_AS},
	{"Max file locks", unix.RLIMIT_LOCKS},
	{"Max pending signals", unix.RLIMIT_SIGPENDING},
	{"Max msgqueue size", unix.RLIMIT_MSGQUEUE},
	{"Max nice priority", unix.RLIMIT_NICE},
	{"Max realtime priority", unix.RLIMIT_RTPRIO},
	{"Max realtime timeout", unix.RLIMIT_RTTIME},
}

// limitNames maps a row name of /proc/PID/limits to its resource number.
var limitNames = func() map[string]int {
	m := make(map[string]int, len(limitRows))
	for _, r := range limitRows {
		m[r.name] = r.res
	}
	return m
}()

// ParseLimits parses the contents of /proc/PID/limits and returns the
// limits keyed by resource number (unix.RLIMIT_*).
//
// proc_pid_limits() in fs/proc/base.c prints a header row
// "Limit  Soft Limit  Hard Limit  Units" and then one row per resource as
// "%-25s %-20s %-20s %-10s": name, soft, hard and an optional unit. Values
// are decimal or "unlimited". Rows are recognised by splitting off the last
// two or three whitespace-separated tokens, so the column widths do not
// matter. The header must come first; an unknown or repeated row name, a
// bad value, or a missing resource is an error.
func ParseLimits(data []byte) (map[int]Rlimit, error) {
	out := make(map[int]Rlimit, len(limitNames))
	it := lineIter{data: data}
	line, ok := it.next()
	if !ok {
		return nil, fmt.Errorf("limits: empty")
	}
	if f := strings.Fields(line); len(f) == 0 || f[0] != "Limit" {
		return nil, fmt.Errorf("limits line 1: want header starting with \"Limit\", got %q", clip(line))
	}
	for {
		line, ok := it.next()
		if !ok {
			break
		}
		f := strings.Fields(line)
		// name words..., soft, hard, [unit]
		if len(f) < 3 {
			return nil, fmt.Errorf("limits line %d: too few fields in %q", it.n, clip(line))
		}
		if !isLimitValue(f[len(f)-1]) {
			f = f[:len(f)-1] // drop unit
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("limits line %d: too few fields in %q", it.n, clip(line))
		}
		name := strings.Join(f[:len(f)-2], " ")
		res, known := limitNames[name]
		if !known {
			return nil, fmt.Errorf("limits line %d: unknown limit %q", it.n, clip(name))
		}
		if _, dup := out[res]; dup {
			return nil, fmt.Errorf("limits line %d: duplicate limit %q", it.n, name)
		}
		cur, err := parseLimitValue(name+" soft", f[len(f)-2])
		if err != nil {
			return nil, fmt.Errorf("limits line %d: %w", it.n, err)
		}
		max, err := parseLimitValue(name+" hard", f[len(f)-1])
		if err != nil {
			return nil, fmt.Errorf("limits line %d: %w", it.n, err)
		}
		out[res] = Rlimit{Cur: cur, Max: max}
	}
	for _, r := range limitRows {
		if _, ok := out[r.res]; !ok {
			return nil, fmt.Errorf("limits: missing %q row", r.name)
		}
	}
	return out, nil
}

// isLimitValue reports whether s looks like a limit value rather than a
// unit: "unlimited" or starting with a digit.
func isLimitValue(s string) bool {
	return s == "unlimited" || (s != "" && s[0] >= '0' && s[0] <= '9')
}

func parseLimitValue(field, s string) (uint64, error) {
	if s == "unlimited" {
		return RlimInfinity, nil
	}
	return parseUint(field, s, 10, 64)
}

// ReadLimits reads and parses /proc/PID/limits.
func ReadLimits(pid int) (map[int]Rlimit, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/limits: %w", pid, err)
	}
	l, err := ParseLimits(data)
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/limits: %w", pid, err)
	}
	return l, nil
}
