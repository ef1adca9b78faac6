//go:build linux && amd64

package procfs

import (
	"encoding/binary"
	"fmt"
	"os"
)

// AuxvEntry is one (a_type, a_val) pair of the ELF auxiliary vector, e.g.
// Type 33 (AT_SYSINFO_EHDR) with the vDSO base address as Value.
type AuxvEntry struct{ Type, Value uint64 }

// atNull is AT_NULL, the type that terminates the auxiliary vector.
const atNull = 0

// ParseAuxv parses the contents of /proc/PID/auxv. The file
// (proc_pid_auxv in fs/proc/base.c) is the saved auxiliary vector: pairs of
// native-endian words, wordSize 8 for a 64-bit task and 4 for a 32-bit
// (ia32 or x32-compat) one, terminated by an AT_NULL pair. Parsing stops at
// AT_NULL, which is not included in the result; anything after it is
// ignored. Empty input (kernel thread) yields no entries. Input that ends
// without AT_NULL is accepted if it holds only whole pairs; a trailing
// partial pair or a wordSize other than 4 or 8 is an error.
func ParseAuxv(data []byte, wordSize int) ([]AuxvEntry, error) {
	if wordSize != 4 && wordSize != 8 {
		return nil, fmt.Errorf("auxv: word size %d, want 4 or 8", wordSize)
	}
	pair := 2 * wordSize
	word := func(b []byte) uint64 {
		if wordSize == 8 {
			return binary.NativeEndian.Uint64(b)
		}
		return uint64(binary.NativeEndian.Uint32(b))
	}
	var out []AuxvEntry
	for off := 0; off < len(data); off += pair {
		if len(data)-off < pair {
			return nil, fmt.Errorf("auxv: %d trailing bytes at offset %d, not a whole %d-byte pair", len(data)-off, off, pair)
		}
		e := AuxvEntry{Type: word(data[off:]), Value: word(data[off+wordSize:])}
		if e.Type == atNull {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadAuxvRaw returns the raw bytes of /proc/PID/auxv; the caller knows the
// task's word size and passes them to ParseAuxv.
func ReadAuxvRaw(pid int) ([]byte, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/auxv", pid))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/auxv: %w", pid, err)
	}
	return data, nil
}
