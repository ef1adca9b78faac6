//go:build linux && amd64

// Package ns is the namespaces of a dumped tree: which kinds ckpt dumps
// and restores (UTS, IPC, mount, and PID namespaces made inside the
// tree), which it refuses (network, cgroup, user), and for the ones it
// restores their content, collect and restore side by side. The time
// namespace is the restore path's (internal/restore/timens.go); a tree
// whose root is the init of a PID namespace is the dump path's.
//
// A task in ckpt's own namespace of a kind has no id for it in its
// task_kobj_ids_entry and is restored into the restoring ckpt's. Every
// other namespace of the tree gets an id (uts_ns_id, ipc_ns_id,
// mnt_ns_id, pid_ns_id), its content is dumped into its image
// (utsns-ID.img, ipcns-var-ID.img, mountpoints-ID.img; a PID namespace's
// is its tasks' PIDs, in the pstree), and the restore creates it anew
// with the first task in it (clone3 with CLONE_NEWUTS, CLONE_NEWIPC,
// CLONE_NEWNS, CLONE_NEWPID), which the others inherit by fork. So a
// namespace must be entered by one task of the tree, with every other
// task in it a descendant that inherited it; other sharing (setns into a
// sibling's namespace, back into ckpt's) is refused.
//
// UTS names and IPC settings are read and set on a locked OS thread of
// ckpt that enters the namespace with setns for that (uname, the IPC
// sysctls of /proc/sys, /proc/sysvipc and the mqueue filesystem all show
// the reading thread's namespace) and leaves it again. Mounts are made
// by the restored task itself (mnt.go): a multi-threaded process cannot
// enter a mount namespace.
package ns

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// kind is one kind of namespace that ckpt dumps and restores.
type kind struct {
	name string // as in /proc/PID/ns/
	what string // for messages
	flag int    // CLONE_NEW*
	// id and setID read and set the kind's field of task_kobj_ids_entry.
	id    func(*criucore.TaskKobjIdsEntry) uint32
	setID func(*criucore.TaskKobjIdsEntry, uint32)
	// inspect refuses a namespace whose content cannot be dumped; it
	// runs inside the namespace.
	inspect func(pid int) error
	// collect reads the content into the dump; it runs inside the namespace.
	collect func(d *model.Dump, id uint32) error
	// restore sets the content of a new namespace; it runs inside it.
	restore func(d *model.Dump, id uint32) error
	// rootID, if set, is the fixed id of the root's namespace when it
	// is not ckpt's.
	rootID uint32
}

// kinds are the namespaces ckpt restores, in the order they are made.
var kinds = []kind{
	{
		name: "uts", what: "UTS", flag: unix.CLONE_NEWUTS,
		id:      (*criucore.TaskKobjIdsEntry).GetUtsNsId,
		setID:   func(e *criucore.TaskKobjIdsEntry, id uint32) { e.UtsNsId = proto.Uint32(id) },
		collect: collectUTS, restore: restoreUTS,
	},
	{
		name: "ipc", what: "IPC", flag: unix.CLONE_NEWIPC,
		id:      (*criucore.TaskKobjIdsEntry).GetIpcNsId,
		setID:   func(e *criucore.TaskKobjIdsEntry, id uint32) { e.IpcNsId = proto.Uint32(id) },
		inspect: inspectIPC, collect: collectIPCNS, restore: restoreIPCNS,
	},
	{
		// Mounts are made by the restored task itself (mnt.go): no
		// collect or restore on a thread of ckpt, which cannot enter a
		// mount namespace.
		name: "mnt", what: "mount", flag: unix.CLONE_NEWNS,
		id:    (*criucore.TaskKobjIdsEntry).GetMntNsId,
		setID: func(e *criucore.TaskKobjIdsEntry, id uint32) { e.MntNsId = proto.Uint32(id) },
	},
	{
		// A PID namespace has no content of its own here: its tasks'
		// PIDs are in the pstree, and the restore makes it with its
		// init (clone3 CLONE_NEWPID, set_tid). The root's own is
		// model.OwnPidNsID, as the restore path expects it.
		name: "pid", what: "PID", flag: unix.CLONE_NEWPID,
		id:     (*criucore.TaskKobjIdsEntry).GetPidNsId,
		setID:  func(e *criucore.TaskKobjIdsEntry, id uint32) { e.PidNsId = proto.Uint32(id) },
		rootID: model.OwnPidNsID,
	},
}

// refused are the namespaces a task must share with ckpt, with what to
// do instead.
var refused = []struct{ name, what, why string }{
	{"net", "network", "its interfaces, addresses and sockets cannot be recreated yet"},
	{"cgroup", "cgroup", "its cgroup root cannot be recreated yet"},
	{"user", "user", "its ID mappings and capabilities cannot be recreated yet"},
}

// link reads /proc/PID[/task/TID]/ns/NAME.
func link(pid, tid int, name string) (string, error) {
	if tid == 0 {
		return os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
	}
	return os.Readlink(fmt.Sprintf("/proc/%d/task/%d/ns/%s", pid, tid, name))
}

// Inspect checks, before the task is frozen, that its namespaces can be
// dumped: the refused kinds are ckpt's, every thread is in its leader's
// namespaces, and the content of its own namespaces can be dumped.
func Inspect(pid int) error {
	for _, r := range refused {
		mine, err := os.Readlink("/proc/self/ns/" + r.name)
		if err != nil {
			continue // a kernel without this namespace kind
		}
		its, err := link(pid, 0, r.name)
		if err != nil {
			return fmt.Errorf("read its %s namespace: %w", r.name, err)
		}
		if its != mine {
			return ckerr.Unsupported(pid, fmt.Sprintf("its %s namespace (%s; ckpt's is %s)", r.what, its, mine),
				"a task in a "+r.what+" namespace of its own cannot be dumped yet: "+r.why+"; run ckpt inside that namespace (nsenter --"+nsenterFlag(r.name)+" --target PID) or dump a task that shares ckpt's")
		}
	}
	tids, err := procfs.Threads(pid)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		mine, err := os.Readlink("/proc/self/ns/" + k.name)
		if err != nil {
			continue
		}
		its, err := link(pid, 0, k.name)
		if err != nil {
			return fmt.Errorf("read its %s namespace: %w", k.name, err)
		}
		for _, tid := range tids {
			if l, err := link(pid, tid, k.name); err == nil && l != its {
				return ckerr.Unsupported(pid, fmt.Sprintf("thread %d's %s namespace (%s; the process's is %s)", tid, k.what, l, its),
					"a thread in another namespace than its process cannot be restored")
			}
		}
		if its != mine && k.name == "mnt" {
			if _, err := collectMounts(&model.Dump{}, 0, pid); err != nil {
				return err
			}
		}
		if its != mine && k.inspect != nil {
			if err := enter(pid, k, func() error { return k.inspect(pid) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// nsenterFlag is nsenter's option for a namespace kind.
func nsenterFlag(name string) string {
	switch name {
	case "mnt":
		return "mount"
	case "user":
		return "user"
	}
	return name
}

// Dumper gives the namespaces of a tree being dumped their ids and
// collects their content.
type Dumper struct {
	d *model.Dump
	// ids are the namespaces given an id so far, by kind and link, and
	// first is the task that entered each.
	ids   map[string]uint32
	first map[uint32]int
	next  uint32
	// forChildren are the tasks whose next children go into another PID
	// namespace than their own (pid_for_children), with its link.
	forChildren []pendingChildren
	// mnts are the mount namespaces collected, pidInit the ids of the
	// init (first task) of each PID namespace of the tree.
	mnts    []*mntDump
	pidInit map[uint32]*criucore.TaskKobjIdsEntry
}

type pendingChildren struct {
	ids  *criucore.TaskKobjIdsEntry
	link string
}

// NewDumper collects into d; ids of namespaces start above model's
// fixed ones.
func NewDumper(d *model.Dump) *Dumper {
	return &Dumper{d: d, ids: map[string]uint32{}, first: map[uint32]int{}, next: model.FirstNsID, pidInit: map[uint32]*criucore.TaskKobjIdsEntry{}}
}

// Task fills ids with the namespace ids of task pid (frozen), whose
// parent in the tree is parent (0 for the root), and collects the
// content of every namespace it is the first task of. A task must be
// given after its parent.
func (n *Dumper) Task(pid, parent int, ids *criucore.TaskKobjIdsEntry) error {
	for _, k := range kinds {
		mine, err := os.Readlink("/proc/self/ns/" + k.name)
		if err != nil {
			continue
		}
		its, err := link(pid, 0, k.name)
		if err != nil {
			return fmt.Errorf("read its %s namespace: %w", k.name, err)
		}
		var parents string
		if parent != 0 {
			if parents, err = link(parent, 0, k.name); err != nil {
				return fmt.Errorf("read its parent %d's %s namespace: %w", parent, k.name, err)
			}
		}
		key := k.name + " " + its
		id, seen := n.ids[key]
		switch {
		case its == mine && parent != 0 && parents != mine:
			return ckerr.Unsupported(pid, fmt.Sprintf("its %s namespace, ckpt's (%s)", k.what, its),
				fmt.Sprintf("its parent %d is in a %s namespace of its own; a task that went back to ckpt's namespace cannot be restored", parent, k.what))
		case its == mine:
			continue
		case seen && its == parents:
			// Inherited from its parent.
		case seen:
			return ckerr.Unsupported(pid, fmt.Sprintf("its %s namespace (%s)", k.what, its),
				fmt.Sprintf("it shares it with task %d, which is not its ancestor in the tree (setns): only a namespace inherited from the task that made it can be restored", n.first[id]))
		default:
			if id = n.next; parent == 0 && k.rootID != 0 {
				id = k.rootID
			} else {
				n.next++
			}
			n.ids[key] = id
			n.first[id] = pid
			switch k.name {
			case "pid":
				n.pidInit[id] = ids
			case "mnt":
				md, err := collectMounts(n.d, id, pid)
				if err != nil {
					return err
				}
				md.ids = ids
				n.mnts = append(n.mnts, md)
			}
			if k.collect == nil {
				break
			}
			if err := enter(pid, k, func() error {
				if k.inspect != nil {
					if err := k.inspect(pid); err != nil {
						return err
					}
				}
				return k.collect(n.d, id)
			}); err != nil {
				return err
			}
		}
		k.setID(ids, id)
	}
	its, err1 := link(pid, 0, "pid")
	kids, err2 := link(pid, 0, "pid_for_children")
	switch {
	case err1 == nil && err2 == nil && kids != its:
		n.forChildren = append(n.forChildren, pendingChildren{ids, kids})
	case err1 == nil && errors.Is(err2, unix.ENOENT):
		// The link of a PID namespace without an init yet (made by
		// unshare(CLONE_NEWPID) before any fork) does not resolve.
		n.forChildren = append(n.forChildren, pendingChildren{ids, ""})
	case err2 != nil && !errors.Is(err2, unix.ENOENT):
		return fmt.Errorf("read its pid_for_children namespace: %w", err2)
	}
	return nil
}

// Finish records, once every task has its ids, the PID namespace that
// each task's next children go into where it is not the task's own
// (model.PidForChildrenNsID): the namespace of a task of the tree, or a
// new id for one without tasks (unshare(CLONE_NEWPID) before any fork).
func (n *Dumper) Finish() error {
	for _, f := range n.forChildren {
		key := "pid " + f.link
		id, ok := n.ids[key]
		if !ok || f.link == "" {
			id = n.next
			n.next++
			n.ids[key] = id
		}
		model.SetPidForChildrenNsID(f.ids, id)
	}
	if err := n.finishHostSysV(); err != nil {
		return err
	}
	// The SysV segments' contents, once every other shared memory
	// object of the dump has its name (saveShm); the tree is still
	// frozen.
	ids := slices.Sorted(maps.Keys(n.d.SysV))
	for _, id := range ids {
		if err := saveShm(n.d, n.d.SysV[id]); err != nil {
			return err
		}
	}
	mine, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return err
	}
	for _, md := range n.mnts {
		if err := n.finishMounts(md, mine); err != nil {
			return err
		}
	}
	return nil
}

// Close lets go of what a dump that failed before Finish still holds.
func (n *Dumper) Close() { closeShm(n.d) }

// finishMounts names the PID namespace of each proc mount of mount
// namespace md and checks that the task to mount it exists there.
func (n *Dumper) finishMounts(md *mntDump, ckptPidNS string) error {
	creatorNS := md.ids.GetPidNsId()
	procNS := map[int]uint32{}
	es := n.d.Mounts[md.id]
	for _, e := range es {
		l, ok := md.procs[int(e.GetMntId())]
		if !ok {
			continue
		}
		var id uint32
		if l != "" && l != ckptPidNS {
			if id, ok = n.ids["pid "+l]; !ok {
				// Not one of the tree's: only a problem if it must be made.
				id = ^uint32(0)
			}
		}
		procNS[int(e.GetMntId())] = id
		model.SetProcPidNsID(e, id)
	}
	cur, err := procfs.ReadMountinfo(os.Getpid())
	if err != nil {
		return fmt.Errorf("read ckpt's mounts: %w", err)
	}
	want := make([]procfs.Mount, len(es))
	for i, e := range es {
		want[i] = fromEntry(e)
	}
	ops, err := planMounts(cur, want, procNS, creatorNS)
	if err != nil {
		return ckerr.Unsupported(md.creator, "its mount namespace", err.Error()+mntAdvice)
	}
	for _, op := range ops {
		if op.pidNS == creatorNS {
			continue
		}
		obj := fmt.Sprintf("the proc mounted on %s in its mount namespace", op.target)
		if op.pidNS == ^uint32(0) {
			return ckerr.Unsupported(md.creator, obj, "it shows a PID namespace that no task of the tree is the init of")
		}
		init := n.pidInit[op.pidNS]
		if op.pidNS == 0 || init == nil || init.GetMntNsId() != md.id {
			return ckerr.Unsupported(md.creator, obj, "it shows a PID namespace whose init is not in this mount namespace, or ckpt's while the namespace is made in another: it cannot be mounted again")
		}
	}
	for _, e := range es {
		if model.ProcPidNsID(e) == ^uint32(0) {
			model.SetProcPidNsID(e, 0) // kept as is (a bind), not made
		}
	}
	return nil
}

// CloneFlags are the CLONE_NEW* flags that create the namespaces of a
// task that its parent (nil for the root: ckpt) is not in.
func CloneFlags(ids, parent *criucore.TaskKobjIdsEntry) uint64 {
	var f uint64
	for _, k := range kinds {
		if id := k.id(ids); id != 0 && id != k.id(parent) {
			f |= uint64(k.flag)
		}
	}
	return f
}

// Task is a task being restored, as the namespace kinds need it:
// syscalls run inside it, with strings in its scratch data.
type Task interface {
	Syscall(s x86.Syscall, args ...uint64) (uint64, error)
	// PutString writes s, NUL-terminated, at offset off of the scratch
	// data (at least three pages) and returns its address.
	PutString(off uint64, s string) (uint64, error)
	Logf(format string, args ...any)
}

// Restore sets the content of the namespaces that task pid (its PID in
// ckpt's namespace) was created in by CloneFlags(ids, parent); t runs
// syscalls inside it. It runs once the task exists, before it has
// children.
func Restore(d *model.Dump, pid int, ids, parent *criucore.TaskKobjIdsEntry, t Task) error {
	for _, k := range kinds {
		id := k.id(ids)
		if id == 0 || id == k.id(parent) {
			continue
		}
		var err error
		switch {
		case k.name == "mnt":
			err = restoreMounts(d, id, ids.GetPidNsId(), true, t)
		case k.name == "pid" && ids.GetMntNsId() != 0 && ids.GetMntNsId() == parent.GetMntNsId():
			// The init of a PID namespace in a mount namespace made
			// before it: the proc mounts that show its namespace.
			err = restoreMounts(d, ids.GetMntNsId(), id, false, t)
		case k.restore != nil:
			err = enter(pid, k, func() error { return k.restore(d, id) })
		}
		if err != nil {
			return fmt.Errorf("%s namespace %d: %w", k.what, id, err)
		}
	}
	return nil
}

// Describe names the namespaces of the task that are not ckpt's, for
// ckpt show and logs: "uts 3, ipc 4", or "".
func Describe(ids *criucore.TaskKobjIdsEntry) string {
	s := ""
	for _, k := range kinds {
		if id := k.id(ids); id != 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %d", k.name, id)
		}
	}
	return s
}

// enter runs fn on a locked OS thread of ckpt that is in task pid's
// namespace of kind k, and puts the thread back into ckpt's afterwards.
// Should that fail, the thread stays locked and ends with its goroutine
// (Go then kills the thread), so no other goroutine ever runs in it.
func enter(pid int, k kind, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err, back := enterLocked(pid, k, fn)
		if back {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// enterLocked is enter on the locked thread; back tells that the thread
// is in ckpt's namespace again.
func enterLocked(pid int, k kind, fn func() error) (err error, back bool) {
	self, err := os.Open("/proc/thread-self/ns/" + k.name)
	if err != nil {
		return fmt.Errorf("open ckpt's %s namespace: %w", k.name, err), true
	}
	defer self.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, k.name))
	if err != nil {
		return fmt.Errorf("open task %d's %s namespace: %w", pid, k.name, err), true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), k.flag); err != nil {
		return fmt.Errorf("enter task %d's %s namespace: setns: %w", pid, k.name, err), true
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), k.flag); err != nil {
		return errors.Join(ferr, fmt.Errorf("go back to ckpt's %s namespace: setns: %w", k.name, err)), false
	}
	return ferr, true
}
