package fd

import (
	"fmt"
	"unsafe"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/uapi"
)

// The owner of an open file (F_SETOWN/F_SETOWN_EX: who gets SIGIO or
// SIGURG) and the signal it gets (F_SETSIG) belong to the open file
// description, whatever its kind; they live in every kind's fown entry.

// fownOf returns the fown entry of a file entry of any kind, nil if the
// kind has none.
func fownOf(e *fdinfo.FileEntry) **fown.FownEntry {
	switch {
	case e.Reg != nil:
		return &e.Reg.Fown
	case e.Pipe != nil:
		return &e.Pipe.Fown
	case e.Efd != nil:
		return &e.Efd.Fown
	case e.Epfd != nil:
		return &e.Epfd.Fown
	case e.Tfd != nil:
		return &e.Tfd.Fown
	case e.Sgfd != nil:
		return &e.Sgfd.Fown
	case e.Ify != nil:
		return &e.Ify.Fown
	case e.Tty != nil && e.Tty.GetTtyInfoId() < stdioInfoBase:
		return &e.Tty.Fown // a pty end of the tree's own
	case e.Memfd != nil:
		return &e.Memfd.Fown
	case e.Ext != nil:
		return &e.Ext.Fown // a POSIX message queue
	}
	// Another tty is inherited stdio: its owner is whoever restores it.
	return nil
}

// CollectOwner reads the owner and signal of fd of task t, through a
// copy of the fd taken with pidfd_getfd (they belong to the open file,
// which the copy shares), into e.
func CollectOwner(t Task, fd int, e *fdinfo.FileEntry) error {
	fo := fownOf(e)
	if fo == nil {
		return nil
	}
	dup, err := unix.PidfdGetfd(t.Pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("fd %d: owner: pidfd_getfd: %w", fd, err)
	}
	defer unix.Close(dup)
	var buf [uapi.SizeofFOwnerEx]byte
	if _, _, e := unix.Syscall(unix.SYS_FCNTL, uintptr(dup), unix.F_GETOWN_EX, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return fmt.Errorf("fd %d: F_GETOWN_EX: %w", fd, e)
	}
	ox := uapi.DecodeFOwnerEx(buf[:])
	sig, err := unix.FcntlInt(uintptr(dup), unix.F_GETSIG, 0)
	if err != nil {
		return fmt.Errorf("fd %d: F_GETSIG: %w", fd, err)
	}
	if ox.Pid == 0 && sig == 0 {
		return nil
	}
	*fo = &fown.FownEntry{
		Uid: proto.Uint32(0), Euid: proto.Uint32(0),
		Signum: proto.Uint32(uint32(sig)), PidType: proto.Uint32(uint32(ox.Type)), Pid: proto.Uint32(uint32(ox.Pid)),
	}
	return nil
}

// RestoreOwner sets the owner and signal of fd num from e, then O_ASYNC
// if the file had it (open(2) ignores O_ASYNC; it takes effect with
// F_SETFL, once the owner is there).
func RestoreOwner(r Restorer, num int, e *fdinfo.FileEntry) error {
	flags := entryFlags(e)
	fo := fownOf(e)
	if fo == nil || *fo == nil {
		return nil
	}
	o := *fo
	if o.GetPid() != 0 {
		p, err := r.Put(uapi.FOwnerEx{Type: int32(o.GetPidType()), Pid: int32(o.GetPid())}.Bytes())
		if err != nil {
			return err
		}
		if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETOWN_EX, p); err != nil {
			return fmt.Errorf("fd %d: F_SETOWN_EX %d: %w", num, o.GetPid(), err)
		}
	}
	if s := o.GetSignum(); s != 0 {
		if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETSIG, uint64(s)); err != nil {
			return fmt.Errorf("fd %d: F_SETSIG %d: %w", num, s, err)
		}
	}
	if flags&unix.O_ASYNC != 0 {
		cur, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_GETFL)
		if err != nil {
			return fmt.Errorf("fd %d: F_GETFL: %w", num, err)
		}
		if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, cur|unix.O_ASYNC); err != nil {
			return fmt.Errorf("fd %d: F_SETFL O_ASYNC: %w", num, err)
		}
	}
	return nil
}

// entryFlags are the file status flags a file entry of any kind keeps.
func entryFlags(e *fdinfo.FileEntry) uint32 {
	switch {
	case e.Reg != nil:
		return e.Reg.GetFlags()
	case e.Pipe != nil:
		return e.Pipe.GetFlags()
	case e.Efd != nil:
		return e.Efd.GetFlags()
	case e.Epfd != nil:
		return e.Epfd.GetFlags()
	case e.Tfd != nil:
		return e.Tfd.GetFlags()
	case e.Sgfd != nil:
		return e.Sgfd.GetFlags()
	case e.Ify != nil:
		return e.Ify.GetFlags()
	case e.Tty != nil:
		return e.Tty.GetFlags()
	case e.Memfd != nil:
		return e.Memfd.GetFlags()
	}
	return 0
}
