//go:build linux && amd64

package fd

import (
	"errors"
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

// Collect records the terminal with its modes and window size
// (tty-info.img): a program such as an editor puts its terminal in raw
// mode, and the terminal it gets at restore must be put so again.
func (stdioKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	e.Type = fdinfo.FdTypes_TTY.Enum()
	e.Tty = &tty.TtyFileEntry{Id: e.Id, TtyInfoId: proto.Uint32(0), Flags: proto.Uint32(flags), Fown: noOwner()}
	tfd, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", t.Pid, f.Fd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fd %d (%s): open the terminal: %w", f.Fd, f.Path, err)
	}
	defer unix.Close(tfd)
	tio, err := unix.IoctlGetTermios(tfd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("fd %d (%s): TCGETS: %w", f.Fd, f.Path, err)
	}
	ws, err := unix.IoctlGetWinsize(tfd, unix.TIOCGWINSZ)
	if err != nil {
		return fmt.Errorf("fd %d (%s): TIOCGWINSZ: %w", f.Fd, f.Path, err)
	}
	cc := make([]uint32, len(tio.Cc))
	for i, c := range tio.Cc {
		cc[i] = uint32(c)
	}
	z, no := proto.Uint32(0), proto.Bool(false)
	if t.Dump.TtyInfos == nil {
		t.Dump.TtyInfos = map[uint32]*tty.TtyInfoEntry{}
	}
	t.Dump.TtyInfos[e.GetId()] = &tty.TtyInfoEntry{
		Id: e.Id, Type: tty.TtyType_EXT_TTY.Enum(), Locked: no, Exclusive: no, PacketMode: no,
		Sid: z, Pgrp: z, Rdev: proto.Uint32(uint32(f.Stat.Rdev)),
		Termios: &tty.TermiosEntry{
			CIflag: proto.Uint32(tio.Iflag), COflag: proto.Uint32(tio.Oflag), CCflag: proto.Uint32(tio.Cflag), CLflag: proto.Uint32(tio.Lflag),
			CLine: proto.Uint32(uint32(tio.Line)), CIspeed: proto.Uint32(tio.Ispeed), COspeed: proto.Uint32(tio.Ospeed), CCc: cc,
		},
		Winsize: &tty.WinsizeEntry{WsRow: proto.Uint32(uint32(ws.Row)), WsCol: proto.Uint32(uint32(ws.Col)), WsXpixel: proto.Uint32(uint32(ws.Xpixel)), WsYpixel: proto.Uint32(uint32(ws.Ypixel))},
	}
	e.Tty.TtyInfoId = e.Id
	return nil
}

// Open leaves the fd as the restore's helper got it from its caller, and
// puts that terminal in the dumped modes and window size. A restore that
// gives the task no terminal there (a pipe, a file) has nothing to set.
func (stdioKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	ti := r.Dump().TtyInfos[e.GetTty().GetTtyInfoId()]
	if ti == nil || ti.GetTermios() == nil {
		return nil
	}
	tfd, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", r.Pid(), num), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fd %d: open the terminal: %w", num, err)
	}
	defer unix.Close(tfd)
	if _, err := unix.IoctlGetTermios(tfd, unix.TCGETS); errors.Is(err, unix.ENOTTY) {
		return nil
	}
	te := ti.GetTermios()
	tio := unix.Termios{Iflag: te.GetCIflag(), Oflag: te.GetCOflag(), Cflag: te.GetCCflag(), Lflag: te.GetCLflag(),
		Line: uint8(te.GetCLine()), Ispeed: te.GetCIspeed(), Ospeed: te.GetCOspeed()}
	for i, c := range te.GetCCc() {
		if i < len(tio.Cc) {
			tio.Cc[i] = uint8(c)
		}
	}
	if err := unix.IoctlSetTermios(tfd, unix.TCSETS, &tio); err != nil {
		return fmt.Errorf("fd %d: set the terminal's modes: %w", num, err)
	}
	if w := ti.GetWinsize(); w != nil {
		ws := unix.Winsize{Row: uint16(w.GetWsRow()), Col: uint16(w.GetWsCol()), Xpixel: uint16(w.GetWsXpixel()), Ypixel: uint16(w.GetWsYpixel())}
		if err := unix.IoctlSetWinsize(tfd, unix.TIOCSWINSZ, &ws); err != nil {
			return fmt.Errorf("fd %d: set the terminal's window size: %w", num, err)
		}
	}
	return nil
}

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
		// A pty of the tree's own is restored, not inherited.
		ti := d.TtyInfos[d.Files[fd.GetId()].GetTty().GetTtyInfoId()]
		return ti.GetType() != tty.TtyType_PTY
	case fdinfo.FdTypes_PIPE:
		_, own := d.Pipes[d.Files[fd.GetId()].GetPipe().GetPipeId()]
		return !own
	}
	return false
}
