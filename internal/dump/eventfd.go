package dump

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// eventfdMax is the largest value an eventfd counter holds
// (ULLONG_MAX - 1, fs/eventfd.c); a write past it blocks.
const eventfdMax = ^uint64(0) - 1

// eventfdIsSemaphore finds out whether fd of task pid is an EFD_SEMAPHORE
// eventfd, on kernels before 6.4 whose fdinfo does not say. It takes the
// file with pidfd_getfd, adds 2 to the counter and reads once: a
// semaphore gives 1, a plain eventfd the whole counter. Then it puts the
// counter back to count. The task is frozen, so only processes outside
// the dumped tree could see the counter move.
func eventfdIsSemaphore(pid, fd int, count uint64) (bool, error) {
	if count > eventfdMax-2 {
		return false, fmt.Errorf("cannot tell whether the eventfd is a semaphore (this kernel's fdinfo does not say, and its counter %#x is too close to the maximum to probe)", count)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
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
