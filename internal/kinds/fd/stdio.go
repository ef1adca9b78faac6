//go:build linux && amd64

package fd

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
)

// stdioKind is a tty at fd 0-2 of a --shell-job dump: the restored task
// gets the stdio of whoever runs the restore instead. Other terminals are
// refused. (A pipe to the outside at fd 0-2 is inherited the same way;
// pipeKind decides that, because only the whole tree tells whether a pipe
// leads outside.)
type stdioKind struct{}

func (stdioKind) Name() string { return "inherited stdio" }

func isTTY(f *File) bool {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFCHR && (strings.HasPrefix(f.Path, "/dev/pts/") || strings.HasPrefix(f.Path, "/dev/tty") || f.Path == "/dev/console")
}

func (stdioKind) Match(f *File, o Options) (bool, error) {
	if !isTTY(f) {
		return false, nil
	}
	if !o.ShellJob || f.Fd > 2 {
		hint := "dump with --shell-job to inherit stdio at restore"
		if f.Fd > 2 {
			hint = "only stdio (fds 0-2) can be inherited with --shell-job"
		}
		return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a tty (%s)", f.Fd, f.Path), "ckpt cannot dump it yet; "+hint)
	}
	return true, nil
}

func (stdioKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	e.Type = fdinfo.FdTypes_TTY.Enum()
	e.Tty = &tty.TtyFileEntry{Id: e.Id, TtyInfoId: proto.Uint32(0), Flags: proto.Uint32(flags), Fown: noOwner()}
	return nil
}

// Open leaves the fd as the restore's helper got it from its caller.
func (stdioKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error { return nil }

func (stdioKind) Check(fd *fdinfo.FdinfoEntry, o Options) error {
	if fd.GetFd() > 2 {
		return fmt.Errorf("fd %d was a %v: only stdio can be inherited", fd.GetFd(), fd.GetType())
	}
	if !o.ShellJob {
		return fmt.Errorf("fd %d was a %v at dump time: restore with --shell-job to give the task this stdio", fd.GetFd(), fd.GetType())
	}
	return nil
}

// Inherited reports stdio that the task gets from whoever runs the
// restore (--shell-job): a tty at fd 0-2, or a pipe at fd 0-2 that led
// outside the tree, which the dump marks by saving no data for it (a pipe
// of the tree's own always has its entry in pipes-data.img).
func Inherited(d *model.Dump, fd *fdinfo.FdinfoEntry) bool {
	if fd.GetFd() > 2 {
		return false
	}
	switch fd.GetType() {
	case fdinfo.FdTypes_TTY:
		return true
	case fdinfo.FdTypes_PIPE:
		_, own := d.Pipes[d.Files[fd.GetId()].GetPipe().GetPipeId()]
		return !own
	}
	return false
}
