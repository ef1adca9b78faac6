//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strings"
)

// ParseMemAvailable returns MemAvailable of /proc/meminfo, in bytes:
// the kernel's estimate of the memory available without swapping, page
// cache included (fs/proc/meminfo.c prints it as "MemAvailable: N kB").
func ParseMemAvailable(data []byte) (uint64, error) {
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := splitKV(line)
		if !ok || key != "MemAvailable" {
			continue
		}
		num, unit := nextField(val)
		if strings.TrimSpace(unit) != "kB" {
			return 0, fmt.Errorf("meminfo: MemAvailable %q: want kB", clip(val))
		}
		kb, err := parseUint("MemAvailable", num, 10, 64)
		if err != nil {
			return 0, err
		}
		if kb > 1<<53 {
			return 0, fmt.Errorf("meminfo: MemAvailable %d kB out of range", kb)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("meminfo: no MemAvailable")
}

// MemAvailable reads MemAvailable from /proc/meminfo, in bytes.
func MemAvailable() (uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return ParseMemAvailable(data)
}
