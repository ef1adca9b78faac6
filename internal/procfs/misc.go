//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ParsePersonality parses the contents of /proc/PID/personality, the
// task's execution domain printed as "%08x\n" by proc_pid_personality() in
// fs/proc/base.c (e.g. "00000000\n"; "00400000\n" for
// READ_IMPLIES_EXEC). See personality(2).
func ParsePersonality(data []byte) (uint32, error) {
	s := strings.TrimSuffix(string(data), "\n")
	v, err := parseUint("personality", s, 16, 32)
	if err != nil {
		return 0, err
	}
	return uint32(v), nil
}

// ReadPersonality reads and parses /proc/PID/personality. Reading it
// requires PTRACE_MODE_ATTACH access to the task.
func ReadPersonality(pid int) (uint32, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/personality", pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/personality: %w", pid, err)
	}
	p, err := ParsePersonality(data)
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/personality: %w", pid, err)
	}
	return p, nil
}

// Threads lists the thread IDs of process pid, the entries of
// /proc/PID/task, sorted ascending. The list is a snapshot: threads may be
// created or exit concurrently unless the process is stopped.
func Threads(pid int) ([]int, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid <= 0 {
			return nil, fmt.Errorf("read %s: unexpected entry %q", dir, e.Name())
		}
		tids = append(tids, tid)
	}
	sort.Ints(tids)
	return tids, nil
}
