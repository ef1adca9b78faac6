//go:build linux && amd64

package restore

import (
	"fmt"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/model"
)

// Nested PID namespaces: a process of the tree in a PID namespace below
// the tree's top one has its PIDs there in model.Process.NsPids. Its
// parent clones it with set_tid naming each of them (clone3: set_tid[0]
// is the PID in the innermost namespace, then outward), and with
// CLONE_NEWPID when it is the init of a namespace its parent made.

// setTids is clone3's set_tid for process p: its PIDs from its own PID
// namespace out to the tree's top one; the namespaces above (ckpt's,
// when the tree has its own) choose freely.
func setTids(p *model.Process) []int32 {
	out := make([]int32, 0, len(p.NsPids)+1)
	for i := len(p.NsPids) - 1; i >= 0; i-- {
		out = append(out, int32(p.NsPids[i]))
	}
	return append(out, int32(p.Pid))
}

// threadSetTids is set_tid for thread i (as Tids) of process p.
func threadSetTids(p *model.Process, i int) []int32 {
	var out []int32
	if i < len(p.NsTids) {
		t := p.NsTids[i]
		for j := len(t) - 1; j >= 0; j-- {
			out = append(out, int32(t[j]))
		}
	}
	return append(out, int32(p.Tids[i]))
}

// pidSeenBy is process p's PID as its parent sees it (what clone3
// returns in the parent): in the parent's PID namespace.
func pidSeenBy(p, parent *model.Process) int {
	levels := append([]int{p.Pid}, p.NsPids...)
	if d := len(parent.NsPids); d < len(levels) {
		return levels[d]
	}
	return p.Pid
}

// nsView is the id, as process p's PID namespace names it, of the tree's
// process whose top-level PID is pid; 0 if that process is not in p's
// namespace (or not in the tree).
func nsView(p *model.Process, pid int) int {
	for _, q := range p.Tree.Procs {
		if q.Pid == pid && q.IDs.GetPidNsId() == p.IDs.GetPidNsId() && len(q.NsPids) == len(p.NsPids) {
			return q.VPid()
		}
	}
	return 0
}

// childrenPidNS finds, for a process whose next children go into another
// PID namespace than its own (model.PidForChildrenNsID), the restored
// init of that namespace: r.pidnsInit is its PID as r sees it, or -1 for
// a namespace without processes in the tree.
func childrenPidNS(rs []*restorer) {
	for _, r := range rs {
		id := model.PidForChildrenNsID(r.im.IDs)
		if id == 0 || r.im.Zombie {
			continue
		}
		r.pidnsInit = -1
		for _, x := range rs {
			if !x.im.Zombie && x.im.IDs.GetPidNsId() == id && x.im.VPid() == 1 {
				r.pidnsInit = pidSeenBy(x.im, r.im)
			}
		}
	}
}

// restorePidForChildren makes the process's next children go into the
// PID namespace they went into at the dump: setns into its init's (a
// namespace of the tree below the process's own; through a pidfd, as the
// process's /proc may not show the init), or a new one (unshare) for a
// namespace without processes. It comes after its threads exist: clone
// with CLONE_THREAD is refused once a process's pid_for_children is not
// its own namespace.
func (r *restorer) restorePidForChildren() error {
	switch {
	case r.pidnsInit == 0:
		return nil
	case r.pidnsInit < 0:
		if _, err := r.inj.Syscall(x86.SysUnshare, unix.CLONE_NEWPID); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWPID): %w", err)
		}
		return nil
	}
	fd, err := r.inj.Syscall(x86.SysPidfdOpen, uint64(r.pidnsInit), 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", r.pidnsInit, err)
	}
	_, err = r.inj.Syscall(x86.SysSetns, fd, unix.CLONE_NEWPID)
	if _, cerr := r.inj.Syscall(x86.SysClose, fd); cerr != nil && err == nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("setns into the PID namespace of %d: %w", r.pidnsInit, err)
	}
	return nil
}

// restoreNamespaces sets the content of the namespaces the new process
// was created in (package ns): UTS names and IPC settings from ckpt,
// mounts by syscalls injected into the process. It runs once the process
// has its scratch area, before it has children.
func (r *restorer) restoreNamespaces(parent *restorer) error {
	var pids *criucore.TaskKobjIdsEntry
	if parent != nil {
		pids = parent.im.IDs
	}
	if err := ns.Restore(r.im.Tree, r.pid, r.im.IDs, pids, nsTask{r}); err != nil {
		return fmt.Errorf("new task %d: %w", r.pid, err)
	}
	return nil
}

// nsTask is a restorer as package ns sees it.
type nsTask struct{ r *restorer }

func (t nsTask) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return t.r.inj.Syscall(s, args...)
}

func (t nsTask) PutString(off uint64, s string) (uint64, error) { return t.r.putString(off, s) }

func (t nsTask) Logf(format string, args ...any) {
	t.r.opts.logf("restore %d: "+format, append([]any{t.r.pid}, args...)...)
}
