//go:build linux && amd64

package restore

import (
	"fmt"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// thread is one thread of the task being restored.
type thread struct {
	h ptrace.Thread // its ptrace handle; h.Tid is in ckpt's PID namespace

	vtid int // as the task's own PID namespace names it
	core *criucore.CoreEntry
	inj  *inject.Task
}

// perThread runs fn for every thread, the leader first.
func (r *restorer) perThread(fn func(*thread) error) func() error {
	return func() error {
		for _, th := range r.threads {
			if err := fn(th); err != nil {
				return fmt.Errorf("thread %d: %w", th.h.Tid, err)
			}
		}
		return nil
	}
}

// threadCloneFlags make a thread of the leader: what pthread_create uses.
const threadCloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_THREAD | unix.CLONE_SYSVSEM

// createThreads has the leader clone3 every other thread with its TID.
// This happens before credentials are restored: set_tid needs
// CAP_SYS_ADMIN, and each thread then gets its own credentials.
func (r *restorer) createThreads() error {
	for i, core := range r.im.Threads {
		tid := r.im.Tids[i]
		args := uapi.CloneArgs{Flags: threadCloneFlags}.WithSetTid(r.data(0), threadSetTids(r.im, i)...)
		p, err := r.put(0, args)
		if err != nil {
			return err
		}
		got, err := r.inj.Syscall(x86.SysClone3, p, uapi.SizeofCloneArgs)
		if err != nil {
			return fmt.Errorf("clone3 thread %d: %w", tid, err)
		}
		if want := r.im.VTid(i); int(got) != want {
			return fmt.Errorf("clone3 gave thread %d, want %d", got, want)
		}
		host := r.inj.Children[len(r.inj.Children)-1]
		st, err := host.Wait()
		if err != nil {
			return err
		}
		if st.Signal() != unix.SIGSTOP {
			return fmt.Errorf("new thread %d: %v instead of its first stop", tid, st)
		}
		inj, err := inject.Begin(host, r.scratch)
		if err != nil {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
		inj.Stack = r.inj.Stack
		r.threads = append(r.threads, &thread{h: host, vtid: r.im.VTid(i), core: core, inj: inj})
	}
	return nil
}

// becomeZombie ends a just-forked process the way the dumped zombie ended,
// so that its (stopped) parent finds it unreaped with the same wait status.
func (r *restorer) becomeZombie() error {
	ws := unix.WaitStatus(r.im.Core.GetTc().GetExitCode())
	switch {
	case ws.Exited():
		if err := r.inj.Exit(ws.ExitStatus()); err != nil {
			return err
		}
	case ws.Signaled():
		if err := r.dieBy(ws.Signal()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("wait status %#x: not an exit status", uint32(ws))
	}
	r.threads = nil
	r.opts.logf("restore %d: zombie with wait status %#x", r.pid, uint32(ws))
	return nil
}

// dieBy kills the new process with sig by the signal's default action, as
// the dumped zombie died. Its core limit is set to 0 first: the death must
// not leave a core file that the original did not.
func (r *restorer) dieBy(sig unix.Signal) error {
	if err := unix.Prlimit(r.pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil); err != nil {
		return fmt.Errorf("core limit: %w", err)
	}
	sa, err := r.put(0, x86.EncodeSigaction(x86.Sigaction{}, false))
	if err != nil {
		return err
	}
	// SIGKILL and SIGSTOP keep their one action: rt_sigaction refuses them.
	if sig != unix.SIGKILL && sig != unix.SIGSTOP {
		if _, err := r.inj.Syscall(x86.SysRtSigaction, uint64(sig), sa, 0, x86.SigsetBytes); err != nil {
			return fmt.Errorf("default action for %v: %w", sig, err)
		}
	}
	if err := r.th.SetSigmask(0); err != nil {
		return err
	}
	if err := unix.Kill(r.pid, sig); err != nil {
		return err
	}
	// SIGKILL needs no delivery: the task is gone already.
	if sig != unix.SIGKILL {
		if err := r.th.Cont(0); err != nil {
			return err
		}
	}
	for {
		st, err := r.th.Wait()
		if err != nil {
			return err
		}
		if st.Exited() {
			return nil
		}
		// The signal-delivery stop: let the signal through; others as they come.
		if err := r.th.Cont(int(st.Signal())); err != nil {
			return err
		}
	}
}
