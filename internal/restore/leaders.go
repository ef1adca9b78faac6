//go:build linux && amd64

package restore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Sessions whose leader is gone. A double-forked daemon is the usual
// case: a process forks, the child calls setsid() and forks again, and
// exits; the grandchild lives on in a session (and a process group) whose
// leader's PID no longer names a process. A task can only enter a session
// by being born in it (or by making its own with setsid), so such a task
// is created from a temporary process that has the session's PID and
// calls setsid (and, if the task's group is another one whose leader is
// gone too, from a second temporary process, born in that session, that
// has the group's PID and calls setpgid). Each temporary leader creates
// the next process with CLONE_PARENT, so that the task is its real
// parent's child (ckpt's for the root); then the leaders are killed and
// reaped, as the originals had ended. The session and the group live on
// in the task, and their numbers stay taken while they do.

// chainLeader is one temporary session or group leader.
type chainLeader struct {
	inj  *inject.Task // injects into it; the next process is cloned from it
	step *ptrace.Step // its kill (and reap by its parent)
}

// leaderChain is the temporary leaders one task is created from, the
// session leader first; a nil chain creates nothing.
type leaderChain []*chainLeader

// from is the process the task is cloned from (with CLONE_PARENT), nil
// for none.
func (c leaderChain) from() *inject.Task {
	if len(c) == 0 {
		return nil
	}
	return c[len(c)-1].inj
}

// end kills the leaders, the newest first, and has their parent reap
// them; the session and group live on in the task created from them.
func (c leaderChain) end() error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		errs = append(errs, c[i].step.Run())
	}
	return errors.Join(errs...)
}

// pidExists reports whether a process with this PID exists here.
func pidExists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// rootLeaders makes, from the helper, the temporary leaders the root
// needs: when its session leader is neither the root, nor in the dump, nor
// any process here (it has ended), a session leader with the dumped sid;
// then, when the root's group is another one whose leader is gone too, a
// group leader with the dumped pgid. A root restored with --shell-job
// joins ckpt's session instead, and one in its own PID namespace sees its
// session from outside (sid 0): neither gets leaders. args is where the
// clone arguments go in the helper's memory.
func (r *restorer) rootLeaders(helper *inject.Task, args uint64, inTree map[int]*restorer) (leaderChain, error) {
	ps := r.im.Pstree
	sid, pgid := int(ps.GetSid()), int(ps.GetPgid())
	if r.opts.ShellJob || r.im.OwnPidNS || sid == 0 || sid == r.im.Pid || inTree[sid] != nil || pidExists(sid) {
		return nil, nil
	}
	r.opts.logf("restore: the session leader %d of task %d is gone: a temporary one makes the session", sid, r.im.Pid)
	var c leaderChain
	l, err := r.newLeader(helper, args, sid, true, nil)
	if err != nil {
		return c, err
	}
	c = append(c, l)
	if pgid != sid && pgid != r.im.Pid && inTree[pgid] == nil {
		r.opts.logf("restore: the group leader %d of task %d is gone: a temporary one makes the group", pgid, r.im.Pid)
		l, err := r.newLeader(l.inj, args, pgid, false, nil)
		if err != nil {
			return c, err
		}
		c = append(c, l)
	}
	fault.Panic(fault.RestoreLeaders)
	return c, nil
}

// memberLeaders makes, from the restored parent, the temporary leaders
// that tree member c needs when its session is not its parent's and the
// session's leader is not in the dump: a session leader with the dumped
// sid, and a group leader as for the root. made holds the sessions and
// groups made so far; a second member of a made session that is not born
// from the first (its parent is outside that session) is not supported.
func (c *restorer) memberLeaders(parent *restorer, inTree map[int]*restorer, made map[int]bool) (leaderChain, error) {
	ps, pps := c.im.Pstree, parent.im.Pstree
	sid, pgid := int(ps.GetSid()), int(ps.GetPgid())
	if c.im.OwnPidNS || sid == 0 || sid == c.im.Pid || sid == int(pps.GetSid()) || inTree[sid] != nil {
		return nil, nil
	}
	if len(c.im.NsPids) > 0 {
		// In a nested PID namespace, a session from outside it cannot be
		// made from inside (see joinSession).
		return nil, nil
	}
	if made[sid] {
		return nil, fmt.Errorf("session %d, whose leader is gone, holds task %d and another task that is not its ancestor: not supported yet", sid, c.im.Pid)
	}
	c.opts.logf("restore: the session leader %d of task %d is gone: a temporary one makes the session", sid, c.im.Pid)
	var ch leaderChain
	l, err := parent.newLeader(parent.inj, parent.data(0), sid, true, parent)
	if err != nil {
		return ch, err
	}
	ch = append(ch, l)
	made[sid] = true
	if pgid != sid && pgid != c.im.Pid && inTree[pgid] == nil && !made[pgid] {
		c.opts.logf("restore: the group leader %d of task %d is gone: a temporary one makes the group", pgid, c.im.Pid)
		l, err := parent.newLeader(l.inj, parent.data(0), pgid, false, parent)
		if err != nil {
			return ch, err
		}
		ch = append(ch, l)
		made[pgid] = true
	}
	fault.Panic(fault.RestoreMemberLeaders)
	return ch, nil
}

// newLeader has src clone a process with PID id (as src's PID namespace
// names it) that calls setsid (session) or setpgid(0, 0). Cloned from a
// temporary leader, it is that leader's sibling (CLONE_PARENT), so that
// every process of a chain is parent's child (ckpt's when parent is nil).
// Cloned by a restored parent, it gets SIGCHLD as its exit signal: the
// task a leader clones with CLONE_PARENT inherits the leader's, and must
// have the one it had (the parent's SIGCHLD of it is dropped, see
// dropSigchld). args is an address writable in src for clone's arguments.
func (r *restorer) newLeader(src *inject.Task, args uint64, id int, session bool, parent *restorer) (*chainLeader, error) {
	what := fmt.Sprintf("the temporary leader of group %d", id)
	if session {
		what = fmt.Sprintf("the temporary leader of session %d", id)
	}
	ca := uapi.CloneArgs{Flags: unix.CLONE_PARENT}
	if parent != nil && src == parent.inj {
		ca = uapi.CloneArgs{ExitSignal: uint64(unix.SIGCHLD)}
	}
	b := ca.WithSetTid(args, int32(id))
	if err := src.T.WriteBytes(args, b); err != nil {
		return nil, fmt.Errorf("make %s: write clone_args: %w", what, err)
	}
	got, err := src.Syscall(x86.SysClone3, args, uapi.SizeofCloneArgs)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("make %s, which is gone: %w", what, pidInUse(id))
		}
		return nil, fmt.Errorf("make %s, which is gone: clone3: %w", what, err)
	}
	if int(got) != id {
		return nil, fmt.Errorf("make %s: clone3 gave pid %d", what, got)
	}
	th := src.Children[len(src.Children)-1]
	l := &chainLeader{step: r.killStep(what, th.Tid, id, parent)}
	st, err := th.Wait()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if st.Signal() != unix.SIGSTOP {
		return nil, fmt.Errorf("%s: %v instead of its first stop", what, st)
	}
	if l.inj, err = inject.Begin(th, src.CodeAddr()); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	l.inj.Stack = src.Stack
	if session {
		_, err = l.inj.Syscall(x86.SysSetsid)
	} else {
		_, err = l.inj.Syscall(x86.SysSetpgid, 0, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return l, nil
}

// dropSigchld discards the SIGCHLD that the temporary leaders' deaths
// left pending in this restored process (its signals are all blocked while
// it is restored): an ignored signal that is pending is dropped when its
// action is set to SIG_IGN (POSIX, and Linux's do_sigaction). The action
// goes back to SIG_DFL, what the helper left; the dumped actions come later.
func (r *restorer) dropSigchld() error {
	for _, h := range []uint64{1 /* SIG_IGN */, 0 /* SIG_DFL */} {
		sa, err := r.put(0, x86.EncodeSigaction(x86.Sigaction{Handler: h}, false))
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysRtSigaction, uint64(unix.SIGCHLD), sa, 0, x86.SigsetBytes); err != nil {
			return fmt.Errorf("drop the temporary leaders' SIGCHLD: %w", err)
		}
	}
	return nil
}
