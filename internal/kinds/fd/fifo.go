//go:build linux && amd64

package fd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	fifoimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fifo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// fifoKind is an end of a FIFO (a named pipe): read, write or both. As in
// CRIU, files.img has a FIFO entry (pipe id, the id of a regular-file
// entry that holds its path and flags), and fifo-data.img the bytes
// queued in it. A FIFO whose path was unlinked is a ghost without
// contents (ghost.go).
//
// The restore opens each FIFO once in ckpt, for reading and writing (so
// that no open of an end waits for the other), refills it there, and the
// tasks open their ends through /proc/CKPTPID/fd/N, non-blocking, then
// set their flags.
//
// When a process outside the tree holds the FIFO open, the FIFO outlives
// the dumped tree with its bytes still queued (or already read by that
// process): the dump saves no bytes for it, so that the restore does not
// write them a second time (CRIU does: a command queued to sqlite3
// through a FIFO ran twice). See heldOutside for how it is found.
type fifoKind struct {
	reg *regKind
	// held are, at restore, ckpt's fds of the FIFOs, by pipe id.
	held map[uint32]*os.File
}

func isFifo(f *File) bool {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFIFO && strings.HasPrefix(f.Path, "/")
}

func (*fifoKind) Name() string { return "FIFO" }

func (*fifoKind) Match(f *File, o Options) (bool, error) {
	if !isFifo(f) {
		return false, nil
	}
	if strings.HasSuffix(f.Path, deletedMark) && f.Stat.Nlink != 0 {
		return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a FIFO whose path was unlinked but that has %d other links (%s)", f.Fd, f.Stat.Nlink, f.Path), "not supported yet: close it before the dump")
	}
	return true, nil
}

func (*fifoKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	if err := fifoNoOwner(t, f.Fd); err != nil {
		return err
	}
	pipeID := uint32(f.Stat.Ino)
	// The path and flags go into a regular-file entry of their own, as
	// CRIU writes them; e takes the id after it (see model.AddFile).
	name := f.Path
	if f.Stat.Nlink == 0 {
		name = GhostName(f.Path)
	}
	regID := t.Dump.AddFile(RegEntry(t.Dump.NextFileID(), name, flags, 0, &f.Stat))
	if f.Stat.Nlink == 0 {
		if err := SaveGhost(t.Dump, regID, "", &f.Stat); err != nil {
			return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
		}
	}
	id := t.Dump.NextFileID()
	*e = fdinfo.FileEntry{
		Type: fdinfo.FdTypes_FIFO.Enum(),
		Id:   proto.Uint32(id),
		Fifo: &fifoimg.FifoEntry{Id: proto.Uint32(id), PipeId: proto.Uint32(pipeID), RegfId: proto.Uint32(regID)},
	}
	if _, ok := t.Dump.Fifos[pipeID]; ok {
		return nil
	}
	outside, err := heldOutside(t.InTree, f.Stat.Dev, f.Stat.Ino)
	if err != nil {
		return fmt.Errorf("fd %d (FIFO %s): %w", f.Fd, f.Path, err)
	}
	if outside {
		return nil // its bytes stay in the live FIFO
	}
	pd, err := pipeData(t.Pid, f.Fd)
	if err != nil {
		return fmt.Errorf("fd %d (FIFO %s): %w", f.Fd, f.Path, err)
	}
	if t.Dump.Fifos == nil {
		t.Dump.Fifos = map[uint32]model.PipeData{}
	}
	t.Dump.Fifos[pipeID] = pd
	return nil
}

// fifoNoOwner refuses a FIFO set up for signal-driven I/O (F_SETOWN,
// F_SETSIG, O_ASYNC): its files.img entry has no place for the owner.
func fifoNoOwner(t Task, fd int) error {
	dup, err := unix.PidfdGetfd(t.Pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("fd %d: pidfd_getfd: %w", fd, err)
	}
	defer unix.Close(dup)
	var buf [uapi.SizeofFOwnerEx]byte
	if _, _, e := unix.Syscall(unix.SYS_FCNTL, uintptr(dup), unix.F_GETOWN_EX, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return fmt.Errorf("fd %d: F_GETOWN_EX: %w", fd, e)
	}
	sig, err := unix.FcntlInt(uintptr(dup), unix.F_GETSIG, 0)
	if err != nil {
		return fmt.Errorf("fd %d: F_GETSIG: %w", fd, err)
	}
	fl, err := unix.FcntlInt(uintptr(dup), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("fd %d: F_GETFL: %w", fd, err)
	}
	if uapi.DecodeFOwnerEx(buf[:]).Pid != 0 || sig != 0 || fl&unix.O_ASYNC != 0 {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a FIFO with signal-driven I/O (F_SETOWN, F_SETSIG or O_ASYNC)", fd), "not supported yet for FIFOs")
	}
	return nil
}

// heldOutside tells whether a process outside the dumped tree has FIFO
// (dev, ino) open. The kernel keeps a pipe's count of readers and writers
// to itself, so every process's fd table in /proc is looked at: an fd
// whose link is a path and that stats to the FIFO's device and inode,
// in a process that is neither of the tree nor ckpt, holds it. Not seen:
// a FIFO held only by an fd in flight in a unix socket (SCM_RIGHTS) or
// by a process of another PID namespace that this /proc does not show.
func heldOutside(inTree func(pid int) bool, dev, ino uint64) (bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || (inTree != nil && inTree(pid)) {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or a kernel thread
		}
		for _, fd := range fds {
			p := dir + "/" + fd.Name()
			if l, err := os.Readlink(p); err != nil || !strings.HasPrefix(l, "/") {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO && st.Dev == dev && st.Ino == ino {
				return true, nil
			}
		}
	}
	return false, nil
}

func (k *fifoKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	fe := e.GetFifo()
	if fe == nil {
		return fmt.Errorf("fd %d: files.img: FIFO entry %d without its data", num, e.GetId())
	}
	d := r.Dump()
	reg, err := d.RegFile(fe.GetRegfId())
	if err != nil {
		return fmt.Errorf("fd %d (FIFO): %w", num, err)
	}
	path, err := k.hold(d, fe)
	if err != nil {
		return fmt.Errorf("fd %d (FIFO %s): %w", num, reg.GetReg().GetName(), err)
	}
	flags := uint64(reg.GetReg().GetFlags()) &^ (unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_CLOEXEC)
	if err := k.openEnd(r, num, path, flags, cloexec); err != nil {
		return fmt.Errorf("fd %d (FIFO %s): %w", num, reg.GetReg().GetName(), err)
	}
	return nil
}

// openEnd opens an end of the FIFO at path in the task, non-blocking so
// that it never waits, then gives it its flags.
func (k *fifoKind) openEnd(r Restorer, num int, path string, flags uint64, cloexec bool) error {
	p, err := r.PutString(path)
	if err != nil {
		return err
	}
	// The ia32 call for an ia32 task: the 64-bit one adds O_LARGEFILE.
	var got uint64
	if r.Compat() {
		got, err = r.Syscall32(x86.SysOpenat, atFdcwd, p, flags|unix.O_NONBLOCK, 0)
	} else {
		got, err = r.Syscall(x86.SysOpenat, atFdcwd, p, flags|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return err
	}
	return setPipeFlags(r, num, flags)
}

// hold opens the FIFO of fe in ckpt, the first time, refilled with its
// dumped bytes, and returns the path at which the tasks open it.
func (k *fifoKind) hold(d *model.Dump, fe *fifoimg.FifoEntry) (string, error) {
	id := fe.GetPipeId()
	f, ok := k.held[id]
	if !ok {
		reg, err := d.RegFile(fe.GetRegfId())
		if err != nil {
			return "", err
		}
		name := reg.GetReg().GetName()
		if gid, _ := d.GhostOf(fe.GetRegfId()); gid != 0 {
			// An unlinked FIFO, made again: ckpt's fd of it is open for
			// reading and writing.
			p, err := k.reg.Path(d, fe.GetRegfId())
			if err != nil {
				return "", err
			}
			name = p
		}
		fd, err := unix.Open(name, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("open: %w", err)
		}
		f = os.NewFile(uintptr(fd), name)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			f.Close()
			return "", fmt.Errorf("%s is not a FIFO any more", name)
		}
		if pd, ok := d.Fifos[id]; ok {
			if err := refill(fd, pd); err != nil {
				f.Close()
				return "", err
			}
		}
		if k.held == nil {
			k.held = map[uint32]*os.File{}
		}
		k.held[id] = f
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), nil
}

// refill sizes a FIFO and writes its dumped bytes into it.
func refill(fd int, pd model.PipeData) error {
	if pd.Size > 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, pd.Size); err != nil {
			return fmt.Errorf("FIFO size %d: %w", pd.Size, err)
		}
	}
	for b := pd.Data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			return fmt.Errorf("refill %d bytes: %w", len(pd.Data), err)
		}
		b = b[n:]
	}
	return nil
}

func (k *fifoKind) close() {
	for id, f := range k.held {
		f.Close()
		delete(k.held, id)
	}
}
