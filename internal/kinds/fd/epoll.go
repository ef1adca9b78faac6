//go:build linux && amd64

package fd

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
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
// number it was added with; that fd must still hold the same file, or the
// restore could not add it back.
func (epollKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	targets, err := procfs.ParseEpollTargets(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (epoll): %w", f.Fd, err)
	}
	var tfds []*eventpoll.EventpollTfdEntry
	for _, tg := range targets {
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", t.Pid, tg.Fd), &st); err != nil || st.Ino != tg.Ino {
			return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d (epoll)", f.Fd), fmt.Sprintf("watched fd %d was closed or replaced since it was added: not supported yet", tg.Fd))
		}
		tfds = append(tfds, &eventpoll.EventpollTfdEntry{
			Id: e.Id, Tfd: proto.Uint32(uint32(tg.Fd)), Events: proto.Uint32(tg.Events), Data: proto.Uint64(tg.Data),
			Inode: proto.Uint64(tg.Ino), Pos: proto.Uint64(uint64(tg.Pos)),
		})
	}
	e.Type = fdinfo.FdTypes_EVENTPOLL.Enum()
	e.Epfd = &eventpoll.EventpollFileEntry{Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner(), Tfd: tfds}
	return nil
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

// Fixup adds the dumped targets to the epoll fd at num.
func (epollKind) Fixup(r Restorer, num int, e *fdinfo.FileEntry) error {
	for _, t := range e.GetEpfd().GetTfd() {
		p, err := r.Put(uapi.EpollEvent{Events: t.GetEvents(), Data: t.GetData()}.Bytes())
		if err != nil {
			return err
		}
		if _, err := r.Syscall(x86.SysEpollCtl, uint64(num), unix.EPOLL_CTL_ADD, uint64(t.GetTfd()), p); err != nil {
			return fmt.Errorf("epoll fd %d: add fd %d (events %#x): %w", num, t.GetTfd(), t.GetEvents(), err)
		}
	}
	return nil
}
