//go:build linux && amd64

package procfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
)

// FdInfo is the parsed content of /proc/PID/fdinfo/N. The first four lines
// are printed by seq_show() in fs/proc/fd.c as
//
//	pos:\t%lli\nflags:\t0%o\nmnt_id:\t%i\nino:\t%lu\n
//
// followed by file-type specific lines from the file's show_fdinfo
// operation (eventfd, epoll, inotify, signalfd, timerfd, pidfd, io_uring...).
type FdInfo struct {
	// Pos is the file position (f_pos).
	Pos int64
	// Flags are the open flags (f_flags plus O_CLOEXEC if close-on-exec),
	// parsed from octal.
	Flags uint32
	// MntID is the ID of the mount the file lives on, as in
	// /proc/PID/mountinfo.
	MntID int
	// Ino is the file's inode number.
	Ino uint64
	// Extra holds every other "key: value" line, key and value trimmed of
	// spaces and tabs, split at the first ':'. Keys that repeat (e.g. one
	// "tfd" line per epoll target, one "inotify wd" line per watch) have
	// their values joined with "\n" in file order. A line without ':' (as
	// in io_uring's "PollList:" section) is appended, trimmed, to the value
	// of the preceding Extra key, also separated by "\n"; such a line with
	// no preceding Extra key is an error.
	Extra map[string]string
}

// ParseFdInfo parses the contents of /proc/PID/fdinfo/N. The "pos",
// "flags", "mnt_id" and "ino" lines are required and must not repeat ("ino"
// is missing on old 5.x kernels but always present on the 6.18 target).
func ParseFdInfo(data []byte) (*FdInfo, error) {
	fi := &FdInfo{Extra: make(map[string]string)}
	var havePos, haveFlags, haveMnt, haveIno bool
	lastKey := "" // last Extra key seen, for continuation lines
	it := lineIter{data: data}
	for {
		line, ok := it.next()
		if !ok {
			break
		}
		key, val, ok := splitKV(line)
		if !ok {
			if lastKey == "" {
				return nil, fmt.Errorf("fdinfo line %d: no ':' in %q and no preceding extra key", it.n, clip(line))
			}
			if t := trimWS(line); t != "" {
				fi.Extra[lastKey] += "\n" + t
			}
			continue
		}
		dup := func(b *bool) error {
			if *b {
				return fmt.Errorf("fdinfo line %d: duplicate %q", it.n, key)
			}
			*b = true
			return nil
		}
		var err error
		switch key {
		case "pos":
			if err = dup(&havePos); err == nil {
				fi.Pos, err = parseInt("pos", val, 64)
			}
		case "flags":
			if err = dup(&haveFlags); err == nil {
				var v uint64
				v, err = parseUint("flags", val, 8, 32)
				fi.Flags = uint32(v)
			}
		case "mnt_id":
			if err = dup(&haveMnt); err == nil {
				fi.MntID, err = parseIntField("mnt_id", val)
			}
		case "ino":
			if err = dup(&haveIno); err == nil {
				fi.Ino, err = parseUint("ino", val, 10, 64)
			}
		default:
			if old, ok := fi.Extra[key]; ok {
				fi.Extra[key] = old + "\n" + val
			} else {
				fi.Extra[key] = val
			}
			lastKey = key
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fdinfo line %d: %w", it.n, err)
		}
		lastKey = "" // continuation lines only extend Extra keys
	}
	switch {
	case !havePos:
		return nil, fmt.Errorf("fdinfo: missing \"pos\" line")
	case !haveFlags:
		return nil, fmt.Errorf("fdinfo: missing \"flags\" line")
	case !haveMnt:
		return nil, fmt.Errorf("fdinfo: missing \"mnt_id\" line")
	case !haveIno:
		return nil, fmt.Errorf("fdinfo: missing \"ino\" line")
	}
	return fi, nil
}

// ReadFdInfo reads and parses /proc/PID/fdinfo/FD.
func ReadFdInfo(pid, fd int) (*FdInfo, error) {
	path := fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	fi, err := ParseFdInfo(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return fi, nil
}

// Fd is one open file descriptor of a task.
type Fd struct {
	// Num is the descriptor number.
	Num int
	// Target is the readlink(2) of /proc/PID/fd/Num: a path (possibly
	// ending in " (deleted)") or a pseudo name such as "pipe:[1234]",
	// "socket:[5678]" or "anon_inode:[eventfd]" (see proc(5)).
	Target string
}

// ListFds lists the open fd numbers of task pid, sorted ascending, with the
// readlink target of each /proc/PID/fd/N. A descriptor that is closed
// between listing the directory and reading its link is skipped.
func ListFds(pid int) ([]Fd, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	fds := make([]Fd, 0, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < 0 {
			return nil, fmt.Errorf("read %s: unexpected entry %q", dir, e.Name())
		}
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("readlink %s/%d: %w", dir, n, err)
		}
		fds = append(fds, Fd{Num: n, Target: target})
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].Num < fds[j].Num })
	return fds, nil
}
