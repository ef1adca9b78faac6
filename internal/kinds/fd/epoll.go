//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// epollKind is an epoll instance with its targets: the fds it watches,
// their events and data. The targets are added back once every fd of the
// process exists, or of the tree for a target whose file only another
// process holds (late).
type epollKind struct {
	late []lateEpoll
}

// lateEpoll is, at restore, a target of epoll fd num of r whose file fd
// fd of process pid holds: added in FinishTree, once that process exists.
type lateEpoll struct {
	r       Restorer
	num     int
	key     uint32
	pid, fd int
	events  uint32
	data    uint64
}

func (*epollKind) Name() string { return "epoll" }

func (*epollKind) Match(f *File, o Options) (bool, error) {
	return f.Path == "anon_inode:[eventpoll]", nil
}

// Collect lists what the epoll fd watches. Each target is named by the fd
// number it was added with, which is half of the epoll's key for it; that
// fd may since have been closed or dup2'd over while another fd keeps the
// file open. kcmp(KCMP_EPOLL_TFD) tells which fd holds each target's
// file: one of the process's own, else one of another process of the
// tree. A target whose file no fd of the tree holds (kept alive by a
// mapping, a process outside the tree or a message in flight) cannot be
// added back and is refused.
func (*epollKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	targets, err := procfs.ParseEpollTargets(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (epoll): %w", f.Fd, err)
	}
	var tfds []*eventpoll.EventpollTfdEntry
	var others []int // the tree's other processes, listed when first needed
	toff := map[int]uint64{}
	for _, tg := range targets {
		slot := uapi.KcmpEpollSlot{Efd: uint32(f.Fd), Tfd: uint32(tg.Fd), Toff: toff[tg.Fd]}
		toff[tg.Fd]++
		what := fmt.Sprintf("fd %d (epoll), its target fd %d (inode %d)", f.Fd, tg.Fd, tg.Ino)
		hpid, holder := 0, -1
		if same, err := epollTargetIs(t.Pid, t.Pid, tg.Fd, slot); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if same {
			holder = tg.Fd
		} else if holder, err = epollHolderIn(t.Pid, t.Pid, tg, slot); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if holder < 0 {
			if others == nil {
				others = treeOthers(t)
			}
			for _, q := range others {
				if holder, err = epollHolderIn(q, t.Pid, tg, slot); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				if holder >= 0 {
					hpid = q
					break
				}
			}
			if holder >= 0 && !samePidNS(t.Pid) {
				return ckerr.Unsupported(t.Pid, what, fmt.Sprintf("fd %d was closed or replaced since it was added, and only process %d holds the watched file (its fd %d); "+
					"a process in a PID namespace of its own cannot take it from there yet: keep the file open at an fd of process %d", tg.Fd, hpid, holder, t.Pid))
			}
		}
		if holder < 0 {
			return ckerr.Unsupported(t.Pid, what,
				fmt.Sprintf("fd %d was closed or replaced since it was added, and no fd of the tree holds the watched file any more "+
					"(it lives on through a mapping, a process outside the tree or a message in flight): ckpt cannot add it back; "+
					"keep the file open at an fd of this process, or remove it from the epoll (EPOLL_CTL_DEL) before closing fd %d", tg.Fd, tg.Fd))
		}
		tfd := &eventpoll.EventpollTfdEntry{
			Id: e.Id, Tfd: proto.Uint32(uint32(tg.Fd)), Events: proto.Uint32(tg.Events), Data: proto.Uint64(tg.Data),
			Inode: proto.Uint64(tg.Ino), Pos: proto.Uint64(uint64(tg.Pos)),
		}
		model.SetEpollTfdHolder(tfd, uint32(holder))
		model.SetEpollTfdHolderPid(tfd, uint32(hpid))
		tfds = append(tfds, tfd)
	}
	e.Type = fdinfo.FdTypes_EVENTPOLL.Enum()
	e.Epfd = &eventpoll.EventpollFileEntry{Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner(), Tfd: tfds}
	return nil
}

// epollHolderIn returns an fd of process q that holds the file of target
// tg of an epoll of process p (slot), or -1. Only fds on a file with the
// target's inode number are asked.
func epollHolderIn(q, p int, tg procfs.EpollTarget, slot uapi.KcmpEpollSlot) (int, error) {
	fds, err := procfs.ListFds(q)
	if err != nil {
		if q != p {
			return -1, nil // a zombie, or a process gone: it holds nothing
		}
		return -1, err
	}
	for _, c := range fds {
		var st unix.Stat_t
		if (q == p && c.Num == tg.Fd) || unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", q, c.Num), &st) != nil || st.Ino != tg.Ino {
			continue
		}
		same, err := epollTargetIs(q, p, c.Num, slot)
		if err != nil {
			return -1, err
		}
		if same {
			return c.Num, nil
		}
	}
	return -1, nil
}

// treeOthers lists the processes of t's tree other than t: from its
// topmost ancestor in the tree down through the children files of every
// thread. Without InTree (tests) there are none.
func treeOthers(t Task) []int {
	if t.InTree == nil {
		return []int{}
	}
	root := t.Pid
	for {
		st, err := procfs.ReadStatus(root)
		if err != nil || st.PPid <= 0 || !t.InTree(st.PPid) {
			break
		}
		root = st.PPid
	}
	out := []int{}
	for todo := []int{root}; len(todo) > 0; {
		p := todo[0]
		todo = todo[1:]
		if p != t.Pid {
			out = append(out, p)
		}
		tids, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, tid := range tids {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, tid.Name()))
			for _, c := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(c); err == nil && t.InTree(n) {
					todo = append(todo, n)
				}
			}
		}
	}
	return out
}

// samePidNS tells whether process pid is in ckpt's PID namespace, where
// the PIDs of the images are its own.
func samePidNS(pid int) bool {
	mine, err1 := os.Readlink("/proc/self/ns/pid")
	its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return err1 == nil && err2 == nil && mine == its
}

// epollTargetIs tells whether fd num of process q holds the file of the
// target of an epoll of process p that slot names (kcmp(2),
// KCMP_EPOLL_TFD). A closed fd does not.
func epollTargetIs(q, p, num int, slot uapi.KcmpEpollSlot) (bool, error) {
	b := slot.Bytes()
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(q), uintptr(p), uapi.KCMP_EPOLL_TFD, uintptr(num), uintptr(unsafe.Pointer(&b[0])), 0)
	runtime.KeepAlive(b)
	switch {
	case e == unix.EBADF:
		return false, nil // fd num is closed
	case e != 0:
		return false, fmt.Errorf("kcmp(KCMP_EPOLL_TFD) of fd %d of process %d: %w", num, q, e)
	}
	return r == 0, nil
}

func (*epollKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	if e.GetEpfd() == nil {
		return fmt.Errorf("fd %d: epoll entry %d without data", num, e.GetId())
	}
	got, err := r.Syscall(x86.SysEpollCreate1, 0)
	if err != nil {
		return fmt.Errorf("fd %d: epoll_create1: %w", num, err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	return nil
}

// Fixup adds the dumped targets to the epoll fd at num. A target whose
// file another fd holds now (its own fd was closed or dup2'd over) is
// added under its own number all the same, so that the epoll's key and
// fdinfo stay as they were: the holder is dup'ed to that number for the
// EPOLL_CTL_ADD, and the number then given back to what it held (closed,
// or its file with its close-on-exec flag). The epoll keeps the target
// while its file is open anywhere, not while the number is. A target
// whose file another process holds waits for FinishTree.
func (k *epollKind) Fixup(r Restorer, num int, e *fdinfo.FileEntry) error {
	for _, t := range e.GetEpfd().GetTfd() {
		key, holder := t.GetTfd(), model.EpollTfdHolder(t)
		if pid := int(model.EpollTfdHolderPid(t)); pid != 0 && pid != r.Pid() {
			k.late = append(k.late, lateEpoll{r: r, num: num, key: key, pid: pid, fd: int(holder), events: t.GetEvents(), data: t.GetData()})
			continue
		}
		p, err := r.Put(uapi.EpollEvent{Events: t.GetEvents(), Data: t.GetData()}.Bytes())
		if err != nil {
			return err
		}
		if holder == key {
			if _, err := r.Syscall(x86.SysEpollCtl, uint64(num), unix.EPOLL_CTL_ADD, uint64(key), p); err != nil {
				return fmt.Errorf("epoll fd %d: add fd %d (events %#x): %w", num, key, t.GetEvents(), err)
			}
			continue
		}
		if err := epollAddAs(r, num, key, holder, p); err != nil {
			return fmt.Errorf("epoll fd %d: add the file of fd %d as fd %d (events %#x): %w", num, holder, key, t.GetEvents(), err)
		}
	}
	return nil
}

// FinishTree adds the targets whose file another process of the tree
// holds: the epoll's process takes a copy of that process's fd
// (pidfd_getfd), adds it under the target's number and closes it.
func (k *epollKind) FinishTree() error {
	for _, l := range k.late {
		if err := l.add(); err != nil {
			return fmt.Errorf("task %d: epoll fd %d: add the file of fd %d of process %d as fd %d (events %#x): %w",
				l.r.Pid(), l.num, l.fd, l.pid, l.key, l.events, err)
		}
	}
	k.late = nil
	return nil
}

func (l lateEpoll) add() error {
	r := l.r
	pidfd, err := r.Syscall(x86.SysPidfdOpen, uint64(l.pid), 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	got, err := r.Syscall(x86.SysPidfdGetfd, pidfd, uint64(l.fd), 0)
	if _, cerr := r.Syscall(x86.SysClose, pidfd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pidfd_getfd: %w", err)
	}
	// Above every fd number of the table, so that it is not the key.
	held, err := r.Syscall(x86.SysFcntl, got, unix.F_DUPFD_CLOEXEC, uint64(r.MaxFd()+1))
	if _, cerr := r.Syscall(x86.SysClose, got); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("move the copy: %w", err)
	}
	p, err := r.Put(uapi.EpollEvent{Events: l.events, Data: l.data}.Bytes())
	if err == nil {
		err = epollAddAs(r, l.num, l.key, uint32(held), p)
	}
	if _, cerr := r.Syscall(x86.SysClose, held); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// epollAddAs adds the file of fd holder to epoll fd num under fd number
// key, with the epoll_event at ev in the task's memory, and leaves fd key
// as it found it.
func epollAddAs(r Restorer, num int, key, holder uint32, ev uint64) error {
	fdFlags, err := r.Syscall(x86.SysFcntl, uint64(key), unix.F_GETFD)
	busy := err == nil
	if err != nil && !errors.Is(err, unix.EBADF) {
		return fmt.Errorf("fcntl(%d, F_GETFD): %w", key, err)
	}
	var saved uint64
	if busy {
		if saved, err = r.Syscall(x86.SysFcntl, uint64(key), unix.F_DUPFD_CLOEXEC, uint64(r.MaxFd()+1)); err != nil {
			return fmt.Errorf("set fd %d aside: %w", key, err)
		}
	}
	if _, err := r.Syscall(x86.SysDup3, uint64(holder), uint64(key), 0); err != nil {
		return fmt.Errorf("dup3(%d, %d): %w", holder, key, err)
	}
	if _, err := r.Syscall(x86.SysEpollCtl, uint64(num), unix.EPOLL_CTL_ADD, uint64(key), ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	if !busy {
		if _, err := r.Syscall(x86.SysClose, uint64(key)); err != nil {
			return fmt.Errorf("close %d: %w", key, err)
		}
		return nil
	}
	var dflags uint64
	if fdFlags&unix.FD_CLOEXEC != 0 {
		dflags = unix.O_CLOEXEC
	}
	if _, err := r.Syscall(x86.SysDup3, saved, uint64(key), dflags); err != nil {
		return fmt.Errorf("put fd %d back: %w", key, err)
	}
	if _, err := r.Syscall(x86.SysClose, saved); err != nil {
		return fmt.Errorf("close %d: %w", saved, err)
	}
	return nil
}
