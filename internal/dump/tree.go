//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/cpucap"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// tree is the process tree being dumped: the task named by the user and
// all its descendants, parents before children.
type tree struct {
	opts  *Options
	kinds *fd.Kinds
	tasks []*task
	s     *ptrace.Session // the run's, see freezeAndDump
	// stage is where the images are written before publish moves them
	// into the images directory.
	stage string
	// frozenAt is when the freeze began, stoppedAt when the whole tree
	// was stopped; released, whether the tree was let go before the
	// dump's end (snapshot.go).
	frozenAt, stoppedAt time.Time
	released            bool
}

// children lists the child processes of every thread of pid.
func children(pid int) ([]int, error) {
	tids, err := procfs.Threads(pid)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, tid := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, tid))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, f := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/task/%d/children: %q", pid, tid, f)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func kcmp(pid1, pid2, typ int) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), uintptr(typ), 0, 0, 0)
	return e == 0 && r == 0
}

// discover checks the task named by the user without stopping it; its
// descendants are found and checked while the tree is frozen.
func discover(o *Options) (*tree, error) {
	k := fd.New()
	t, err := inspect(o, k, o.Pid, 1)
	if err != nil {
		return nil, err
	}
	self, err := procfs.ReadStatus(os.Getpid())
	if err != nil {
		return nil, err
	}
	if depth := len(t.status.NSpid); depth > len(self.NSpid) {
		// A tree in a PID namespace below ckpt's is dumped whole from its
		// init, so that it can be restored into a namespace of its own.
		if v := t.status.NSpid[depth-1]; v != 1 {
			return nil, fmt.Errorf("the task is pid %d of a PID namespace below ckpt's: dump that namespace's init instead", v)
		}
		t.ns = true
	}
	if n := len(t.status.NSpid); n > 0 {
		t.top = n - 1
	}
	return &tree{opts: o, kinds: k, tasks: []*task{t}}, nil
}

// zombieWait is how long a child that fails to be frozen gets to become
// a zombie: the rest of its exit takes microseconds.
const zombieWait = time.Second

// addChild takes child pid of a frozen parent into the tree: a zombie as
// such, a live process inspected and frozen. A frozen parent cannot reap,
// so the child cannot vanish; it can only become a zombie meanwhile.
func (tr *tree) addChild(pid, parent int) (*task, error) {
	o := tr.opts
	// zombie takes the child as a zombie if it is one. With wait, a child
	// that failed to be inspected or frozen gets a moment to finish
	// exiting: the exe link goes at exit_mm, the zombie state comes at
	// exit_notify.
	zombie := func(wait bool) (*task, bool, error) {
		deadline := time.Now().Add(zombieWait)
		for {
			st, err := procfs.ReadStat(pid)
			if err == nil && st.State == 'Z' {
				t := &task{opts: o, kinds: tr.kinds, pid: pid, index: len(tr.tasks) + 1, stat: st, zombie: true, ns: tr.tasks[0].ns, top: tr.tasks[0].top}
				// Its ids inside the tree's PID namespace; a zombie keeps them.
				t.status, _ = procfs.ReadStatus(pid)
				if err := tr.checkPidNS(t, parent); err != nil {
					return nil, false, err
				}
				tr.tasks = append(tr.tasks, t)
				return t, true, nil
			}
			if !wait || err != nil || time.Now().After(deadline) {
				return nil, false, nil
			}
			time.Sleep(time.Millisecond)
		}
	}
	if t, ok, err := zombie(false); ok || err != nil {
		return t, err
	}
	t, err := inspect(o, tr.kinds, pid, len(tr.tasks)+1)
	if err != nil {
		if t, ok, zerr := zombie(true); ok || zerr != nil {
			return t, zerr
		}
		return nil, fmt.Errorf("child process %d: %w", pid, err)
	}
	t.ns, t.top = tr.tasks[0].ns, tr.tasks[0].top
	if err := tr.checkPidNS(t, parent); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		typ  int
		what string
	}{{uapi.KCMP_VM, "memory (CLONE_VM)"}, {uapi.KCMP_SIGHAND, "signal handlers (CLONE_SIGHAND)"}} {
		if kcmp(parent, pid, c.typ) {
			return nil, ckerr.Unsupported(pid, fmt.Sprintf("child process %d's %s", pid, c.what), fmt.Sprintf("shared with its parent %d: not supported yet", parent))
		}
	}
	// An fd table or fs shared with the parent (CLONE_FILES, CLONE_FS) is
	// dumped once, with the task that owns it first.
	for _, pt := range tr.tasks {
		if pt.pid != parent {
			continue
		}
		if kcmp(parent, pid, uapi.KCMP_FILES) {
			t.filesOf = pt.index
			if pt.filesOf != 0 {
				t.filesOf = pt.filesOf
			}
		}
		if kcmp(parent, pid, uapi.KCMP_FS) {
			t.fsOf = pt.index
			if pt.fsOf != 0 {
				t.fsOf = pt.fsOf
			}
		}
	}
	tr.tasks = append(tr.tasks, t)
	t.s = tr.s
	mark := tr.s.Mark()
	if err := t.seizeAll(); err != nil {
		tr.tasks = tr.tasks[:len(tr.tasks)-1]
		_ = tr.s.UnwindTo(mark) // let go of what of it was seized
		if t, ok, zerr := zombie(true); ok || zerr != nil {
			return t, zerr
		}
		return nil, fmt.Errorf("child process %d: %w", pid, err)
	}
	// Checked again now that it is stopped: its files may have changed
	// since the first look.
	if err := t.inspectFiles(); err != nil {
		return nil, fmt.Errorf("child process %d: %w", pid, err)
	}
	return t, nil
}

// checkPidNS refuses a child whose PID namespace cannot be restored.
// A child is in its parent's PID namespace, or it is the init (PID 1)
// of a namespace one level below its parent's, which the parent made
// (unshare(CLONE_NEWPID) and fork, or clone with CLONE_NEWPID): the
// restore makes it again with clone3 CLONE_NEWPID and set_tid. A child
// that joined a namespace with setns, and a dead init (a zombie whose
// namespace is gone), are refused.
func (tr *tree) checkPidNS(t *task, parent int) error {
	var pt *task
	for _, x := range tr.tasks {
		if x.pid == parent {
			pt = x
		}
	}
	if t.zombie && t.status == nil {
		return nil // its status could not be read: nothing to check
	}
	if pt == nil || pt.status == nil || t.status == nil {
		return fmt.Errorf("child process %d: its parent %d is not in the tree", t.pid, parent)
	}
	obj := fmt.Sprintf("the PID namespace of child process %d", t.pid)
	d, pd := len(t.status.NSpid), len(pt.status.NSpid)
	switch {
	case d == pd:
		if t.zombie {
			return nil // it cannot have moved; its links are gone
		}
		mine, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", t.pid))
		its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", parent))
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("child process %d: %w", t.pid, err)
		}
		if mine != its {
			return ckerr.Unsupported(t.pid, obj, fmt.Sprintf("it is %s, its parent %d's is %s, at the same depth: it was entered with setns, which a restore cannot redo", mine, parent, its))
		}
	case d == pd+1 && t.status.NSpid[d-1] == 1:
		if t.zombie {
			return ckerr.Unsupported(t.pid, obj, "it is the dead init of a PID namespace of its own (a zombie): its namespace is gone; reap it first")
		}
	default:
		return ckerr.Unsupported(t.pid, obj, fmt.Sprintf("it is %d levels below its parent %d's and the task is PID %d there: only the init of a namespace one level below its parent's can be restored (nested PID namespaces made with setns are not)", d-pd, parent, t.status.NSpid[d-1]))
	}
	return nil
}

// freezeTree freezes the tree from the top: each process is stopped before
// its children are listed, so a fork at any moment is caught (a child
// forked after its parent was seized is stopped by PTRACE_O_TRACEFORK).
func (tr *tree) freezeTree() error {
	root := tr.tasks[0]
	if err := root.seizeAll(); err != nil {
		return err
	}
	if err := root.inspectFiles(); err != nil {
		return err
	}
	known := map[int]bool{root.pid: true}
	for i := 0; i < len(tr.tasks); i++ {
		t := tr.tasks[i]
		if t.zombie {
			continue
		}
		kids, err := children(t.pid)
		if err != nil {
			return fmt.Errorf("task %d: children: %w", t.pid, err)
		}
		for _, k := range kids {
			if known[k] {
				continue
			}
			known[k] = true
			if err := tr.opts.interrupted(); err != nil {
				return err
			}
			if _, err := tr.addChild(k, t.pid); err != nil {
				return err
			}
		}
	}
	return nil
}

// freezeAndDump runs on the tracer thread: every process of the tree is
// frozen before any is dumped. What it changes goes on the session's
// undo stack, which the caller unwinds when it fails or panics.
func (tr *tree) freezeAndDump(s *ptrace.Session) (*Stats, error) {
	o := tr.opts
	tr.s = s
	tr.tasks[0].s = s
	start := time.Now()
	tr.frozenAt = start
	if err := tr.freezeTree(); err != nil {
		return nil, err
	}
	frozen := time.Now()
	tr.stoppedAt = frozen
	o.logf("tree of %d stopped (%d processes)", o.Pid, len(tr.tasks))
	fault.Panic(fault.DumpFrozen)
	if err := o.interrupted(); err != nil {
		return nil, err
	}
	stats, err := tr.dumpAll()
	if err != nil {
		return nil, err
	}
	if tr.released {
		return stats, nil // let go before the pages were copied
	}
	if o.LeaveRunning {
		if err := s.Unwind(); err != nil {
			return nil, fmt.Errorf("release tree after dump: %w", err)
		}
		o.logf("tree of %d left running", o.Pid)
	} else {
		tr.kill()
		s.Commit()
		o.logf("tree of %d killed after dump", o.Pid)
	}
	stats.FrozenFor = time.Since(start)
	stats.Freezing, stats.Frozen = frozen.Sub(start), time.Since(frozen)
	return stats, nil
}

// dumpAll collects every process into the model, their pages going to
// their pages images meanwhile, then writes the other images;
// inventory.img comes last and marks a whole dump.
func (tr *tree) dumpAll() (_ *Stats, err error) {
	o := tr.opts
	// Shared memory goes to pages images numbered after the processes'.
	d := &model.Dump{Dir: image.Dir{Path: tr.stage}, ShmemPagesBase: len(tr.tasks), ShmemWriteback: !o.NoSync}
	// The links made for linked files (fd/linked.go) go with a dump
	// that fails.
	defer func() {
		if err != nil {
			d.RemoveMadeLinks()
		}
	}()
	stats := &Stats{}
	ft := newFileTable(d)
	ft.pipeEnds = tr.pipeEnds()
	ft.tree = map[int]bool{}
	for _, t := range tr.tasks {
		ft.tree[t.pid] = true
	}
	nsd := ns.NewDumper(d)
	defer nsd.Close()
	for _, t := range tr.tasks {
		if err := o.interrupted(); err != nil {
			return nil, err
		}
		if t.zombie {
			p := t.zombieProcess(d)
			model.SetNsPids(p.Pstree, t.nsPids())
			d.Procs = append(d.Procs, p)
			continue
		}
		collectAt := time.Now()
		p, err := t.collect(ft, stats)
		if err != nil {
			if t.pid != o.Pid {
				return nil, fmt.Errorf("child process %d: %w", t.pid, err)
			}
			return nil, err
		}
		if err := nsd.Task(t.pid, tr.parentOf(t), p.IDs); err != nil {
			return nil, fmt.Errorf("task %d: %w", t.pid, err)
		}
		model.SetNsPids(p.Pstree, t.nsPids())
		tids, err := t.nsTids()
		if err != nil {
			return nil, fmt.Errorf("task %d: %w", t.pid, err)
		}
		model.SetNsTids(p.Pstree, tids)
		d.Procs = append(d.Procs, p)
		o.logf("process %d collected in %v", t.pid, time.Since(collectAt))
	}
	if err := nsd.Finish(); err != nil {
		return nil, err
	}
	d.FileLocks = ft.locks.Entries
	var uptime uint64
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) == nil {
		uptime = uint64(ts.Sec)*1000000 + uint64(ts.Nsec)/1000
	}
	d.Inventory = &inventory.InventoryEntry{
		ImgVersion:  proto.Uint32(image.ImgVersion),
		FdinfoPerId: proto.Bool(true),
		RootIds:     model.RootIDs(len(tr.tasks), tr.tasks[0].ns),
		NsPerId:     proto.Bool(true), // namespace images are named by namespace id, as CRIU names them
		Lsmtype:     inventory.Lsmtype_NO_LSM.Enum(),
		DumpUptime:  proto.Uint64(uptime),
	}
	if d.Clocks, err = tr.clocks(); err != nil {
		return nil, err
	}
	if cpucap.Records(tr.opts.CPUCap) {
		d.CPU = cpuEntry()
	}
	// Everything but the pages left for later is read: those come from
	// snapshots, taken now, and the tree is let go.
	if tr.hasLater() {
		defer tr.dropSnapshots()
		if err := tr.snapshotAll(stats); err != nil {
			return nil, err
		}
		if o.LeaveRunning {
			if err := tr.release(stats); err != nil {
				return nil, err
			}
		}
		if err := tr.copySnapshots(stats); err != nil {
			return nil, err
		}
	}
	if err := d.Write(tr.stage); err != nil {
		return nil, err
	}
	stats.ImageBytes = d.Size()
	// The last point where the dump can stop and leave the tree as it
	// was; once published, the dump is whole and goes on to its end.
	if err := o.interrupted(); err != nil {
		return nil, err
	}
	if err := tr.sendToPageServer(); err != nil {
		return nil, err
	}
	if err := publish(tr.stage, o.ImagesDir, !o.NoSync); err != nil {
		return nil, err
	}
	if o.NoSync {
		o.logf("images not synced (--no-sync): the page cache holds them until the kernel writes them back")
	}
	return stats, nil
}

// parentOf is the PID of t's parent if the parent is in the tree, else 0.
func (tr *tree) parentOf(t *task) int {
	if t.index == 1 {
		return 0
	}
	return t.stat.PPid
}

// kill kills every process and waits for its death, children before
// parents (the init of a PID namespace ends only after every other
// process in it is gone). A process that is the caller's own child (a
// library user started it, then dumped it) is not reaped: its exit
// status stays for the caller's wait, as if it had been killed by
// anyone else.
func (tr *tree) kill() {
	for k := len(tr.tasks) - 1; k >= 0; k-- {
		_ = tr.s.KillAndReap(tr.tasks[k].pid, true)
	}
}

// zombieProcess is what a zombie child is: its place in the tree and
// its wait status, for its parent to collect after the restore.
func (t *task) zombieProcess(d *model.Dump) *model.Process {
	s := t.stat
	pid, ppid, pgid, sid := t.treeIDs()
	return &model.Process{
		Tree: d, Pid: pid, Zombie: true,
		Core: &criucore.CoreEntry{
			Mtype: criucore.CoreEntry_X86_64.Enum(),
			Tc: &criucore.TaskCoreEntry{
				TaskState:   proto.Uint32(model.TaskDead),
				ExitCode:    proto.Uint32(uint32(s.ExitCode)),
				Personality: proto.Uint32(0),
				Flags:       proto.Uint32(0),
				BlkSigset:   proto.Uint64(0),
				Comm:        proto.String(s.Comm),
			},
		},
		Pstree: &pstree.PstreeEntry{
			Pid: proto.Uint32(uint32(pid)), Ppid: proto.Uint32(uint32(ppid)),
			Pgid: proto.Uint32(uint32(pgid)), Sid: proto.Uint32(uint32(sid)),
			Threads: []uint32{uint32(pid)},
		},
	}
}

// treeIDs returns the task's pid, parent, process group and session as
// the images name them: inside its PID namespace when the tree has one.
// The root's parent is 0, as CRIU writes it (crit's ps and others look
// every other parent up in the tree): its parent is not part of the
// dump, and a restore makes the restorer its parent.
func (t *task) treeIDs() (pid, ppid, pgid, sid int) {
	s := t.stat
	pid, ppid, pgid, sid = t.pid, s.PPid, s.Pgrp, s.Session
	if t.index == 1 {
		ppid = 0
	}
	if !t.ns {
		return
	}
	pid = t.vpid()
	if st := t.status; st != nil {
		pgid = t.virt(st.NSpgid, pgid)
		sid = t.virt(st.NSsid, sid)
	}
	ppid = 0
	if pid != 1 {
		if pst, err := procfs.ReadStatus(s.PPid); err == nil {
			ppid = t.virt(pst.NSpid, s.PPid)
		}
	}
	return
}
