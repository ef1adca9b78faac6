//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/procfs"
)

// eventfdKind is an eventfd: its counter, flags and whether it is a
// semaphore.
type eventfdKind struct{}

func (eventfdKind) Name() string { return "eventfd" }

func (eventfdKind) Match(f *File, o Options) (bool, error) {
	return f.Path == "anon_inode:[eventfd]", nil
}

func (eventfdKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	ev, err := procfs.ParseEventfd(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (eventfd): %w", f.Fd, err)
	}
	if !ev.SemaphoreKnown {
		if ev.Semaphore, err = eventfdIsSemaphore(t.Pidfd, f.Fd, ev.Count); err != nil {
			return fmt.Errorf("fd %d (eventfd): %w", f.Fd, err)
		}
	}
	if ev.Semaphore {
		// Kept in the stored f_flags: eventfd files are always O_RDWR,
		// so the bit is free there.
		flags |= unix.EFD_SEMAPHORE
	}
	e.Type = fdinfo.FdTypes_EVENTFD.Enum()
	e.Efd = &eventfd.EventfdFileEntry{Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner(), Counter: proto.Uint64(ev.Count)}
	return nil
}

// Open makes an eventfd with the dumped counter and flags at num.
func (eventfdKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	ef := e.GetEfd()
	if ef == nil {
		return fmt.Errorf("fd %d: eventfd entry %d without data", num, e.GetId())
	}
	flags := uint64(ef.GetFlags() & (unix.O_NONBLOCK | unix.EFD_SEMAPHORE))
	got, err := r.Syscall(x86.SysEventfd2, 0, flags)
	if err != nil {
		return fmt.Errorf("fd %d: eventfd2: %w", num, err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	if c := ef.GetCounter(); c != 0 {
		// eventfd2 takes a 32-bit initial value; write(2) adds any 64-bit one.
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, c)
		p, err := r.Put(b)
		if err != nil {
			return err
		}
		if _, err := r.Syscall(x86.SysWrite, uint64(num), p, 8); err != nil {
			return fmt.Errorf("fd %d: set eventfd counter %d: %w", num, c, err)
		}
	}
	return nil
}

// eventfdMax is the largest value an eventfd counter holds
// (ULLONG_MAX - 1, fs/eventfd.c); a write past it blocks.
const eventfdMax = ^uint64(0) - 1

// eventfdIsSemaphore finds out whether fd of task pid is an EFD_SEMAPHORE
// eventfd, on kernels before 6.4 whose fdinfo does not say. It takes the
// file with pidfd_getfd, adds 2 to the counter and reads once: a
// semaphore gives 1, a plain eventfd the whole counter. Then it puts the
// counter back to count. The task is frozen, so only processes outside
// the dumped tree could see the counter move.
func eventfdIsSemaphore(pidfd, fd int, count uint64) (bool, error) {
	if count > eventfdMax-2 {
		return false, fmt.Errorf("cannot tell whether the eventfd is a semaphore (this kernel's fdinfo does not say, and its counter %#x is too close to the maximum to probe)", count)
	}
	efd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return false, fmt.Errorf("pidfd_getfd: %w", err)
	}
	defer unix.Close(efd)
	var b [8]byte
	write := func(v uint64) error {
		binary.NativeEndian.PutUint64(b[:], v)
		_, err := unix.Write(efd, b[:])
		return err
	}
	read := func() (uint64, error) {
		if _, err := unix.Read(efd, b[:]); err != nil {
			return 0, err
		}
		return binary.NativeEndian.Uint64(b[:]), nil
	}
	if err := write(2); err != nil {
		return false, fmt.Errorf("probe semaphore: write: %w", err)
	}
	got, err := read()
	if err != nil {
		return false, fmt.Errorf("probe semaphore: read: %w", err)
	}
	switch got {
	case 1: // semaphore: the counter is count+1
		if _, err := read(); err != nil {
			return false, fmt.Errorf("probe semaphore: restore the counter: %w", err)
		}
		return true, nil
	case count + 2: // plain: the counter is 0
		if count > 0 {
			if err := write(count); err != nil {
				return false, fmt.Errorf("probe semaphore: restore the counter to %d: %w", count, err)
			}
		}
		return false, nil
	default:
		return false, fmt.Errorf("probe semaphore: read %d from a counter of %d+2: another process uses the eventfd", got, count)
	}
}
