//go:build linux && amd64

package fd

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
)

// stdioKind is a tty or a pipe at fd 0-2 of a --shell-job dump: the
// restored task gets the stdio of whoever runs the restore instead.
// Other terminals are refused.
type stdioKind struct{}

func (stdioKind) Name() string { return "inherited stdio" }

func isTTY(f *File) bool {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFCHR && (strings.HasPrefix(f.Path, "/dev/pts/") || strings.HasPrefix(f.Path, "/dev/tty") || f.Path == "/dev/console")
}

func (stdioKind) Match(f *File, o Options) (bool, error) {
	if isPipe(f) {
		return o.ShellJob && f.Fd <= 2, nil
	}
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
	id := e.Id
	if isPipe(f) {
		e.Type = fdinfo.FdTypes_PIPE.Enum()
		e.Pipe = &pipe.PipeEntry{Id: id, PipeId: proto.Uint32(uint32(f.Stat.Ino)), Flags: proto.Uint32(flags), Fown: noOwner()}
		return nil
	}
	e.Type = fdinfo.FdTypes_TTY.Enum()
	e.Tty = &tty.TtyFileEntry{Id: id, TtyInfoId: proto.Uint32(0), Flags: proto.Uint32(flags), Fown: noOwner()}
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

// Inherited reports a tty or pipe at fd 0-2, which the task gets from
// whoever runs the restore (--shell-job).
func Inherited(fd *fdinfo.FdinfoEntry) bool {
	t := fd.GetType()
	return (t == fdinfo.FdTypes_PIPE || t == fdinfo.FdTypes_TTY) && fd.GetFd() <= 2
}
