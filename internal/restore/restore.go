//go:build linux && amd64

// Package restore is the restore path: it starts a helper process under
// ptrace, has it clone a child with the dumped PID, and turns that child
// into the dumped task one injected syscall at a time (memory, vDSO, mm
// fields, files, signals, credentials), then sets the dumped registers and
// lets it run. A restore that fails kills what it started.
package restore

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/cpucap"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	attrs "github.com/ckpt/ckpt/internal/kinds/task"
	"github.com/ckpt/ckpt/internal/lazypages"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/progress"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// Options control a restore.
type Options struct {
	// ImagesDir holds the dump.
	ImagesDir string
	// ShellJob lets the task inherit stdio that was a tty or pipe at dump
	// time from Stdin/Stdout/Stderr.
	ShellJob bool
	// FileLocks takes the dumped file locks again (file-locks.img),
	// CRIU's --file-locks; a dump that holds locks is refused without it.
	FileLocks bool
	// TcpClose restores the dumped established TCP connections closed
	// (--tcp-close).
	TcpClose bool
	// Stdin, Stdout and Stderr are given to the restored task for
	// inherited stdio; nil means os.Stdin, os.Stdout, os.Stderr.
	Stdin, Stdout, Stderr *os.File
	// CPUCap is the CPU check, CRIU's --cpu-cap: "ins" (or empty) refuses
	// a dump from a CPU with instruction-set features this one lacks,
	// "fpu" checks only the xsave state in use (see package cpucap).
	CPUCap string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// Progress, if set, counts the bytes of memory put in place of the
	// total.
	Progress *progress.Meter
	// LazyPages is CRIU's --lazy-pages: private anonymous memory is left
	// to a lazy-pages server (`ckpt lazy-pages`) that must listen in
	// ImagesDir already (see lazy.go).
	LazyPages bool

	stats *runStats // measured for stats-restore
	lazy  *lazypages.Client
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Process is a restored, running task that is a child of the caller.
type Process struct {
	Pid int
	// Took is how long the restore took, from start to release.
	Took time.Duration
}

// Wait waits for the restored task to end and returns its wait status.
func (p *Process) Wait() (unix.WaitStatus, error) {
	_, ws, err := ptrace.Wait4(p.Pid, 0)
	return ws, err
}

// Restore brings back the task dumped in opts.ImagesDir and returns once
// it runs.
func Restore(opts Options) (*Process, error) {
	start := time.Now()
	if err := cpucap.Check(opts.CPUCap); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := fault.Check(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	d, err := model.Load(opts.ImagesDir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	all := d.Procs
	root := all[0]
	opts.stats = &runStats{}
	opts.Progress.AddTotal(progressTotal(d))
	for _, im := range all {
		if im.Refused != nil {
			return nil, fmt.Errorf("restore task %d: %w", im.Pid, im.Refused)
		}
		if opts.LazyPages && len(im.FromParents) > 0 {
			return nil, fmt.Errorf("restore task %d: --lazy-pages of a pre-copy dump (pages left in its parent dumps) is not supported yet: restore it without --lazy-pages", im.Pid)
		}
	}
	if err := checkCPU(d.CPU, opts.CPUCap); err != nil {
		return nil, fmt.Errorf("restore task %d: %w", root.Pid, err)
	}
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	kinds := fd.New()
	fdOpts := fd.Options{ShellJob: opts.ShellJob, FileLocks: opts.FileLocks, TcpClose: opts.TcpClose}
	if err := fd.CheckLocks(d, fdOpts); err != nil {
		return nil, fmt.Errorf("restore task %d: %w", root.Pid, err)
	}
	defer kinds.Close()
	var avoid []span
	for _, im := range all {
		if im.Zombie {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", im.Pid)); err == nil && !root.OwnPidNS {
				return nil, fmt.Errorf("restore task %d: %w", root.Pid, pidInUse(im.Pid))
			}
			continue
		}
		if err := kinds.Check(d, im.Fds, fdOpts); err != nil {
			return nil, fmt.Errorf("restore task %d: %w", im.Pid, err)
		}
		for _, id := range append([]int{im.Pid}, im.Tids...) {
			if root.OwnPidNS {
				break // the tree gets a new PID namespace: no clash
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", id)); err == nil {
				return nil, fmt.Errorf("restore task %d: %w", root.Pid, pidInUse(id))
			}
		}
		for _, v := range im.MM.GetVmas() {
			avoid = append(avoid, span{v.GetStart(), v.GetEnd()})
		}
	}
	behind, err := fault.Behind()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	tno, err := timeNSOffsets(d.Clocks, behind)
	if err != nil {
		return nil, fmt.Errorf("restore task %d: %w", root.Pid, err)
	}
	if tno != nil {
		opts.logf("restore: the tree gets a time namespace: CLOCK_MONOTONIC %s, CLOCK_BOOTTIME %s, so that they go on from their dumped values", fmtOffset(tno.Monotonic), fmtOffset(tno.Boottime))
	}
	rs := make([]*restorer, len(all))
	byPid := map[int]*restorer{}
	shmem := map[uint64]string{}
	for i, im := range all {
		rs[i] = &restorer{opts: &opts, im: im, avoid: avoid, kinds: kinds, shmem: shmem}
		byPid[im.Pid] = rs[i]
	}
	rs[0].timens = tno
	endLazy, err := opts.dialLazy()
	if err != nil {
		return nil, fmt.Errorf("restore task %d: %w", root.Pid, err)
	}
	tr := ptrace.NewTracer()
	defer tr.Close()
	// Every process the restore creates pushes its kill on u, which Run
	// unwinds when the restore fails or panics: nothing is left behind.
	err = tr.Run(func(s *ptrace.Session) error {
		defer func() {
			for _, r := range rs {
				r.closeMemory()
			}
		}()
		for _, r := range rs {
			r.s = s
		}
		// Each restored process takes hundreds of injected calls: with
		// the tracer and every tracee on one CPU each is a context
		// switch there, not a wakeup of another CPU (ptrace.ShareCPU).
		// The tracees inherit the pin from the tracer; each thread gets
		// the tracer's own mask back before it is let go, the mask it
		// would have inherited unpinned.
		var cpus *unix.CPUSet
		if mask, unpin, perr := s.PinTracer(); perr != nil {
			opts.logf("restore: tracees run on any CPU: %v", perr)
		} else {
			defer func() {
				if uerr := unpin(); uerr != nil {
					opts.logf("restore: %v", uerr)
				}
			}()
			cpus = &mask
		}
		return restoreTree(rs, byPid, cpus)
	})
	if lerr := endLazy(err == nil); lerr != nil && err == nil {
		err = lerr
	}
	if err != nil {
		return nil, fmt.Errorf("restore task %d: %w", root.Pid, err)
	}
	kinds.Done(opts.logf)
	writeStats(&opts, time.Since(start))
	// The host's PID of the root: the dumped one, or in a new PID
	// namespace whatever the kernel chose outside it.
	return &Process{Pid: rs[0].pid, Took: time.Since(start)}, nil
}

// restoreTree creates every process of the tree, each forked by its
// restored parent with its own PID, then rebuilds each, then lets all go.
// cpus, if set, is the mask every thread gets before it is let go.
func restoreTree(rs []*restorer, byPid map[int]*restorer, cpus *unix.CPUSet) error {
	root := rs[0]
	// The SysV objects the tree used in the host's IPC namespace exist
	// before any task of the tree, which may attach them.
	if err := ns.RestoreHostSysV(root.im.Tree, func(what string, fn func() error) { root.s.Push(what, fn) }); err != nil {
		return err
	}
	if err := root.startHelper(helperABI(root.im.Tree.Procs)); err != nil {
		return err
	}
	fault.Panic(fault.RestoreHelper)
	if err := root.cloneTask(byPid); err != nil {
		return err
	}
	fault.Panic(fault.RestoreCloned)
	if err := root.setupScratch(); err != nil {
		return fmt.Errorf("set up scratch area: %w", err)
	}
	if err := root.restoreNamespaces(nil); err != nil {
		return err
	}
	// Parents come before children: each joins its session and builds its
	// fd table before it forks its children, which inherit both.
	madeGroups := map[int]bool{}
	for _, r := range rs {
		if r != root {
			parent, ok := byPid[int(r.im.Pstree.GetPpid())]
			if !ok || parent.pid == 0 {
				return fmt.Errorf("task %d: parent %d not restored first", r.im.Pid, r.im.Pstree.GetPpid())
			}
			r.parent = parent
			r.sharedFiles = r.sharesFiles(parent)
			r.sharedFS = r.sharesFS(parent)
			// A session whose leader is gone: r is born from its
			// temporary leaders (leaders.go).
			chain, err := r.memberLeaders(parent, byPid, madeGroups)
			if err != nil {
				return fmt.Errorf("task %d: %w", r.im.Pid, err)
			}
			r.via = chain.from()
			var leader *tempLeader
			// (A group its parent is in exists: r is born in it.)
			if pgid := int(r.im.Pstree.GetPgid()); r.needsGroupLeader(byPid) && !madeGroups[pgid] && pgid != int(parent.im.Pstree.GetPgid()) {
				var err error
				if leader, err = parent.groupLeader(pgid); err != nil {
					return fmt.Errorf("task %d: %w", r.im.Pid, err)
				}
				// The group outlives its leader in its members: the
				// next member joins it as it is (its number stays taken
				// while the group lives).
				madeGroups[pgid] = true
			}
			if err := parent.forkChild(r); err != nil {
				return fmt.Errorf("task %d: %w", r.im.Pid, err)
			}
			if err := r.joinSession(); err != nil {
				return fmt.Errorf("child process %d: %w", r.pid, err)
			}
			if leader != nil {
				if err := leader.end(); err != nil {
					return fmt.Errorf("child process %d: %w", r.pid, err)
				}
			}
			if chain != nil {
				if err := chain.end(); err != nil {
					return fmt.Errorf("child process %d: %w", r.pid, err)
				}
				if err := parent.dropSigchld(); err != nil {
					return fmt.Errorf("process %d: %w", parent.pid, err)
				}
			}
		} else if err := r.joinSession(); err != nil {
			return err
		}
		if r.im.Zombie {
			if err := r.becomeZombie(); err != nil {
				return fmt.Errorf("zombie %d: %w", r.pid, err)
			}
			continue
		}
		if r.sharedFiles {
			// The fd table is the parent's, already built.
			r.fdIDs = r.inherited
		} else {
			r.opts.logf("restore %d: restore files", r.pid)
			if err := r.restoreFiles(); err != nil {
				if r == root {
					return fmt.Errorf("restore files: %w", err)
				}
				return fmt.Errorf("child process %d: restore files: %w", r.pid, err)
			}
		}
		// Before it forks its children, which inherit its memory.
		if err := r.rebuildMemory(); err != nil {
			if r != root {
				return fmt.Errorf("child process %d: %w", r.pid, err)
			}
			return err
		}
	}
	if err := root.kinds.FinishTree(); err != nil {
		return fmt.Errorf("restore files: %w", err)
	}
	childrenPidNS(rs)
	for _, r := range rs {
		if r.im.Zombie {
			continue
		}
		if err := r.rebuild(); err != nil {
			if r != root {
				return fmt.Errorf("child process %d: %w", r.pid, err)
			}
			return err
		}
	}
	// Once every fd and mapping of the tree exists: memfd seals.
	if err := root.kinds.Seal(root.im.Tree); err != nil {
		return err
	}
	for _, r := range rs {
		if r.im.Zombie {
			continue
		}
		if r.im.StopSig != 0 {
			// A task dumped in a group-stop: its stop signal is queued
			// as the last thing before it is let go, so that it stops
			// again at once (and its parent is told, as it was then).
			if err := unix.Kill(r.pid, unix.Signal(r.im.StopSig)); err != nil {
				return fmt.Errorf("stop task %d again with signal %d: %w", r.pid, r.im.StopSig, err)
			}
			r.opts.logf("restore %d: stopped by signal %d, as dumped", r.pid, r.im.StopSig)
		}
		for _, th := range r.threads {
			if cpus != nil {
				if err := th.h.SetAffinity(cpus); err != nil {
					return err
				}
			}
			if err := th.h.Detach(0); err != nil {
				return fmt.Errorf("detach thread %d: %w", th.h.Tid, err)
			}
		}
		r.opts.logf("restore %d: running", r.pid)
	}
	return nil
}

// pidInUse is the error for a pid that another task holds.
func pidInUse(pid int) error {
	return &ckerr.PidInUseError{Pid: pid, Holder: describePid(pid)}
}

// describePid names the task that holds pid, for pidInUse.
func describePid(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || len(b) == 0 {
		return "another process"
	}
	d := fmt.Sprintf("%q", string(b[:len(b)-1]))
	// Often the dumped original itself: killed by the dump, it stays a
	// zombie until its parent reaps it.
	if st, err := procfs.ReadStat(pid); err == nil && st.State == 'Z' {
		d += fmt.Sprintf(", a zombie until its parent %d reaps it (the task the dump killed, if its parent is slow or never reaps; try again once it is gone)", st.PPid)
	}
	return d
}

// restorer is one restore in progress; its methods run on the tracer thread.
type restorer struct {
	opts     *Options
	im       *model.Process
	helper   int           // the helper started by ckpt, killed once the task exists
	helperTh ptrace.Thread // its ptrace handle
	th       ptrace.Thread // the task's (its leader's) ptrace handle
	// helperUndo kills the helper, on the normal path once the task
	// exists; undo is the run's undo stack, shared by the tree.
	helperUndo *ptrace.Step
	s          *ptrace.Session
	pid        int          // the task being restored, 0 until it exists
	inj        *inject.Task // injects into the leader
	mem        *ptrace.Mem  // the task's memory, see memory()
	// threads are all threads once created, the leader first.
	threads []*thread
	// avoid are the dumped VMAs of every process of the tree: the scratch
	// area, inherited by forked children, must fit all of them.
	avoid []span
	// fdIDs maps the file ids of this process's restored fds to their
	// numbers; inherited is the parent's map at fork, which describes the
	// fd table the process was born with.
	fdIDs, inherited map[uint32]int
	// kinds are the kinds of files, shared by all restorers of the tree.
	kinds *fd.Kinds
	// shmem is shared by all restorers of the tree: where each shared
	// memory object is mapped already, as /proc/PID/map_files/START-END.
	shmem map[uint64]string
	// timens, on the root only, are the offsets of the time namespace the
	// tree gets, nil for none (see timeNSOffsets).
	timens *procfs.TimensOffsets
	// parent is the restorer of the process's parent, nil for the root.
	parent *restorer
	// keep are the private VMAs the process keeps as it inherited them
	// from its parent, sorted (cow.go).
	keep []span
	// via, when set, is the temporary session or group leader the
	// process is cloned from (memberLeaders).
	via *inject.Task
	// sharedFiles and sharedFS are set for a child created with
	// CLONE_FILES or CLONE_FS: it has nothing of its own to restore there.
	sharedFiles, sharedFS bool
	// maxFd is the highest dumped fd number.
	maxFd int
	// scratch is the address of the pages used for code and data.
	scratch uint64
	// lazy are the areas left to the lazy-pages server, lazyPages the
	// pages of the images in them (lazy.go).
	lazy      []span
	lazyPages uint64
	// pidnsInit is, for a process whose next children go into another
	// PID namespace than its own, the PID of that namespace's init as
	// the process sees it, -1 if it has none (see childrenPidNS); else 0.
	pidnsInit int
}

// scratchPages is the size of the scratch area: one page of code and
// three of data (paths, structs, auxv).
const scratchPages = 4

// rebuild turns a created process into the dumped one; it stays stopped.
func (r *restorer) rebuild() error {
	return r.run([]step{
		{"restore fs", r.restoreFS},
		{"restore mm fields", r.restoreMM},
		{"restore task attributes", r.leaderStage(attrs.StageProcess)},
		{"create threads", r.createThreads},
		{"restore pid_for_children", r.restorePidForChildren},
		{"", func() error { fault.Panic(fault.RestoreRebuild); return nil }},
		{"restore thread attributes", r.perThread(r.threadStage(attrs.StageThread))},
		{"restore attributes after credentials", r.leaderStage(attrs.StageAfterCreds)},
		{"restore late thread attributes", r.perThread(r.threadStage(attrs.StageLate))},
		{"restore file locks", r.restoreLocks},
		{"remove scratch area", r.removeScratch},
		{"set registers", r.perThread(r.setRegisters)},
	})
}

// rebuildMemory gives a created process its dumped memory, before it
// forks its children: they inherit it and keep what they shared with
// it since fork (cow.go).
func (r *restorer) rebuildMemory() error {
	return r.run([]step{
		{"unmap helper memory", r.unmapHelper},
		{"map vDSO", r.mapVDSO},
		{"map memory", r.mapVMAs},
		{"fill pages", r.fillPages},
		{"finish hugetlb areas and AIO rings", r.finishSpecialMemory},
		{"register lazy memory", r.registerLazy},
	})
}

// step is one named step of a rebuild.
type step struct {
	name string
	fn   func() error
}

// run runs the steps in order, logging each, and stops at the first error.
func (r *restorer) run(steps []step) error {
	for _, s := range steps {
		if s.name != "" {
			r.opts.logf("restore %d: %s", r.pid, s.name)
		}
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// killStep pushes the undo of a process the restore created: kill it
// and everything of it (its threads are waited for by KillAndReap, so
// they need no step of their own). It runs when the restore fails or
// panics, newest first: children before their parents, the helper last.
// A process forked by a restored parent is not ckpt's child: killed,
// it is a zombie of that parent, which reaps it by an injected wait4
// (else, once the parent is killed too, it would go to a subreaper as a
// zombie that nobody waits for).
// vpid is the process's PID as its parent sees it.
func (r *restorer) killStep(what string, pid, vpid int, parent *restorer) *ptrace.Step {
	return r.s.Push(fmt.Sprintf("kill %s %d", what, pid), func() error {
		err := r.s.KillAndReap(pid, false)
		if parent != nil && parent.inj != nil {
			if _, werr := parent.inj.Syscall(x86.SysWait4, uint64(vpid), 0, unix.WALL, 0); werr != nil {
				err = errors.Join(err, fmt.Errorf("reap it in its parent %d: %w", parent.pid, werr))
			}
		}
		return err
	})
}
