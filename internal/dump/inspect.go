package dump

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/procfs"
)

// fileKind is how ckpt handles one open file.
type fileKind int

const (
	fileReg      fileKind = iota // regular file or directory, reopened by path
	fileChr                      // character device, reopened by path
	fileInherit                  // tty or pipe stdio, inherited with --shell-job
	fileEventfd                  // eventfd: counter and flags
	fileEpoll                    // epoll instance: its targets
	filePipe                     // pipe end, with the pipe's buffered data
	fileTimerfd                  // timerfd: clock, time left, interval, ticks
	fileSignalfd                 // signalfd: its mask
)

type openFile struct {
	fd     int
	kind   fileKind
	path   string
	st     unix.Stat_t
	info   *procfs.FdInfo
	isPipe bool
}

// task is one process of the tree being dumped.
type task struct {
	opts   *Options
	pid    int
	index  int // 1-based position in the tree: the id of its pages, fd table, ...
	abi    x86.ABI
	exe    string
	exeSt  unix.Stat_t
	stat   *procfs.Stat
	status *procfs.Status
	files  []openFile
	inj    *inject.Task
	tids   []int // seized threads, the leader first
	zombie bool  // exited, not yet reaped: only its pstree entry and exit status
	// filesOf and fsOf are the index of the task whose fd table, or cwd,
	// root and umask, this one shares (CLONE_FILES, CLONE_FS); 0 if its own.
	filesOf, fsOf int
	// ns is set when the tree runs in a PID namespace of its own (its
	// root is that namespace's init): the images then name every task by
	// its PID inside it.
	ns bool
}

// virt returns the innermost of a task's ids (NSpid, NSpgid, NSsid lines)
// when the tree has its own PID namespace, else the host id.
func (t *task) virt(ids []int, host int) int {
	if t.ns && len(ids) > 0 {
		return ids[len(ids)-1]
	}
	return host
}

// vpid is the task's PID as the images name it.
func (t *task) vpid() int {
	if t.status == nil {
		if st, err := procfs.ReadStatus(t.pid); err == nil {
			t.status = st
		}
	}
	if t.status == nil {
		return t.pid
	}
	return t.virt(t.status.NSpid, t.pid)
}

// inspect checks, without stopping the task, that ckpt can dump it.
func inspect(o *Options, pid, index int) (*task, error) {
	t := &task{opts: o, pid: pid, index: index}
	var err error
	if t.stat, err = procfs.ReadStat(pid); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no such process")
		}
		return nil, err
	}
	if t.stat.State == 'Z' || t.stat.State == 'X' {
		return nil, fmt.Errorf("task is a zombie")
	}
	if pid == os.Getpid() {
		return nil, fmt.Errorf("ckpt cannot dump itself")
	}
	if t.status, err = procfs.ReadStatus(pid); err != nil {
		return nil, err
	}
	// A child forked after its parent was seized is already ours.
	if t.status.TracerPid != 0 && t.status.TracerPid != os.Getpid() {
		return nil, fmt.Errorf("task is already traced by %d", t.status.TracerPid)
	}
	if t.status.Tgid != pid {
		return nil, fmt.Errorf("%d is a thread of process %d: dump the process", pid, t.status.Tgid)
	}
	if t.exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil {
		return nil, fmt.Errorf("read exe link: %w", err)
	}
	exeF, err := os.Open(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, fmt.Errorf("open exe %s: %w", t.exe, err)
	}
	defer exeF.Close()
	if err := unix.Fstat(int(exeF.Fd()), &t.exeSt); err != nil {
		return nil, fmt.Errorf("stat exe %s: %w", t.exe, err)
	}
	if t.abi, err = x86.ExecutableABI(exeF); err != nil {
		return nil, fmt.Errorf("exe %s: %w", t.exe, err)
	}
	if t.abi == x86.ABIX32 {
		return nil, &ckerr.UnsupportedError{Task: pid, Object: "exe " + t.exe, Reason: x86.ErrX32.Error(), Err: x86.ErrX32}
	}
	if strings.HasSuffix(t.exe, " (deleted)") {
		return nil, ckerr.Unsupported(pid, "exe "+t.exe, "the executable was deleted: restore needs it on disk")
	}
	if err := t.inspectFiles(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *task) inspectFiles() error {
	pid := t.pid
	t.files = nil
	fds, err := procfs.ListFds(pid)
	if err != nil {
		return err
	}
	for _, fd := range fds {
		of := openFile{fd: fd.Num, path: fd.Target}
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd.Num), &of.st); err != nil {
			return fmt.Errorf("fd %d (%s): stat: %w", fd.Num, fd.Target, err)
		}
		if of.info, err = procfs.ReadFdInfo(pid, fd.Num); err != nil {
			return fmt.Errorf("fd %d (%s): %w", fd.Num, fd.Target, err)
		}
		mode := of.st.Mode & unix.S_IFMT
		isTTY := mode == unix.S_IFCHR && (strings.HasPrefix(fd.Target, "/dev/pts/") || strings.HasPrefix(fd.Target, "/dev/tty") || fd.Target == "/dev/console")
		switch {
		case mode == unix.S_IFIFO && strings.HasPrefix(fd.Target, "pipe:") && !(t.opts.ShellJob && fd.Num <= 2):
			of.kind = filePipe
		case mode == unix.S_IFIFO && strings.HasPrefix(fd.Target, "pipe:"), isTTY:
			if !t.opts.ShellJob || fd.Num > 2 {
				what := "a tty"
				if mode == unix.S_IFIFO {
					what = "a pipe"
				}
				hint := "dump with --shell-job to inherit stdio at restore"
				if fd.Num > 2 {
					hint = "only stdio (fds 0-2) can be inherited with --shell-job"
				}
				return ckerr.Unsupported(pid, fmt.Sprintf("fd %d, %s (%s)", fd.Num, what, fd.Target), "ckpt cannot dump it yet; "+hint)
			}
			of.kind = fileInherit
			of.isPipe = mode == unix.S_IFIFO
		case mode == unix.S_IFREG || mode == unix.S_IFDIR:
			if strings.HasSuffix(fd.Target, " (deleted)") {
				return ckerr.Unsupported(pid, fmt.Sprintf("fd %d, file %s", fd.Num, fd.Target), "the file was deleted: deleted files are not supported yet")
			}
			if !strings.HasPrefix(fd.Target, "/") {
				return ckerr.Unsupported(pid, fmt.Sprintf("fd %d (%s)", fd.Num, fd.Target), "not a file with a path: not supported yet")
			}
			of.kind = fileReg
		case mode == unix.S_IFCHR:
			of.kind = fileChr
		case fd.Target == "anon_inode:[eventfd]":
			of.kind = fileEventfd
		case fd.Target == "anon_inode:[eventpoll]":
			of.kind = fileEpoll
		case fd.Target == "anon_inode:[timerfd]":
			of.kind = fileTimerfd
		case fd.Target == "anon_inode:[signalfd]":
			of.kind = fileSignalfd
		default:
			return ckerr.Unsupported(pid, fmt.Sprintf("fd %d, %s (%s)", fd.Num, describeFd(fd.Target, mode), fd.Target), "ckpt cannot dump it yet; close it before the dump")
		}
		t.files = append(t.files, of)
	}
	return nil
}

// describeFd names the kind of an unsupported fd for the error message.
func describeFd(target string, mode uint32) string {
	switch {
	case strings.HasPrefix(target, "anon_inode:[eventfd]"):
		return "an eventfd"
	case strings.HasPrefix(target, "anon_inode:[eventpoll]"):
		return "an epoll instance"
	case strings.HasPrefix(target, "anon_inode:[signalfd]"):
		return "a signalfd"
	case strings.HasPrefix(target, "anon_inode:[timerfd]"):
		return "a timerfd"
	case strings.HasPrefix(target, "anon_inode:inotify"):
		return "an inotify instance"
	case strings.HasPrefix(target, "anon_inode:[pidfd]"):
		return "a pidfd"
	case strings.HasPrefix(target, "anon_inode:"):
		return "an anonymous inode " + strings.TrimPrefix(target, "anon_inode:")
	case strings.HasPrefix(target, "socket:"):
		return "a socket"
	case strings.HasPrefix(target, "pipe:"):
		return "a pipe"
	case mode == unix.S_IFIFO:
		return "a FIFO"
	case mode == unix.S_IFBLK:
		return "a block device"
	case strings.HasPrefix(target, "/memfd:"):
		return "a memfd"
	}
	return "an unsupported file"
}
