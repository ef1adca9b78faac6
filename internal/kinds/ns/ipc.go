//go:build linux && amd64

package ns

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	ipcvar "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-var"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/model"
)

// An IPC namespace is its settings (the sysctls below, ipc_var_entry)
// and its objects: SysV shared memory segments, semaphore sets and
// message queues (sysv.go), and POSIX message queues. ckpt restores the
// settings and the SysV objects, and refuses a namespace that holds
// POSIX message queues.

// collectIPCNS reads the settings and SysV objects of the IPC namespace
// the thread is in.
func collectIPCNS(d *model.Dump, id uint32) error {
	if err := collectIPC(d, id); err != nil {
		return err
	}
	return collectSysV(d, id)
}

// restoreIPCNS makes the SysV objects of the new IPC namespace the
// thread is in, then sets its settings (the objects' ids go through
// kernel.*_next_id, which get their dumped values last).
func restoreIPCNS(d *model.Dump, id uint32) error {
	if err := restoreSysV(d, id); err != nil {
		return err
	}
	return restoreIPC(d, id)
}

// ipcSysctl is one setting of an IPC namespace: its file under
// /proc/sys (which shows the reading thread's IPC namespace; see
// ipc/ipc_sysctl.c and ipc/mq_sysctl.c) and its ipc_var_entry field.
type ipcSysctl struct {
	path string
	get  func(*ipcvar.IpcVarEntry) string
	set  func(*ipcvar.IpcVarEntry, string) error
	// optional settings may be missing from a kernel (and an image).
	optional bool
}

func u32Field(get func(*ipcvar.IpcVarEntry) uint32, set func(*ipcvar.IpcVarEntry, *uint32)) (func(*ipcvar.IpcVarEntry) string, func(*ipcvar.IpcVarEntry, string) error) {
	return func(e *ipcvar.IpcVarEntry) string { return strconv.FormatUint(uint64(get(e)), 10) },
		func(e *ipcvar.IpcVarEntry, s string) error {
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return err
			}
			set(e, proto.Uint32(uint32(v)))
			return nil
		}
}

func u64Field(get func(*ipcvar.IpcVarEntry) uint64, set func(*ipcvar.IpcVarEntry, *uint64)) (func(*ipcvar.IpcVarEntry) string, func(*ipcvar.IpcVarEntry, string) error) {
	return func(e *ipcvar.IpcVarEntry) string { return strconv.FormatUint(get(e), 10) },
		func(e *ipcvar.IpcVarEntry, s string) error {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return err
			}
			set(e, proto.Uint64(v))
			return nil
		}
}

// nextIDField is one of kernel.{msg,sem,shm}_next_id: an int kept as its
// uint32 bits; its -1 (the default: no id asked for) is left out of the
// image, and an image's 0xffffffff (older ckpt dumps) reads as -1.
func nextIDField(get func(*ipcvar.IpcVarEntry) uint32, set func(*ipcvar.IpcVarEntry, *uint32)) (func(*ipcvar.IpcVarEntry) string, func(*ipcvar.IpcVarEntry, string) error) {
	return func(e *ipcvar.IpcVarEntry) string { return strconv.FormatInt(int64(int32(get(e))), 10) },
		func(e *ipcvar.IpcVarEntry, s string) error {
			v, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				return err
			}
			if v == -1 {
				// The namespace's initial value, which cannot be
				// written back: left out, as CRIU leaves it out
				// (criu/ipc_ns.c, dump_ipc_var; CRIU writes a present
				// value as unsigned, which the kernel refuses for -1).
				set(e, nil)
				return nil
			}
			set(e, proto.Uint32(uint32(int32(v))))
			return nil
		}
}

func ipcSysctls() []ipcSysctl {
	type E = ipcvar.IpcVarEntry
	var out []ipcSysctl
	add := func(path string, optional bool, get func(*E) string, set func(*E, string) error) {
		out = append(out, ipcSysctl{path: path, get: get, set: set, optional: optional})
	}
	semGet := func(e *E) string {
		var f []string
		for _, v := range e.GetSemCtls() {
			f = append(f, strconv.FormatUint(uint64(v), 10))
		}
		return strings.Join(f, "\t")
	}
	semSet := func(e *E, s string) error {
		f := strings.Fields(s)
		if len(f) != 4 {
			return fmt.Errorf("%d values, want 4", len(f))
		}
		e.SemCtls = nil
		for _, x := range f {
			v, err := strconv.ParseUint(x, 10, 32)
			if err != nil {
				return err
			}
			e.SemCtls = append(e.SemCtls, uint32(v))
		}
		return nil
	}
	add("kernel/sem", false, semGet, semSet)
	g, s := u32Field((*E).GetMsgCtlmax, func(e *E, v *uint32) { e.MsgCtlmax = v })
	add("kernel/msgmax", false, g, s)
	g, s = u32Field((*E).GetMsgCtlmnb, func(e *E, v *uint32) { e.MsgCtlmnb = v })
	add("kernel/msgmnb", false, g, s)
	g, s = u32Field((*E).GetMsgCtlmni, func(e *E, v *uint32) { e.MsgCtlmni = v })
	add("kernel/msgmni", false, g, s)
	g, s = u32Field((*E).GetAutoMsgmni, func(e *E, v *uint32) { e.AutoMsgmni = v })
	add("kernel/auto_msgmni", true, g, s)
	g, s = u64Field((*E).GetShmCtlmax, func(e *E, v *uint64) { e.ShmCtlmax = v })
	add("kernel/shmmax", false, g, s)
	g, s = u64Field((*E).GetShmCtlall, func(e *E, v *uint64) { e.ShmCtlall = v })
	add("kernel/shmall", false, g, s)
	g, s = u32Field((*E).GetShmCtlmni, func(e *E, v *uint32) { e.ShmCtlmni = v })
	add("kernel/shmmni", false, g, s)
	g, s = u32Field((*E).GetShmRmidForced, func(e *E, v *uint32) { e.ShmRmidForced = v })
	add("kernel/shm_rmid_forced", false, g, s)
	g, s = u32Field((*E).GetMqQueuesMax, func(e *E, v *uint32) { e.MqQueuesMax = v })
	add("fs/mqueue/queues_max", false, g, s)
	g, s = u32Field((*E).GetMqMsgMax, func(e *E, v *uint32) { e.MqMsgMax = v })
	add("fs/mqueue/msg_max", false, g, s)
	g, s = u32Field((*E).GetMqMsgsizeMax, func(e *E, v *uint32) { e.MqMsgsizeMax = v })
	add("fs/mqueue/msgsize_max", false, g, s)
	g, s = u32Field((*E).GetMqMsgDefault, func(e *E, v *uint32) { e.MqMsgDefault = v })
	add("fs/mqueue/msg_default", true, g, s)
	g, s = u32Field((*E).GetMqMsgsizeDefault, func(e *E, v *uint32) { e.MqMsgsizeDefault = v })
	add("fs/mqueue/msgsize_default", true, g, s)
	g, s = nextIDField((*E).GetMsgNextId, func(e *E, v *uint32) { e.MsgNextId = v })
	add("kernel/msg_next_id", true, g, s)
	g, s = nextIDField((*E).GetSemNextId, func(e *E, v *uint32) { e.SemNextId = v })
	add("kernel/sem_next_id", true, g, s)
	g, s = nextIDField((*E).GetShmNextId, func(e *E, v *uint32) { e.ShmNextId = v })
	add("kernel/shm_next_id", true, g, s)
	return out
}

// has tells whether an optional field is in the entry.
func has(e *ipcvar.IpcVarEntry, path string) bool {
	switch path {
	case "kernel/auto_msgmni":
		return true // required in the image
	case "fs/mqueue/msg_default":
		return e.MqMsgDefault != nil
	case "fs/mqueue/msgsize_default":
		return e.MqMsgsizeDefault != nil
	case "kernel/msg_next_id":
		return e.MsgNextId != nil
	case "kernel/sem_next_id":
		return e.SemNextId != nil
	case "kernel/shm_next_id":
		return e.ShmNextId != nil
	}
	return true
}

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// collectIPC reads the settings of the IPC namespace the thread is in.
func collectIPC(d *model.Dump, id uint32) error {
	e := &ipcvar.IpcVarEntry{AutoMsgmni: proto.Uint32(0)}
	for _, s := range ipcSysctls() {
		v, err := readSysctl(s.path)
		if err != nil {
			if s.optional && os.IsNotExist(err) {
				continue
			}
			return fmt.Errorf("read %s: %w", s.path, err)
		}
		if err := s.set(e, v); err != nil {
			return fmt.Errorf("%s: %q: %w", s.path, v, err)
		}
	}
	if d.IPC == nil {
		d.IPC = map[uint32]*ipcvar.IpcVarEntry{}
	}
	d.IPC[id] = e
	return nil
}

// restoreIPC sets the settings of the new IPC namespace the thread is
// in: each that differs from what the namespace was born with.
func restoreIPC(d *model.Dump, id uint32) error {
	e := d.IPC[id]
	if e == nil {
		return fmt.Errorf("no ipcns-var-%d.img", id)
	}
	for _, s := range ipcSysctls() {
		if !has(e, s.path) {
			continue
		}
		cur, err := readSysctl(s.path)
		if err != nil {
			if s.optional && os.IsNotExist(err) {
				continue
			}
			return fmt.Errorf("read %s: %w", s.path, err)
		}
		want := s.get(e)
		if strings.Join(strings.Fields(cur), " ") == strings.Join(strings.Fields(want), " ") {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+s.path, []byte(want), 0); err != nil {
			return fmt.Errorf("set %s to %s: %w", strings.ReplaceAll(s.path, "/", "."), want, err)
		}
	}
	return nil
}

// inspectIPC refuses an IPC namespace that holds a POSIX message queue
// no process has open, naming them: the queues open in the tree are
// dumped with its files (package fd, posixmq.go) and made again, by
// mq_open inside the restored tasks, in the namespace made anew; one
// that nobody holds would be lost.
func inspectIPC(pid int) error {
	var found []string
	mq, err := posixQueues()
	if err != nil {
		return err
	}
	for _, q := range mq {
		held, err := fd.MQHolders("/"+q.name, &q.st)
		if err != nil {
			return fmt.Errorf("find who holds POSIX message queue /%s: %w", q.name, err)
		}
		if len(held) == 0 {
			found = append(found, "POSIX message queue /"+q.name)
		}
	}
	if len(found) == 0 {
		return nil
	}
	if len(found) > 4 {
		found = append(found[:4], fmt.Sprintf("and %d more", len(found)-4))
	}
	return ckerr.Unsupported(pid, "its IPC namespace's objects ("+strings.Join(found, ", ")+"), open in no process",
		"only POSIX message queues that a process of the tree holds open are dumped; remove them (mq_unlink) or keep them open")
}

// posixQueue is a queue of the mqueue file system: its name and inode.
type posixQueue struct {
	name string
	st   unix.Stat_t
}

// posixQueues lists the POSIX message queues of the thread's IPC
// namespace: the names in its mqueue filesystem, reached through a
// mount that is attached nowhere (fsopen, fsmount), so that no mount
// namespace changes.
func posixQueues() ([]posixQueue, error) {
	fs, err := unix.Fsopen("mqueue", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("list its POSIX message queues: fsopen mqueue: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("list its POSIX message queues: fsconfig: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("list its POSIX message queues: fsmount: %w", err)
	}
	defer unix.Close(mnt)
	// The mount's fd is a path only (O_PATH); its root is read through
	// a directory opened below it.
	d, err := unix.Openat(mnt, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("list its POSIX message queues: open the mqueue root: %w", err)
	}
	dir := os.NewFile(uintptr(d), "mqueue")
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list its POSIX message queues: %w", err)
	}
	var out []posixQueue
	for _, n := range names {
		q := posixQueue{name: n}
		if err := unix.Fstatat(d, n, &q.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("list its POSIX message queues: stat %s: %w", n, err)
		}
		out = append(out, q)
	}
	return out, nil
}
