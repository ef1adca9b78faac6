//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// File locks, CRIU's --file-locks. Without the option a task that holds
// a lock is refused, as CRIU refuses it: a restore that dropped the lock
// would let another process in under the task (sqlite lost committed
// data that way). With it, POSIX record locks (fcntl F_SETLK), OFD locks
// (F_OFD_SETLK) and flock(2) locks go into file-locks.img and are taken
// again at restore, in the task, once its fds exist.
//
// Whose lock is it? /proc/PID/fdinfo/N lists, in "lock:" lines, the
// locks held through the open file of fd N (show_fd_locks in
// fs/locks.c): a POSIX lock belongs to the fd table of the process that
// took it (its line names that process) and is listed on the fds of that
// table that refer to the open file it was taken through; OFD and flock
// locks belong to the open file description and are listed on every fd,
// in any process, that refers to it. So a POSIX lock is taken again by
// its process through one of those fds, and an OFD or flock lock once,
// through the first fd of the tree (parents first) that holds its open
// file: the restored description is shared as the dumped one was, so
// every process that holds it holds the lock.
//
// Refused at dump, by name: leases (F_SETLEASE: not restored; a lease
// being broken cannot be set again in that state, and a write lease can
// only be taken while no other open file refers to the file), mandatory locks
// (gone since Linux 5.15), a task blocked waiting for a lock ("->"
// lines of /proc/locks), locks on files that are not reopened by path,
// and a POSIX lock held in an fd table shared between processes
// (CLONE_FILES), whose restore could be undone by the other process
// closing a file while it is restored.

// The kinds of lock of file_lock_entry.flag (model.LockPosix, ...).
const (
	lockPosix = model.LockPosix
	lockFlock = model.LockFlock
	lockOFD   = model.LockOFD
	// lockLease is CRIU's FL_LEASE, which CRIU writes for leases.
	lockLease = 8
)

// locks parses the fdinfo "lock:" lines of f.
func (f *File) locks() ([]procfs.Lock, error) {
	if f.Info == nil || f.Info.Extra["lock"] == "" {
		return nil, nil
	}
	ls, err := procfs.ParseLocks([]byte(f.Info.Extra["lock"]))
	if err != nil {
		return nil, fmt.Errorf("fd %d (%s): fdinfo lock lines: %w", f.Fd, f.Path, err)
	}
	return ls, nil
}

// checkLocks refuses the locks that fd f of task pid holds unless they
// can be dumped: all of them without o.FileLocks.
func checkLocks(pid int, f *File, ls []procfs.Lock, o Options) error {
	obj := func(l procfs.Lock) string {
		return fmt.Sprintf("fd %d (%s), which holds a file lock (%s)", f.Fd, f.Path, l)
	}
	if !o.FileLocks {
		return ckerr.Unsupported(pid, obj(ls[0]),
			"a task holding file locks is dumped only with --file-locks (as CRIU does), which also keeps them at restore: use --file-locks, or release the lock before the dump")
	}
	for _, l := range ls {
		switch l.Class {
		case "POSIX":
			if l.Pid != pid {
				return ckerr.Unsupported(pid, obj(l), fmt.Sprintf("a POSIX lock of process %d in an fd table that this process shares with it (CLONE_FILES): not supported yet", l.Pid))
			}
		case "OFDLCK", "FLOCK":
		case "LEASE", "DELEG":
			return ckerr.Unsupported(pid, obj(l), "leases (F_SETLEASE) cannot be dumped: release it (F_SETLEASE F_UNLCK) before the dump")
		default:
			return ckerr.Unsupported(pid, obj(l), "a kind of lock ckpt does not know")
		}
		if l.Mode != "ADVISORY" {
			return ckerr.Unsupported(pid, obj(l), fmt.Sprintf("a %s lock: only advisory locks can be dumped", strings.ToLower(l.Mode)))
		}
		if l.Type != "READ" && l.Type != "WRITE" {
			return ckerr.Unsupported(pid, obj(l), "a lock of a type ckpt does not know")
		}
	}
	return nil
}

// CheckLockWaits refuses task pid if it waits for a file lock. It is
// called before the task is frozen, which would interrupt the wait.
// /proc/locks lists a blocked request ("->") of a POSIX or flock lock
// with its process; an OFD request names none (pid -1): while there is
// one, the task's threads are asked which call they are blocked in
// (fcntl F_OFD_SETLKW, fcntl64 for ia32).
func CheckLockWaits(pid int) error {
	ls, err := procfs.ReadLocks()
	if err != nil {
		return err
	}
	ofd := false
	for _, l := range ls {
		if l.Blocked && l.Pid == pid {
			return ckerr.Unsupported(pid, fmt.Sprintf("a wait for a file lock (%s)", l), waitReason)
		}
		ofd = ofd || (l.Blocked && l.Class == "OFDLCK")
	}
	if !ofd {
		return nil
	}
	tids, err := procfs.Threads(pid)
	if err != nil {
		return err
	}
	for _, tid := range tids {
		s, err := procfs.ReadTaskSyscall(pid, tid)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // a thread that ended meanwhile
		}
		if err != nil {
			return err
		}
		if s.Running || (s.Nr != x86.SysFcntl.Number(false) && s.Nr != x86.SysFcntl.Number(true)) || s.Args[1] != unix.F_OFD_SETLKW {
			continue
		}
		return ckerr.Unsupported(pid, fmt.Sprintf("a wait for an OFD lock (thread %d in fcntl(%d, F_OFD_SETLKW))", tid, s.Args[0]), waitReason)
	}
	return nil
}

// waitReason is why a task that waits for a lock is refused.
const waitReason = "the task is blocked waiting for a file lock: dump it once it has the lock or has given up"

// Locks gathers the file locks of a dump's tree, one entry each, from the
// fds of its processes (see the top of this file).
type Locks struct {
	// Entries are the locks in file_lock_entry form, in the order found.
	Entries []*filelock.FileLockEntry
	seen    map[string]bool
}

// Collect adds the locks that fd f of a process holds; vpid is the
// process as the images name it, host its PID in ckpt's namespace (as
// /proc/locks names owners), fileID the dump's id of its open file.
// Classify has checked them.
func (k *Locks) Collect(vpid, host int, f *File, fileID uint32) error {
	ls, err := f.locks()
	if err != nil {
		return err
	}
	if k.seen == nil {
		k.seen = map[string]bool{}
	}
	for _, l := range ls {
		e, err := lockEntry(l, vpid, f.Fd)
		if err != nil {
			return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
		}
		// One entry per lock: a POSIX lock of this process (listed on
		// every dup of the fd it was taken through), an OFD or flock
		// lock of this open file (listed on every fd that holds it).
		key := fmt.Sprintf("%d/%d/%d/%d/%d", fileID, e.GetFlag(), e.GetType(), e.GetStart(), e.GetLen())
		if e.GetFlag() == lockPosix {
			key += fmt.Sprintf("/%d", host)
		}
		if k.seen[key] {
			continue
		}
		k.seen[key] = true
		k.Entries = append(k.Entries, e)
	}
	return nil
}

// lockEntry is lock l as file-locks.img keeps it: held by process pid
// through its fd.
func lockEntry(l procfs.Lock, pid, fd int) (*filelock.FileLockEntry, error) {
	var flag uint32
	switch l.Class {
	case "POSIX":
		flag = lockPosix
	case "OFDLCK":
		flag = lockOFD
	case "FLOCK":
		flag = lockFlock
	default:
		return nil, fmt.Errorf("%s: cannot be dumped", l)
	}
	var typ uint32
	switch l.Type {
	case "READ":
		typ = unix.F_RDLCK
	case "WRITE":
		typ = unix.F_WRLCK
	default:
		return nil, fmt.Errorf("%s: cannot be dumped", l)
	}
	// CRIU's len: bytes from start, 0 to the end of the file.
	var n int64
	if l.End != procfs.LockEOF {
		n = l.End + 1 - l.Start
	}
	return &filelock.FileLockEntry{
		Flag: proto.Uint32(flag), Type: proto.Uint32(typ), Pid: proto.Int32(int32(pid)), Fd: proto.Int32(int32(fd)),
		Start: proto.Int64(l.Start), Len: proto.Int64(n),
	}, nil
}

// describeLock names a lock of file-locks.img in messages.
func describeLock(e *filelock.FileLockEntry) string { return model.DescribeLock(e) }

// CheckLocks checks, before a restore starts, the locks of dump d: with
// o.FileLocks each must name a live process of the dump and one of its
// fds, a kind and a type ckpt takes; without it the dump must hold none
// (CRIU would drop them silently; ckpt refuses, so that nothing is lost
// unnoticed).
func CheckLocks(d *model.Dump, o Options) error {
	if len(d.FileLocks) == 0 {
		return nil
	}
	first := d.FileLocks[0]
	if !o.FileLocks {
		return fmt.Errorf("the dump holds %d file locks (the first: %s of task %d, fd %d), which only a restore with --file-locks takes again: use --file-locks",
			len(d.FileLocks), describeLock(first), first.GetPid(), first.GetFd())
	}
	procs := map[int]*model.Process{}
	for _, p := range d.Procs {
		if !p.Zombie {
			procs[p.Pid] = p
		}
	}
	for i, e := range d.FileLocks {
		bad := func(what string) error {
			return fmt.Errorf("%s: entry %d: %s: %w", "file-locks.img", i, what, ckerr.ErrCorruptImage)
		}
		switch {
		case e.GetFlag() == lockLease:
			return fmt.Errorf("file-locks.img: entry %d: a lease of task %d (fd %d), which ckpt does not restore", i, e.GetPid(), e.GetFd())
		case e.GetFlag() != lockPosix && e.GetFlag() != lockOFD && e.GetFlag() != lockFlock:
			return bad(fmt.Sprintf("kind of lock (flag) %d, ckpt restores POSIX (1), flock (2) and OFD (4) locks", e.GetFlag()))
		case e.GetType() != unix.F_RDLCK && e.GetType() != unix.F_WRLCK:
			return bad(fmt.Sprintf("lock type %d", e.GetType()))
		case e.GetStart() < 0 || e.GetLen() < 0:
			return bad(fmt.Sprintf("range %d+%d", e.GetStart(), e.GetLen()))
		}
		p, ok := procs[int(e.GetPid())]
		if !ok {
			return bad(fmt.Sprintf("%s of task %d, which is not a live process of the dump", describeLock(e), e.GetPid()))
		}
		if lockFd(p.Fds, int(e.GetFd())) == nil {
			return bad(fmt.Sprintf("%s of task %d through fd %d, which the task does not have", describeLock(e), e.GetPid(), e.GetFd()))
		}
	}
	return nil
}

// lockFd finds fd num in a dumped fd table.
func lockFd(fds []*fdinfo.FdinfoEntry, num int) *fdinfo.FdinfoEntry {
	for _, f := range fds {
		if int(f.GetFd()) == num {
			return f
		}
	}
	return nil
}

// RestoreLocks takes again, inside process r (pid as the images name
// it, fds its dumped fd table), the locks of the dump that it holds. It
// runs once the whole fd table exists and nothing of the restore closes
// a file of the task any more: closing any fd of a file drops the
// process's POSIX locks on it. Locks are taken without waiting: one that
// another process took meanwhile fails the restore, naming it.
func RestoreLocks(r Restorer, pid int, fds []*fdinfo.FdinfoEntry) error {
	for _, e := range r.Dump().FileLocks {
		if int(e.GetPid()) != pid {
			continue
		}
		num := int(e.GetFd())
		name := fmt.Sprintf("fd %d", num)
		if f := lockFd(fds, num); f != nil {
			if reg := r.Dump().Files[f.GetId()].GetReg(); reg != nil {
				name = fmt.Sprintf("fd %d (%s)", num, reg.GetName())
			}
		}
		if err := takeLock(r, num, e); err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
				err = fmt.Errorf("%w: another process holds a conflicting lock on the file now", err)
			}
			return fmt.Errorf("%s: take its %s again: %w", name, describeLock(e), err)
		}
	}
	return nil
}

// takeLock takes lock e through fd num of r, with the task's own ABI: an
// ia32 task's with fcntl64 and its packed struct flock64.
func takeLock(r Restorer, num int, e *filelock.FileLockEntry) error {
	call := r.Syscall
	if r.Compat() {
		call = r.Syscall32
	}
	if e.GetFlag() == lockFlock {
		op := uint64(unix.LOCK_SH)
		if e.GetType() == unix.F_WRLCK {
			op = unix.LOCK_EX
		}
		if _, err := call(x86.SysFlock, uint64(num), op|unix.LOCK_NB); err != nil {
			return fmt.Errorf("flock: %w", err)
		}
		return nil
	}
	fl := uapi.Flock{Type: int16(e.GetType()), Whence: unix.SEEK_SET, Start: e.GetStart(), Len: e.GetLen()}
	cmd, name := uint64(unix.F_SETLK), "F_SETLK"
	if e.GetFlag() == lockOFD {
		cmd, name = unix.F_OFD_SETLK, "F_OFD_SETLK"
	} else if r.Compat() {
		cmd, name = uapi.F_SETLK64_IA32, "F_SETLK64"
	}
	b := fl.Bytes()
	if r.Compat() {
		b = fl.Bytes32()
	}
	p, err := r.Put(b)
	if err != nil {
		return err
	}
	if _, err := call(x86.SysFcntl, uint64(num), cmd, p); err != nil {
		return fmt.Errorf("fcntl(%s): %w", name, err)
	}
	return nil
}
