package restore

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timerfd"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// checkInheritable makes sure every tty or pipe fd of the dump can be
// inherited: only stdio, and only with --shell-job.
func checkInheritable(im *Images, o *Options) error {
	for _, fd := range im.Fds {
		t := fd.GetType()
		if t == fdinfo.FdTypes_REG {
			continue
		}
		if t == fdinfo.FdTypes_EVENTFD || t == fdinfo.FdTypes_EVENTPOLL || t == fdinfo.FdTypes_TIMERFD || t == fdinfo.FdTypes_SIGNALFD || (t == fdinfo.FdTypes_PIPE && !inheritedStdio(fd)) {
			continue
		}
		if t != fdinfo.FdTypes_PIPE && t != fdinfo.FdTypes_TTY {
			return fmt.Errorf("fd %d has type %v, which ckpt cannot restore yet", fd.GetFd(), t)
		}
		if fd.GetFd() > 2 {
			return fmt.Errorf("fd %d was a %v: only stdio can be inherited", fd.GetFd(), t)
		}
		if !o.ShellJob {
			return fmt.Errorf("fd %d was a %v at dump time: restore with --shell-job to give the task this stdio", fd.GetFd(), t)
		}
	}
	return nil
}

// restoreFiles builds the dumped fd table. Fds that shared an open file
// description with the parent's (inherited across fork) are taken from
// the table the process inherited, so offsets stay shared; dup'ed fds are
// dup'ed again; the rest are opened by path. Every other fd is closed.
func (r *restorer) restoreFiles() error {
	maxFd := 2
	for _, fd := range r.im.Fds {
		maxFd = max(maxFd, int(fd.GetFd()))
	}
	r.maxFd = maxFd
	// Inherited descriptions this process needs move above every dumped
	// fd number first, so placing the others cannot close them.
	moved := map[uint32]int{}
	keep := map[int]bool{}
	for _, fd := range r.im.Fds {
		id := fd.GetId()
		if inheritedStdio(fd) {
			keep[int(fd.GetFd())] = true // inherited stdio stays in place
			continue
		}
		from, ok := r.inherited[id]
		if !ok {
			continue
		}
		if _, done := moved[id]; done {
			continue
		}
		got, err := r.inj.Syscall(x86.SysFcntl, uint64(from), unix.F_DUPFD, uint64(maxFd+1))
		if err != nil {
			return fmt.Errorf("fd %d: take inherited fd %d: %w", fd.GetFd(), from, err)
		}
		moved[id] = int(got)
		keep[int(got)] = true
	}
	cur, err := procfs.ListFds(r.pid)
	if err != nil {
		return err
	}
	for _, fd := range cur {
		if !keep[fd.Num] {
			if _, err := r.inj.Syscall(x86.SysClose, uint64(fd.Num)); err != nil {
				return fmt.Errorf("close inherited fd %d: %w", fd.Num, err)
			}
		}
	}
	r.fdIDs = map[uint32]int{}
	type epollFd struct {
		num int
		e   *eventpoll.EventpollFileEntry
	}
	var epolls []epollFd
	for _, fd := range r.im.Fds {
		num := int(fd.GetFd())
		id := fd.GetId()
		cloexec := fd.GetFlags()&image.FdFlagCloexec != 0
		if inheritedStdio(fd) {
			r.fdIDs[id] = num
			continue
		}
		from, ok := r.fdIDs[id]
		if !ok {
			from, ok = moved[id]
		}
		if ok {
			var dflags uint64
			if cloexec {
				dflags = unix.O_CLOEXEC
			}
			if _, err := r.inj.Syscall(x86.SysDup3, uint64(from), uint64(num), dflags); err != nil {
				return fmt.Errorf("fd %d: dup3 of fd %d: %w", num, from, err)
			}
			r.fdIDs[id] = num
			continue
		}
		switch fd.GetType() {
		case fdinfo.FdTypes_REG:
		case fdinfo.FdTypes_PIPE:
			f := r.im.Files[id]
			if f.GetPipe() == nil {
				return fmt.Errorf("fd %d: pipe entry %d without data", num, id)
			}
			if err := r.openPipe(num, f.GetPipe(), cloexec); err != nil {
				return fmt.Errorf("fd %d (pipe %d): %w", num, f.GetPipe().GetPipeId(), err)
			}
			r.fdIDs[id] = num
			continue
		case fdinfo.FdTypes_TIMERFD:
			f := r.im.Files[id]
			if f.GetTfd() == nil {
				return fmt.Errorf("fd %d: timerfd entry %d without data", num, id)
			}
			if err := r.createTimerfd(num, f.GetTfd(), cloexec); err != nil {
				return fmt.Errorf("fd %d (timerfd): %w", num, err)
			}
			r.fdIDs[id] = num
			continue
		case fdinfo.FdTypes_SIGNALFD:
			f := r.im.Files[id]
			if f.GetSgfd() == nil {
				return fmt.Errorf("fd %d: signalfd entry %d without data", num, id)
			}
			b := make([]byte, 8)
			binary.LittleEndian.PutUint64(b, f.GetSgfd().GetSigmask())
			p, err := r.put(0, b)
			if err != nil {
				return err
			}
			got, err := r.inj.Syscall(x86.SysSignalfd4, ^uint64(0), p, 8, uint64(f.GetSgfd().GetFlags()&unix.O_NONBLOCK))
			if err != nil {
				return fmt.Errorf("fd %d: signalfd4: %w", num, err)
			}
			if err := r.place(int(got), num, cloexec); err != nil {
				return fmt.Errorf("fd %d: %w", num, err)
			}
			r.fdIDs[id] = num
			continue
		case fdinfo.FdTypes_EVENTFD:
			f := r.im.Files[id]
			if f.GetEfd() == nil {
				return fmt.Errorf("fd %d: eventfd entry %d without data", num, id)
			}
			if err := r.createEventfd(num, f.GetEfd(), cloexec); err != nil {
				return fmt.Errorf("fd %d: %w", num, err)
			}
			r.fdIDs[id] = num
			continue
		case fdinfo.FdTypes_EVENTPOLL:
			f := r.im.Files[id]
			if f.GetEpfd() == nil {
				return fmt.Errorf("fd %d: epoll entry %d without data", num, id)
			}
			got, err := r.inj.Syscall(x86.SysEpollCreate1, 0)
			if err != nil {
				return fmt.Errorf("fd %d: epoll_create1: %w", num, err)
			}
			if err := r.place(int(got), num, cloexec); err != nil {
				return fmt.Errorf("fd %d: %w", num, err)
			}
			epolls = append(epolls, epollFd{num, f.GetEpfd()})
			r.fdIDs[id] = num
			continue
		default:
			return fmt.Errorf("fd %d: a %v that is not inherited stdio", num, fd.GetType())
		}
		f, err := r.im.RegFile(id)
		if err != nil {
			return fmt.Errorf("fd %d: %w", num, err)
		}
		reg := f.GetReg()
		if err := r.openAt(num, reg.GetName(), reg.GetFlags(), cloexec, reg.GetPos()); err != nil {
			return fmt.Errorf("fd %d (%s): %w", num, reg.GetName(), err)
		}
		r.fdIDs[id] = num
	}
	for _, tmp := range moved {
		if _, err := r.inj.Syscall(x86.SysClose, uint64(tmp)); err != nil {
			return fmt.Errorf("close fd %d: %w", tmp, err)
		}
	}
	for id, sp := range r.spares {
		if _, err := r.inj.Syscall(x86.SysClose, uint64(sp.fd)); err != nil {
			return fmt.Errorf("close unused end of pipe %d: %w", id, err)
		}
		delete(r.spares, id)
	}
	for _, ep := range epolls {
		if err := r.addEpollTargets(ep.num, ep.e); err != nil {
			return err
		}
	}
	return nil
}

// openAt opens path in the task and puts it at fd number num.
func (r *restorer) openAt(num int, path string, flags uint32, cloexec bool, pos uint64) error {
	p, err := r.putString(0, path)
	if err != nil {
		return err
	}
	flags &^= unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_CLOEXEC
	// The 64-bit openat adds O_LARGEFILE to every file it opens; an ia32
	// task's files are opened with the ia32 call so their flags stay as
	// the task set them.
	var got uint64
	if r.im.Compat {
		got, err = r.inj.Syscall32(x86.SysOpenat, atFdcwd, p, uint64(flags), 0)
	} else {
		got, err = r.inj.Syscall(x86.SysOpenat, atFdcwd, p, uint64(flags), 0)
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if err := r.place(int(got), num, cloexec); err != nil {
		return err
	}
	if pos != 0 {
		if _, err := r.inj.Syscall(x86.SysLseek, uint64(num), pos, unix.SEEK_SET); err != nil {
			return fmt.Errorf("lseek to %d: %w", pos, err)
		}
	}
	return nil
}

// place moves the new fd tmp to number num with its close-on-exec flag.
func (r *restorer) place(tmp, num int, cloexec bool) error {
	if tmp != num {
		var dflags uint64
		if cloexec {
			dflags = unix.O_CLOEXEC
		}
		if _, err := r.inj.Syscall(x86.SysDup3, uint64(tmp), uint64(num), dflags); err != nil {
			return fmt.Errorf("dup3: %w", err)
		}
		if _, err := r.inj.Syscall(x86.SysClose, uint64(tmp)); err != nil {
			return fmt.Errorf("close: %w", err)
		}
	} else if cloexec {
		if _, err := r.inj.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("fcntl(F_SETFD): %w", err)
		}
	}
	return nil
}

// openPipe puts one end of a dumped pipe at num. The first end restored
// in a process creates the pipe, sized and filled with its dumped bytes,
// and keeps the other end aside (above every dumped fd) for the process's
// fd of that end. Other ends, in this process or another, are opened
// through /proc/PID/fd/N of an end that exists: a new open file on the
// same pipe (which the 64-bit openat marks O_LARGEFILE).
func (r *restorer) openPipe(num int, pe *pipe.PipeEntry, cloexec bool) error {
	id := pe.GetPipeId()
	flags := uint64(pe.GetFlags()) &^ unix.O_CLOEXEC
	write := flags&unix.O_ACCMODE == unix.O_WRONLY
	if sp, ok := r.spares[id]; ok && sp.write == write {
		delete(r.spares, id)
		if err := r.place(sp.fd, num, cloexec); err != nil {
			return err
		}
		return r.setPipeFlags(num, flags)
	}
	if path, ok := r.pipes[id]; ok {
		p, err := r.putString(0, path)
		if err != nil {
			return err
		}
		// O_NONBLOCK, so that opening an end never waits for the other.
		got, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, p, (flags&unix.O_ACCMODE)|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		if err := r.place(int(got), num, cloexec); err != nil {
			return err
		}
		return r.setPipeFlags(num, flags)
	}
	p, err := r.put(0, make([]byte, 8))
	if err != nil {
		return err
	}
	if _, err := r.inj.Syscall(x86.SysPipe2, p, 0); err != nil {
		return fmt.Errorf("pipe2: %w", err)
	}
	b, err := r.readTask(p, p+8)
	if err != nil {
		return err
	}
	rfd, wfd := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:]))
	pd := r.im.Pipes[id]
	if pd.Size > 0 {
		if _, err := r.inj.Syscall(x86.SysFcntl, uint64(rfd), unix.F_SETPIPE_SZ, uint64(pd.Size)); err != nil {
			return fmt.Errorf("pipe size %d: %w", pd.Size, err)
		}
	}
	if len(pd.Data) > 0 {
		w, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", r.pid, wfd), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open the new pipe: %w", err)
		}
		_, err = w.Write(pd.Data)
		w.Close()
		if err != nil {
			return fmt.Errorf("refill %d bytes: %w", len(pd.Data), err)
		}
	}
	mine, other := rfd, wfd
	if write {
		mine, other = wfd, rfd
	}
	moved, err := r.inj.Syscall(x86.SysFcntl, uint64(other), unix.F_DUPFD, uint64(r.maxFd+1))
	if err != nil {
		return fmt.Errorf("set the other end aside: %w", err)
	}
	if _, err := r.inj.Syscall(x86.SysClose, uint64(other)); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if r.spares == nil {
		r.spares = map[uint32]pipeSpare{}
	}
	r.spares[id] = pipeSpare{fd: int(moved), write: !write}
	if err := r.place(mine, num, cloexec); err != nil {
		return err
	}
	r.pipes[id] = fmt.Sprintf("/proc/%d/fd/%d", r.pid, num)
	return r.setPipeFlags(num, flags)
}

// pipeSpare is the end of a pipe created in this process that no fd of
// it took yet.
type pipeSpare struct {
	fd    int
	write bool
}

// setPipeFlags sets the file status flags (O_NONBLOCK, ...) of a pipe end.
func (r *restorer) setPipeFlags(num int, flags uint64) error {
	if _, err := r.inj.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, flags&^unix.O_ACCMODE); err != nil {
		return fmt.Errorf("fcntl(F_SETFL): %w", err)
	}
	return nil
}

// createTimerfd makes a timerfd on the dumped clock, armed with the time
// that was left (relative: an absolute timer was shown as time left too),
// and with the expirations that were not read yet.
func (r *restorer) createTimerfd(num int, t *timerfd.TimerfdEntry, cloexec bool) error {
	got, err := r.inj.Syscall(x86.SysTimerfdCreate, uint64(t.GetClockid()), uint64(t.GetFlags()&unix.O_NONBLOCK))
	if err != nil {
		return fmt.Errorf("timerfd_create: %w", err)
	}
	if err := r.place(int(got), num, cloexec); err != nil {
		return err
	}
	if t.GetVsec() != 0 || t.GetVnsec() != 0 {
		p, err := r.put(0, uapi.Itimerspec{
			Interval: uapi.Timespec{Sec: int64(t.GetIsec()), Nsec: int64(t.GetInsec())},
			Value:    uapi.Timespec{Sec: int64(t.GetVsec()), Nsec: int64(t.GetVnsec())},
		}.Bytes())
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysTimerfdSettime, uint64(num), 0, p, 0); err != nil {
			return fmt.Errorf("timerfd_settime: %w", err)
		}
	}
	if n := t.GetTicks(); n != 0 {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, n)
		p, err := r.put(0, b)
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysIoctl, uint64(num), uapi.TFD_IOC_SET_TICKS, p); err != nil {
			return fmt.Errorf("set %d unread expirations: %w", n, err)
		}
	}
	return nil
}

// createEventfd makes an eventfd with the dumped counter and flags at num.
func (r *restorer) createEventfd(num int, e *eventfd.EventfdFileEntry, cloexec bool) error {
	flags := uint64(e.GetFlags() & (unix.O_NONBLOCK | unix.EFD_SEMAPHORE))
	got, err := r.inj.Syscall(x86.SysEventfd2, 0, flags)
	if err != nil {
		return fmt.Errorf("eventfd2: %w", err)
	}
	if err := r.place(int(got), num, cloexec); err != nil {
		return err
	}
	if c := e.GetCounter(); c != 0 {
		// eventfd2 takes a 32-bit initial value; write(2) adds any 64-bit one.
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, c)
		p, err := r.put(0, b)
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysWrite, uint64(num), p, 8); err != nil {
			return fmt.Errorf("set eventfd counter %d: %w", c, err)
		}
	}
	return nil
}

// addEpollTargets adds the dumped targets to the epoll fd at num, once
// every fd of the table is in place.
func (r *restorer) addEpollTargets(num int, e *eventpoll.EventpollFileEntry) error {
	for _, t := range e.GetTfd() {
		p, err := r.put(0, uapi.EpollEvent{Events: t.GetEvents(), Data: t.GetData()}.Bytes())
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysEpollCtl, uint64(num), unix.EPOLL_CTL_ADD, uint64(t.GetTfd()), p); err != nil {
			return fmt.Errorf("epoll fd %d: add fd %d (events %#x): %w", num, t.GetTfd(), t.GetEvents(), err)
		}
	}
	return nil
}

// restoreFS sets cwd, root and umask, unless the task shares them with
// its parent (CLONE_FS), which set them.
func (r *restorer) restoreFS() error {
	if r.sharedFS {
		return nil
	}
	fs := r.im.FS
	root, err := r.im.RegFile(fs.GetRootId())
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	cwd, err := r.im.RegFile(fs.GetCwdId())
	if err != nil {
		return fmt.Errorf("cwd: %w", err)
	}
	rootPath := root.GetReg().GetName()
	cwdPath := cwd.GetReg().GetName()
	if p, err := r.putString(0, cwdPath); err != nil {
		return err
	} else if _, err := r.inj.Syscall(x86.SysChdir, p); err != nil {
		return fmt.Errorf("chdir %s: %w", cwdPath, err)
	}
	if filepath.Clean(rootPath) != "/" {
		if p, err := r.putString(0, rootPath); err != nil {
			return err
		} else if _, err := r.inj.Syscall(x86.SysChroot, p); err != nil {
			return fmt.Errorf("chroot %s: %w", rootPath, err)
		}
	}
	if _, err := r.inj.Syscall(x86.SysUmask, uint64(fs.GetUmask())); err != nil {
		return fmt.Errorf("umask %s: %w", strconv.FormatUint(uint64(fs.GetUmask()), 8), err)
	}
	return nil
}

// inheritedStdio reports a tty or pipe at fd 0-2, which the task gets
// from whoever runs the restore (--shell-job).
func inheritedStdio(fd *fdinfo.FdinfoEntry) bool {
	t := fd.GetType()
	return (t == fdinfo.FdTypes_PIPE || t == fdinfo.FdTypes_TTY) && fd.GetFd() <= 2
}
