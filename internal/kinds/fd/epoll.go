//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"runtime"
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
// table exists.
type epollKind struct{}

func (epollKind) Name() string { return "epoll" }

func (epollKind) Match(f *File, o Options) (bool, error) {
	return f.Path == "anon_inode:[eventpoll]", nil
}

// Collect lists what the epoll fd watches. Each target is named by the fd
// number it was added with, which is half of the epoll's key for it; that
// fd may since have been closed or dup2'd over while another fd of the
// task keeps the file open. kcmp(KCMP_EPOLL_TFD) tells which fd of the
// task holds each target's file; a target whose file no fd of the task
// holds (kept alive by a mapping, another process or a message in flight)
// cannot be added back and is refused.
func (epollKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	targets, err := procfs.ParseEpollTargets(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (epoll): %w", f.Fd, err)
	}
	var tfds []*eventpoll.EventpollTfdEntry
	var fds []procfs.Fd // the task's fds, listed when first needed
	toff := map[int]uint64{}
	for _, tg := range targets {
		slot := uapi.KcmpEpollSlot{Efd: uint32(f.Fd), Tfd: uint32(tg.Fd), Toff: toff[tg.Fd]}
		toff[tg.Fd]++
		holder := -1
		if same, err := epollTargetIs(t.Pid, tg.Fd, slot); err != nil {
			return fmt.Errorf("fd %d (epoll), target fd %d: %w", f.Fd, tg.Fd, err)
		} else if same {
			holder = tg.Fd
		} else {
			if fds == nil {
				if fds, err = procfs.ListFds(t.Pid); err != nil {
					return fmt.Errorf("fd %d (epoll): %w", f.Fd, err)
				}
			}
			for _, c := range fds {
				var st unix.Stat_t
				if c.Num == tg.Fd || unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", t.Pid, c.Num), &st) != nil || st.Ino != tg.Ino {
					continue
				}
				same, err := epollTargetIs(t.Pid, c.Num, slot)
				if err != nil {
					return fmt.Errorf("fd %d (epoll), target fd %d: %w", f.Fd, tg.Fd, err)
				}
				if same {
					holder = c.Num
					break
				}
			}
		}
		if holder < 0 {
			return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d (epoll), its target fd %d (inode %d)", f.Fd, tg.Fd, tg.Ino),
				fmt.Sprintf("fd %d was closed or replaced since it was added, and no fd of the process holds the watched file any more "+
					"(it lives on through a mapping, another process or a message in flight): ckpt cannot add it back; "+
					"keep the file open at an fd of this process, or remove it from the epoll (EPOLL_CTL_DEL) before closing fd %d", tg.Fd, tg.Fd))
		}
		tfd := &eventpoll.EventpollTfdEntry{
			Id: e.Id, Tfd: proto.Uint32(uint32(tg.Fd)), Events: proto.Uint32(tg.Events), Data: proto.Uint64(tg.Data),
			Inode: proto.Uint64(tg.Ino), Pos: proto.Uint64(uint64(tg.Pos)),
		}
		model.SetEpollTfdHolder(tfd, uint32(holder))
		tfds = append(tfds, tfd)
	}
	e.Type = fdinfo.FdTypes_EVENTPOLL.Enum()
	e.Epfd = &eventpoll.EventpollFileEntry{Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner(), Tfd: tfds}
	return nil
}

// epollTargetIs tells whether fd num of task pid holds the file of the
// epoll target slot names (kcmp(2), KCMP_EPOLL_TFD). A closed fd is not.
func epollTargetIs(pid, num int, slot uapi.KcmpEpollSlot) (bool, error) {
	b := slot.Bytes()
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(pid), uapi.KCMP_EPOLL_TFD, uintptr(num), uintptr(unsafe.Pointer(&b[0])), 0)
	runtime.KeepAlive(b)
	switch {
	case e == unix.EBADF:
		return false, nil // fd num is closed
	case e != 0:
		return false, fmt.Errorf("kcmp(KCMP_EPOLL_TFD) of task %d, fd %d: %w", pid, num, e)
	}
	return r == 0, nil
}

func (epollKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
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
// while its file is open anywhere, not while the number is.
func (epollKind) Fixup(r Restorer, num int, e *fdinfo.FileEntry) error {
	for _, t := range e.GetEpfd().GetTfd() {
		p, err := r.Put(uapi.EpollEvent{Events: t.GetEvents(), Data: t.GetData()}.Bytes())
		if err != nil {
			return err
		}
		key, holder := t.GetTfd(), model.EpollTfdHolder(t)
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
