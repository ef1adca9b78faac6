//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// TimensOffsets are the clock offsets of a time namespace, in
// nanoseconds, as /proc/PID/timens_offsets shows them for the namespace
// the task's children get (kernel/time/namespace.c,
// proc_timens_show_offsets; time_namespaces(7)).
type TimensOffsets struct {
	Monotonic int64
	Boottime  int64
}

// ParseTimensOffsets parses lines "monotonic SECS NSECS" and
// "boottime SECS NSECS" (older kernels print the clock ids 1 and 7).
func ParseTimensOffsets(data []byte) (TimensOffsets, error) {
	var o TimensOffsets
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return o, fmt.Errorf("timens_offsets line %q: want a clock and two numbers", line)
		}
		sec, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return o, fmt.Errorf("timens_offsets line %q: %w", line, err)
		}
		nsec, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || nsec < 0 || nsec >= 1e9 {
			return o, fmt.Errorf("timens_offsets line %q: bad nanoseconds", line)
		}
		const maxSec = (1<<63 - 1) / 1_000_000_000
		if sec >= maxSec || sec <= -maxSec {
			return o, fmt.Errorf("timens_offsets line %q: offset out of range", line)
		}
		v := sec*1e9 + nsec
		switch f[0] {
		case "monotonic", "1":
			o.Monotonic = v
		case "boottime", "7":
			o.Boottime = v
		default:
			return o, fmt.Errorf("timens_offsets line %q: unknown clock", line)
		}
		seen++
	}
	if seen != 2 {
		return o, fmt.Errorf("timens_offsets: %d lines, want monotonic and boottime", seen)
	}
	return o, nil
}

// ReadTimensOffsets reads /proc/PID/timens_offsets.
func ReadTimensOffsets(pid int) (TimensOffsets, error) {
	path := fmt.Sprintf("/proc/%d/timens_offsets", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return TimensOffsets{}, fmt.Errorf("read %s: %w", path, err)
	}
	o, err := ParseTimensOffsets(data)
	if err != nil {
		return o, fmt.Errorf("read %s: %w", path, err)
	}
	return o, nil
}
