//go:build linux

package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ParseStatmResident reads the resident set size, in pages, from the
// text of /proc/PID/statm: "size resident shared text lib data dt"
// (proc(5); fs/proc/array.c, proc_pid_statm).
func ParseStatmResident(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("statm %q: fewer than 2 fields", b)
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm %q: resident: %w", b, err)
	}
	return n, nil
}

// ReadStatmResident is the resident pages of process pid.
func ReadStatmResident(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatmResident(b)
}
