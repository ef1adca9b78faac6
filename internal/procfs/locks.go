//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Lock is one file lock as /proc/locks shows it, and as the "lock:"
// lines of /proc/PID/fdinfo/N show the locks held through that open
// file. Both are printed by lock_get_status() in fs/locks.c:
//
//	3: POSIX  ADVISORY  WRITE 2553 fe:00:9986509 20 29
//	4: OFDLCK ADVISORY  READ -1 fe:00:9986510 10 EOF
//	5: FLOCK  ADVISORY  WRITE 2553 fe:00:9986513 0 EOF
//	5: -> FLOCK  ADVISORY  WRITE 2600 fe:00:9986513 0 EOF
//	6: LEASE  ACTIVE    READ 2553 fe:00:9986514 0 EOF
//
// A line with "->" is a request blocked behind the lock of the line
// before it (/proc/locks only).
type Lock struct {
	ID int64
	// Blocked marks a waiting request ("->"), not a lock that is held.
	Blocked bool
	// Class is POSIX, OFDLCK, FLOCK, LEASE, DELEG, ACCESS or UNKNOWN.
	Class string
	// Mode is ADVISORY for locks (MANDATORY on kernels before 5.15 that
	// had mandatory locks), ACTIVE, BREAKING or BREAKER for leases,
	// *NOINODE* for a lock without a file.
	Mode string
	// Type is READ, WRITE or UNLCK.
	Type string
	// Pid is the owner's process (POSIX), the process that took it
	// (FLOCK, LEASE), -1 for OFD locks, in the reader's PID namespace;
	// 0 if that process is gone or not visible there.
	Pid int
	// Major, Minor and Ino name the file: the device of its superblock
	// (in hex) and its inode; all zero for "<none>:0".
	Major, Minor uint32
	Ino          uint64
	// Start and End are the first and last byte locked; End is -1 for
	// "EOF", to the end of the file however far it grows. flock and
	// leases cover the whole file: 0 and EOF.
	Start, End int64
}

// LockEOF is Lock.End of a lock that reaches the end of the file.
const LockEOF = -1

// ParseLockLine parses one line of /proc/locks, or the value of an
// fdinfo "lock:" line (the part after the tab).
func ParseLockLine(line string) (Lock, error) {
	var l Lock
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "lock:" {
		f = f[1:]
	}
	if len(f) < 2 || !strings.HasSuffix(f[0], ":") {
		return l, fmt.Errorf("lock line %q: no id", clip(line))
	}
	id, err := strconv.ParseInt(strings.TrimSuffix(f[0], ":"), 10, 64)
	if err != nil {
		return l, fmt.Errorf("lock line %q: id: %w", clip(line), err)
	}
	l.ID = id
	f = f[1:]
	if f[0] == "->" {
		l.Blocked = true
		f = f[1:]
	}
	// class mode type pid file start end
	if len(f) != 7 {
		return l, fmt.Errorf("lock line %q: %d fields after the id, want 7", clip(line), len(f))
	}
	l.Class, l.Mode, l.Type = f[0], f[1], f[2]
	if l.Pid, err = strconv.Atoi(f[3]); err != nil {
		return l, fmt.Errorf("lock line %q: pid: %w", clip(line), err)
	}
	if f[4] != "<none>:0" {
		dev := strings.Split(f[4], ":")
		if len(dev) != 3 {
			return l, fmt.Errorf("lock line %q: file %q is not MAJ:MIN:INO", clip(line), f[4])
		}
		ma, err1 := strconv.ParseUint(dev[0], 16, 32)
		mi, err2 := strconv.ParseUint(dev[1], 16, 32)
		ino, err3 := strconv.ParseUint(dev[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return l, fmt.Errorf("lock line %q: file %q is not MAJ:MIN:INO", clip(line), f[4])
		}
		l.Major, l.Minor, l.Ino = uint32(ma), uint32(mi), ino
	}
	if l.Start, err = strconv.ParseInt(f[5], 10, 64); err != nil || l.Start < 0 {
		return l, fmt.Errorf("lock line %q: start %q", clip(line), f[5])
	}
	if f[6] == "EOF" {
		l.End = LockEOF
	} else if l.End, err = strconv.ParseInt(f[6], 10, 64); err != nil || l.End < l.Start {
		return l, fmt.Errorf("lock line %q: end %q", clip(line), f[6])
	}
	return l, nil
}

// ParseLocks parses /proc/locks, or the "lock:" values of an fdinfo
// joined by newlines (FdInfo.Extra["lock"]).
func ParseLocks(data []byte) ([]Lock, error) {
	var out []Lock
	it := lineIter{data: data}
	for {
		line, ok := it.next()
		if !ok {
			return out, nil
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		l, err := ParseLockLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", it.n, err)
		}
		out = append(out, l)
	}
}

// ReadLocks reads and parses /proc/locks.
func ReadLocks() ([]Lock, error) {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil, err
	}
	ls, err := ParseLocks(b)
	if err != nil {
		return nil, fmt.Errorf("/proc/locks: %w", err)
	}
	return ls, nil
}

// Range describes the bytes a lock covers, as messages name them.
func (l Lock) Range() string {
	if l.End == LockEOF {
		return fmt.Sprintf("bytes %d to EOF", l.Start)
	}
	return fmt.Sprintf("bytes %d-%d", l.Start, l.End)
}

// String is the lock as a message names it: "POSIX WRITE lock on
// bytes 20-29 of inode fe:00:9986509, pid 2553".
func (l Lock) String() string {
	s := fmt.Sprintf("%s %s lock", l.Class, l.Type)
	if l.Blocked {
		s = "blocked " + s + " request"
	}
	if l.Class == "POSIX" || l.Class == "OFDLCK" {
		s += " on " + l.Range()
	}
	return s + fmt.Sprintf(" of inode %02x:%02x:%d, pid %d", l.Major, l.Minor, l.Ino, l.Pid)
}

// TaskSyscall is what /proc/PID/task/TID/syscall shows (proc_pid_syscall
// in fs/proc/base.c): the system call a blocked thread is in, as
// "NR 0xARG1 ... 0xARG6 0xSP 0xPC"; "-1 0xSP 0xPC" for a thread blocked
// outside a system call; "running" for one that runs.
type TaskSyscall struct {
	Running bool
	// Nr is the call's number in the ABI the thread entered it with
	// (an ia32 number for int $0x80), -1 for none.
	Nr   int
	Args [6]uint64
}

// ParseTaskSyscall parses the content of /proc/PID/task/TID/syscall.
func ParseTaskSyscall(data []byte) (TaskSyscall, error) {
	var s TaskSyscall
	f := strings.Fields(string(data))
	if len(f) == 1 && f[0] == "running" {
		s.Running = true
		return s, nil
	}
	if len(f) == 0 {
		return s, fmt.Errorf("syscall: empty")
	}
	nr, err := strconv.Atoi(f[0])
	if err != nil {
		return s, fmt.Errorf("syscall: number %q", clip(f[0]))
	}
	s.Nr = nr
	if nr < 0 {
		if len(f) != 3 {
			return s, fmt.Errorf("syscall: %d fields, want 3 outside a call", len(f))
		}
		return s, nil
	}
	if len(f) != 9 {
		return s, fmt.Errorf("syscall: %d fields, want 9", len(f))
	}
	for i := range s.Args {
		v, err := strconv.ParseUint(strings.TrimPrefix(f[1+i], "0x"), 16, 64)
		if err != nil {
			return s, fmt.Errorf("syscall: argument %d %q", i+1, clip(f[1+i]))
		}
		s.Args[i] = v
	}
	return s, nil
}

// ReadTaskSyscall reads /proc/PID/task/TID/syscall.
func ReadTaskSyscall(pid, tid int) (TaskSyscall, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid)
	b, err := os.ReadFile(path)
	if err != nil {
		return TaskSyscall{}, err
	}
	s, err := ParseTaskSyscall(b)
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
