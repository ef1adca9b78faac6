//go:build linux && amd64

package ns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"

	corex86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// SysV IPC objects of ckpt's own IPC namespace (the host's): a tree that
// shares it is dumped with the objects it uses, by its model id 0
// (model.HostIPC). The namespace holds other programs' objects too, so
// the dump takes only those that a process of the tree attached
// (segments mapped by it), created (a segment's cpid), operated on last
// (a segment's lpid, a semaphore's sempid, a queue's lspid or lrpid) or
// waits on (a thread caught in semop or msgrcv, its id in its
// registers). The restore makes each again with its id where that id is
// free; where the object is still there (the same id, key, size, mode
// and owners: the tree was restored on the machine it was dumped on, and
// the object outlived it) it is left as it is, with the contents and
// messages it has now, which are the live ones; where another object
// has the id or the key, the restore refuses before it changes
// anything, naming both.

// collectHostSysV reads the SysV objects of ckpt's IPC namespace that
// the processes pids of the tree use; attached are the segments they
// have attached.
func collectHostSysV(d *model.Dump, pids map[int]bool, attached map[uint64]bool, waitSem, waitMsg map[uint32]bool) error {
	inTree := func(s string) bool {
		p, err := strconv.Atoi(s)
		return err == nil && p > 0 && pids[p]
	}
	s := &model.SysV{}
	err := collectSysVInto(s, func(table string, row map[string]string, id uint32) bool {
		switch table {
		case "shm":
			return attached[uint64(id)] || inTree(row["cpid"]) || inTree(row["lpid"])
		case "msg":
			return waitMsg[id] || inTree(row["lspid"]) || inTree(row["lrpid"])
		}
		if waitSem[id] {
			return true
		}
		n, _ := strconv.Atoi(row["nsems"])
		for i := 0; i < n; i++ {
			pid, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), uintptr(i), uapi.GETPID, 0, 0, 0)
			if errno == 0 && pid > 0 && pids[int(pid)] {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	for id := range attached {
		found := false
		for _, o := range s.Shm {
			found = found || uint64(o.Entry.GetDesc().GetId()) == id
		}
		if !found {
			return fmt.Errorf("SysV shared memory segment %d, attached by the tree, is not in /proc/sysvipc/shm", id)
		}
	}
	if len(s.Shm)+len(s.Sem)+len(s.Msg) == 0 {
		return nil
	}
	if d.SysV == nil {
		d.SysV = map[uint32]*model.SysV{}
	}
	d.SysV[model.HostIPC] = s
	return nil
}

// finishHostSysV collects, once every task is collected, the SysV
// objects of ckpt's IPC namespace that the tasks in it use.
func (n *Dumper) finishHostSysV() error {
	pids := map[int]bool{}
	attached := map[uint64]bool{}
	waitSem, waitMsg := map[uint32]bool{}, map[uint32]bool{}
	host := false
	for _, p := range n.d.Procs {
		pids[p.Pid] = true
		if p.Zombie || p.IDs.GetIpcNsId() != 0 {
			continue
		}
		host = true
		for _, v := range p.MM.GetVmas() {
			if v.GetStatus()&image.VMAAreaSysVIPC != 0 {
				attached[v.GetShmid()] = true
			}
		}
		for _, c := range append([]*criucore.CoreEntry{p.Core}, p.Threads...) {
			if id, sem, ok := waitsOn(c); ok && sem {
				waitSem[id] = true
			} else if ok {
				waitMsg[id] = true
			}
		}
	}
	if !host {
		return nil
	}
	if err := collectHostSysV(n.d, pids, attached, waitSem, waitMsg); err != nil {
		return fmt.Errorf("the SysV IPC objects of the host's IPC namespace: %w", err)
	}
	return nil
}

// waitsOn tells the semaphore set (sem) or message queue a thread was
// caught waiting on in a system call, from its dumped registers: the
// call in orig_ax, the id its first argument (rdi; ebx for ia32, or ecx
// for ia32's ipc(2), whose first argument is the call).
func waitsOn(c *criucore.CoreEntry) (id uint32, sem, ok bool) {
	g := c.GetThreadInfo().GetGpregs()
	if g == nil {
		return 0, false, false
	}
	nr := int64(g.GetOrigAx())
	if g.GetMode() == corex86.UserX86RegsMode_COMPAT {
		nr = int64(int32(g.GetOrigAx()))
		switch nr {
		case uapi.NR32_semtimedop_time64:
			return uint32(g.GetBx()), true, true
		case uapi.NR32_msgsnd, uapi.NR32_msgrcv:
			return uint32(g.GetBx()), false, true
		case uapi.NR32_ipc:
			switch uint32(g.GetBx()) & 0xffff { // the call's version is in the high half
			case uapi.IPCCALL_SEMOP, uapi.IPCCALL_SEMTIMEDOP:
				return uint32(g.GetCx()), true, true
			case uapi.IPCCALL_MSGSND, uapi.IPCCALL_MSGRCV:
				return uint32(g.GetCx()), false, true
			}
		}
		return 0, false, false
	}
	switch nr {
	case uapi.NR_semop, uapi.NR_semtimedop:
		return uint32(g.GetDi()), true, true
	case uapi.NR_msgsnd, uapi.NR_msgrcv:
		return uint32(g.GetDi()), false, true
	}
	return 0, false, false
}

// hostObject is a dumped object of ckpt's IPC namespace at restore.
type hostObject struct {
	what string // "SysV shared memory segment 5 (key 0x1)"
	typ  string // ipcrm's option: m, s, q
	id   uint32
	ctl  uintptr
	// same tells whether the IPC_STAT of the live object with the id
	// shows the dumped one.
	same func(st []byte) bool
	// make makes it, calling made once it exists.
	make func(made func()) error
}

// RestoreHostSysV makes again the SysV objects of ckpt's IPC namespace
// that the tree used, before any task of the tree exists; onUndo
// registers the removal of each object it makes, should the restore
// fail. An id or key taken by another object refuses the restore
// before any object is made.
func RestoreHostSysV(d *model.Dump, onUndo func(what string, fn func() error)) error {
	s := d.SysV[model.HostIPC]
	if s == nil {
		return nil
	}
	le := binary.LittleEndian
	perm := func(st []byte, e interface {
		GetKey() uint32
		GetUid() uint32
		GetGid() uint32
		GetCuid() uint32
		GetCgid() uint32
		GetMode() uint32
	}) bool {
		return le.Uint32(st[0:]) == e.GetKey() && le.Uint32(st[uapi.Ipc64PermUid:]) == e.GetUid() && le.Uint32(st[uapi.Ipc64PermGid:]) == e.GetGid() &&
			le.Uint32(st[uapi.Ipc64PermCuid:]) == e.GetCuid() && le.Uint32(st[uapi.Ipc64PermCgid:]) == e.GetCgid() && le.Uint32(st[uapi.Ipc64PermMode:])&0o777 == e.GetMode()&0o777
	}
	var objs []hostObject
	for i := range s.Shm {
		o := &s.Shm[i]
		e := o.Entry.GetDesc()
		objs = append(objs, hostObject{
			what: fmt.Sprintf("SysV shared memory segment %d (key %#x)", e.GetId(), e.GetKey()), typ: "m", id: e.GetId(), ctl: unix.SYS_SHMCTL,
			same: func(st []byte) bool { return perm(st, e) && le.Uint64(st[uapi.ShmidSegsz:]) == o.Entry.GetSize() },
			make: func(made func()) error { return makeShm(d, o, made) },
		})
	}
	for i := range s.Sem {
		o := &s.Sem[i]
		e := o.Entry.GetDesc()
		objs = append(objs, hostObject{
			what: fmt.Sprintf("SysV semaphore set %d (key %#x)", e.GetId(), e.GetKey()), typ: "s", id: e.GetId(), ctl: unix.SYS_SEMCTL,
			same: func(st []byte) bool { return perm(st, e) && le.Uint64(st[uapi.SemidNsems:]) == uint64(len(o.Values)) },
			make: func(made func()) error { return makeSem(o, made) },
		})
	}
	for i := range s.Msg {
		o := &s.Msg[i]
		e := o.Entry.GetDesc()
		objs = append(objs, hostObject{
			what: fmt.Sprintf("SysV message queue %d (key %#x)", e.GetId(), e.GetKey()), typ: "q", id: e.GetId(), ctl: unix.SYS_MSGCTL,
			same: func(st []byte) bool { return perm(st, e) },
			make: func(made func()) error { return makeMsg(o, made) },
		})
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].id < objs[j].id })
	// First every check, then every change.
	var todo []hostObject
	for _, o := range objs {
		st, err := ipcStat(o.ctl, o.id)
		switch {
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIDRM):
			todo = append(todo, o)
		case err != nil:
			return fmt.Errorf("%s: %w", o.what, err)
		case o.same(st):
			// Still there: the live object is the tree's.
		default:
			return fmt.Errorf("%s of the host's IPC namespace: its id is taken by another object (key %#x, owner %d:%d, mode %o): remove it (ipcrm -%s %d) or restore where the id is free",
				o.what, le.Uint32(st[0:]), le.Uint32(st[uapi.Ipc64PermUid:]), le.Uint32(st[uapi.Ipc64PermGid:]), le.Uint32(st[uapi.Ipc64PermMode:])&0o777, o.typ, o.id)
		}
	}
	for _, o := range todo {
		o := o
		made := func() { onUndo("remove "+o.what, func() error { return rmid(o.ctl, o.id) }) }
		if err := o.make(made); err != nil {
			// makeShm and the others name the object; a key in use
			// fails them with EEXIST.
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%w: another object of the host's IPC namespace has its key: remove it (ipcrm) or restore where the key is free", err)
			}
			return err
		}
	}
	return nil
}

// RemoveHostSysV removes from ckpt's IPC namespace the objects of a
// dump's host namespace, by id (for tests that act as a fresh machine).
func RemoveHostSysV(dir string) error {
	d, err := model.Load(dir)
	if err != nil {
		return err
	}
	s := d.SysV[model.HostIPC]
	if s == nil {
		return fmt.Errorf("%s: no SysV objects of the host's IPC namespace (%s)", dir, image.IpcShmName(model.HostIPC))
	}
	var errs []error
	rm := func(ctl uintptr, id uint32) {
		if err := rmid(ctl, id); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EIDRM) {
			errs = append(errs, fmt.Errorf("IPC_RMID %d: %w", id, err))
		}
	}
	for _, o := range s.Shm {
		rm(unix.SYS_SHMCTL, o.Entry.GetDesc().GetId())
	}
	for _, o := range s.Sem {
		rm(unix.SYS_SEMCTL, o.Entry.GetDesc().GetId())
	}
	for _, o := range s.Msg {
		rm(unix.SYS_MSGCTL, o.Entry.GetDesc().GetId())
	}
	return errors.Join(errs...)
}
