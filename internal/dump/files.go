//go:build linux && amd64

package dump

import (
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// fileTable gives ids to the files of the dump (files.img): one per open
// file description, shared by every fd of every process that holds it.
type fileTable struct {
	d *model.Dump
	// byKey finds a file opened by path (executable, cwd, root, mapped
	// file) that has an id already.
	byKey map[string]uint32
	// open are the fds dumped so far, of every process: an fd that shares
	// its open file description with one of them gets the same id.
	open []openFD
	// shmemSeen are the shared memory objects saved already.
	shmemSeen map[uint64]bool
	// pipeEnds are, by pipe inode, the ends the tree holds (pipeRead,
	// pipeWrite).
	pipeEnds map[uint64]uint8
	// locks are the file locks found so far (--file-locks).
	locks fd.Locks
	// tree are the PIDs of the dumped tree's processes.
	tree map[int]bool
}

// inTree tells whether pid is a process of the dumped tree.
func (ft *fileTable) inTree(pid int) bool { return ft.tree[pid] }

const (
	pipeRead  = 1
	pipeWrite = 2
)

// pipeEnds lists, by inode, which ends of each pipe the tree's processes
// hold, from the fds every task had when it was frozen.
func (tr *tree) pipeEnds() map[uint64]uint8 {
	ends := map[uint64]uint8{}
	for _, t := range tr.tasks {
		for _, f := range t.files {
			if f.Stat.Mode&unix.S_IFMT != unix.S_IFIFO {
				continue
			}
			switch f.Info.Flags & unix.O_ACCMODE {
			case unix.O_RDONLY:
				ends[f.Stat.Ino] |= pipeRead
			case unix.O_WRONLY:
				ends[f.Stat.Ino] |= pipeWrite
			default:
				ends[f.Stat.Ino] |= pipeRead | pipeWrite
			}
		}
	}
	return ends
}

type openFD struct {
	pid int
	f   *openFile
	id  uint32
}

func newFileTable(d *model.Dump) *fileTable {
	return &fileTable{d: d, byKey: map[string]uint32{}, shmemSeen: map[uint64]bool{}}
}

// reg returns the id of a file reopened by path at restore, with the same
// id for the same path, flags and offset 0.
func (ft *fileTable) reg(path string, flags uint32, pos uint64, st *unix.Stat_t) uint32 {
	key := fmt.Sprintf("%s\x00%d\x00%d", path, flags, pos)
	if id, ok := ft.byKey[key]; ok && pos == 0 {
		return id
	}
	id := ft.d.AddFile(fd.RegEntry(ft.d.NextFileID(), path, flags, pos, st))
	ft.byKey[key] = id
	return id
}

// mappedFileStat stats the file that area v of task pid maps and
// refuses a kind of file the dump cannot take: a mapped file that was
// unlinked is saved whole (a ghost) up to ghostLimit bytes.
func mappedFileStat(pid int, v procfs.VMA, ghostLimit int64, linkRemap bool) (*unix.Stat_t, error) {
	var st unix.Stat_t
	mf := fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End)
	if err := unix.Stat(mf, &st); err != nil {
		return nil, fmt.Errorf("vma %#x-%#x: stat %s: %w", v.Start, v.End, v.Path, err)
	}
	object := fmt.Sprintf("vma %#x-%#x maps %s", v.Start, v.End, v.Path)
	if st.Nlink == 0 || v.Deleted() {
		if st.Nlink != 0 && st.Mode&unix.S_IFMT == unix.S_IFREG {
			if _, err := fd.CheckLinked(pid, object, fd.GhostName(v.Path), &st, linkRemap); err != nil {
				return nil, err
			}
			return &st, nil
		}
		if st.Nlink != 0 {
			return nil, ckerr.Unsupported(pid, object, fmt.Sprintf("the file's path was unlinked but it has %d other links: not supported yet; keep it on disk until the dump", st.Nlink))
		}
		if err := fd.CheckGhost(pid, object, &st, ghostLimit); err != nil {
			return nil, err
		}
		return &st, nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return nil, ckerr.Unsupported(pid, object, "not a regular file or character device: not supported yet")
	}
	return &st, nil
}

// mapped returns the id of the file that area v of task pid maps, opened
// with flags: reopened by path, or saved whole when it was unlinked.
func (ft *fileTable) mapped(pid int, v procfs.VMA, flags uint32, st *unix.Stat_t, linkRemap bool) (uint32, error) {
	if !fd.IsGhost(st) && v.Deleted() {
		// Unlinked, but linked under another name (fd/linked.go).
		key := fmt.Sprintf("linked\x00%d\x00%d\x00%d", st.Dev, st.Ino, flags)
		if id, ok := ft.byKey[key]; ok {
			return id, nil
		}
		object := fmt.Sprintf("vma %#x-%#x maps %s", v.Start, v.End, v.Path)
		other, err := fd.CheckLinked(pid, object, fd.GhostName(v.Path), st, linkRemap)
		if err != nil {
			return 0, err
		}
		if !linkRemap {
			// The other name goes in ckpt's own field (fd/linked.go).
			e := fd.RegEntry(ft.d.NextFileID(), fd.GhostName(v.Path), flags, 0, st)
			model.SetRegLinkedAt(e.GetReg(), other)
			id := ft.d.AddFile(e)
			ft.byKey[key] = id
			return id, nil
		}
		to, err := fd.LinkRemap(ft.d, fd.GhostName(v.Path), fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End), st)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", object, err)
		}
		id := ft.d.AddFile(fd.RegEntry(ft.d.NextFileID(), fd.GhostName(v.Path), flags, 0, st))
		ft.d.SetLinked(id, to)
		ft.byKey[key] = id
		return id, nil
	}
	if !fd.IsGhost(st) {
		return ft.reg(v.Path, flags, 0, st), nil
	}
	// Keyed by inode: two unlinked files may have had one name.
	key := fmt.Sprintf("ghost\x00%d\x00%d\x00%d", st.Dev, st.Ino, flags)
	if id, ok := ft.byKey[key]; ok {
		return id, nil
	}
	id := ft.d.AddFile(fd.RegEntry(ft.d.NextFileID(), fd.GhostName(v.Path), flags, 0, st))
	if err := fd.SaveGhost(ft.d, id, fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End), st); err != nil {
		return 0, fmt.Errorf("vma %#x-%#x (%s): %w", v.Start, v.End, v.Path, err)
	}
	ft.byKey[key] = id
	return id, nil
}

// mappedMemfd returns the id of a memfd file for area v of task pid,
// opened with flags, saving the memfd once.
func (ft *fileTable) mappedMemfd(pid int, v procfs.VMA, flags uint32) (uint32, error) {
	var st unix.Stat_t
	mf := fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End)
	if err := unix.Stat(mf, &st); err != nil {
		return 0, fmt.Errorf("vma %#x-%#x: stat %s: %w", v.Start, v.End, v.Path, err)
	}
	if !fd.IsMemfd(v.Path, &st) {
		return 0, ckerr.Unsupported(pid, fmt.Sprintf("vma %#x-%#x maps %s", v.Start, v.End, v.Path), "a file named like a memfd that is not one: not supported")
	}
	if err := fd.CheckMemfd(pid, fmt.Sprintf("vma %#x-%#x maps %s", v.Start, v.End, v.Path), &st); err != nil {
		return 0, err
	}
	key := fmt.Sprintf("memfd\x00%d\x00%d", st.Ino, flags)
	if id, ok := ft.byKey[key]; ok {
		return id, nil
	}
	if err := fd.SaveMemfd(ft.d, mf, v.Path, &st); err != nil {
		return 0, fmt.Errorf("vma %#x-%#x (%s): %w", v.Start, v.End, v.Path, err)
	}
	id := ft.d.AddFile(fd.MemfdEntry(ft.d.NextFileID(), flags, 0, &st))
	ft.byKey[key] = id
	return id, nil
}

// ends tells which ends of pipe ino the tree holds.
func (ft *fileTable) ends(ino uint64) (read, write bool) {
	e := ft.pipeEnds[ino]
	return e&pipeRead != 0, e&pipeWrite != 0
}

// sameFile reports whether fd1 of pid1 and fd2 of pid2 share one open
// file description (dup'ed or inherited fds share offset and flags).
func sameFile(pid1, fd1, pid2, fd2 int) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), uapi.KCMP_FILE, uintptr(fd1), uintptr(fd2), 0)
	return e == 0 && r == 0
}

// fdTable collects the task's fd table: each fd shares the id of an fd
// dumped before that holds the same open file description, or its kind
// collects a new file entry.
func (t *task) fdTable(ft *fileTable) ([]*fdinfo.FdinfoEntry, error) {
	pidfd, err := unix.PidfdOpen(t.pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	task := fd.Task{Pid: t.pid, Dump: ft.d, Opts: t.opts.fdOptions(), PipeEnds: ft.ends, Pidfd: pidfd, InTree: ft.inTree,
		Undo: func(what string, fn func() error) { t.s.Push(what, fn) }, Inject: t.injectFiles}
	var out []*fdinfo.FdinfoEntry
	for i := range t.files {
		f := &t.files[i]
		var id uint32
		for _, p := range ft.open {
			if p.f.kind == f.kind && p.f.Stat.Dev == f.Stat.Dev && p.f.Stat.Ino == f.Stat.Ino && p.f.Stat.Rdev == f.Stat.Rdev && sameFile(p.pid, p.f.Fd, t.pid, f.Fd) {
				id = p.id
				break
			}
		}
		flags := f.Info.Flags
		fdFlags := uint32(0)
		if flags&unix.O_CLOEXEC != 0 {
			fdFlags = model.FdCloexec
		}
		flags &^= unix.O_CLOEXEC
		if id == 0 {
			e := &fdinfo.FileEntry{Id: proto.Uint32(ft.d.NextFileID())}
			if err := f.kind.Collect(task, &f.File, flags, e); err != nil {
				return nil, err
			}
			if err := fd.CollectOwner(task, f.Fd, e); err != nil {
				return nil, err
			}
			id = ft.d.AddFile(e)
		}
		if t.opts.FileLocks {
			if err := ft.locks.Collect(t.vpid(), t.pid, &f.File, id); err != nil {
				return nil, err
			}
		}
		ft.open = append(ft.open, openFD{t.pid, f, id})
		out = append(out, &fdinfo.FdinfoEntry{
			Id: proto.Uint32(id), Flags: proto.Uint32(fdFlags), Type: ft.d.Files[id].GetType().Enum(), Fd: proto.Uint32(uint32(f.Fd)),
		})
	}
	return out, nil
}

// fsEntry collects the task's cwd, root and umask.
func (t *task) fsEntry(ft *fileTable) (*fsimg.FsEntry, error) {
	pid := t.pid
	ids := [2]uint32{}
	for i, name := range []string{"cwd", "root"} {
		link := fmt.Sprintf("/proc/%d/%s", pid, name)
		path, err := os.Readlink(link)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if strings.HasSuffix(path, " (deleted)") {
			return nil, fmt.Errorf("%s %s was deleted", name, path)
		}
		var st unix.Stat_t
		if err := unix.Stat(link, &st); err != nil {
			return nil, fmt.Errorf("stat %s: %w", name, err)
		}
		ids[i] = ft.reg(path, unix.O_RDONLY|unix.O_DIRECTORY, 0, &st)
	}
	if !t.status.HasUmask {
		return nil, fmt.Errorf("/proc/%d/status has no Umask line", pid)
	}
	return &fsimg.FsEntry{CwdId: proto.Uint32(ids[0]), RootId: proto.Uint32(ids[1]), Umask: proto.Uint32(t.status.Umask)}, nil
}
