//go:build linux && amd64

package procfs

import (
	"fmt"
	"math"
	"os"
	"strings"
)

// SmapsEntry is one VMA of /proc/PID/smaps with the few per-VMA details the
// checkpointer needs. Other smaps fields (Pss, Swap, ...) are skipped.
type SmapsEntry struct {
	// VMA is parsed from the header line, which has the same format as a
	// /proc/PID/maps line (show_smap calls show_map_vma in
	// fs/proc/task_mmu.c).
	VMA VMA
	// Flags are the two-letter tokens of the "VmFlags:" line, in order,
	// e.g. "rd", "wr", "mr", "gd" (VM_GROWSDOWN), "dd" (VM_DONTDUMP),
	// "dc" (VM_DONTCOPY), "ht" (VM_HUGETLB), "sd" (soft-dirty); see
	// show_smap_vma_flags in fs/proc/task_mmu.c and proc(5).
	Flags []string
	// Rss and Anonymous are the "Rss:" and "Anonymous:" values converted
	// from kB to bytes.
	Rss, Anonymous uint64
	// ProtectionKey is the "ProtectionKey:" value (x86 memory protection
	// keys, pkey_mprotect(2)); 0 where the line is absent.
	ProtectionKey uint64
	// KernelPageSize is the "KernelPageSize:" value in bytes: the page
	// size the kernel backs the area with (2 MiB or 1 GiB for hugetlb).
	KernelPageSize uint64
}

// HasFlag reports whether f (e.g. "gd") is one of the entry's VmFlags.
func (e SmapsEntry) HasFlag(f string) bool {
	for _, x := range e.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// ParseSmaps parses the contents of /proc/PID/smaps: a maps-format header
// line per VMA followed by "Key: value" lines. Lines whose first token ends
// in ':' are field lines; every other line starts a new VMA. Empty input
// yields an empty slice and no error.
func ParseSmaps(data []byte) ([]SmapsEntry, error) {
	var out []SmapsEntry
	it := lineIter{data: data}
	for {
		line, ok := it.next()
		if !ok {
			break
		}
		first, _ := nextField(line)
		if !strings.HasSuffix(first, ":") {
			v, err := parseMapsLine(line)
			if err != nil {
				return nil, fmt.Errorf("smaps line %d: %w", it.n, err)
			}
			out = append(out, SmapsEntry{VMA: v})
			continue
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("smaps line %d: field %q before first VMA header", it.n, clip(first))
		}
		e := &out[len(out)-1]
		key, val, _ := splitKV(line)
		var err error
		switch key {
		case "VmFlags":
			e.Flags = strings.Fields(val)
		case "Rss":
			e.Rss, err = parseKB(key, val)
		case "Anonymous":
			e.Anonymous, err = parseKB(key, val)
		case "KernelPageSize":
			e.KernelPageSize, err = parseKB(key, val)
		case "ProtectionKey":
			e.ProtectionKey, err = parseUint(key, trimWS(val), 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %w", it.n, err)
		}
	}
	return out, nil
}

// ReadSmaps reads and parses /proc/PID/smaps.
func ReadSmaps(pid int) ([]SmapsEntry, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/smaps: %w", pid, err)
	}
	e, err := ParseSmaps(data)
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/smaps: %w", pid, err)
	}
	return e, nil
}

// parseKB parses a value like "1234 kB" (SEQ_PUT_DEC(..., " kB") in
// fs/proc/task_mmu.c) and returns it in bytes.
func parseKB(field, val string) (uint64, error) {
	num, unit := nextField(val)
	if trimWS(unit) != "kB" {
		return 0, fmt.Errorf("%s: want \"N kB\", got %q", field, clip(val))
	}
	n, err := parseUint(field, num, 10, 64)
	if err != nil {
		return 0, err
	}
	if n > math.MaxUint64/1024 {
		return 0, fmt.Errorf("%s: %d kB overflows bytes", field, n)
	}
	return n * 1024, nil
}
