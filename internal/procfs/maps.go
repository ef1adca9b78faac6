//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strings"
)

// VMA is one line of /proc/PID/maps: a virtual memory area of the task.
//
// The line format is produced by show_map_vma() / show_vma_header_prefix()
// in fs/proc/task_mmu.c and described in proc(5):
//
//	start-end perms offset major:minor inode [padding] pathname
//
// where start, end and offset are hexadecimal (at least 8 digits), major and
// minor are hexadecimal (at least 2 digits) and inode is decimal.
type VMA struct {
	// Start and End are the VMA's address range [Start, End).
	Start, End uint64
	// Read, Write, Exec and Shared come from the perms field "rwxp"/"rwxs";
	// Shared is true for 's' (VM_MAYSHARE) and false for 'p' (private).
	Read, Write, Exec, Shared bool
	// Offset is the file offset of Start in bytes (vm_pgoff << PAGE_SHIFT).
	Offset uint64
	// Major and Minor are the device of the mapped file's superblock
	// (0:0 for anonymous memory).
	Major, Minor uint32
	// Inode is the mapped file's inode number (0 for anonymous memory).
	Inode uint64
	// Path is the pathname column with the alignment padding removed. It
	// may be "" (anonymous), "[heap]", "[stack]", "[vdso]", "[vvar]",
	// "[vvar_vclock]", "[vsyscall]", "[uprobes]", "[anon:name]",
	// "[anon_shmem:name]", or a file path that may contain spaces and may
	// end with " (deleted)". The kernel escapes '\n' in file paths as
	// "\012" (seq_path in fs/seq_file.c) but does not escape backslashes,
	// so the escape is ambiguous and is left as is.
	Path string
}

// Size returns End-Start, the length of the VMA in bytes.
func (v VMA) Size() uint64 { return v.End - v.Start }

// IsSpecial reports whether the VMA is a kernel-provided special mapping:
// its Path starts with "[" and it is not "[heap]", "[stack]", "[anon:...]"
// or "[anon_shmem:...]". Examples: "[vdso]", "[vvar]", "[vvar_vclock]",
// "[vsyscall]", "[uprobes]".
func (v VMA) IsSpecial() bool {
	p := v.Path
	if !strings.HasPrefix(p, "[") {
		return false
	}
	switch {
	case p == "[heap]", p == "[stack]",
		strings.HasPrefix(p, "[anon:"),
		strings.HasPrefix(p, "[anon_shmem:"):
		return false
	}
	return true
}

// deletedSuffix is appended by d_path() (fs/d_path.c) to the path of an
// unlinked file.
const deletedSuffix = " (deleted)"

// Deleted reports whether Path ends with " (deleted)", i.e. the mapped file
// has been unlinked (also the case for memfd and SysV shm mappings).
func (v VMA) Deleted() bool { return strings.HasSuffix(v.Path, deletedSuffix) }

// ParseMaps parses the contents of /proc/PID/maps. Empty input (e.g. a
// kernel thread or zombie) yields an empty slice and no error.
func ParseMaps(data []byte) ([]VMA, error) {
	var vmas []VMA
	it := lineIter{data: data}
	for {
		line, ok := it.next()
		if !ok {
			break
		}
		v, err := parseMapsLine(line)
		if err != nil {
			return nil, fmt.Errorf("maps line %d: %w", it.n, err)
		}
		vmas = append(vmas, v)
	}
	return vmas, nil
}

// ReadMaps reads and parses /proc/PID/maps.
func ReadMaps(pid int) ([]VMA, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/maps: %w", pid, err)
	}
	vmas, err := ParseMaps(data)
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/maps: %w", pid, err)
	}
	return vmas, nil
}

// parseMapsLine parses one maps (or smaps header) line.
func parseMapsLine(line string) (VMA, error) {
	var v VMA
	rng, rest := nextField(line)
	perms, rest := nextField(rest)
	off, rest := nextField(rest)
	dev, rest := nextField(rest)
	ino, rest := nextField(rest)
	if ino == "" {
		return v, fmt.Errorf("too few fields in %q", clip(line))
	}

	lo, hi, ok := strings.Cut(rng, "-")
	if !ok {
		return v, fmt.Errorf("address range %q: missing '-'", clip(rng))
	}
	var err error
	if v.Start, err = parseUint("start address", lo, 16, 64); err != nil {
		return v, err
	}
	if v.End, err = parseUint("end address", hi, 16, 64); err != nil {
		return v, err
	}
	if v.Start >= v.End {
		return v, fmt.Errorf("address range %q: start not below end", clip(rng))
	}

	if len(perms) != 4 {
		return v, fmt.Errorf("perms %q: want 4 characters", clip(perms))
	}
	for i, want := range "rwx" {
		switch perms[i] {
		case byte(want):
			switch i {
			case 0:
				v.Read = true
			case 1:
				v.Write = true
			case 2:
				v.Exec = true
			}
		case '-':
		default:
			return v, fmt.Errorf("perms %q: bad character %q at %d", perms, perms[i], i)
		}
	}
	switch perms[3] {
	case 's':
		v.Shared = true
	case 'p':
	default:
		return v, fmt.Errorf("perms %q: last character must be 's' or 'p'", perms)
	}

	if v.Offset, err = parseUint("offset", off, 16, 64); err != nil {
		return v, err
	}

	maj, min, ok := strings.Cut(dev, ":")
	if !ok {
		return v, fmt.Errorf("device %q: missing ':'", clip(dev))
	}
	m, err := parseUint("device major", maj, 16, 32)
	if err != nil {
		return v, err
	}
	n, err := parseUint("device minor", min, 16, 32)
	if err != nil {
		return v, err
	}
	v.Major, v.Minor = uint32(m), uint32(n)

	if v.Inode, err = parseUint("inode", ino, 10, 64); err != nil {
		return v, err
	}

	// The pathname is preceded by padding spaces (seq_pad to column
	// 25+6*sizeof(void*)-1 in show_map_vma, at least one space) and a line
	// without a name ends with "inode ". Pathnames produced by d_path() or
	// the "[...]" markers never start with a space, so all leading spaces
	// are padding. Trailing spaces belong to the name and are kept.
	v.Path = strings.TrimLeft(rest, " ")
	return v, nil
}
