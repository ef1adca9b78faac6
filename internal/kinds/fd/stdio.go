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

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// stdioKind is a terminal of the outside world in a --shell-job dump: at
// fd 0-2 the restored task gets the stdio of whoever runs the restore
// instead. Above 2 it is the terminal of the task's stdio (an editor's
// second fd on it) or /dev/tty: the restore opens again the terminal it
// gave as that stdio, or /dev/tty, which is then the restored task's
// controlling terminal. Other terminals are refused, and so is every
// terminal without --shell-job. (A pipe to the outside at fd 0-2 is
// inherited the same way; pipeKind decides that, because only the whole
// tree tells whether a pipe leads outside. A pty whose master the tree
// holds is ptyKind's.)
//
// A job in the foreground of its terminal at the dump (the terminal is
// its controlling terminal and its process group the terminal's
// foreground group) is put in the foreground of the restore's terminal
// again, once the tree exists (FinishTree): a shell gives the terminal to
// `ckpt restore`, the job it started, and the restored job, a process
// group of its own in that session, would otherwise stop at its first
// read of the terminal (SIGTTIN). With -d the shell takes the terminal
// back when ckpt returns.
type stdioKind struct {
	// fg is, at restore, the process group to put in the foreground.
	fg int
}

func (stdioKind) Name() string { return "inherited stdio" }

func isTTY(f *File) bool {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFCHR && (strings.HasPrefix(f.Path, "/dev/pts/") || strings.HasPrefix(f.Path, "/dev/tty") || f.Path == "/dev/console")
}

func (stdioKind) Match(f *File, o Options) (bool, error) {
	if !isTTY(f) {
		return false, nil
	}
	if !o.ShellJob {
		return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a tty (%s)", f.Fd, f.Path), "ckpt cannot dump it yet; dump with --shell-job to give the restored task the terminal of whoever restores it")
	}
	// Above 2, Collect checks that it is the terminal of the task's stdio.
	return true, nil
}

// devTTY is /dev/tty's device number, 5:0 (include/uapi/linux/major.h,
// TTYAUX_MAJOR): an open of it is of the opener's controlling terminal.
func isDevTTY(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == ttyauxMajor && unix.Minor(st.Rdev) == 0
}

// Collect records the terminal with its modes and window size
// (tty-info.img): a program such as an editor puts its terminal in raw
// mode, and the terminal it gets at restore must be put so again.
func (stdioKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	e.Type = fdinfo.FdTypes_TTY.Enum()
	e.Tty = &tty.TtyFileEntry{Id: e.Id, TtyInfoId: proto.Uint32(0), Flags: proto.Uint32(flags), Fown: noOwner()}
	typ := tty.TtyType_EXT_TTY
	if f.Fd > 2 {
		if isDevTTY(&f.Stat) {
			typ = tty.TtyType_CTTY
		} else if stdioFd(t.Pid, f.Stat.Rdev) < 0 {
			return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a tty (%s)", f.Fd, f.Path),
				"with --shell-job a terminal above fd 2 is given back only when it is the terminal of the task's stdio (or /dev/tty); ckpt cannot dump another one yet")
		}
	}
	// A copy of the task's fd: opening /proc/PID/fd/N again would open
	// ckpt's own terminal for /dev/tty.
	tfd, err := unix.PidfdGetfd(t.Pidfd, f.Fd, 0)
	if err != nil {
		return fmt.Errorf("fd %d (%s): pidfd_getfd: %w", f.Fd, f.Path, err)
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
	sid, pgrp := z, z
	if st, err := procfs.ReadStat(t.Pid); err != nil {
		return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
	} else if f.Fd <= 2 && uint64(st.TtyNr) == f.Stat.Rdev && st.Tpgid > 0 && st.Tpgid == st.Pgrp && st.Pgrp == t.Pid && st.Session != t.Pid {
		// A job leader in the foreground of its terminal, in a
		// session it does not lead (a shell's).
		sid, pgrp = proto.Uint32(uint32(st.Session)), proto.Uint32(uint32(st.Pgrp))
	}
	if t.Dump.TtyInfos == nil {
		t.Dump.TtyInfos = map[uint32]*tty.TtyInfoEntry{}
	}
	info := stdioInfoBase + e.GetId() // apart from pty ends' ids (tty.go)
	t.Dump.TtyInfos[info] = &tty.TtyInfoEntry{
		Id: proto.Uint32(info), Type: typ.Enum(), Locked: no, Exclusive: no, PacketMode: no,
		Sid: sid, Pgrp: pgrp, Rdev: proto.Uint32(uint32(f.Stat.Rdev)),
		Termios: &tty.TermiosEntry{
			CIflag: proto.Uint32(tio.Iflag), COflag: proto.Uint32(tio.Oflag), CCflag: proto.Uint32(tio.Cflag), CLflag: proto.Uint32(tio.Lflag),
			CLine: proto.Uint32(uint32(tio.Line)), CIspeed: proto.Uint32(tio.Ispeed), COspeed: proto.Uint32(tio.Ospeed), CCc: cc,
		},
		Winsize: &tty.WinsizeEntry{WsRow: proto.Uint32(uint32(ws.Row)), WsCol: proto.Uint32(uint32(ws.Col)), WsXpixel: proto.Uint32(uint32(ws.Xpixel)), WsYpixel: proto.Uint32(uint32(ws.Ypixel))},
	}
	e.Tty.TtyInfoId = proto.Uint32(info)
	return nil
}

// Open leaves an fd 0-2 as the restore's helper got it from its caller;
// above 2 it opens that terminal again (or /dev/tty). Then it puts the
// terminal in the dumped modes and window size. A restore that gives the
// task no terminal at 0-2 (a pipe, a file) has nothing to set.
func (k *stdioKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	ti := r.Dump().TtyInfos[e.GetTty().GetTtyInfoId()]
	if num <= 2 && ti.GetPgrp() != 0 && int(ti.GetPgrp()) == r.Pid() {
		k.fg = r.Pid()
	}
	if num > 2 {
		if err := openAbove2(r, num, cloexec, e, ti); err != nil {
			return fmt.Errorf("fd %d: %w", num, err)
		}
	}
	if ti == nil || ti.GetTermios() == nil {
		return nil
	}
	tfd, err := fdOf(r.Pid(), num)
	if err != nil {
		return err
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
	if fd.GetFd() > 2 && fd.GetType() != fdinfo.FdTypes_TTY {
		return fmt.Errorf("fd %d was a %v: only stdio can be inherited", fd.GetFd(), fd.GetType())
	}
	if !o.ShellJob {
		return fmt.Errorf("fd %d was a %v at dump time: restore with --shell-job to give the task this terminal", fd.GetFd(), fd.GetType())
	}
	return nil
}

// stdioFd is the first of fds 0-2 of task pid that is the terminal
// rdev, -1 if none is.
func stdioFd(pid int, rdev uint64) int {
	for k := 0; k <= 2; k++ {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, k), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == rdev {
			return k
		}
	}
	return -1
}

// openAbove2 opens at num, above 2, the outside terminal of file e: for
// /dev/tty the restored task's controlling terminal, otherwise the
// terminal that the restore gave at the stdio fd that was the same
// terminal at the dump.
func openAbove2(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry, ti *tty.TtyInfoEntry) error {
	if ti == nil {
		return fmt.Errorf("terminal %d is not in the dump", e.GetTty().GetTtyInfoId())
	}
	flags := uint64(e.GetTty().GetFlags()) &^ unix.O_CLOEXEC
	var paths []string
	if ti.GetType() == tty.TtyType_CTTY {
		paths = []string{"/dev/tty"}
	} else {
		for _, k := range dumpedStdio(r, num, e.GetId(), ti.GetRdev()) {
			paths = append(paths, fmt.Sprintf("/proc/self/fd/%d", k))
		}
		if len(paths) == 0 {
			return fmt.Errorf("no stdio fd was the same terminal at the dump")
		}
	}
	var errs []string
	for _, path := range paths {
		got, err := openTTY(r, path, flags)
		if err != nil {
			errs = append(errs, fmt.Sprintf("open %s: %v", path, err))
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", r.Pid(), got), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			errs = append(errs, fmt.Sprintf("%s is not a terminal at the restore", path))
			if _, err := r.Syscall(x86.SysClose, got); err != nil {
				return err
			}
			continue
		}
		return r.Place(int(got), num, cloexec)
	}
	return fmt.Errorf("the terminal it was (%s at the dump) cannot be opened again: %s", map[bool]string{true: "/dev/tty", false: "the task's stdio terminal"}[ti.GetType() == tty.TtyType_CTTY], strings.Join(errs, "; "))
}

// dumpedStdio lists the fds 0-2 that were terminal rdev in the dumped
// process that held file id at fd num (the one with the restored task's
// PID first).
func dumpedStdio(r Restorer, num int, id, rdev uint32) []int {
	d := r.Dump()
	var out []int
	for pass := 0; pass < 2 && len(out) == 0; pass++ {
		for _, p := range d.Procs {
			if (pass == 0) != (p.Pid == r.Pid()) {
				continue
			}
			holds := false
			for _, f := range p.Fds {
				holds = holds || (int(f.GetFd()) == num && f.GetId() == id)
			}
			if !holds {
				continue
			}
			for _, f := range p.Fds {
				if f.GetFd() <= 2 && f.GetType() == fdinfo.FdTypes_TTY {
					if ti := d.TtyInfos[d.Files[f.GetId()].GetTty().GetTtyInfoId()]; ti.GetRdev() == rdev && ti.GetType() == tty.TtyType_EXT_TTY {
						out = append(out, int(f.GetFd()))
					}
				}
			}
			if len(out) > 0 {
				break
			}
		}
	}
	return out
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

// outsideTTY reports a terminal fd of the dump that is not a pty of the
// tree's own: a terminal of the outside world (stdioKind's).
func outsideTTY(d *model.Dump, fd *fdinfo.FdinfoEntry) bool {
	if fd.GetType() != fdinfo.FdTypes_TTY {
		return false
	}
	return d.TtyInfos[d.Files[fd.GetId()].GetTty().GetTtyInfoId()].GetType() != tty.TtyType_PTY
}

// FinishTree puts the job that was in the foreground of its terminal at
// the dump in the foreground of the restore's (ckpt's controlling
// terminal, which the restored tree shares with --shell-job). A restore
// run without a terminal has none to give.
func (k *stdioKind) FinishTree() error {
	if k.fg == 0 {
		return nil
	}
	t, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // ENXIO: ckpt has no controlling terminal
	}
	defer unix.Close(t)
	if err := unix.IoctlSetPointerInt(t, unix.TIOCSPGRP, k.fg); err != nil {
		return fmt.Errorf("put the restored job %d in the foreground of the terminal, where it was: %w", k.fg, err)
	}
	return nil
}
