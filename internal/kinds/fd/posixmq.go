//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/ext-file"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// posixMQKind is a POSIX message queue (mq_open): a regular file of the
// IPC namespace's mqueue file system, which /proc shows as "/NAME"
// (" (deleted)" once mq_unlink'ed). The queue (name, mode, owner,
// mq_maxmsg, mq_msgsize, its messages with their priorities, an
// mq_notify registration) goes into ckpt's own posix-mq.img
// (model/posixmq.go), each open file on it into files.img as an EXT
// entry with its flags (access mode, O_NONBLOCK) in the queue's entry.
//
// Reading the messages. The kernel shows no queued message without
// taking it off the queue, so the dump takes them all (mq_timedreceive
// through a file of its own opened on the queue, O_NONBLOCK, which
// leaves the task's files and their flags alone) and sends them back
// at once, in the order received with the same priorities: the kernel
// keeps a queue sorted by priority, first in first out within one, so
// that rebuilds the same queue. This is safe because the tree is
// frozen: no task of it can send or receive in between, a receiver of
// the tree waits only on an empty queue (nothing to take) and the only
// wakeup the taking can cause, a sender blocked on a full queue, is
// refused first. What would not be safe:
//   - a process outside the tree holding the queue too: it runs, so it
//     could take or add messages in between, and at restore its
//     messages would be in the live queue and in the image twice. Such
//     a queue's messages are not read and not saved (as with a FIFO
//     shared with the outside): the restore opens it again by name as
//     it is then. Unlinked, or in an IPC namespace of the tree, it could
//     not be found again: refused by name;
//     (A process that holds no fd of a named queue at the dump could
//     still mq_open it by name and use it in the microseconds between
//     the reading and the sending back: the kernel has no way to lock
//     a queue against that.)
//   - a notification registered on a queue that holds messages: sending
//     them back would fire it (the kernel notifies when an empty queue
//     gets a message): refused by name.
//
// Notifications. The mqueue file shows how (SIGEV_*), the signal and
// the process registered, not sigev_value, which notifyValue reads by
// firing the notification under control. SIGEV_NONE and SIGEV_SIGNAL
// registrations are restored by their process (which must hold the
// queue open too) with mq_notify; SIGEV_THREAD (glibc's thread
// notification, through a netlink socket of the process) is refused by
// name.
//
// Restore. A queue is made by the first process that opens a file on
// it, with mq_open inside that process, so it lands in the process's
// IPC namespace (the tree's own, made anew, or ckpt's): O_CREAT|O_EXCL
// with the dumped mode and attributes, then ckpt gives it its owner and
// mode and sends the messages through a file of its own. A named queue
// of ckpt's namespace that still exists is opened as it is, like the
// SysV objects of ckpt's namespace (the messages read at the dump were
// sent back to it, and it may be shared with the outside); the attributes
// must match. An unlinked queue is made under its name (another one if
// that is taken), unlinked once every process of the tree has its
// files.
type posixMQKind struct {
	// byIno are the queues dumped so far, by device and inode.
	byIno map[[2]uint64]*model.PosixMQ
	// At restore: made are the queues made (or found) so far, by id,
	// with the process that made an unlinked one and its temporary
	// name; notified are the queues whose registration is back.
	made     map[uint32]*madeMQ
	notified map[uint32]bool
}

type madeMQ struct {
	q    *model.PosixMQ
	home Restorer
	tmp  string // temporary name of an unlinked queue, "" once unlinked
}

func (*posixMQKind) Name() string { return "POSIX message queue" }

func (*posixMQKind) Match(f *File, o Options) (bool, error) {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFREG && f.FsType == uapi.MQUEUE_MAGIC, nil
}

// mqStatus is what reading an mqueue file shows (ipc/mqueue.c,
// mqueue_read_file): "QSIZE:%-10lu NOTIFY:%-5d SIGNO:%-5d NOTIFY_PID:%-6d".
type mqStatus struct {
	qsize, notify, signo, pid int64
}

// parseMQStatus parses an mqueue file's contents.
func parseMQStatus(s string) (mqStatus, error) {
	var st mqStatus
	seen := 0
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			return st, fmt.Errorf("mqueue status %q: field %q", s, f)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return st, fmt.Errorf("mqueue status %q: %s: %w", s, k, err)
		}
		switch k {
		case "QSIZE":
			st.qsize = n
		case "NOTIFY":
			st.notify = n
		case "SIGNO":
			st.signo = n
		case "NOTIFY_PID":
			st.pid = n
		default:
			continue
		}
		seen++
	}
	if seen != 4 {
		return st, fmt.Errorf("mqueue status %q: want QSIZE, NOTIFY, SIGNO and NOTIFY_PID", s)
	}
	return st, nil
}

// mqGetattr is mq_getattr through ckpt's fd of a queue.
func mqGetattr(fd int) (uapi.MqAttr, error) {
	var b [uapi.SizeofMqAttr]byte
	_, _, e := unix.Syscall(unix.SYS_MQ_GETSETATTR, uintptr(fd), 0, uintptr(unsafe.Pointer(&b[0])))
	if e != 0 {
		return uapi.MqAttr{}, fmt.Errorf("mq_getattr: %w", e)
	}
	return uapi.ParseMqAttr(b[:]), nil
}

// mqReceive takes the first message of the queue through ckpt's fd,
// which must be O_NONBLOCK: EAGAIN once it is empty.
func mqReceive(fd int, buf []byte) (int, uint32, error) {
	var prio uint32
	for {
		n, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(unsafe.Pointer(&prio)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, e
		}
		return int(n), prio, nil
	}
}

// mqSend sends a message through ckpt's fd of a queue.
func mqSend(fd int, msg []byte, prio uint32) error {
	p := unsafe.Pointer(nil)
	if len(msg) > 0 {
		p = unsafe.Pointer(&msg[0])
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(p), uintptr(len(msg)), uintptr(prio), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// reopenMQ opens the queue of fd num of process pid anew, for ckpt
// (through /proc, read and write, O_NONBLOCK): a file of ckpt's own,
// so that the task's open file, its flags and its access mode stay as
// they are.
func reopenMQ(pid, num int) (int, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, num), unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the queue of fd %d of %d: %w", num, pid, err)
	}
	return fd, nil
}

// mqHolders lists the processes that hold the queue at path (as /proc
// shows it) with inode st open, each once.
func MQHolders(path string, st *unix.Stat_t) ([]int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or a kernel thread
		}
		for _, f := range fds {
			link := filepath.Join(dir, f.Name())
			if l, err := os.Readlink(link); err != nil || l != path {
				continue
			}
			var s unix.Stat_t
			if unix.Stat(link, &s) == nil && s.Dev == st.Dev && s.Ino == st.Ino {
				out = append(out, pid)
				break
			}
		}
	}
	return out, nil
}

// blockedIn finds a thread of pid inside one of the system calls nrs
// (mq_timedsend, the only way to block on a full queue, or
// mq_timedreceive), or returns 0. A thread's syscall number alone does
// not tell its ABI; a number that is the call in either is taken for
// it, which at worst refuses a queue needlessly.
func blockedIn(pid int, nrs ...int) int {
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	for _, t := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, t.Name()))
		if err != nil {
			continue
		}
		nr, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		n, err := strconv.Atoi(nr)
		if err == nil && contains(nrs, n) {
			tid, _ := strconv.Atoi(t.Name())
			return tid
		}
	}
	return 0
}

func (k *posixMQKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	e.Type = fdinfo.FdTypes_EXT.Enum()
	e.Ext = &ext_file.ExtFileEntry{Id: proto.Uint32(e.GetId()), Fown: noOwner()}
	key := [2]uint64{f.Stat.Dev, f.Stat.Ino}
	q := k.byIno[key]
	if q == nil {
		var err error
		if q, err = collectMQ(t, f); err != nil {
			return err
		}
		t.Dump.AddPosixMQ(q)
		if k.byIno == nil {
			k.byIno = map[[2]uint64]*model.PosixMQ{}
		}
		k.byIno[key] = q
	}
	q.Files = append(q.Files, model.MQFile{ID: e.GetId(), Flags: flags})
	return nil
}

// collectMQ reads the queue of f, whose task is frozen: see posixMQKind.
func collectMQ(t Task, f *File) (*model.PosixMQ, error) {
	name, unlinked := strings.CutSuffix(f.Path, " (deleted)")
	q := &model.PosixMQ{
		Name: strings.TrimPrefix(name, "/"), Unlinked: unlinked,
		Mode: f.Stat.Mode & 0o777, UID: f.Stat.Uid, GID: f.Stat.Gid,
	}
	object := fmt.Sprintf("fd %d, the POSIX message queue %s", f.Fd, f.Path)
	refuse := func(why string) error { return ckerr.Unsupported(t.Pid, object, why) }
	if mine, err := os.Readlink("/proc/self/ns/ipc"); err == nil {
		its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/ipc", t.Pid))
		if err != nil {
			return nil, fmt.Errorf("%s: read its IPC namespace: %w", object, err)
		}
		q.OwnNS = its != mine
	}
	holders, err := MQHolders(f.Path, &f.Stat)
	if err != nil {
		return nil, fmt.Errorf("%s: find who holds it: %w", object, err)
	}
	for _, p := range holders {
		if t.InTree != nil && !t.InTree(p) {
			if q.Unlinked || q.OwnNS {
				return nil, refuse(fmt.Sprintf("process %d outside the tree holds it too, and the restore could not open it again (unlinked, or in an IPC namespace of the tree): dump that process with the tree, or close the queue there", p))
			}
			q.Outside = true
		}
	}
	fd, err := reopenMQ(t.Pid, f.Fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object, err)
	}
	defer unix.Close(fd)
	attr, err := mqGetattr(fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object, err)
	}
	q.MaxMsg, q.MsgSize = uint64(attr.Maxmsg), uint64(attr.Msgsize)
	var buf [128]byte
	n, err := unix.Pread(fd, buf[:], 0)
	if err != nil {
		return nil, fmt.Errorf("%s: read its status: %w", object, err)
	}
	st, err := parseMQStatus(string(buf[:n]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object, err)
	}
	if st.pid != 0 {
		switch {
		case t.InTree != nil && !t.InTree(int(st.pid)):
			return nil, refuse(fmt.Sprintf("its mq_notify registration is for process %d, outside the tree: unregister it (mq_notify(fd, NULL) in that process) before the dump", st.pid))
		case st.notify == uapi.SIGEV_THREAD:
			return nil, refuse("it has an mq_notify registration with SIGEV_THREAD (glibc's thread notification, through a netlink socket), which cannot be dumped yet: unregister it (mq_notify(mqd, NULL)) before the dump")
		case st.notify != uapi.SIGEV_NONE && st.notify != uapi.SIGEV_SIGNAL:
			return nil, refuse(fmt.Sprintf("it has an mq_notify registration of an unknown kind (sigev_notify %d)", st.notify))
		case attr.Curmsgs > 0 && !q.Outside:
			return nil, refuse(fmt.Sprintf("it holds %d message(s) and has an mq_notify registration, which reading the messages without losing them would fire: unregister it or empty the queue before the dump", attr.Curmsgs))
		case !contains(holders, int(st.pid)):
			return nil, refuse(fmt.Sprintf("its mq_notify registration is for process %d, which does not hold the queue open: it could not register again at restore", st.pid))
		}
		q.Notify = &model.MQNotify{Notify: int32(st.notify), Signo: uint32(st.signo), Pid: uint32(st.pid)}
		if st.notify == uapi.SIGEV_SIGNAL {
			if q.Notify.Value, err = notifyValue(t, f, fd, q, holders); err != nil {
				return nil, err
			}
		}
	}
	if q.Outside || attr.Curmsgs == 0 {
		return q, nil
	}
	if attr.Curmsgs == attr.Maxmsg {
		for _, p := range holders {
			if tid := blockedIn(p, uapi.NR_mq_timedsend, uapi.NR32_mq_timedsend, uapi.NR32_mq_timedsend_time64); tid != 0 {
				return nil, ckerr.Unsupported(p, fmt.Sprintf("thread %d, maybe blocked in mq_timedsend on the full POSIX message queue %s", tid, f.Path),
					"reading the queue's messages would let its message in: dump when the queue is not full")
			}
		}
	}
	msgs, err := drainMQ(fd, int(attr.Msgsize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object, err)
	}
	if int64(len(msgs)) != attr.Curmsgs {
		return nil, fmt.Errorf("%s: read %d messages, mq_getattr said %d", object, len(msgs), attr.Curmsgs)
	}
	q.Msgs = msgs
	return q, nil
}

// notifyValue finds the sigev_value of the queue's SIGEV_SIGNAL
// registration, which the kernel shows nowhere but in the signal it
// sends: ckpt sends a message of its own to the empty queue, which
// fires the notification (and drops the registration), takes the
// message back, then, inside the frozen owner, takes the signal from
// its pending set with rt_sigtimedwait (every signal is blocked while
// ckpt injects, and a traced task is never woken for one) and
// registers again with mq_notify and the value read from si_value. The
// owner goes on with its registration as before and no signal; the
// notification itself has not happened for it. Refused first, by name,
// what would make this unsafe: the owner being another process than
// the one dumped here (ckpt injects into that one), the signal pending
// already (it could not be told from the new one), a thread waiting in
// mq_timedreceive (the message would go to it), a process outside the
// tree holding the queue (it could send or receive meanwhile).
func notifyValue(t Task, f *File, fd int, q *model.PosixMQ, holders []int) (uint64, error) {
	sig := int(q.Notify.Signo)
	refuse := func(why string) error {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the POSIX message queue %s with an mq_notify registration (SIGEV_SIGNAL, signal %d)", f.Fd, f.Path, sig),
			why+"; unregister it (mq_notify(mqd, NULL)) before the dump")
	}
	switch {
	case t.Inject == nil:
		return 0, refuse("its sigev_value can only be read inside the task")
	case int(q.Notify.Pid) != t.Pid:
		return 0, refuse(fmt.Sprintf("it is for process %d, which is not the first process of the tree found holding the queue (%d): ckpt reads the registration's sigev_value inside the process that holds it", q.Notify.Pid, t.Pid))
	case q.Outside:
		return 0, refuse("a process outside the tree holds the queue, and could send or receive while ckpt reads the registration's sigev_value")
	case sig <= 0 || sig > 64:
		return 0, refuse("its signal number is out of range")
	}
	for _, p := range holders {
		if tid := blockedIn(p, uapi.NR_mq_timedreceive, uapi.NR32_mq_timedreceive, uapi.NR32_mq_timedreceive_time64); tid != 0 {
			return 0, refuse(fmt.Sprintf("thread %d of process %d may wait in mq_timedreceive, which would take the message that ckpt sends to read the registration's sigev_value", tid, p))
		}
	}
	if pending, err := signalPending(t.Pid, sig); err != nil {
		return 0, fmt.Errorf("fd %d, the POSIX message queue %s: %w", f.Fd, f.Path, err)
	} else if pending {
		return 0, refuse(fmt.Sprintf("signal %d is pending in the process already, so the notification that ckpt fires to read the registration's sigev_value could not be told apart", sig))
	}
	object := fmt.Sprintf("fd %d, the POSIX message queue %s", f.Fd, f.Path)
	if err := mqSend(fd, nil, 0); err != nil {
		return 0, fmt.Errorf("%s: send a message to read its notification: %w", object, err)
	}
	if _, _, err := mqReceive(fd, make([]byte, q.MsgSize)); err != nil {
		return 0, fmt.Errorf("%s: take back the message sent to read its notification: %w (it is left in the queue, and the registration gone)", object, err)
	}
	var value uint64
	err := t.Inject(func(in Injector) error {
		var err error
		value, err = takeNotification(in, f.Fd, sig)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: read the sigev_value of its notification (signal %d): %w; the registration may be lost", object, sig, err)
	}
	return value, nil
}

// takeNotification runs inside the owner of a queue's registration
// whose notification just fired: it takes signal sig (with si_code
// SI_MESGQ) from the pending signals and registers again through the
// owner's fd num with the sigev_value the signal carried, which it
// returns.
func takeNotification(in Injector, num, sig int) (uint64, error) {
	set := make([]byte, 8)
	binary.LittleEndian.PutUint64(set, 1<<(sig-1))
	base := in.Scratch()
	setAt, tsAt, infoAt, evAt := base, base+16, base+64, base+64+uapi.SizeofSiginfo
	if err := in.Write(setAt, set); err != nil {
		return 0, err
	}
	if err := in.Write(tsAt, make([]byte, 16)); err != nil { // no wait
		return 0, err
	}
	got, err := in.Syscall(x86.SysRtSigtimedwait, setAt, infoAt, tsAt, 8)
	if err != nil {
		return 0, fmt.Errorf("rt_sigtimedwait: %w", err)
	}
	info, err := in.Read(infoAt, uapi.SizeofSiginfo)
	if err != nil {
		return 0, err
	}
	code := int32(binary.LittleEndian.Uint32(info[uapi.SiginfoCode:]))
	if int(got) != sig || code != uapi.SI_MESGQ {
		return 0, fmt.Errorf("rt_sigtimedwait took signal %d with si_code %d, not the notification", got, code)
	}
	ev := uapi.Sigevent{Signo: int32(sig), Notify: uapi.SIGEV_SIGNAL}
	var b []byte
	if in.Compat() {
		ev.Value = uint64(binary.LittleEndian.Uint32(info[uapi.CompatSiginfoValue:]))
		b = ev.CompatBytes()
	} else {
		ev.Value = binary.LittleEndian.Uint64(info[uapi.SiginfoValue:])
		b = ev.Bytes()
	}
	if err := in.Write(evAt, b); err != nil {
		return 0, err
	}
	if _, err := in.Syscall(x86.SysMqNotify, uint64(num), evAt); err != nil {
		return 0, fmt.Errorf("mq_notify again: %w", err)
	}
	return ev.Value, nil
}

// signalPending tells whether signal sig is pending in process pid, for
// the process or one of its threads (/proc/PID/task/TID/status ShdPnd
// and SigPnd).
func signalPending(pid, sig int) (bool, error) {
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, err
	}
	bit := uint64(1) << (sig - 1)
	for _, t := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "ShdPnd" && k != "SigPnd") {
				continue
			}
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, fmt.Errorf("%s of %s: %w", k, t.Name(), err)
			}
			if m&bit != 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// drainMQ takes every message of the queue through ckpt's O_NONBLOCK fd
// and sends them back in the same order and priorities; see
// posixMQKind for why the queue is then as it was. If a message cannot
// be sent back the error says which were lost.
func drainMQ(fd, msgsize int) ([]model.MQMsg, error) {
	buf := make([]byte, max(msgsize, 1))
	var msgs []model.MQMsg
	var rerr error
	for {
		n, prio, err := mqReceive(fd, buf)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("mq_timedreceive: %w", err)
			break
		}
		msgs = append(msgs, model.MQMsg{Prio: prio, Data: append([]byte(nil), buf[:n]...)})
	}
	for i, m := range msgs {
		if err := mqSend(fd, m.Data, m.Prio); err != nil {
			return nil, errors.Join(rerr, fmt.Errorf("send message %d of %d back (priority %d): %w; the messages from there on are lost", i+1, len(msgs), m.Prio, err))
		}
	}
	if rerr != nil {
		return nil, rerr
	}
	return msgs, nil
}

// mqOpenIn runs mq_open(name, oflag, mode, attr) inside r: attr only
// with O_CREAT.
func mqOpenIn(r Restorer, name string, oflag int, mode uint32, attr *uapi.MqAttr) (int, error) {
	var b []byte
	if attr != nil {
		b = attr.Bytes(r.Compat())
	}
	off := len(b)
	b = append(append(b, name...), 0)
	addr, err := r.Put(b)
	if err != nil {
		return -1, err
	}
	attrAddr := uint64(0)
	if attr != nil {
		attrAddr = addr
	}
	call := r.Syscall
	if r.Compat() {
		call = r.Syscall32
	}
	fd, err := call(x86.SysMqOpen, addr+uint64(off), uint64(oflag|unix.O_CLOEXEC), uint64(mode), attrAddr)
	return int(fd), err
}

// mqUnlinkIn runs mq_unlink(name) inside r.
func mqUnlinkIn(r Restorer, name string) error {
	addr, err := r.PutString(name)
	if err != nil {
		return err
	}
	call := r.Syscall
	if r.Compat() {
		call = r.Syscall32
	}
	_, err = call(x86.SysMqUnlink, addr)
	return err
}

func (k *posixMQKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	q, mf, ok := r.Dump().PosixMQFile(e.GetId())
	if !ok {
		return fmt.Errorf("fd %d: file %d is no POSIX message queue of %s", num, e.GetId(), "posix-mq.img")
	}
	what := fmt.Sprintf("fd %d, the POSIX message queue /%s", num, q.Name)
	if q.Unlinked {
		what += " (unlinked)"
	}
	flags := int(mf.Flags) & (unix.O_ACCMODE | unix.O_NONBLOCK)
	if k.made == nil {
		k.made, k.notified = map[uint32]*madeMQ{}, map[uint32]bool{}
	}
	tmp, err := k.openQueue(r, q, flags)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := r.Place(tmp, num, cloexec); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n := q.Notify; n != nil && !k.notified[q.ID] && r.Pid() == int(n.Pid) {
		ev := uapi.Sigevent{Value: n.Value, Signo: int32(n.Signo), Notify: n.Notify}
		b, call := ev.Bytes(), r.Syscall
		if r.Compat() {
			b, call = ev.CompatBytes(), r.Syscall32
		}
		addr, err := r.Put(b)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := call(x86.SysMqNotify, uint64(num), addr); err != nil {
			return fmt.Errorf("%s: mq_notify: %w", what, err)
		}
		k.notified[q.ID] = true
	}
	return nil
}

// openQueue opens (and makes, the first time) queue q inside r with
// flags, and returns the new fd.
func (k *posixMQKind) openQueue(r Restorer, q *model.PosixMQ, flags int) (int, error) {
	name := q.Name
	if m := k.made[q.ID]; m != nil {
		if q.Unlinked {
			name = m.tmp
		}
		fd, err := mqOpenIn(r, name, flags, 0, nil)
		if err != nil {
			return -1, fmt.Errorf("mq_open: %w", err)
		}
		return fd, nil
	}
	if q.Outside {
		// Shared with processes outside the tree: it is wherever they
		// left it, with their messages.
		fd, err := mqOpenIn(r, name, flags, 0, nil)
		if err != nil {
			return -1, fmt.Errorf("mq_open of the queue shared with processes outside the tree (its messages were left in it): %w", err)
		}
		k.made[q.ID] = &madeMQ{q: q, home: r}
		return fd, nil
	}
	attr := &uapi.MqAttr{Maxmsg: int64(q.MaxMsg), Msgsize: int64(q.MsgSize)}
	fd, err := mqOpenIn(r, name, flags|unix.O_CREAT|unix.O_EXCL, q.Mode, attr)
	if errors.Is(err, unix.EEXIST) && q.Unlinked {
		// Its name was taken since: made under another one, which
		// /proc then shows.
		name = fmt.Sprintf("ckpt-mq-%d-%d", os.Getpid(), q.ID)
		fd, err = mqOpenIn(r, name, flags|unix.O_CREAT|unix.O_EXCL, q.Mode, attr)
	}
	if errors.Is(err, unix.EEXIST) && !q.Unlinked && !q.OwnNS {
		// A queue of ckpt's namespace that outlived the tree: taken as
		// it is, like the SysV objects that still exist.
		if fd, err = mqOpenIn(r, name, flags, 0, nil); err != nil {
			return -1, fmt.Errorf("mq_open of the existing queue: %w", err)
		}
		if err := checkExisting(r, fd, q); err != nil {
			_, _ = r.Syscall(x86.SysClose, uint64(fd))
			return -1, err
		}
		k.made[q.ID] = &madeMQ{q: q, home: r}
		return fd, nil
	}
	if err != nil {
		return -1, fmt.Errorf("mq_open(O_CREAT|O_EXCL, mq_maxmsg %d, mq_msgsize %d): %w", q.MaxMsg, q.MsgSize, err)
	}
	m := &madeMQ{q: q, home: r}
	if q.Unlinked {
		m.tmp = name
	}
	k.made[q.ID] = m
	if u, ok := r.(Undoer); ok && !q.OwnNS {
		// Made in ckpt's namespace: a failed restore takes it away.
		u.OnUndo("remove POSIX message queue /"+name, func() error {
			if m.tmp == "" && q.Unlinked {
				return nil
			}
			return mqUnlinkHere(name)
		})
	}
	if err := fillQueue(r, fd, q); err != nil {
		_, _ = r.Syscall(x86.SysClose, uint64(fd))
		return -1, err
	}
	return fd, nil
}

// mqUnlinkHere is mq_unlink in ckpt's own IPC namespace.
func mqUnlinkHere(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 && e != unix.ENOENT {
		return fmt.Errorf("mq_unlink /%s: %w", name, e)
	}
	return nil
}

// checkExisting checks that a queue found at restore has the dumped
// attributes.
func checkExisting(r Restorer, fd int, q *model.PosixMQ) error {
	c, err := reopenMQ(r.Pid(), fd)
	if err != nil {
		return err
	}
	defer unix.Close(c)
	a, err := mqGetattr(c)
	if err != nil {
		return err
	}
	if uint64(a.Maxmsg) != q.MaxMsg || uint64(a.Msgsize) != q.MsgSize {
		return fmt.Errorf("a queue of that name exists with mq_maxmsg %d and mq_msgsize %d, the dumped one had %d and %d: remove it (mq_unlink) or restore where it is gone", a.Maxmsg, a.Msgsize, q.MaxMsg, q.MsgSize)
	}
	return nil
}

// fillQueue gives a queue just made at fd of r its dumped owner and mode
// (mq_open applies the umask) and sends its messages, through a file of
// ckpt's own.
func fillQueue(r Restorer, fd int, q *model.PosixMQ) error {
	c, err := reopenMQ(r.Pid(), fd)
	if err != nil {
		return err
	}
	defer unix.Close(c)
	if err := unix.Fchown(c, int(q.UID), int(q.GID)); err != nil {
		return fmt.Errorf("fchown %d:%d: %w", q.UID, q.GID, err)
	}
	if err := unix.Fchmod(c, q.Mode); err != nil {
		return fmt.Errorf("fchmod %#o: %w", q.Mode, err)
	}
	for i, m := range q.Msgs {
		if err := mqSend(c, m.Data, m.Prio); err != nil {
			return fmt.Errorf("send message %d of %d (priority %d, %d bytes): %w", i+1, len(q.Msgs), m.Prio, len(m.Data), err)
		}
	}
	return nil
}

// FinishTree unlinks the temporary names of the unlinked queues, once
// every process has opened its files on them, and checks that every
// notification was registered again.
func (k *posixMQKind) FinishTree() error {
	for id, m := range k.made {
		if n := m.q.Notify; n != nil && !k.notified[id] {
			return fmt.Errorf("POSIX message queue /%s: its mq_notify registration was for process %d, which opened no file on it at restore", m.q.Name, n.Pid)
		}
	}
	for id, m := range k.made {
		if m.tmp == "" {
			continue
		}
		if err := mqUnlinkIn(m.home, m.tmp); err != nil {
			return fmt.Errorf("unlink the temporary name /%s of POSIX message queue %d in %d: %w", m.tmp, id, m.home.Pid(), err)
		}
		m.tmp = ""
	}
	return nil
}
