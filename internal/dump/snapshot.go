//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// This file shortens the freeze of a dump that leaves the tree running
// (--leave-running): instead of keeping the tree stopped while every page
// is copied, each process is made to fork once, by an injected clone,
// while it is frozen. The child holds a private copy-on-write image of
// the process's private memory as it was at that instant. The rest of
// the tree's state is read, the tree is let go, and the pages are then
// copied from the children (the same vmsplice path, injected into the
// child, or its /proc/PID/mem), which are killed afterwards.
//
// What a fork does not copy is read while the tree is still frozen:
//   - MAP_SHARED memory (shared anonymous memory, memfds, files, SysV
//     shared memory): the child would see the parent's later writes.
//     Those contents are saved with their objects (saveShmem, the fd and
//     IPC namespace kinds) during the frozen collection anyway;
//   - areas with MADV_DONTFORK (VmFlags "dc": not in the child) and
//     MADV_WIPEONFORK or MAP_DROPPABLE ("wf": empty in the child);
//   - hugetlb areas (a private one's pages can be taken from the child
//     when the parent copies on write and the pool is empty), AIO rings
//     (shared with the kernel), the vDSO (small; the injected code sits
//     on its first page) and the page the injected code is written over.
//
// Which pages of the other areas hold data is read from the child's
// pagemap after the release: a fork copies every page table entry of an
// area that has anonymous pages, so present, swapped and zero pages show
// there as in the task.
//
// The child must never run code of the program, never be seen by it and
// never signal it:
//   - it is made by clone with no flags and exit signal 0: no SIGCHLD to
//     the task when it ends, and a plain wait() of the task (without
//     __WALL or __WCLONE) neither waits for it nor reaps it;
//   - the task is traced with PTRACE_O_TRACECLONE, so the kernel attaches
//     the child to ckpt before it runs and it starts in a ptrace stop,
//     from which it only runs injected syscalls; PTRACE_O_EXITKILL kills
//     it if ckpt dies;
//   - when the pages are copied it is killed; ckpt (its tracer) collects
//     its end first, then it is a zombie of the task, which ckpt makes
//     reap it with an injected wait4(pid, __WALL): one more stop of one
//     thread, a few hundred microseconds. Until then it shows in the
//     task's /proc/PID/task/TID/children, and a wait with __WALL would
//     count it (waitpid(-1, WNOHANG|__WALL) returns 0, not ECHILD, and
//     one without WNOHANG waits for it).
//   - the fork takes a PID: the task's next fork gets the one after;
//   - the CPU time the child spends in the injected calls of the copy
//     is added to the task's RUSAGE_CHILDREN when it reaps it;
//   - until the child is gone, every page the task writes is copied on
//     write (a fault and a copy per page), and the machine holds both
//     copies of the pages written meanwhile.
//
// A process forks only if it has at least snapshotMin bytes of pages to
// copy; a fork that fails (RLIMIT_NPROC, a cgroup's pids.max, memory)
// falls back to copying while frozen, with a note in the log.
// CKPT_SNAPSHOT=off turns it off (for comparison), =always forks
// whatever the size, also in a dump that kills the tree (for tests: there
// the tree stays frozen until the pages are copied from the snapshots).

// snapshotMin is the least a process must have to copy for a snapshot:
// the fork and the injected calls around it cost about what copying a
// megabyte while frozen does.
const snapshotMin = 1 << 20

// snapshotMode is CKPT_SNAPSHOT.
type snapshotMode int

const (
	snapshotAuto snapshotMode = iota
	snapshotOff
	snapshotAlways
)

// snapshotEnv reads CKPT_SNAPSHOT: "" or "auto", "off", "always".
func snapshotEnv() (snapshotMode, error) {
	switch v := os.Getenv("CKPT_SNAPSHOT"); v {
	case "", "auto", "on":
		return snapshotAuto, nil
	case "off":
		return snapshotOff, nil
	case "always":
		return snapshotAlways, nil
	default:
		return 0, fmt.Errorf("CKPT_SNAPSHOT=%q: want off, auto or always", v)
	}
}

// snapshotWanted says whether a process whose pages are in areas has
// them copied from a snapshot: what a snapshot would hold (smaps'
// Anonymous of the areas not read while frozen) is worth a fork.
func (o *Options) snapshotWanted(areas []*scanArea) bool {
	// A dump that kills the tree gains nothing from a snapshot; with
	// CKPT_SNAPSHOT=always it takes one all the same (and copies from
	// it while the tree stays frozen), so that every test program's
	// dump goes through it.
	if o.snapshot == snapshotOff || !o.LeaveRunning && o.snapshot != snapshotAlways {
		return false
	}
	var n uint64
	later := false
	for _, a := range areas {
		if !a.frozen {
			n += a.anon
			later = true
		}
	}
	if o.snapshot == snapshotAlways {
		return later
	}
	return n >= snapshotMin
}

// readFrozen reads the runs a snapshot does not hold into their data.
func readFrozen(runs []pageRun, mem *ptrace.Mem) error {
	for i := range runs {
		r := &runs[i]
		if !r.frozen || r.data != nil {
			continue
		}
		r.data = make([]byte, r.size)
		if err := mem.ReadAt(r.data, r.addr); err != nil {
			return fmt.Errorf("pages at %#x (%d bytes): %w", r.addr, r.size, err)
		}
	}
	return nil
}

// laterPages is a process whose pages are found and copied after the
// freeze (and, without a snapshot, the same steps done at once).
type laterPages struct {
	p     *model.Process
	pages *model.PagesWriter
	areas []*scanArea
	code  uint64 // where injected syscalls run from, as in the task
	// codePage holds code; codeData is its content read before any
	// injected call wrote there.
	codePage uint64
	codeData []byte
	// snap is the child holding the snapshot (its Tid in ckpt's PID
	// namespace); vpid is its PID as the task knows it, for wait4.
	snap    ptrace.Thread
	vpid    uint64
	forked  bool
	wasted  bool // killed and collected by ckpt; the task must still reap it
	reaped  bool
	started time.Time
}

// snapshotAll forks a snapshot of every process with pages left for
// later. A process whose fork fails has its pages copied now, frozen.
func (tr *tree) snapshotAll(stats *Stats) error {
	for _, t := range tr.tasks {
		l := t.later
		if l == nil {
			continue
		}
		if err := tr.opts.interrupted(); err != nil {
			return err
		}
		forkAt := time.Now()
		if err := t.forkSnapshot(l); err != nil {
			tr.opts.logf("dump %d: no copy-on-write snapshot (%v): pages copied while the tree is frozen", t.pid, err)
			if err := t.copyLater(l, t.threads[0], t.pid, stats); err != nil {
				return err
			}
			t.later = nil
			continue
		}
		tr.opts.logf("dump %d: copy-on-write snapshot in child %d (the fork took %v): the pages are copied from it", t.pid, l.snap.Tid, time.Since(forkAt))
	}
	return nil
}

// forkSnapshot makes the frozen task fork, by an injected clone from its
// leader, and waits for the child's first ptrace stop.
func (t *task) forkSnapshot(l *laterPages) (err error) {
	inj, err := inject.BeginUndo(t.s.Undo, t.threads[0], l.code)
	if err != nil {
		return fmt.Errorf("prepare injection: %w", err)
	}
	var vpid uint64
	var cerr error
	// No flags and exit signal 0 (clone's low byte): a private copy of
	// the memory and of the fd table, and no SIGCHLD for the task.
	if t.abi == x86.ABI32 {
		vpid, cerr = inj.Syscall32(x86.SysClone, 0, 0, 0, 0, 0)
	} else {
		vpid, cerr = inj.Syscall(x86.SysClone, 0, 0, 0, 0, 0)
	}
	kids := inj.Children
	if eerr := inj.End(); eerr != nil {
		cerr = errors.Join(cerr, fmt.Errorf("finish injection: %w", eerr))
	}
	if len(kids) == 1 {
		l.snap, l.vpid, l.forked = kids[0], vpid, true
	}
	if cerr != nil {
		if l.forked {
			t.dropSnapshot(l)
		}
		return cerr
	}
	if !l.forked {
		return fmt.Errorf("clone returned %d, but no child was reported", vpid)
	}
	defer func() {
		if err != nil {
			t.dropSnapshot(l)
		}
	}()
	// An auto-attached child of a seized task starts in a
	// PTRACE_EVENT_STOP.
	for {
		st, err := l.snap.Wait()
		if err != nil {
			return fmt.Errorf("snapshot child %d: %w", l.snap.Tid, err)
		}
		if st.Exited() {
			return fmt.Errorf("snapshot child %d: %v", l.snap.Tid, st)
		}
		if st.IsEventStop() {
			break
		}
		// Nothing else can be pending for a child that never ran.
		return fmt.Errorf("snapshot child %d stopped by %v, not at its start", l.snap.Tid, st)
	}
	if err := l.snap.SetOptions(unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_EXITKILL); err != nil {
		return fmt.Errorf("snapshot child %d: set options: %w", l.snap.Tid, err)
	}
	return nil
}

// copyLater finds the pages of l's areas not scanned yet in the pagemap
// of process pid, the task or its snapshot, and copies them from there,
// pid's thread th running the injected calls, to the pages image, and
// finishes it.
func (t *task) copyLater(l *laterPages, th ptrace.Thread, pid int, stats *Stats) error {
	defer since(&stats.MemDump)()
	defer l.pages.Close()
	mem, err := ptrace.OpenMem(pid)
	if err != nil {
		return fmt.Errorf("open memory of %d: %w", pid, err)
	}
	defer mem.Close()
	pmf, err := procfs.OpenPagemap(pid)
	if err != nil {
		return err
	}
	defer pmf.Close()
	runs, err := l.assemble(pmf, stats)
	if err != nil {
		return err
	}
	f, err := t.pagesSink(l.pages, runs)
	if err != nil {
		return err
	}
	defer t.startCopy(f, runs, stats)()
	if err := t.copyRunsFrom(th, pid, runs, l.code, mem, f, stats); err != nil {
		return fmt.Errorf("dump memory: %w", err)
	}
	if l.p.PagesID, l.p.Pagemap, err = l.pages.Finish(); err != nil {
		return err
	}
	return nil
}

// copySnapshots copies the pages of every process from its snapshot,
// once the tree is released, then ends the snapshots.
func (tr *tree) copySnapshots(stats *Stats) error {
	for _, t := range tr.tasks {
		l := t.later
		if l == nil {
			continue
		}
		start, spliced := time.Now(), stats.PagesSpliced
		if err := t.copyLater(l, l.snap, l.snap.Tid, stats); err != nil {
			return fmt.Errorf("process %d, from its snapshot %d: %w", t.pid, l.snap.Tid, err)
		}
		var n uint64
		for _, a := range l.areas {
			for _, r := range a.runs {
				n += r.size
			}
		}
		tr.opts.logf("dump %d: %d KiB of pages copied from snapshot %d in %v (%d KiB spliced)", t.pid, n>>10, l.snap.Tid, time.Since(start), (stats.PagesSpliced-spliced)*x86.PageSize>>10)
		t.dropSnapshot(l)
	}
	return nil
}

// dropSnapshots ends every snapshot left (after an error too).
func (tr *tree) dropSnapshots() {
	for _, t := range tr.tasks {
		if l := t.later; l != nil && l.forked {
			t.dropSnapshot(l)
		}
	}
}

// dropSnapshot kills the snapshot child, collects its end as its tracer,
// and makes the task reap it (wait4 with __WALL, injected): it is the
// task's child, and its zombie would stay in the task's children.
func (t *task) dropSnapshot(l *laterPages) {
	if !l.forked || l.reaped {
		return
	}
	if !l.wasted {
		_ = unix.Kill(l.snap.Tid, unix.SIGKILL)
		if _, err := l.snap.WaitExit(); err != nil {
			t.opts.logf("dump %d: snapshot child %d: %v", t.pid, l.snap.Tid, err)
		}
		l.wasted = true
	}
	start := time.Now()
	if err := t.reapSnapshot(l); err == nil {
		t.opts.logf("dump %d: snapshot child %d ended and reaped by the task (%v)", t.pid, l.snap.Tid, time.Since(start))
	} else {
		t.opts.logf("dump %d: the task did not reap its snapshot child %d (it stays a zombie of the task until the task waits with __WALL): %v", t.pid, l.snap.Tid, err)
	}
	l.reaped = true
}

// reapSnapshot runs wait4(vpid, NULL, __WALL, NULL) in the task. While
// the tree is frozen its leader is at hand; once released it is seized
// and stopped again for the one call.
func (t *task) reapSnapshot(l *laterPages) error {
	mark := t.s.Mark()
	defer func() { _ = t.s.UnwindTo(mark) }()
	th, code := t.threads[0], l.code
	if t.released {
		// The task ran meanwhile: its mappings may have changed.
		maps, err := procfs.ReadMaps(t.pid)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
				return nil // the task is gone: its child went to a reaper
			}
			return err
		}
		ses := make([]procfs.SmapsEntry, len(maps))
		for i, v := range maps {
			ses[i].VMA = v
		}
		if code, err = scratchCodeAddr(ses); err != nil {
			return err
		}
		if th, err = t.s.Seize(t.pid, unix.PTRACE_O_TRACESYSGOOD); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil // the task is gone: its child went to a reaper
			}
			return fmt.Errorf("seize %d: %w", t.pid, err)
		}
		t.s.Push(fmt.Sprintf("detach %d", t.pid), func() error { return t.detach(th) })
		saved := t.stopSig
		err = t.stop(th, false)
		t.stopSig = saved
		if err != nil {
			if errors.Is(err, errExited) {
				return nil
			}
			return err
		}
	}
	inj, err := inject.BeginUndo(t.s.Undo, th, code)
	if err != nil {
		return fmt.Errorf("prepare injection: %w", err)
	}
	var werr error
	if t.abi == x86.ABI32 {
		_, werr = inj.Syscall32(x86.SysWait4, l.vpid, 0, unix.WALL, 0)
	} else {
		_, werr = inj.Syscall(x86.SysWait4, l.vpid, 0, unix.WALL, 0)
	}
	if eerr := inj.End(); eerr != nil {
		werr = errors.Join(werr, fmt.Errorf("finish injection: %w", eerr))
	}
	if errors.Is(werr, unix.ECHILD) {
		return nil // the task reaped it itself (a wait with __WALL)
	}
	return werr
}

// hasLater says whether any process has its pages left for a snapshot.
func (tr *tree) hasLater() bool {
	for _, t := range tr.tasks {
		if t.later != nil {
			return true
		}
	}
	return false
}

// release lets the tree go on (--leave-running) before its pages are
// copied from the snapshots, which stay stopped and traced: they are
// not on the undo stack, dropSnapshots ends them.
func (tr *tree) release(stats *Stats) error {
	if err := tr.s.Unwind(); err != nil {
		return fmt.Errorf("release tree: %w", err)
	}
	stats.FrozenFor = time.Since(tr.frozenAt)
	stats.Freezing, stats.Frozen = tr.stoppedAt.Sub(tr.frozenAt), time.Since(tr.stoppedAt)
	tr.released = true
	for _, t := range tr.tasks {
		t.released = true
		if t.later != nil {
			stats.Snapshots++
		}
	}
	tr.opts.logf("tree of %d left running after %v frozen; pages are copied from %d snapshots", tr.opts.Pid, stats.FrozenFor, stats.Snapshots)
	return nil
}
