//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strings"
)

// Status holds the fields of /proc/PID/status (or /proc/PID/task/TID/status)
// that a checkpoint needs. The file is written by proc_pid_status() in
// fs/proc/array.c as "Key:\tvalue" lines; see proc(5) for each field.
type Status struct {
	// Name is the command name (task->comm) with the kernel's escapes
	// undone: proc_task_name() escapes '\n' as `\n` and '\' as `\\`.
	Name string
	// Umask is the file mode creation mask (octal in the file). HasUmask
	// is false when the line is absent, as for zombies (task->fs is NULL).
	Umask    uint32
	HasUmask bool
	// State is the full state text, e.g. "S (sleeping)".
	State string
	// Tgid, Pid, PPid and TracerPid are in the PID namespace of the
	// procfs mount that was read. TracerPid is the tracer's thread id
	// (task_pid_nr_ns in fs/proc/array.c), not its process id.
	Tgid, Pid, PPid, TracerPid int
	// Uid and Gid are the real, effective, saved-set and filesystem IDs.
	Uid, Gid [4]uint32
	// Groups are the supplementary group IDs.
	Groups []uint32
	// NSpid holds the task's PID in each nested PID namespace, outermost
	// (the procfs mount's namespace) first. Nil if the line is absent
	// (kernel without CONFIG_PID_NS).
	NSpid []int
	// NSpgid and NSsid are the process group and session in each nested
	// PID namespace, outermost first (0 where they lie outside it).
	NSpgid, NSsid []int
	// SigQ is "queued/limit", e.g. "0/96364".
	SigQ string
	// SigPnd (thread-pending), ShdPnd (process-pending), SigBlk, SigIgn and
	// SigCgt are signal masks, bit N-1 for signal N.
	SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt uint64
	// CapInh, CapPrm, CapEff, CapBnd and CapAmb are capability sets, bit N
	// for capability N.
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	// NoNewPrivs is the PR_SET_NO_NEW_PRIVS bit.
	NoNewPrivs bool
	// Seccomp is the seccomp mode: 0 disabled, 1 strict, 2 filter. It is
	// 0 if the line is absent (kernel without CONFIG_SECCOMP).
	Seccomp int
	// Threads is the number of threads in the thread group.
	Threads int
}

// statusRequired lists the keys ParseStatus insists on: those that
// proc_pid_status() prints for every task, zombies included, on a 6.18
// x86_64 kernel regardless of config. Umask, NSpid and Seccomp are optional.
var statusRequired = []string{
	"Name", "State", "Tgid", "Pid", "PPid", "TracerPid", "Uid", "Gid",
	"Groups", "Threads", "SigQ", "SigPnd", "ShdPnd", "SigBlk", "SigIgn",
	"SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
}

// ParseStatus parses the contents of /proc/PID/status. Unknown keys are
// ignored; a missing required key, a repeated key, a line without ':' or a
// malformed value is an error naming the line or key.
func ParseStatus(data []byte) (*Status, error) {
	s := &Status{}
	seen := make(map[string]bool)
	it := lineIter{data: data}
	for {
		line, ok := it.next()
		if !ok {
			break
		}
		i := strings.IndexByte(line, ':')
		if i < 0 {
			return nil, fmt.Errorf("status line %d: no ':' in %q", it.n, clip(line))
		}
		key := line[:i]
		if seen[key] {
			return nil, fmt.Errorf("status line %d: duplicate key %q", it.n, clip(key))
		}
		seen[key] = true
		if err := s.setField(key, line[i+1:]); err != nil {
			return nil, fmt.Errorf("status line %d: %w", it.n, err)
		}
	}
	for _, k := range statusRequired {
		if !seen[k] {
			return nil, fmt.Errorf("status: missing %q line", k)
		}
	}
	return s, nil
}

// setField stores one status value; raw is everything after the ':'.
func (s *Status) setField(key, raw string) error {
	val := trimWS(raw)
	var err error
	switch key {
	case "Name":
		// The kernel prints exactly "Name:\t" then the escaped comm,
		// which may itself begin or end with spaces, so do not trim.
		name := strings.TrimPrefix(raw, "\t")
		s.Name, err = unescapeComm(name)
	case "Umask":
		var v uint64
		v, err = parseUint(key, val, 8, 32)
		s.Umask, s.HasUmask = uint32(v), true
	case "State":
		if val == "" {
			return fmt.Errorf("State: empty")
		}
		s.State = val
	case "Tgid":
		s.Tgid, err = parseIntField(key, val)
	case "Pid":
		s.Pid, err = parseIntField(key, val)
	case "PPid":
		s.PPid, err = parseIntField(key, val)
	case "TracerPid":
		s.TracerPid, err = parseIntField(key, val)
	case "Uid":
		s.Uid, err = parseIDs(key, val)
	case "Gid":
		s.Gid, err = parseIDs(key, val)
	case "Groups":
		f := strings.Fields(val)
		s.Groups = make([]uint32, 0, len(f))
		for _, g := range f {
			var v uint64
			if v, err = parseUint(key, g, 10, 32); err != nil {
				return err
			}
			s.Groups = append(s.Groups, uint32(v))
		}
	case "NSpid", "NSpgid", "NSsid":
		f := strings.Fields(val)
		if len(f) == 0 {
			return fmt.Errorf("%s: empty", key)
		}
		ids := make([]int, 0, len(f))
		for _, p := range f {
			var v int
			if v, err = parseIntField(key, p); err != nil {
				return err
			}
			ids = append(ids, v)
		}
		switch key {
		case "NSpid":
			s.NSpid = ids
		case "NSpgid":
			s.NSpgid = ids
		default:
			s.NSsid = ids
		}
	case "SigQ":
		if _, _, ok := strings.Cut(val, "/"); !ok {
			return fmt.Errorf("SigQ: want \"queued/limit\", got %q", clip(val))
		}
		s.SigQ = val
	case "SigPnd":
		s.SigPnd, err = parseUint(key, val, 16, 64)
	case "ShdPnd":
		s.ShdPnd, err = parseUint(key, val, 16, 64)
	case "SigBlk":
		s.SigBlk, err = parseUint(key, val, 16, 64)
	case "SigIgn":
		s.SigIgn, err = parseUint(key, val, 16, 64)
	case "SigCgt":
		s.SigCgt, err = parseUint(key, val, 16, 64)
	case "CapInh":
		s.CapInh, err = parseUint(key, val, 16, 64)
	case "CapPrm":
		s.CapPrm, err = parseUint(key, val, 16, 64)
	case "CapEff":
		s.CapEff, err = parseUint(key, val, 16, 64)
	case "CapBnd":
		s.CapBnd, err = parseUint(key, val, 16, 64)
	case "CapAmb":
		s.CapAmb, err = parseUint(key, val, 16, 64)
	case "NoNewPrivs":
		switch val {
		case "0":
		case "1":
			s.NoNewPrivs = true
		default:
			return fmt.Errorf("NoNewPrivs: want 0 or 1, got %q", clip(val))
		}
	case "Seccomp":
		s.Seccomp, err = parseIntField(key, val)
		if err == nil && (s.Seccomp < 0 || s.Seccomp > 2) {
			return fmt.Errorf("Seccomp: mode %d out of range 0..2", s.Seccomp)
		}
	case "Threads":
		s.Threads, err = parseIntField(key, val)
	}
	return err
}

// parseIntField parses a decimal int that fits in 32 bits (pid_t, int).
func parseIntField(field, s string) (int, error) {
	v, err := parseInt(field, s, 32)
	return int(v), err
}

// parseIDs parses the four tab-separated IDs of the Uid:/Gid: lines.
func parseIDs(field, val string) ([4]uint32, error) {
	var ids [4]uint32
	f := strings.Fields(val)
	if len(f) != 4 {
		return ids, fmt.Errorf("%s: want 4 values, got %d", field, len(f))
	}
	for i, x := range f {
		v, err := parseUint(field, x, 10, 32)
		if err != nil {
			return ids, err
		}
		ids[i] = uint32(v)
	}
	return ids, nil
}

// unescapeComm undoes the escaping of proc_task_name(..., escape=true) in
// fs/proc/array.c, which calls seq_escape_str with ESCAPE_SPACE|
// ESCAPE_SPECIAL restricted to "\n\\": a newline becomes `\n` and a
// backslash `\\`. Since every literal backslash is escaped, the other C
// escapes those flags can produce (\t \v \f \r \a \e \") are undone too for
// robustness. A lone trailing backslash or an unknown escape is an error.
func unescapeComm(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("Name: dangling backslash in %q", clip(s))
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case '\\':
			b.WriteByte('\\')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte('\a')
		case 'e':
			b.WriteByte(0x1b)
		case '"':
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("Name: unknown escape \\%c in %q", s[i], clip(s))
		}
	}
	return b.String(), nil
}

// ReadStatus reads and parses /proc/PID/status.
func ReadStatus(pid int) (*Status, error) {
	return readStatus(fmt.Sprintf("/proc/%d/status", pid))
}

// ReadTaskStatus reads and parses /proc/PID/task/TID/status, the status of
// one thread of process pid.
func ReadTaskStatus(pid, tid int) (*Status, error) {
	return readStatus(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
}

func readStatus(path string) (*Status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := ParseStatus(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}
