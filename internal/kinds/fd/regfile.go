//go:build linux && amd64

package fd

import (
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// regKind is a regular file, a directory or a character device that is
// not a terminal: reopened by path with its flags and offset. An
// unlinked regular file is saved whole and made again (ghost.go).
type regKind struct {
	// ghosts are, at restore, ckpt's fds of the unlinked files it made
	// again, by ghost id.
	ghosts map[uint32]*os.File
	// linked are, at restore, ckpt's fds of the files opened under an
	// unlinked name of theirs (linked.go), by that name and the file's.
	linked map[string]*os.File
	// linkRemaps are, at restore, the links made by the dump that those
	// files were opened through, removed once the tree runs (linked.go).
	linkRemaps []string
	// late are, at restore, the fds of /proc/PID/... files whose process
	// did not exist yet (procfile.go).
	late []lateProc
}

func (*regKind) Name() string { return "regular file" }

func (*regKind) Match(f *File, o Options) (bool, error) {
	switch f.Stat.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
		if f.FsType == uapi.MQUEUE_MAGIC {
			return false, nil // a POSIX message queue (posixmq.go)
		}
		if IsGhost(&f.Stat) {
			return true, CheckGhost(0, fmt.Sprintf("fd %d, file %s", f.Fd, f.Path), &f.Stat, o.GhostLimit)
		}
		if strings.HasSuffix(f.Path, deletedMark) {
			if f.Stat.Mode&unix.S_IFMT == unix.S_IFREG {
				_, err := CheckLinked(0, fmt.Sprintf("fd %d, file %s", f.Fd, f.Path), GhostName(f.Path), &f.Stat, o.LinkRemap)
				return err == nil, err
			}
			return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a directory that was removed (%s)", f.Fd, f.Path), "not supported yet: close it before the dump")
		}
		if !strings.HasPrefix(f.Path, "/") {
			if ns, ok := nsfsName(f.Path); ok {
				return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a %s namespace file (%s)", f.Fd, ns, f.Path),
					"namespace files (an open /proc/PID/ns/*) cannot be dumped yet; close it before the dump")
			}
			return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d (%s)", f.Fd, f.Path), "not a file with a path: not supported yet")
		}
		return true, nil
	case unix.S_IFCHR:
		return true, nil
	}
	return false, nil
}

func (*regKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	if IsGhost(&f.Stat) {
		*e = *RegEntry(e.GetId(), GhostName(f.Path), flags, uint64(f.Info.Pos), &f.Stat)
		if err := SaveGhost(t.Dump, e.GetId(), fmt.Sprintf("/proc/%d/fd/%d", t.Pid, f.Fd), &f.Stat); err != nil {
			return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
		}
		return nil
	}
	if f.Stat.Mode&unix.S_IFMT == unix.S_IFREG && strings.HasSuffix(f.Path, deletedMark) {
		name := GhostName(f.Path)
		other, err := CheckLinked(t.Pid, fmt.Sprintf("fd %d, file %s", f.Fd, f.Path), name, &f.Stat, t.Opts.LinkRemap)
		if err != nil {
			return err
		}
		if !t.Opts.LinkRemap {
			*e = *RegEntry(t.Dump.NextFileID(), name, flags, uint64(f.Info.Pos), &f.Stat)
			model.SetRegLinkedAt(e.GetReg(), other)
			return nil
		}
		to, err := LinkRemap(t.Dump, name, fmt.Sprintf("/proc/%d/fd/%d", t.Pid, f.Fd), &f.Stat)
		if err != nil {
			return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
		}
		// e takes the id after the link's entry (see model.AddFile).
		*e = *RegEntry(t.Dump.NextFileID(), name, flags, uint64(f.Info.Pos), &f.Stat)
		t.Dump.SetLinked(e.GetId(), to)
		return nil
	}
	if err := checkProcFile(t, f); err != nil {
		return err
	}
	*e = *RegEntry(e.GetId(), f.Path, flags, uint64(f.Info.Pos), &f.Stat)
	return nil
}

// RegEntry is the files.img entry of a file reopened by path: an fd's, or
// the executable, cwd, root or a mapped file.
//
// Its size is recorded as CRIU records it (criu/files-reg.c,
// store_validation_data and should_check_size): for a regular file only,
// and not for one open O_WRONLY|O_APPEND (a log that keeps growing). CRIU
// checks a recorded size at restore, and a directory's st_size (the cwd's)
// changes as files come and go in it.
func RegEntry(id uint32, path string, flags uint32, pos uint64, st *unix.Stat_t) *fdinfo.FileEntry {
	var size *uint64
	if st.Mode&unix.S_IFMT == unix.S_IFREG && (flags&unix.O_ACCMODE != unix.O_WRONLY || flags&unix.O_APPEND == 0) {
		size = proto.Uint64(uint64(st.Size))
	}
	return &fdinfo.FileEntry{
		Type: fdinfo.FdTypes_REG.Enum(),
		Id:   proto.Uint32(id),
		Reg: &regfile.RegFileEntry{
			Id:    proto.Uint32(id),
			Flags: proto.Uint32(flags),
			Pos:   proto.Uint64(pos),
			Fown:  noOwner(),
			Name:  proto.String(path),
			Size:  size,
			Mode:  proto.Uint32(st.Mode),
		},
	}
}

func (k *regKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	reg := e.GetReg()
	if reg == nil {
		return fmt.Errorf("fd %d: files.img: no regular file with id %d", num, e.GetId())
	}
	path, err := k.Path(r.Dump(), e.GetId())
	if err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	if err := k.openProc(r, num, path, reg.GetFlags(), cloexec, reg.GetPos()); err != nil {
		return fmt.Errorf("fd %d (%s): %w", num, reg.GetName(), err)
	}
	return nil
}

// Path returns the path at which a task being restored opens regular
// file id of d: its own, or for a file whose path was unlinked, the file
// ckpt made again from its ghost (see ghost.go).
func (k *regKind) Path(d *model.Dump, id uint32) (string, error) {
	f, err := d.RegFile(id)
	if err != nil {
		return "", err
	}
	if gid, g := d.GhostOf(id); gid != 0 {
		return k.ghostPath(d, id, gid, g)
	}
	if at, ok := d.LinkedAt[id]; ok {
		return k.openAt(f.GetReg().GetName(), at, false)
	}
	if to, ok := d.Linked[id]; ok {
		return k.linkedPath(d, id, to)
	}
	return f.GetReg().GetName(), nil
}

// atFdcwd is AT_FDCWD (-100) as a syscall argument.
const atFdcwd = ^uint64(99)

// openAt opens path in the task and puts it at fd number num.
func openAt(r Restorer, num int, path string, flags uint32, cloexec bool, pos uint64) error {
	p, err := r.PutString(path)
	if err != nil {
		return err
	}
	flags &^= unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_CLOEXEC
	// The 64-bit openat adds O_LARGEFILE to every file it opens; an ia32
	// task's files are opened with the ia32 call so their flags stay as
	// the task set them.
	var got uint64
	if r.Compat() {
		got, err = r.Syscall32(x86.SysOpenat, atFdcwd, p, uint64(flags), 0)
	} else {
		got, err = r.Syscall(x86.SysOpenat, atFdcwd, p, uint64(flags), 0)
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return err
	}
	if pos != 0 {
		if _, err := r.Syscall(x86.SysLseek, uint64(num), pos, unix.SEEK_SET); err != nil {
			return fmt.Errorf("lseek to %d: %w", pos, err)
		}
	}
	return nil
}

// noOwner is the fown of a file without F_SETOWN.
func noOwner() *fown.FownEntry {
	z := proto.Uint32(0)
	return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}
}

// nsfsName tells a namespace file by its link, "net:[4026531840]", and
// returns the namespace's kind.
func nsfsName(link string) (string, bool) {
	kind, rest, ok := strings.Cut(link, ":[")
	if !ok || !strings.HasSuffix(rest, "]") || kind == "" || strings.ContainsAny(kind, "/ ") {
		return "", false
	}
	for _, c := range strings.TrimSuffix(rest, "]") {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return kind, true
}
