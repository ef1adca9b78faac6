//go:build linux && amd64

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
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	attrs "github.com/ckpt/ckpt/internal/kinds/task"
	"github.com/ckpt/ckpt/internal/kinds/vma"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// openFile is one fd of a task with its kind.
type openFile struct {
	fd.File
	kind fd.Kind
}

// task is one process of the tree being dumped.
type task struct {
	opts    *Options
	kinds   *fd.Kinds
	pid     int
	index   int // 1-based position in the tree: the id of its pages, fd table, ...
	abi     x86.ABI
	exe     string
	exeSt   unix.Stat_t
	stat    *procfs.Stat
	status  *procfs.Status
	files   []openFile
	inj     *inject.Task
	threads []ptrace.Thread // seized threads, the leader first
	// undo is the run's undo stack (set once the tree is being frozen):
	// each seize and injection pushes what puts the task back.
	s      *ptrace.Session // the run's: seizes, and the undo stack
	zombie bool            // exited, not yet reaped: only its pstree entry and exit status
	// stopSig is the signal of the group-stop the task was in when it
	// was frozen (SIGSTOP, SIGTSTP, ...), 0 if it ran.
	stopSig int
	// filesOf and fsOf are the index of the task whose fd table, or cwd,
	// root and umask, this one shares (CLONE_FILES, CLONE_FS); 0 if its own.
	filesOf, fsOf int
	// ns is set when the tree runs in a PID namespace of its own (its
	// root is that namespace's init): the images then name every task by
	// its PID inside it.
	ns bool
	// top is the index, in the NSpid, NSpgid and NSsid lists, of the
	// tree's top PID namespace (the root's): the ids the images name
	// tasks by. A task in a PID namespace below it (nested) has more.
	top int
	// later is set when the task's private pages are to be read from a
	// copy-on-write snapshot once the tree is released (snapshot.go);
	// dumpMemory then leaves them to it.
	later *laterPages
	// released: the tree was let go before the dump ended (its pages
	// come from snapshots); ptrace handles of its threads are stale.
	released bool
}

// virt returns a task's id in the tree's top PID namespace from its
// NSpid, NSpgid or NSsid list when the tree has its own PID namespace,
// else the host id.
func (t *task) virt(ids []int, host int) int {
	if t.ns && len(ids) > t.top {
		return ids[t.top]
	}
	return host
}

// nsPids are the task's PIDs in the PID namespaces below the tree's top
// one, outermost first (model.NsPids): empty unless it is nested.
func (t *task) nsPids() []int {
	if t.status == nil || len(t.status.NSpid) <= t.top+1 {
		return nil
	}
	return t.status.NSpid[t.top+1:]
}

// nsTids are, for each thread but the leader (in the order of threads),
// its ids in the PID namespaces below the tree's top one; nil unless the
// task is nested.
func (t *task) nsTids() ([][]int, error) {
	levels := len(t.nsPids())
	if levels == 0 {
		return nil, nil
	}
	var out [][]int
	for _, th := range t.threads {
		if th.Tid == t.pid {
			continue
		}
		st, err := procfs.ReadTaskStatus(t.pid, th.Tid)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", th.Tid, err)
		}
		if len(st.NSpid) != t.top+1+levels {
			return nil, fmt.Errorf("thread %d: NSpid %v, its process's is %v", th.Tid, st.NSpid, t.status.NSpid)
		}
		out = append(out, st.NSpid[t.top+1:])
	}
	return out, nil
}

// vpid is the task's PID as the images name it.
func (t *task) vpid() int {
	if t.status == nil {
		return t.pid
	}
	return t.virt(t.status.NSpid, t.pid)
}

// inspect checks, without stopping the task, that ckpt can dump it.
func inspect(o *Options, k *fd.Kinds, pid, index int) (*task, error) {
	t := &task{opts: o, kinds: k, pid: pid, index: index}
	var err error
	if t.stat, err = procfs.ReadStat(pid); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no such process")
		}
		return nil, err
	}
	if t.stat.Flags&uapi.PF_KTHREAD != 0 {
		return nil, fmt.Errorf("%d (%s) is a kernel thread: only user processes can be dumped", pid, t.stat.Comm)
	}
	if pid == 1 {
		return nil, fmt.Errorf("pid 1 (%s) is the init of the host (of ckpt's PID namespace): it cannot be dumped, nor can a tree that contains it", t.stat.Comm)
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
	if t.status.TracerPid != 0 && t.status.TracerPid != unix.Gettid() {
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
	if err := attrs.InspectAll(pid); err != nil {
		return nil, err
	}
	if err := inspectMemory(o, pid, o.GhostLimit); err != nil {
		return nil, err
	}
	if err := t.inspectFiles(); err != nil {
		return nil, err
	}
	// Before the task is frozen, which would interrupt the wait.
	if err := fd.CheckLockWaits(pid); err != nil {
		return nil, err
	}
	return t, nil
}

// fdOptions are the options the kinds of files see.
func (o *Options) fdOptions() fd.Options {
	return fd.Options{ShellJob: o.ShellJob, FileLocks: o.FileLocks, GhostLimit: o.GhostLimit, LinkRemap: o.LinkRemap, ExtUnixSk: o.ExtUnixSk,
		TcpEstablished: o.TcpEstablished, TcpClose: o.TcpClose, LeaveRunning: o.LeaveRunning}
}

// inspectMemory refuses, before the freeze, a task with a memory area of
// a kind the dump would refuse (the dump classifies the areas again
// once the task is stopped: they may change meanwhile).
func inspectMemory(o *Options, pid int, ghostLimit int64) error {
	areas, err := procfs.ReadSmaps(pid)
	if err != nil {
		return err
	}
	for _, se := range areas {
		k, err := vma.Classify(pid, o.withoutTracking(pid, se))
		if err != nil {
			return err
		}
		if k.Class == vma.File {
			if _, err := mappedFileStat(pid, se.VMA, ghostLimit, o.LinkRemap); err != nil {
				return err
			}
		}
		if k.Class == vma.SysVShm {
			if err := ns.CheckShmAttach(pid, se.VMA); err != nil {
				return err
			}
		}
		if k.Class == vma.Hugetlb {
			if _, err := vma.HugetlbFlags(pid, se); err != nil {
				return err
			}
		}
		if k.Class == vma.AIORing {
			if _, err := vma.ReadAIORing(pid, se.VMA); err != nil {
				return err
			}
		}
	}
	return nil
}

// inspectFiles lists the task's fds and finds the kind of each, or
// refuses the first that no kind takes.
func (t *task) inspectFiles() error {
	pid := t.pid
	t.files = nil
	fds, err := procfs.ListFds(pid)
	if err != nil {
		return err
	}
	o := t.opts.fdOptions()
	for _, l := range fds {
		of := openFile{File: fd.File{Fd: l.Num, Path: l.Target, Pid: pid}}
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, l.Num), &of.Stat); err != nil {
			return fmt.Errorf("fd %d (%s): stat: %w", l.Num, l.Target, err)
		}
		if of.Stat.Mode&unix.S_IFMT == unix.S_IFREG {
			var sfs unix.Statfs_t
			if err := unix.Statfs(fmt.Sprintf("/proc/%d/fd/%d", pid, l.Num), &sfs); err != nil {
				return fmt.Errorf("fd %d (%s): statfs: %w", l.Num, l.Target, err)
			}
			of.FsType = sfs.Type
		}
		if of.Info, err = procfs.ReadFdInfo(pid, l.Num); err != nil {
			return fmt.Errorf("fd %d (%s): %w", l.Num, l.Target, err)
		}
		if of.kind, err = t.kinds.Classify(pid, &of.File, o); err != nil {
			return err
		}
		t.files = append(t.files, of)
	}
	return nil
}
