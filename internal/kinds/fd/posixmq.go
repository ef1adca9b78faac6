//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/uapi"
)

// posixMQKind is a POSIX message queue (mq_open): a regular file of the
// IPC namespace's mqueue file system, which /proc shows as "/NAME"
// (" (deleted)" once mq_unlink'ed). It cannot be dumped yet (CRIU's
// images have no place for a queue, its messages and attributes), and
// it must not pass for a regular file at the path "/NAME" or for an
// unlinked one: it is refused by name.
type posixMQKind struct{}

func (*posixMQKind) Name() string { return "POSIX message queue" }

func (*posixMQKind) Match(f *File, o Options) (bool, error) {
	if f.Stat.Mode&unix.S_IFMT != unix.S_IFREG || f.FsType != uapi.MQUEUE_MAGIC {
		return false, nil
	}
	return true, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a POSIX message queue (%s)", f.Fd, f.Path),
		"POSIX message queues (mq_open) cannot be dumped yet: close it (mq_close) before the dump")
}

func (*posixMQKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	return errors.New("a POSIX message queue cannot be dumped")
}

func (*posixMQKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	return errors.New("a POSIX message queue cannot be restored")
}
