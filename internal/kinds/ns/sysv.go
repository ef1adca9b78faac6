//go:build linux && amd64

package ns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	ipcdesc "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-desc"
	ipcmsg "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-msg"
	ipcsem "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-sem"
	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// SysV IPC objects of an IPC namespace: shared memory segments,
// semaphore sets and message queues. They are read and made by a thread
// of ckpt inside the namespace (as the settings are, ipc.go): the
// objects are listed in /proc/sysvipc; a segment's contents are read
// through an attach of ckpt's own (shmat, read-only), a set's values
// with semctl(GETALL), a queue's messages with msgrcv(MSG_COPY), which
// leaves them queued. The restore makes each object in the new namespace
// with its id (kernel.{shm,sem,msg}_next_id set just before it is
// made), key, mode and owner, then fills it. The creator (cuid, cgid,
// cpid) becomes ckpt, the times those of the restore: the kernel has no
// way to set them.
//
// Segments that tasks of the tree have attached are mapped again at
// restore by the tasks themselves (shmat at the address, see ShmAttach);
// a segment marked for removal (IPC_RMID while attached: SHM_DEST) is
// made unmarked and marked again once a task has attached it.
//
// Semaphore undo lists (SEM_UNDO) are not dumped: the kernel shows
// neither the adjustments nor whether a task has any (kcmp
// KCMP_SYSVSEM only tells that a task has a list, and every threaded
// process has one: clone with CLONE_SYSVSEM allocates it).

// sysvipcTable reads /proc/sysvipc/NAME: one map of column name to
// value per object.
func sysvipcTable(name string) ([]map[string]string, error) {
	b, err := os.ReadFile("/proc/sysvipc/" + name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Fields(lines[0])
	var out []map[string]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < len(head) {
			return nil, fmt.Errorf("/proc/sysvipc/%s: line %q has %d columns, want %d", name, l, len(f), len(head))
		}
		m := map[string]string{}
		for i, h := range head {
			m[h] = f[i]
		}
		out = append(out, m)
	}
	return out, nil
}

// desc fills an ipc_desc_entry from a /proc/sysvipc row whose id column
// is idCol.
func desc(row map[string]string, idCol string) (*ipcdesc.IpcDescEntry, error) {
	num := func(col string, base int) (uint32, error) {
		v, err := strconv.ParseInt(row[col], base, 64)
		if err != nil {
			return 0, fmt.Errorf("column %s: %q: %w", col, row[col], err)
		}
		return uint32(v), nil
	}
	e := &ipcdesc.IpcDescEntry{}
	for _, c := range []struct {
		col  string
		base int
		dst  **uint32
	}{
		{"key", 10, &e.Key}, {idCol, 10, &e.Id}, {"perms", 8, &e.Mode},
		{"uid", 10, &e.Uid}, {"gid", 10, &e.Gid}, {"cuid", 10, &e.Cuid}, {"cgid", 10, &e.Cgid},
	} {
		v, err := num(c.col, c.base)
		if err != nil {
			return nil, err
		}
		*c.dst = proto.Uint32(v)
	}
	return e, nil
}

// collectSysV reads the SysV objects of the IPC namespace the thread is in.
func collectSysV(d *model.Dump, id uint32) error {
	s := &model.SysV{}
	if err := collectSysVInto(s, func(string, map[string]string, uint32) bool { return true }); err != nil {
		return err
	}
	if d.SysV == nil {
		d.SysV = map[uint32]*model.SysV{}
	}
	d.SysV[id] = s
	return nil
}

// collectSysVInto reads the SysV objects of the thread's IPC namespace
// that keep takes (given the table, "shm", "sem" or "msg", its row of
// /proc/sysvipc and the object's id) into s; the others are not touched.
func collectSysVInto(s *model.SysV, keep func(table string, row map[string]string, id uint32) bool) error {
	rows, err := sysvipcTable("shm")
	if err != nil {
		return err
	}
	for _, row := range rows {
		e, err := desc(row, "shmid")
		if err != nil {
			return fmt.Errorf("/proc/sysvipc/shm: %w", err)
		}
		if !keep("shm", row, e.GetId()) {
			continue
		}
		size, err := strconv.ParseUint(row["size"], 10, 64)
		if err != nil {
			return fmt.Errorf("/proc/sysvipc/shm: size %q: %w", row["size"], err)
		}
		f, err := openShm(int(e.GetId()), size)
		if err != nil {
			return fmt.Errorf("SysV shared memory segment %d (key %#x): %w", e.GetId(), e.GetKey(), err)
		}
		s.Shm = append(s.Shm, model.SysVShm{Entry: &ipcshm.IpcShmEntry{Desc: e, Size: proto.Uint64(size)}, Src: f})
	}
	if rows, err = sysvipcTable("sem"); err != nil {
		return err
	}
	for _, row := range rows {
		e, err := desc(row, "semid")
		if err != nil {
			return fmt.Errorf("/proc/sysvipc/sem: %w", err)
		}
		if !keep("sem", row, e.GetId()) {
			continue
		}
		n, err := strconv.ParseUint(row["nsems"], 10, 32)
		if err != nil {
			return fmt.Errorf("/proc/sysvipc/sem: nsems %q: %w", row["nsems"], err)
		}
		vals := make([]uint16, n)
		if n > 0 {
			if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(e.GetId()), 0, uapi.GETALL, uintptr(unsafe.Pointer(&vals[0])), 0, 0); errno != 0 {
				return fmt.Errorf("SysV semaphore set %d (key %#x): semctl GETALL: %w", e.GetId(), e.GetKey(), errno)
			}
		}
		s.Sem = append(s.Sem, model.SysVSem{Entry: &ipcsem.IpcSemEntry{Desc: e, Nsems: proto.Uint32(uint32(n))}, Values: vals})
	}
	if rows, err = sysvipcTable("msg"); err != nil {
		return err
	}
	for _, row := range rows {
		e, err := desc(row, "msqid")
		if err != nil {
			return fmt.Errorf("/proc/sysvipc/msg: %w", err)
		}
		if !keep("msg", row, e.GetId()) {
			continue
		}
		q, err := msgQueue(e)
		if err != nil {
			return fmt.Errorf("SysV message queue %d (key %#x): %w", e.GetId(), e.GetKey(), err)
		}
		s.Msg = append(s.Msg, q)
	}
	return nil
}

// openShm opens the file of segment id (a shmem file, "SYSV" and its
// key) through an attach of ckpt's own, detached before it returns: the
// file reads the segment from any IPC namespace, and its holes (pages
// never touched) are known (SEEK_DATA). nil for an empty segment.
func openShm(id int, size uint64) (*os.File, error) {
	if size == 0 {
		return nil, nil
	}
	return shmFile(id, false)
}

// shmFile opens the file of segment id, read-only or (write) read-write,
// through an attach of ckpt's own, detached before it returns.
func shmFile(id int, write bool) (*os.File, error) {
	attach, flag := unix.SHM_RDONLY, os.O_RDONLY
	if write {
		attach, flag = 0, os.O_RDWR
	}
	m, err := unix.SysvShmAttach(id, 0, attach)
	if err != nil {
		return nil, fmt.Errorf("shmat: %w", err)
	}
	defer unix.SysvShmDetach(m)
	// A segment of huge pages (SHM_HUGETLB) is a hugetlbfs file, which
	// /proc/sysvipc does not tell.
	start := uint64(uintptr(unsafe.Pointer(&m[0])))
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	vmas, err := procfs.ParseMaps(b)
	if err != nil {
		return nil, fmt.Errorf("ckpt's maps: %w", err)
	}
	end := uint64(0)
	for _, v := range vmas {
		if v.Start == start {
			end = v.End
		}
	}
	path := fmt.Sprintf("/proc/self/map_files/%x-%x", start, end)
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return nil, fmt.Errorf("statfs of ckpt's attach at %#x-%#x: %w", start, end, err)
	}
	if sfs.Type == unix.HUGETLBFS_MAGIC {
		return nil, errHugetlbShm
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open the file of ckpt's attach: %w", err)
	}
	return f, nil
}

// saveShm saves the content of the segments of s whose file is still
// open: into the dump's shared memory pages under the segment's id, in
// chunks, as CRIU keeps it; whole after its entry where the id names
// another object of the dump already (CRIU's images name SysV segments
// by IPC id and other shared memory by inode, and IPC namespaces have
// ids of their own).
func saveShm(d *model.Dump, s *model.SysV) error {
	for i := range s.Shm {
		o := &s.Shm[i]
		if o.Src == nil {
			continue
		}
		e := o.Entry.GetDesc()
		size := o.Entry.GetSize()
		var err error
		if id := uint64(e.GetId()); !d.HasShmem(id) {
			err = d.SaveShmem(id, o.Src, int64(size))
			o.InPages = err == nil
		} else {
			o.Data = make([]byte, size)
			_, err = o.Src.ReadAt(o.Data, 0)
		}
		o.Src.Close()
		o.Src = nil
		if err != nil {
			return fmt.Errorf("SysV shared memory segment %d (key %#x): %w", e.GetId(), e.GetKey(), err)
		}
	}
	return nil
}

// closeShm closes the files of segments whose content was not saved
// (a dump that failed).
func closeShm(d *model.Dump) {
	for _, s := range d.SysV {
		for i := range s.Shm {
			if f := s.Shm[i].Src; f != nil {
				f.Close()
				s.Shm[i].Src = nil
			}
		}
	}
}

// errHugetlbShm refuses a segment of huge pages.
var errHugetlbShm = errors.New("a segment of huge pages (SHM_HUGETLB) cannot be dumped yet")

// ipcStat runs IPC_STAT on object id with ctl (semctl, msgctl or
// shmctl) into a buffer large enough for any *id64_ds.
func ipcStat(ctl uintptr, id uint32) ([]byte, error) {
	b := make([]byte, uapi.SizeofIpcDs)
	var errno unix.Errno
	if ctl == unix.SYS_SEMCTL {
		_, _, errno = unix.Syscall6(ctl, uintptr(id), 0, unix.IPC_STAT, uintptr(unsafe.Pointer(&b[0])), 0, 0)
	} else {
		_, _, errno = unix.Syscall(ctl, uintptr(id), unix.IPC_STAT, uintptr(unsafe.Pointer(&b[0])))
	}
	if errno != 0 {
		return nil, fmt.Errorf("IPC_STAT: %w", errno)
	}
	return b, nil
}

// msgQueue reads a message queue's size limit and messages, leaving
// them queued.
func msgQueue(e *ipcdesc.IpcDescEntry) (model.SysVMsgQueue, error) {
	st, err := ipcStat(unix.SYS_MSGCTL, e.GetId())
	if err != nil {
		return model.SysVMsgQueue{}, err
	}
	le := binary.LittleEndian
	q := model.SysVMsgQueue{Entry: &ipcmsg.IpcMsgEntry{Desc: e, Qbytes: proto.Uint32(uint32(le.Uint64(st[uapi.MsqidQbytes:])))}}
	max, err := readSysctl("kernel/msgmax")
	if err != nil {
		return q, err
	}
	n, err := strconv.Atoi(max)
	if err != nil {
		return q, fmt.Errorf("kernel.msgmax %q: %w", max, err)
	}
	buf := make([]byte, 8+n)
	for i := 0; ; i++ {
		got, _, errno := unix.Syscall6(unix.SYS_MSGRCV, uintptr(e.GetId()), uintptr(unsafe.Pointer(&buf[0])), uintptr(n), uintptr(i), unix.IPC_NOWAIT|uapi.MSG_COPY, 0)
		if errno == unix.ENOMSG {
			break
		}
		if errno != 0 {
			if errno == unix.ENOSYS {
				return q, fmt.Errorf("msgrcv MSG_COPY: %w (the kernel lacks CONFIG_CHECKPOINT_RESTORE)", errno)
			}
			return q, fmt.Errorf("msgrcv MSG_COPY of message %d: %w", i, errno)
		}
		q.Msgs = append(q.Msgs, model.SysVMsg{Type: le.Uint64(buf), Text: append([]byte(nil), buf[8:8+got]...)})
	}
	q.Entry.Qnum = proto.Uint32(uint32(len(q.Msgs)))
	return q, nil
}

// sysvObject is one object to make at restore, in id order.
type sysvObject struct {
	id   uint32
	make func() error
}

// restoreSysV makes the SysV objects of IPC namespace id in the new
// namespace the thread is in, with their ids.
func restoreSysV(d *model.Dump, id uint32) error {
	s := d.SysV[id]
	if s == nil {
		return nil
	}
	var objs []sysvObject
	for i := range s.Shm {
		o := &s.Shm[i]
		objs = append(objs, sysvObject{o.Entry.GetDesc().GetId(), func() error { return makeShm(d, o, nil) }})
	}
	for i := range s.Sem {
		o := &s.Sem[i]
		objs = append(objs, sysvObject{o.Entry.GetDesc().GetId(), func() error { return makeSem(o, nil) }})
	}
	for i := range s.Msg {
		o := &s.Msg[i]
		objs = append(objs, sysvObject{o.Entry.GetDesc().GetId(), func() error { return makeMsg(o, nil) }})
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].id < objs[j].id })
	for _, o := range objs {
		if err := o.make(); err != nil {
			return err
		}
	}
	return nil
}

// withID runs get, which makes an object, after setting kernel.NAME to
// want (the kernel gives the next object that id and resets it), and
// checks that the object got it. Should get fail, kernel.NAME is reset
// (-1) so that no later object takes the id; should another object
// made meanwhile have taken it, the one made here is removed with ctl.
func withID(name string, ctl uintptr, want uint32, get func() (int, error)) error {
	path := "/proc/sys/kernel/" + name
	if err := os.WriteFile(path, []byte(strconv.FormatUint(uint64(want), 10)), 0); err != nil {
		return fmt.Errorf("set kernel.%s to %d: %w", name, want, err)
	}
	got, err := get()
	if err != nil {
		if rerr := os.WriteFile(path, []byte("-1"), 0); rerr != nil {
			err = errors.Join(err, fmt.Errorf("reset kernel.%s: %w", name, rerr))
		}
		return err
	}
	if uint32(got) != want {
		rmid(ctl, uint32(got))
		return fmt.Errorf("made with id %d, not %d (kernel.%s): another object was made at the same moment", got, want, name)
	}
	return nil
}

// rmid removes object id with ctl (shmctl, semctl or msgctl).
func rmid(ctl uintptr, id uint32) error {
	var errno unix.Errno
	if ctl == unix.SYS_SEMCTL {
		_, _, errno = unix.Syscall6(ctl, uintptr(id), 0, unix.IPC_RMID, 0, 0, 0)
	} else {
		_, _, errno = unix.Syscall(ctl, uintptr(id), unix.IPC_RMID, 0)
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// setPerm sets an object's owner and permissions (and, for a queue,
// its size limit) with IPC_SET.
func setPerm(ctl uintptr, e *ipcdesc.IpcDescEntry, qbytes uint32) error {
	b, err := ipcStat(ctl, e.GetId())
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(b[uapi.Ipc64PermUid:], e.GetUid())
	le.PutUint32(b[uapi.Ipc64PermGid:], e.GetGid())
	le.PutUint32(b[uapi.Ipc64PermMode:], e.GetMode()&0o777)
	if ctl == unix.SYS_MSGCTL {
		le.PutUint64(b[uapi.MsqidQbytes:], uint64(qbytes))
	}
	var errno unix.Errno
	if ctl == unix.SYS_SEMCTL {
		_, _, errno = unix.Syscall6(ctl, uintptr(e.GetId()), 0, unix.IPC_SET, uintptr(unsafe.Pointer(&b[0])), 0, 0)
	} else {
		_, _, errno = unix.Syscall(ctl, uintptr(e.GetId()), unix.IPC_SET, uintptr(unsafe.Pointer(&b[0])))
	}
	if errno != 0 {
		return fmt.Errorf("IPC_SET owner %d:%d mode %o: %w", e.GetUid(), e.GetGid(), e.GetMode()&0o777, errno)
	}
	return nil
}

// makeShm makes segment o of dump d with its id and contents; made, if
// set, is told once the segment exists (to remove it should the restore
// fail).
func makeShm(d *model.Dump, o *model.SysVShm, made func()) error {
	e := o.Entry.GetDesc()
	what := fmt.Sprintf("SysV shared memory segment %d (key %#x)", e.GetId(), e.GetKey())
	if o.Entry.GetHugetlbFlag() != 0 {
		return fmt.Errorf("%s: a hugetlb segment cannot be restored yet", what)
	}
	if err := withID("shm_next_id", unix.SYS_SHMCTL, e.GetId(), func() (int, error) {
		id, err := unix.SysvShmGet(int(int32(e.GetKey())), int(o.Entry.GetSize()), unix.IPC_CREAT|unix.IPC_EXCL|0o600)
		if err != nil {
			return 0, fmt.Errorf("shmget: %w", err)
		}
		return id, nil
	}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if made != nil {
		made()
	}
	if o.InPages {
		// Written through the segment's file, in chunks from the pages
		// image: ckpt maps none of it. Bytes a corrupt pagemap puts past
		// the segment are dropped.
		f, err := shmFile(int(e.GetId()), true)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		size := o.Entry.GetSize()
		err = d.CopyShmem(uint64(e.GetId()), func(b []byte, off uint64) error {
			if off >= size {
				return nil
			}
			_, err := f.WriteAt(b[:min(uint64(len(b)), size-off)], int64(off))
			return err
		})
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	} else if len(o.Data) > 0 {
		m, err := unix.SysvShmAttach(int(e.GetId()), 0, 0)
		if err != nil {
			return fmt.Errorf("%s: shmat: %w", what, err)
		}
		copy(m, o.Data)
		if err := unix.SysvShmDetach(m); err != nil {
			return fmt.Errorf("%s: shmdt: %w", what, err)
		}
	}
	if e.GetMode()&uapi.SHM_LOCKED != 0 {
		if _, _, errno := unix.Syscall(unix.SYS_SHMCTL, uintptr(e.GetId()), uapi.SHM_LOCK, 0); errno != 0 {
			return fmt.Errorf("%s: SHM_LOCK: %w", what, errno)
		}
	}
	if err := setPerm(unix.SYS_SHMCTL, e, 0); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// makeSem makes semaphore set o with its id and values; made: see makeShm.
func makeSem(o *model.SysVSem, made func()) error {
	e := o.Entry.GetDesc()
	what := fmt.Sprintf("SysV semaphore set %d (key %#x)", e.GetId(), e.GetKey())
	if err := withID("sem_next_id", unix.SYS_SEMCTL, e.GetId(), func() (int, error) {
		id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(int32(e.GetKey())), uintptr(len(o.Values)), unix.IPC_CREAT|unix.IPC_EXCL|0o600)
		if errno != 0 {
			return 0, fmt.Errorf("semget: %w", errno)
		}
		return int(id), nil
	}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if made != nil {
		made()
	}
	if len(o.Values) > 0 {
		if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(e.GetId()), 0, uapi.SETALL, uintptr(unsafe.Pointer(&o.Values[0])), 0, 0); errno != 0 {
			return fmt.Errorf("%s: semctl SETALL: %w", what, errno)
		}
	}
	if err := setPerm(unix.SYS_SEMCTL, e, 0); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// makeMsg makes message queue o with its id and messages; made: see
// makeShm.
func makeMsg(o *model.SysVMsgQueue, made func()) error {
	e := o.Entry.GetDesc()
	what := fmt.Sprintf("SysV message queue %d (key %#x)", e.GetId(), e.GetKey())
	if err := withID("msg_next_id", unix.SYS_MSGCTL, e.GetId(), func() (int, error) {
		id, _, errno := unix.Syscall(unix.SYS_MSGGET, uintptr(int32(e.GetKey())), unix.IPC_CREAT|unix.IPC_EXCL|0o600, 0)
		if errno != 0 {
			return 0, fmt.Errorf("msgget: %w", errno)
		}
		return int(id), nil
	}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if made != nil {
		made()
	}
	// The size limit first: the messages may need it.
	if err := setPerm(unix.SYS_MSGCTL, &ipcdesc.IpcDescEntry{Id: e.Id, Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o600)}, o.Entry.GetQbytes()); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for i, m := range o.Msgs {
		buf := make([]byte, 8+len(m.Text))
		binary.LittleEndian.PutUint64(buf, m.Type)
		copy(buf[8:], m.Text)
		if _, _, errno := unix.Syscall6(unix.SYS_MSGSND, uintptr(e.GetId()), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(m.Text)), unix.IPC_NOWAIT, 0, 0); errno != 0 {
			return fmt.Errorf("%s: msgsnd of message %d (type %d, %d bytes): %w", what, i, m.Type, len(m.Text), errno)
		}
	}
	if err := setPerm(unix.SYS_MSGCTL, e, o.Entry.GetQbytes()); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ShmSegment returns the dumped segment shmid of IPC namespace ipcNS of
// d (0: ckpt's), for a task that maps it.
func ShmSegment(d *model.Dump, ipcNS uint32, shmid uint64) (*model.SysVShm, error) {
	if s := d.SysV[ipcNS]; s != nil {
		for i := range s.Shm {
			if uint64(s.Shm[i].Entry.GetDesc().GetId()) == shmid {
				return &s.Shm[i], nil
			}
		}
	}
	return nil, errors.New("the dump has no SysV shared memory segment " + strconv.FormatUint(shmid, 10) + " in its IPC namespace")
}

// CheckShmAttach refuses an area of task pid that attaches a SysV
// segment in a way the restore cannot make again: part of a segment
// (unmapped or split in part), which a new shmat would not give.
func CheckShmAttach(pid int, v procfs.VMA) error {
	object := fmt.Sprintf("vma %#x-%#x, SysV shared memory segment %d (%s)", v.Start, v.End, v.Inode, v.Path)
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End), &st); err != nil {
		return fmt.Errorf("%s: stat: %w", object, err)
	}
	whole := (uint64(st.Size) + x86.PageSize - 1) &^ (x86.PageSize - 1)
	if v.Offset != 0 || v.End-v.Start != whole {
		return ckerr.Unsupported(pid, object, fmt.Sprintf("only part of the segment (%d bytes) is attached here (unmapped or changed in part since shmat): not supported yet", st.Size))
	}
	return nil
}
