//go:build linux && amd64

package uapi

import "encoding/binary"

// Types of kcmp(2): enum kcmp_type (include/uapi/linux/kcmp.h).
const (
	KCMP_FILE    = 0 // one open file description; idx1 and idx2 are fds
	KCMP_VM      = 1 // the address space (CLONE_VM)
	KCMP_FILES   = 2 // the fd table (CLONE_FILES)
	KCMP_FS      = 3 // cwd, root and umask (CLONE_FS)
	KCMP_SIGHAND = 4 // the signal handlers (CLONE_SIGHAND)
	// KCMP_EPOLL_TFD compares the file of fd idx1 of pid1 with a target
	// of an epoll instance of pid2; idx2 points to a KcmpEpollSlot.
	KCMP_EPOLL_TFD = 7
)

// KcmpEpollSlot is struct kcmp_epoll_slot (include/uapi/linux/kcmp.h):
// the epoll fd, the fd number a target was added with, and which of the
// targets added with that number it is (0 for the first in the
// instance's order, the order its fdinfo lists them in).
type KcmpEpollSlot struct {
	Efd  uint32
	Tfd  uint32
	Toff uint64
}

// Bytes is the slot as the kernel reads it (16 bytes, little endian).
func (s KcmpEpollSlot) Bytes() []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], s.Efd)
	binary.LittleEndian.PutUint32(b[4:], s.Tfd)
	binary.LittleEndian.PutUint64(b[8:], s.Toff)
	return b
}
