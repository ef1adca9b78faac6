//go:build linux && amd64

package fd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	skopts "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-opts"
	skunix "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-unix"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/sockdiag"
	"github.com/ckpt/ckpt/internal/uapi"
)

// unixKind is a unix socket: stream, datagram or seqpacket; unnamed,
// bound to a path or to an abstract name; listening, connected or not.
//
// Dump: UNIX_DIAG (package sockdiag) gives each socket's type, state,
// name, peer, pending connections and shutdown state; a copy of the fd
// taken with pidfd_getfd gives the options, the bound file (SIOCUNIXFILE:
// unlinked, or renamed since, remap-fpath.img) and, read with MSG_PEEK
// under SO_PEEK_OFF, the queued messages without taking them out
// (sk-queues.img). A socket whose peer is outside the tree is refused,
// except a datagram socket with --ext-unix-sk, whose peer is written as
// an entry flagged USK_EXTERN and connected to by name at restore. A
// client whose connection a listener of the tree has not accepted yet is
// written with the listener as its peer. Descriptors in flight are found
// as SCM_RIGHTS while peeking (UNIX_DIAG does not show queue contents):
// regular files, pipe ends and unix sockets are dumped as files of their
// own that no fd holds, listed in the message's sk_packet_entry.scm; the
// queues are read once, at Match, so that the pipes and sockets in
// flight count as the tree's before any fd is collected. Other files in
// flight are refused by kind.
//
// Restore: every unix socket of the dump is made at once, inside the
// first process that needs one ("home"), in an order that gives each its
// place: bound listeners first, then connections (socketpair for unnamed
// pairs; connect and accept for a connection whose accepting end has the
// listener's name, so that it has that name again), then pending
// connections, then the queues refilled from the peer's side (with the
// files in flight: opened in home and sent by ckpt), options,
// shutdowns, file modes, renamed files moved where they were found, and
// the paths that were unlinked unlinked. Everything is made with 64-bit
// syscalls, in ia32 tasks too: a socket keeps nothing of the ABI that
// made it (the ia32 socket calls are in x86's table for completeness).
// The sockets wait in home above its dumped fds; each process takes its
// own with pidfd_getfd (home is alive and stopped until every fd table
// is built), and home closes them at the end (FinishTree).
type unixKind struct {
	// seen are the inodes of unix sockets that fds of the tree hold (every
	// fd is matched before any is collected).
	seen map[uint32]bool
	// holder names, by inode, the first fd found that holds the socket.
	holder map[uint32]string
	// diag is UNIX_DIAG's view, taken anew at the first Collect, when the
	// tree is frozen; listenerOf maps the inode of a client whose
	// connection is not accepted yet to its listener's.
	diag       map[uint32]*sockdiag.Unix
	frozen     bool
	listenerOf map[uint32]uint32
	// peeked are, by inode, the queues read at Match, for Collect.
	peeked map[uint32]peekedQueue
	// inflightSk are the unix sockets that queued messages carry (files
	// in flight), by inode; inflightID the file ids of those collected.
	inflightSk map[uint32]bool
	inflightID map[uint32]uint32
	// collecting are the sockets in flight being collected (a cycle of
	// them is refused).
	collecting map[uint32]bool
	// extAdded are the sockets outside the tree written already as the
	// peers of dumped ones (--ext-unix-sk).
	extAdded map[uint32]bool

	// pipes is the pipe kind, told at Match of the pipe ends in flight
	// (so that a pipe whose other end the tree holds is the tree's) and
	// asked at restore to make them.
	pipes *pipeKind

	// home is the process where the restore made the sockets; spare is,
	// by socket inode, the fd there that holds it; keep are fds of home
	// that hold files in flight made there (pipe ends that other
	// processes open through /proc/PID/fd), closed with the spares.
	home  Restorer
	spare map[uint32]int
	keep  []int
}

// uskExtern marks, in UnixSkEntry.uflags, a socket outside the tree that a
// dumped one is connected to (CRIU's USK_EXTERN, criu/include/sockets.h).
const uskExtern = 1

func (*unixKind) Name() string { return "unix socket" }

func isSocket(f *File) bool { return f.Stat.Mode&unix.S_IFMT == unix.S_IFSOCK }

func (k *unixKind) lookup(ino uint32) (*sockdiag.Unix, error) {
	if u, ok := k.diag[ino]; ok {
		return u, nil
	}
	all, err := sockdiag.UnixAll()
	if err != nil {
		return nil, err
	}
	k.diag = all
	return all[ino], nil
}

func (k *unixKind) Match(f *File, o Options) (bool, error) {
	if !isSocket(f) {
		return false, nil
	}
	ino := uint32(f.Stat.Ino)
	u, err := k.lookup(ino)
	if err != nil && sockdiag.IsUnix(ino) {
		return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, %s (%s)", f.Fd, sockdiag.Describe(ino), f.Path),
			fmt.Sprintf("this kernel does not answer UNIX_DIAG (%v), which ckpt needs to find the socket's peer and queues: load the unix_diag module (CONFIG_UNIX_DIAG)", err))
	}
	if u == nil {
		return false, nil // not a unix socket: refused with its kind by Classify
	}
	if u.Type != unix.SOCK_STREAM && u.Type != unix.SOCK_DGRAM && u.Type != unix.SOCK_SEQPACKET {
		return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a unix socket of %s (%s)", f.Fd, sockdiag.SockType(u.Type), f.Path), "ckpt cannot dump it")
	}
	if k.seen == nil {
		k.seen = map[uint32]bool{}
	}
	k.seen[ino] = true
	if k.holder == nil {
		k.holder = map[uint32]string{}
	}
	if _, ok := k.holder[ino]; !ok {
		k.holder[ino] = fmt.Sprintf("fd %d of task %d", f.Fd, f.Pid)
	}
	if u.State != uapi.TCP_LISTEN {
		k.filesInFlight(f, u)
	}
	return true, nil
}

// filesInFlight reads, before any fd is collected, the files that the
// messages queued on f carry: the pipe kind learns which pipe ends are
// in flight (a pipe whose one end is in flight and whose other a task
// holds is the tree's), and a unix socket in flight counts as one of
// the tree's (its peer may be a task's), its own queue read in turn. A
// queue that cannot be read here is read again, and its error
// reported, by Collect.
func (k *unixKind) filesInFlight(f *File, u *sockdiag.Unix) {
	if _, done := k.peeked[u.Ino]; done {
		return // another fd of the same socket
	}
	pid := f.Pid
	if pid == 0 {
		pid = os.Getpid()
	}
	c, err := fdOf(pid, f.Fd)
	if err != nil {
		return
	}
	defer unix.Close(c)
	k.scanQueue(c, u)
}

// scanQueue is filesInFlight on ckpt's copy c of socket u.
func (k *unixKind) scanQueue(c int, u *sockdiag.Unix) {
	if _, done := k.peeked[u.Ino]; done {
		return
	}
	if off, err := unix.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_PEEK_OFF); err != nil || off != -1 {
		return
	}
	msgs, fds, err := peekQueue(c, u.Type, u.Shutdown&uapi.RCV_SHUTDOWN != 0)
	if err != nil {
		return
	}
	// Kept for Collect: a second peek would miss the empty records,
	// which the kernel marks peeked and then skips at a peek offset
	// (__skb_try_recv_from_queue).
	if k.peeked == nil {
		k.peeked = map[uint32]peekedQueue{}
	}
	k.peeked[u.Ino] = peekedQueue{msgs, fds}
	for _, m := range fds {
		for _, x := range m {
			var st unix.Stat_t
			if ino, ok := pipeOf(x, &st); ok {
				fl, err := unix.FcntlInt(uintptr(x), unix.F_GETFL, 0)
				if err == nil && k.pipes != nil {
					k.pipes.addInFlight(ino, fl&unix.O_ACCMODE == unix.O_WRONLY)
				}
				continue
			}
			if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
				continue
			}
			su, err := k.lookup(uint32(st.Ino))
			if err != nil || su == nil {
				continue // not a unix socket: refused by Collect
			}
			if k.inflightSk == nil {
				k.inflightSk = map[uint32]bool{}
			}
			k.inflightSk[su.Ino] = true
			k.seen[su.Ino] = true
			if su.State != uapi.TCP_LISTEN {
				k.scanQueue(x, su)
			}
		}
	}
}

// peekedQueue is a socket's queue as Match read it: the messages and
// ckpt's copies of the files in flight that each carries.
type peekedQueue struct {
	msgs [][]byte
	fds  [][]int
}

// pipeOf tells whether x is an end of a pipe, and its inode.
func pipeOf(x int, st *unix.Stat_t) (uint64, bool) {
	if unix.Fstat(x, st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return 0, false
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", x))
	return st.Ino, err == nil && strings.HasPrefix(link, "pipe:")
}

// unixTypeName names a unix socket type for messages.
func unixTypeName(t uint32) string {
	switch t {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "datagram"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	}
	return "type " + strconv.Itoa(int(t))
}

// nameString shows a unix socket name: a path, or @name for an abstract one.
func nameString(name []byte) string {
	if len(name) == 0 {
		return ""
	}
	if name[0] == 0 {
		return "@" + strings.ReplaceAll(string(name[1:]), "\x00", "@")
	}
	return string(bytes.TrimRight(name, "\x00"))
}

// describeUnix names a unix socket for messages.
func describeUnix(fdNum int, u *sockdiag.Unix) string {
	s := fmt.Sprintf("fd %d, a unix %s socket", fdNum, unixTypeName(uint32(u.Type)))
	switch {
	case u.State == uapi.TCP_LISTEN:
		s += " listening"
	case u.HasPeer:
		s += " connected"
	}
	if len(u.Name) > 0 {
		s += " bound to " + nameString(u.Name)
	}
	return s + fmt.Sprintf(" (socket:[%d])", u.Ino)
}

func (k *unixKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	if !k.frozen {
		all, err := sockdiag.UnixAll()
		if err != nil {
			return fmt.Errorf("fd %d (unix socket): %w", f.Fd, err)
		}
		k.diag, k.frozen = all, true
		k.listenerOf = map[uint32]uint32{}
		for _, u := range all {
			for _, c := range u.Icons {
				k.listenerOf[c] = u.Ino
			}
		}
	}
	ino := uint32(f.Stat.Ino)
	u := k.diag[ino]
	if u == nil {
		return fmt.Errorf("fd %d (%s): unix_diag does not list it", f.Fd, f.Path)
	}
	obj := describeUnix(f.Fd, u)
	refuse := func(reason string) error { return ckerr.Unsupported(t.Pid, obj, reason) }
	peer := u.Peer
	if l, pending := k.listenerOf[ino]; pending {
		// A client whose connection listener l has not accepted yet: its
		// peer, the embryo in l's queue, has no inode (peer 0); what it
		// sent waits there and counts in its send queue.
		if !k.seen[l] {
			where := ""
			if lu := k.diag[l]; lu != nil && len(lu.Name) > 0 {
				where = " bound to " + nameString(lu.Name)
			}
			return refuse(fmt.Sprintf("its connection waits to be accepted by listener socket:[%d]%s, held outside the dumped tree: a connection to the outside cannot be made again; dump once it is accepted, or dump the listener's process with the tree", l, where))
		}
		if u.WQueue > 0 {
			// What the client sent waits in the receive queue of the
			// embryo socket that accept() will return. The embryo has no
			// fd and no inode (UNIX_DIAG does not list it: it skips
			// sockets without one); no call reads a socket's queue
			// without an fd of it, and the only way to get one, accept()
			// on the listener, takes the connection away from the task
			// (a dump that fails, or --leave-running, would leave it
			// without that connection). Recv on the client reads its own
			// queue, not its peer's. So this stays refused (CRIU refuses
			// it too: "Non-empty write queue on an in-flight socket").
			// UNIX_DIAG_RQLEN's write queue of the client counts kernel
			// buffers (sk_wmem_alloc, with their overhead), not bytes of
			// data: the message says so.
			lname := ""
			if lu := k.diag[l]; lu != nil && len(lu.Name) > 0 {
				lname = " bound to " + nameString(lu.Name)
			}
			return refuse(fmt.Sprintf("its connection to the listening socket:[%d]%s (%s) has not been accepted yet, and holds data it sent (%d bytes of kernel buffers, data and overhead): the kernel gives no way to read a connection's data before accept() takes it from the task; let the listener accept the connection (or have the client send only once it is accepted), then dump", l, lname, k.holder[l], u.WQueue))
		}
		peer = l // written as a client pending on that listener
	} else if u.HasPeer && peer != 0 && !k.seen[peer] {
		p := k.diag[peer]
		where := ""
		if p != nil && len(p.Name) > 0 {
			where = " bound to " + nameString(p.Name)
		}
		switch {
		case u.Type != unix.SOCK_DGRAM:
			return refuse(fmt.Sprintf("its peer socket:[%d]%s is held outside the dumped tree: a connection to the outside cannot be made again (also not with --ext-unix-sk, which takes datagram sockets only): close it, or dump the peer's process with the tree", u.Peer, where))
		case !t.Opts.ExtUnixSk:
			return refuse(fmt.Sprintf("it is connected to socket:[%d]%s outside the dumped tree: dump with --ext-unix-sk to connect it to that name again at restore", u.Peer, where))
		case p == nil || len(p.Name) == 0:
			return refuse(fmt.Sprintf("it is connected to socket:[%d] outside the dumped tree, which has no name to connect to again", u.Peer))
		case len(u.Name) == 0 && u.RQueue > 0:
			return refuse(fmt.Sprintf("datagrams from socket:[%d] outside the dumped tree wait in it, and it has no name to send them to again", u.Peer))
		}
		var nameDir *string
		if isPath(p.Name) && !filepath.IsAbs(nameString(p.Name)) {
			// A relative name, bound in the outside process's directory:
			// taken where the task's working directory has that socket file.
			dir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", t.Pid))
			var st unix.Stat_t
			if err != nil || !p.HasVFS || unix.Stat(filepath.Join(dir, nameString(p.Name)), &st) != nil || uint32(st.Ino) != p.VFSIno {
				return refuse(fmt.Sprintf("it is connected to socket:[%d] outside the dumped tree, bound to the relative name %s, which ckpt cannot find", u.Peer, nameString(p.Name)))
			}
			nameDir = proto.String(dir)
		}
		if !k.extAdded[peer] {
			if k.extAdded == nil {
				k.extAdded = map[uint32]bool{}
			}
			k.extAdded[peer] = true
			t.Dump.Unlisted = append(t.Dump.Unlisted, &fdinfo.FileEntry{
				Type: fdinfo.FdTypes_UNIXSK.Enum(),
				Usk: &skunix.UnixSkEntry{
					Id: proto.Uint32(0), Ino: proto.Uint32(peer), Type: proto.Uint32(uint32(p.Type)), State: proto.Uint32(uint32(p.State)),
					Flags: proto.Uint32(0), Uflags: proto.Uint32(uskExtern), Backlog: proto.Uint32(0), Peer: proto.Uint32(p.Peer),
					Fown: noOwner(), Name: append([]byte{}, p.Name...), NameDir: nameDir, Opts: &skopts.SkOptsEntry{SoSndbuf: proto.Uint32(0), SoRcvbuf: proto.Uint32(0), SoSndTmoSec: proto.Uint64(0), SoSndTmoUsec: proto.Uint64(0), SoRcvTmoSec: proto.Uint64(0), SoRcvTmoUsec: proto.Uint64(0)},
				},
			})
		}
	}
	if u.HasPeer && peer == 0 && u.Type == unix.SOCK_DGRAM {
		return refuse("it is connected to a peer that was closed: not supported yet")
	}
	for _, c := range u.Icons {
		// UNIX_DIAG_ICONS lists the clients of the connections waiting.
		if !k.seen[c] {
			return refuse(fmt.Sprintf("a connection from socket:[%d], outside the dumped tree, waits to be accepted: accept it or let it go before the dump", c))
		}
	}

	cfd, err := unix.PidfdGetfd(t.Pidfd, f.Fd, 0)
	if err != nil {
		return fmt.Errorf("%s: pidfd_getfd: %w", obj, err)
	}
	defer unix.Close(cfd)

	if off, err := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_PEEK_OFF); err == nil && off != -1 {
		return refuse(fmt.Sprintf("its peek offset is set (SO_PEEK_OFF %d): not supported yet", off))
	}
	var msgs [][]byte
	var scm [][]uint32
	if u.State != uapi.TCP_LISTEN {
		var inflight [][]int
		if q, ok := k.peeked[ino]; ok {
			delete(k.peeked, ino)
			msgs, inflight = q.msgs, q.fds
		} else if msgs, inflight, err = peekQueue(cfd, u.Type, u.Shutdown&uapi.RCV_SHUTDOWN != 0); err != nil {
			return fmt.Errorf("%s: read its queue: %w", obj, err)
		}
		scm, err = k.collectInFlight(t, inflight, queuePlace(msgs, u.Type), refuse)
		closeInFlight(inflight)
		if err != nil {
			return err
		}
		// The files in flight took the ids after e's: e takes the next.
		e.Id = proto.Uint32(t.Dump.NextFileID())
	}

	usk := &skunix.UnixSkEntry{
		Id: e.Id, Ino: proto.Uint32(ino), Type: proto.Uint32(uint32(u.Type)), State: proto.Uint32(uint32(u.State)),
		Flags: proto.Uint32(flags), Uflags: proto.Uint32(0), Backlog: proto.Uint32(0), Peer: proto.Uint32(peer),
		Fown: noOwner(), Name: append([]byte{}, u.Name...),
		Shutdown: skopts.SkShutdown(u.Shutdown & (uapi.RCV_SHUTDOWN | uapi.SEND_SHUTDOWN)).Enum(),
	}
	if u.State == uapi.TCP_LISTEN {
		usk.Backlog = proto.Uint32(u.WQueue)
	}
	if len(u.Name) > 0 && u.Name[0] != 0 {
		moved, err := boundFile(t.Pid, cfd, u, usk)
		if err != nil {
			var ue *ckerr.UnsupportedError
			if errors.As(err, &ue) {
				return refuse(ue.Reason)
			}
			return fmt.Errorf("%s: %w", obj, err)
		}
		// An accepted end shares its listener's file: the listener moves it.
		if moved != "" && (u.State != uapi.TCP_ESTABLISHED || u.Type == unix.SOCK_DGRAM) {
			if t.Dump.SkMoved == nil {
				t.Dump.SkMoved = map[uint32]string{}
			}
			t.Dump.SkMoved[e.GetId()] = moved
		}
	}
	if usk.Opts, err = sockOpts(cfd); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	if v, err := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, uapi.SO_PASSPIDFD); err == nil && v != 0 {
		// CRIU's sk_opts_entry has no field for it: it would be lost.
		return refuse("SO_PASSPIDFD is set on it (its messages come with their sender's pidfd): not supported yet; clear it before the dump")
	}
	if len(msgs) > 0 {
		if t.Dump.SkQueues == nil {
			t.Dump.SkQueues = map[uint32][][]byte{}
		}
		t.Dump.SkQueues[e.GetId()] = msgs
	}
	if len(scm) > 0 {
		if t.Dump.SkScm == nil {
			t.Dump.SkScm = map[uint32][][]uint32{}
		}
		t.Dump.SkScm[e.GetId()] = scm
	}
	e.Type = fdinfo.FdTypes_UNIXSK.Enum()
	e.Usk = usk
	return nil
}

// inFlightName names a file in flight of entry fe for messages.
func inFlightName(fe *fdinfo.FileEntry) string {
	if pe := fe.GetPipe(); pe != nil {
		return fmt.Sprintf("an end of pipe:[%d]", pe.GetPipeId())
	}
	return "the regular file " + fe.GetReg().GetName()
}

// heldByTree finds an fd of a process of the tree that holds the open
// file that ckpt holds at x (kcmp KCMP_FILE), looking at the fds that
// stat to the same file in /proc/PID/fd of every process inTree tells
// is the tree's.
func heldByTree(inTree func(pid int) bool, x int) (pid, fd int, ok bool) {
	var st unix.Stat_t
	if inTree == nil || unix.Fstat(x, &st) != nil {
		return 0, 0, false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !inTree(pid) {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, f := range fds {
			n, err := strconv.Atoi(f.Name())
			var fst unix.Stat_t
			if err != nil || unix.Stat(dir+"/"+f.Name(), &fst) != nil || fst.Dev != st.Dev || fst.Ino != st.Ino {
				continue
			}
			r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(self), uintptr(pid), uapi.KCMP_FILE, uintptr(x), uintptr(n), 0)
			if errno == 0 && r == 0 {
				return pid, n, true
			}
		}
	}
	return 0, 0, false
}

// collectSocketInFlight collects the unix socket ino that a queued
// message carries (ckpt's copy at x) as a file of its own, once however
// many messages carry it, and returns its file id.
func (k *unixKind) collectSocketInFlight(t Task, x int, ino uint32, place string, refuse func(string) error) (uint32, error) {
	if id, ok := k.inflightID[ino]; ok {
		return id, nil
	}
	if k.collecting[ino] {
		// Its own queue carries it, or carries a socket that does.
		return 0, refuse(fmt.Sprintf("%s carries in flight (SCM_RIGHTS) socket:[%d], which messages in flight on it carry in turn: a cycle of sockets in flight is not supported yet; let the receiver take them before the dump", place, ino))
	}
	if k.collecting == nil {
		k.collecting = map[uint32]bool{}
	}
	k.collecting[ino] = true
	defer delete(k.collecting, ino)
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(self)
	var st unix.Stat_t
	if err := unix.Fstat(x, &st); err != nil {
		return 0, err
	}
	fl, err := unix.FcntlInt(uintptr(x), unix.F_GETFL, 0)
	if err != nil {
		return 0, err
	}
	// Collected like a task's socket, through ckpt's own copy.
	own := t
	own.Pidfd = self
	e := &fdinfo.FileEntry{Id: proto.Uint32(t.Dump.NextFileID())}
	if err := k.Collect(own, &File{Fd: x, Path: fmt.Sprintf("socket:[%d]", ino), Stat: st}, uint32(fl)&^unix.O_CLOEXEC, e); err != nil {
		var ue *ckerr.UnsupportedError
		if errors.As(err, &ue) {
			return 0, refuse(fmt.Sprintf("%s carries in flight (SCM_RIGHTS) %s: %s", place, strings.TrimPrefix(ue.Object, fmt.Sprintf("fd %d, ", x)), ue.Reason))
		}
		return 0, fmt.Errorf("%s: socket:[%d] in flight: %w", place, ino, err)
	}
	id := t.Dump.AddFile(e)
	if k.inflightID == nil {
		k.inflightID = map[uint32]uint32{}
	}
	k.inflightID[ino] = id
	return id, nil
}

// queuePlace names, for messages, where message i of a queue is: its
// number, or for a stream (whose messages are chunks of ckpt's making)
// the byte that ends it.
func queuePlace(msgs [][]byte, typ uint8) func(int) string {
	return func(i int) string {
		if typ != unix.SOCK_STREAM {
			return fmt.Sprintf("message %d of its receive queue", i+1)
		}
		n := 0
		for _, m := range msgs[:i+1] {
			n += len(m)
		}
		return fmt.Sprintf("its receive queue, at byte %d,", n)
	}
}

// collectInFlight adds to the dump the files in flight that peekQueue
// found (inflight[i] are ckpt's copies of those of message i) and
// returns, by message, their file ids (nil when no message has any). A
// file in flight is dumped as a file of its own, which no fd holds: a
// regular file reopened by path at its offset, or a pipe end (the pipe
// the tree's, with its bytes). Other kinds are refused.
func (k *unixKind) collectInFlight(t Task, inflight [][]int, place func(int) string, refuse func(string) error) ([][]uint32, error) {
	var scm [][]uint32
	ents := make([][]*fdinfo.FileEntry, len(inflight))
	for i, fds := range inflight {
		for _, x := range fds {
			var st unix.Stat_t
			if unix.Fstat(x, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK && k.inflightSk[uint32(st.Ino)] {
				// A unix socket: collected below, as the tree's.
				if h, held := k.holder[uint32(st.Ino)]; held {
					return nil, refuse(fmt.Sprintf("%s carries in flight (SCM_RIGHTS) %s, which %s holds too: a socket both in flight and held by a task is not supported yet; let the receiver take it before the dump", place(i), sockdiag.Describe(uint32(st.Ino)), h))
				}
				ents[i] = append(ents[i], &fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Usk: &skunix.UnixSkEntry{Ino: proto.Uint32(uint32(st.Ino))}})
				continue
			}
			fe, what := inFlightFile(x)
			if fe == nil {
				return nil, refuse(fmt.Sprintf("%s carries a file descriptor in flight (SCM_RIGHTS): %s, which ckpt cannot restore yet (regular files and pipe ends in flight come back); let the receiver take it before the dump", place(i), what))
			}
			if pid, n, held := heldByTree(t.InTree, x); held {
				return nil, refuse(fmt.Sprintf("%s carries in flight (SCM_RIGHTS) %s, which fd %d of task %d holds too, as the same open file: a file both in flight and held cannot come back yet (it would come back as two open files, no longer sharing offset and flags); let the receiver take it, or the task close its fd, before the dump", place(i), inFlightName(fe), n, pid))
			}
			if pe := fe.GetPipe(); pe != nil {
				write := pe.GetFlags()&unix.O_ACCMODE == unix.O_WRONLY
				ino := uint64(pe.GetPipeId())
				if k.pipes == nil || !k.pipes.inFlight(ino, write) {
					return nil, refuse(fmt.Sprintf("%s carries an end of pipe:[%d] that was not in flight when the tree's files were listed: dump again", place(i), ino))
				}
				r, w := false, false
				if t.PipeEnds != nil {
					r, w = t.PipeEnds(ino)
				}
				if r, w = r || k.pipes.inFlight(ino, false), w || k.pipes.inFlight(ino, true); !r || !w {
					return nil, refuse(fmt.Sprintf("%s carries an end of pipe:[%d] in flight whose other end is held outside the dumped tree (or closed): pipes to the outside are not supported yet; let the receiver take it before the dump", place(i), ino))
				}
				if _, ok := t.Dump.Pipes[uint32(ino)]; !ok {
					pd, err := pipeData(os.Getpid(), x)
					if err != nil {
						return nil, fmt.Errorf("%s: pipe:[%d] in flight: %w", place(i), ino, err)
					}
					if t.Dump.Pipes == nil {
						t.Dump.Pipes = map[uint32]model.PipeData{}
					}
					t.Dump.Pipes[uint32(ino)] = pd
				}
			}
			ents[i] = append(ents[i], fe)
		}
	}
	for i, es := range ents {
		if len(es) == 0 {
			continue
		}
		if scm == nil {
			scm = make([][]uint32, len(inflight))
		}
		for j, fe := range es {
			if fe.Usk != nil {
				id, err := k.collectSocketInFlight(t, inflight[i][j], fe.Usk.GetIno(), place(i), refuse)
				if err != nil {
					return nil, err
				}
				scm[i] = append(scm[i], id)
				continue
			}
			fe.Id = proto.Uint32(t.Dump.NextFileID())
			if fe.Reg != nil {
				fe.Reg.Id = fe.Id
			} else {
				fe.Pipe.Id = fe.Id
			}
			scm[i] = append(scm[i], t.Dump.AddFile(fe))
		}
	}
	return scm, nil
}

// boundFile finds where the file of a socket bound to a path is now
// (SIOCUNIXFILE opens it), and records its mode and owner, the directory
// a relative name was bound in, and whether it was unlinked. For a file
// renamed since it was bound it returns where the file is now: the
// restore binds the name and renames the file there, so that clients
// find it where they look now (a JVM binds .java_pidN.tmp and renames it
// to .java_pidN) and the socket keeps its name.
func boundFile(pid, cfd int, u *sockdiag.Unix, usk *skunix.UnixSkEntry) (moved string, err error) {
	name := nameString(u.Name)
	var cur string
	var st unix.Stat_t
	pfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(cfd), uapi.SIOCUNIXFILE, 0)
	if errno == 0 {
		defer unix.Close(int(pfd))
		l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pfd))
		if err != nil {
			return "", fmt.Errorf("bound file: %w", err)
		}
		if err := unix.Fstat(int(pfd), &st); err != nil {
			return "", fmt.Errorf("bound file: %w", err)
		}
		cur = l
	} else {
		// Before Linux 6.0: the name is where the file is if its inode is
		// the socket's.
		p := name
		if !filepath.IsAbs(p) {
			cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
			if err != nil {
				return "", err
			}
			p = filepath.Join(cwd, p)
		}
		cur = p + " (deleted)"
		if unix.Lstat(p, &st) == nil && uint32(st.Ino) == u.VFSIno {
			cur = p
		}
	}
	deleted := strings.HasSuffix(cur, " (deleted)")
	cur = strings.TrimSuffix(cur, " (deleted)")
	usk.Deleted = proto.Bool(deleted)
	if st.Mode != 0 {
		usk.FilePerms = &skunix.FilePermsEntry{Mode: proto.Uint32(st.Mode & 0o7777), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid)}
	}
	switch {
	case filepath.IsAbs(name):
		if cur != filepath.Clean(name) {
			if deleted {
				return "", ckerr.Unsupported(pid, "", fmt.Sprintf("its file was renamed to %s and then unlinked: not supported yet", cur))
			}
			return cur, nil
		}
	case strings.HasSuffix(cur, "/"+filepath.Clean(name)):
		usk.NameDir = proto.String(strings.TrimSuffix(cur, "/"+filepath.Clean(name)))
	default:
		if deleted {
			return "", ckerr.Unsupported(pid, "", fmt.Sprintf("its file was renamed to %s and then unlinked: not supported yet", cur))
		}
		// Renamed since it was bound by a relative name: bound again from
		// the task's working directory, the likeliest place it was bound.
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			return "", err
		}
		usk.NameDir = proto.String(cwd)
		return cur, nil
	}
	return "", nil
}

// sockOpts reads the socket options that are restored.
func sockOpts(fd int) (*skopts.SkOptsEntry, error) {
	o := &skopts.SkOptsEntry{}
	geti := func(opt int) (int, error) {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
		if err != nil {
			return 0, fmt.Errorf("getsockopt %d: %w", opt, err)
		}
		return v, nil
	}
	snd, err := geti(unix.SO_SNDBUF)
	if err != nil {
		return nil, err
	}
	rcv, err := geti(unix.SO_RCVBUF)
	if err != nil {
		return nil, err
	}
	o.SoSndbuf, o.SoRcvbuf = proto.Uint32(uint32(snd)), proto.Uint32(uint32(rcv))
	for _, tm := range []struct {
		opt       int
		sec, usec **uint64
	}{{unix.SO_SNDTIMEO, &o.SoSndTmoSec, &o.SoSndTmoUsec}, {unix.SO_RCVTIMEO, &o.SoRcvTmoSec, &o.SoRcvTmoUsec}} {
		tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, tm.opt)
		if err != nil {
			return nil, fmt.Errorf("getsockopt %d: %w", tm.opt, err)
		}
		*tm.sec, *tm.usec = proto.Uint64(uint64(tv.Sec)), proto.Uint64(uint64(tv.Usec))
	}
	// Recent kernels (6.18 here) answer EOPNOTSUPP for these on sockets
	// other than unix and netlink ones, which cannot have them set.
	pc, err := geti(unix.SO_PASSCRED)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return nil, err
	}
	ps, err := geti(unix.SO_PASSSEC)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return nil, err
	}
	o.SoPasscred, o.SoPasssec = proto.Bool(pc != 0), proto.Bool(ps != 0)
	return o, nil
}

// maxQueue bounds what one socket's queue may hold at dump (the kernel's
// own limits keep it far below).
const maxQueue = 64 << 20

// peekQueue reads every message queued to be read on fd without taking
// any out: MSG_PEEK from a peek offset that starts at 0 and moves past
// each message read (SO_PEEK_OFF), put back to -1 afterwards. A datagram
// or seqpacket record comes whole, a stream in chunks (a chunk ends with
// the part that carries files). Descriptors in flight (SCM_RIGHTS) are installed in ckpt
// by the peek (unix_peek_fds): fds[i] are those of message i, for the
// caller to close (closed here on error).
func peekQueue(fd int, typ uint8, rcvShut bool) (msgs [][]byte, fds [][]int, err error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
		return nil, nil, fmt.Errorf("SO_PEEK_OFF: %w", err)
	}
	defer unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, -1)
	defer func() {
		if err != nil {
			closeInFlight(fds)
			msgs, fds = nil, nil
		}
	}()
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*253)+unix.CmsgSpace(64)) // SCM_MAX_FD files, and credentials
	total := 0
	for {
		flags := unix.MSG_PEEK | unix.MSG_DONTWAIT | unix.MSG_CMSG_CLOEXEC
		if typ != unix.SOCK_STREAM {
			flags |= unix.MSG_TRUNC // the whole length of a longer record
		}
		n, oobn, rflags, _, err := unix.Recvmsg(fd, buf, oob, flags)
		if err == unix.EAGAIN {
			return msgs, fds, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return msgs, fds, err
		}
		var got []int
		if oobn > 0 {
			if got, err = rightsOf(oob[:oobn]); err != nil {
				closeInFlight([][]int{got})
				return msgs, fds, err
			}
		}
		if rflags&unix.MSG_CTRUNC != 0 {
			closeInFlight([][]int{got})
			return msgs, fds, fmt.Errorf("a message carries more control data than %d bytes", len(oob))
		}
		if n > len(buf) {
			// A record longer than the buffer: start again with one that fits.
			closeInFlight(append(fds, got))
			buf = make([]byte, n)
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
				return nil, nil, err
			}
			msgs, fds, total = nil, nil, 0
			continue
		}
		if n == 0 && len(got) == 0 && (typ == unix.SOCK_STREAM || rcvShut) {
			return msgs, fds, nil // end of the stream, or of a shut-down queue
		}
		if typ == unix.SOCK_STREAM && len(got) > 0 && n > 1 {
			// A stream chunk ends with the part that carries files, but
			// where that part begins cannot be seen: a peek gives the
			// files of the first part that has them however few bytes it
			// asks for, from any offset before them (on 6.18 the peek
			// walks on past the bytes it copies to the next part with
			// files). The files go back with the chunk's last byte, so
			// that a receiver that reads the bytes sent before them, by
			// their length, does not get (and lose) them: it gets them
			// with the read that takes the last byte.
			msgs = append(msgs, append([]byte{}, buf[:n-1]...), []byte{buf[n-1]})
			fds = append(fds, nil, got)
			total += n
			continue
		}
		msgs = append(msgs, append([]byte{}, buf[:n]...))
		fds = append(fds, got)
		if total += n; total > maxQueue || len(msgs) > 1<<20 {
			return msgs, fds, fmt.Errorf("more than %d bytes queued", maxQueue)
		}
	}
}

// rightsOf returns the files that the SCM_RIGHTS messages among control
// messages b installed (credentials are left; the pidfd of the sender
// that SO_PASSPIDFD has the kernel install, SCM_PIDFD, is closed).
func rightsOf(b []byte) ([]int, error) {
	cms, err := unix.ParseSocketControlMessage(b)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var out []int
	for i := range cms {
		if cms[i].Header.Level == unix.SOL_SOCKET && cms[i].Header.Type == unix.SCM_PIDFD && len(cms[i].Data) >= 4 {
			unix.Close(int(int32(binary.LittleEndian.Uint32(cms[i].Data))))
			continue
		}
		if cms[i].Header.Level != unix.SOL_SOCKET || cms[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		fds, err := unix.ParseUnixRights(&cms[i])
		if err != nil {
			return out, fmt.Errorf("SCM_RIGHTS: %w", err)
		}
		out = append(out, fds...)
	}
	return out, nil
}

// closeInFlight closes ckpt's copies of files in flight.
func closeInFlight(fds [][]int) {
	for _, m := range fds {
		for _, x := range m {
			unix.Close(x)
		}
	}
}

// inFlightFile makes the files.img entry (id left to the caller) of a
// file in flight that ckpt holds at x, a regular file or a pipe end; for
// a file ckpt cannot restore it returns no entry and what the file is.
func inFlightFile(x int) (*fdinfo.FileEntry, string) {
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", x))
	if err != nil {
		return nil, fmt.Sprintf("a file ckpt cannot look at (%v)", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(x, &st); err != nil {
		return nil, fmt.Sprintf("%s, which ckpt cannot stat (%v)", link, err)
	}
	var sfs unix.Statfs_t
	_ = unix.Fstatfs(x, &sfs)
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFSOCK:
		return nil, fmt.Sprintf("%s (%s)", sockdiag.Describe(uint32(st.Ino)), link)
	case strings.HasPrefix(link, "anon_inode:"):
		return nil, fmt.Sprintf("%s (%s)", describe(&File{Path: link, Stat: st}), link)
	case st.Mode&unix.S_IFMT == unix.S_IFIFO && strings.HasPrefix(link, "pipe:"):
		fl, err := unix.FcntlInt(uintptr(x), unix.F_GETFL, 0)
		if err != nil {
			return nil, fmt.Sprintf("a pipe end (%s), whose flags ckpt cannot read (%v)", link, err)
		}
		return &fdinfo.FileEntry{Type: fdinfo.FdTypes_PIPE.Enum(), Pipe: &pipe.PipeEntry{
			Id: proto.Uint32(0), PipeId: proto.Uint32(uint32(st.Ino)), Flags: proto.Uint32(uint32(fl) &^ unix.O_CLOEXEC), Fown: noOwner(),
		}}, ""
	case st.Mode&unix.S_IFMT == unix.S_IFIFO:
		return nil, fmt.Sprintf("a FIFO (%s)", link)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Sprintf("a file of mode %#o (%s)", st.Mode&unix.S_IFMT, link)
	case !filepath.IsAbs(link) || strings.HasPrefix(link, "/memfd:") || sfs.Type == uapi.MQUEUE_MAGIC:
		return nil, fmt.Sprintf("a file without a path to open again (%s)", link)
	case st.Nlink == 0 || strings.HasSuffix(link, deletedMark):
		return nil, fmt.Sprintf("a regular file that was unlinked (%s)", link)
	}
	fl, err := unix.FcntlInt(uintptr(x), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Sprintf("%s, whose flags ckpt cannot read (%v)", link, err)
	}
	pos, err := unix.Seek(x, 0, io.SeekCurrent)
	if err != nil {
		pos = 0 // a file without an offset
	}
	return RegEntry(0, link, uint32(fl)&^unix.O_CLOEXEC, uint64(pos), &st), ""
}

// Open gives the task the socket of e at num; the first call of a
// restore makes every unix socket of the dump.
func (k *unixKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	usk := e.GetUsk()
	if usk == nil {
		return fmt.Errorf("fd %d: unix socket entry %d without data", num, e.GetId())
	}
	if k.home == nil {
		if err := k.build(r); err != nil {
			return fmt.Errorf("fd %d (unix socket): make the tree's unix sockets: %w", num, err)
		}
	}
	spare, ok := k.spare[usk.GetIno()]
	if !ok {
		return fmt.Errorf("fd %d: unix socket socket:[%d] was not made", num, usk.GetIno())
	}
	if err := k.take(r, spare, num, cloexec); err != nil {
		return fmt.Errorf("fd %d (unix socket socket:[%d]): %w", num, usk.GetIno(), err)
	}
	if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, uint64(usk.GetFlags())&^unix.O_ACCMODE); err != nil {
		return fmt.Errorf("fd %d: fcntl(F_SETFL): %w", num, err)
	}
	return nil
}

// take puts the socket held at fd spare of home at num of r.
func (k *unixKind) take(r Restorer, spare, num int, cloexec bool) error {
	return takeFd(r, k.home, spare, num, cloexec)
}

// innerPid is the PID of host pid in its own (innermost) PID namespace,
// as the tree's processes name it.
func innerPid(pid int) (int, error) {
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		return 0, err
	}
	if n := len(st.NSpid); n > 0 {
		return st.NSpid[n-1], nil
	}
	return pid, nil
}

// FinishTree closes, in home, the sockets kept for the tree's processes.
func (k *unixKind) FinishTree() error {
	if k.home == nil {
		return nil
	}
	inos := make([]uint32, 0, len(k.spare))
	for ino := range k.spare {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		if _, err := k.home.Syscall(x86.SysClose, uint64(k.spare[ino])); err != nil {
			return fmt.Errorf("close the spare of unix socket socket:[%d] in %d: %w", ino, k.home.Pid(), err)
		}
	}
	for _, fd := range k.keep {
		if _, err := k.home.Syscall(x86.SysClose, uint64(fd)); err != nil {
			return fmt.Errorf("close fd %d, a file in flight, in %d: %w", fd, k.home.Pid(), err)
		}
	}
	k.home, k.spare, k.keep = nil, nil, nil
	return nil
}

// builder makes every unix socket of a dump inside home.
type builder struct {
	r Restorer
	// ents are the dump's unix sockets by inode; ids in file id order.
	ents map[uint32]*skunix.UnixSkEntry
	ids  []uint32
	// list are the entries in file id order.
	list []*skunix.UnixSkEntry
	// ext are the sockets outside the tree that dumped datagram sockets
	// are connected to (--ext-unix-sk), by inode.
	ext map[uint32]*skunix.UnixSkEntry
	// orphan is, by the inode of a stream socket whose peer was closed,
	// the other end of the pair made for it, in home and ckpt's copy;
	// it is closed once the queue is refilled.
	orphan, orphanCopy map[uint32]int
	// fd is, by inode, the socket's fd in home (set aside above MaxFd).
	fd map[uint32]int
	// pidfd is ckpt's pidfd of home; copies are ckpt's copies of home's
	// sockets, for options, refilling queues and shutdown.
	pidfd  int
	copies map[uint32]int
	queues map[uint32][][]byte
	// scm are, beside queues, the file ids in flight of each message.
	scm map[uint32][][]uint32
	// pipes makes the pipe ends in flight; keep are the fds of home that
	// hold them.
	pipes *pipeKind
	keep  []int
	// moved are, by inode, where the files of sockets bound and renamed
	// since are to go.
	moved map[uint32]string
	// unlink are paths to unlink once every socket exists (sockets whose
	// file was unlinked, temporary listeners).
	unlink []string
}

// absPath is where a socket bound to a path has its file.
func absPath(e *skunix.UnixSkEntry) string {
	p := nameString(e.GetName())
	if !filepath.IsAbs(p) && e.GetNameDir() != "" {
		p = filepath.Join(e.GetNameDir(), p)
	}
	return p
}

func isPath(name []byte) bool { return len(name) > 0 && name[0] != 0 }

// build makes the sockets in r, which becomes their home.
func (k *unixKind) build(r Restorer) (err error) {
	d := r.Dump()
	b := &builder{r: r, ents: map[uint32]*skunix.UnixSkEntry{}, fd: map[uint32]int{}, copies: map[uint32]int{}, pipes: k.pipes}
	byID := map[uint32]uint32{}
	b.ext = map[uint32]*skunix.UnixSkEntry{}
	for id, f := range d.Files {
		if u := f.GetUsk(); u != nil && u.GetUflags()&uskExtern != 0 {
			b.ext[u.GetIno()] = u
			continue
		}
		if u := f.GetUsk(); u != nil {
			b.ents[u.GetIno()] = u
			byID[id] = u.GetIno()
			b.ids = append(b.ids, id)
		}
	}
	sort.Slice(b.ids, func(i, j int) bool { return b.ids[i] < b.ids[j] })
	for _, id := range b.ids {
		b.list = append(b.list, b.ents[byID[id]])
	}
	b.orphan, b.orphanCopy = map[uint32]int{}, map[uint32]int{}
	b.queues = map[uint32][][]byte{}
	b.scm = map[uint32][][]uint32{}
	for id, q := range d.SkQueues {
		if ino, ok := byID[id]; ok {
			b.queues[ino] = q
			b.scm[ino] = d.SkScm[id]
		}
	}
	b.moved = map[uint32]string{}
	for id, p := range d.SkMoved {
		if ino, ok := byID[id]; ok {
			b.moved[ino] = p
		}
	}
	if b.pidfd, err = unix.PidfdOpen(r.Pid(), 0); err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(b.pidfd)
	defer func() {
		for _, c := range b.copies {
			unix.Close(c)
		}
		for _, c := range b.orphanCopy {
			unix.Close(c)
		}
	}()
	if err := b.run(); err != nil {
		for _, fd := range b.fd {
			_, _ = r.Syscall(x86.SysClose, uint64(fd))
		}
		for _, fd := range b.orphan {
			_, _ = r.Syscall(x86.SysClose, uint64(fd))
		}
		for _, fd := range b.keep {
			_, _ = r.Syscall(x86.SysClose, uint64(fd))
		}
		return err
	}
	k.home, k.spare, k.keep = r, b.fd, b.keep
	return nil
}

func (b *builder) entry(ino uint32) *skunix.UnixSkEntry { return b.ents[ino] }

// ino returns the entry's inode, for maps.
func ino(e *skunix.UnixSkEntry) uint32 { return e.GetIno() }

func (b *builder) run() error {
	paths := map[string]uint32{}
	// Paths: two sockets bound to one is not supported; the file of a
	// renamed one, left where it was renamed to, goes first.
	for _, e := range b.sorted() {
		// Ends that were accepted share their listener's name and file.
		if !isPath(e.GetName()) || e.GetState() == uapi.TCP_ESTABLISHED && e.GetType() != unix.SOCK_DGRAM {
			continue
		}
		p := absPath(e)
		if other, dup := paths[p]; dup {
			return fmt.Errorf("socket:[%d] and socket:[%d] are both bound to %s: not supported yet", other, ino(e), p)
		}
		paths[p] = ino(e)
		if m, ok := b.moved[ino(e)]; ok {
			if other, dup := paths[m]; dup {
				return fmt.Errorf("socket:[%d] and socket:[%d] are both bound to %s: not supported yet", other, ino(e), m)
			}
			paths[m] = ino(e)
			if err := clearStale(m, int(e.GetType())); err != nil {
				return fmt.Errorf("socket:[%d]: %w", ino(e), err)
			}
		}
	}
	// Listeners.
	for _, e := range b.sorted() {
		if e.GetState() != uapi.TCP_LISTEN {
			continue
		}
		fd, err := b.socket(e)
		if err != nil {
			return err
		}
		if err := b.bind(fd, e); err != nil {
			return err
		}
		if _, err := b.r.Syscall(x86.SysListen, uint64(fd), uint64(e.GetBacklog())); err != nil {
			return fmt.Errorf("socket:[%d]: listen(%d): %w", ino(e), e.GetBacklog(), err)
		}
	}
	// Connections and lone sockets.
	for _, e := range b.sorted() {
		if _, done := b.fd[ino(e)]; done {
			continue
		}
		peer := b.entry(e.GetPeer())
		switch {
		case e.GetPeer() == 0 && e.GetState() == uapi.TCP_ESTABLISHED && e.GetType() != unix.SOCK_DGRAM:
			// A stream whose peer was closed: a pair whose other end
			// goes once the queue is refilled.
			if err := b.pair(e, nil); err != nil {
				return err
			}
		case peer != nil && e.GetType() == unix.SOCK_DGRAM && peer.GetPeer() == ino(e) && len(e.GetName()) == 0 && len(peer.GetName()) == 0:
			if err := b.pair(e, peer); err != nil {
				return err
			}
		case peer == nil || e.GetType() == unix.SOCK_DGRAM || peer.GetState() == uapi.TCP_LISTEN:
			// Unconnected, a datagram socket (connected below, once the
			// queues are refilled), or a client pending on a listener.
			fd, err := b.socket(e)
			if err != nil {
				return err
			}
			if len(e.GetName()) > 0 {
				if err := b.bind(fd, e); err != nil {
					return err
				}
			}
		case peer.GetPeer() != ino(e):
			return fmt.Errorf("socket:[%d]: its peer socket:[%d] is connected to socket:[%d]", ino(e), ino(peer), peer.GetPeer())
		case len(e.GetName()) == 0 && len(peer.GetName()) == 0:
			if err := b.pair(e, peer); err != nil {
				return err
			}
		default:
			if err := b.accepted(e, peer); err != nil {
				return err
			}
		}
	}
	// Pending connections, in file id order.
	for _, e := range b.sorted() {
		if l := b.entry(e.GetPeer()); l != nil && l.GetState() == uapi.TCP_LISTEN && e.GetType() != unix.SOCK_DGRAM {
			if err := b.connect(b.fd[ino(e)], l); err != nil {
				return fmt.Errorf("socket:[%d]: pending connection to socket:[%d]: %w", ino(e), ino(l), err)
			}
		}
	}
	for i, fd := range b.fd {
		c, err := unix.PidfdGetfd(b.pidfd, fd, 0)
		if err != nil {
			return fmt.Errorf("socket:[%d]: pidfd_getfd: %w", i, err)
		}
		b.copies[i] = c
	}
	for i, fd := range b.orphan {
		c, err := unix.PidfdGetfd(b.pidfd, fd, 0)
		if err != nil {
			return fmt.Errorf("socket:[%d]: pidfd_getfd: %w", i, err)
		}
		b.orphanCopy[i] = c
	}
	for _, e := range b.sorted() {
		if err := setOpts(b.copies[ino(e)], e.GetOpts(), false); err != nil {
			return fmt.Errorf("socket:[%d]: %w", ino(e), err)
		}
	}
	// Datagrams for named sockets come from a socket of ckpt's, before
	// the receiver connects (a connected socket takes datagrams from its
	// peer only); the others from the peer.
	for _, e := range b.sorted() {
		q := b.queues[ino(e)]
		if len(q) == 0 || e.GetType() != unix.SOCK_DGRAM || len(e.GetName()) == 0 {
			continue
		}
		if err := sendNamed(e, q, b.rightsFor(e)); err != nil {
			return fmt.Errorf("socket:[%d]: refill its queue: %w", ino(e), err)
		}
	}
	for _, e := range b.sorted() {
		if e.GetType() != unix.SOCK_DGRAM || e.GetPeer() == 0 {
			continue
		}
		peer := b.entry(e.GetPeer())
		if peer == nil {
			peer = b.ext[e.GetPeer()] // outside the tree: connected by name
		}
		if peer == nil {
			return fmt.Errorf("socket:[%d]: its peer socket:[%d] is not in the dump", ino(e), e.GetPeer())
		}
		if len(peer.GetName()) == 0 {
			continue // a socketpair
		}
		if err := b.connect(b.fd[ino(e)], peer); err != nil {
			return fmt.Errorf("socket:[%d]: connect to socket:[%d]: %w", ino(e), ino(peer), err)
		}
	}
	for _, e := range b.sorted() {
		q := b.queues[ino(e)]
		if len(q) == 0 || (e.GetType() == unix.SOCK_DGRAM && len(e.GetName()) > 0) {
			continue
		}
		from, ok := b.copies[e.GetPeer()]
		if !ok {
			from, ok = b.orphanCopy[ino(e)]
		}
		if !ok {
			return fmt.Errorf("socket:[%d]: %d messages queued but no peer to send them", ino(e), len(q))
		}
		rights := b.rightsFor(e)
		for i, m := range q {
			oob, done, err := rights(i)
			if err != nil {
				return fmt.Errorf("socket:[%d]: message %d: %w", ino(e), i+1, err)
			}
			err = sendWith(from, m, oob, e.GetType() == unix.SOCK_STREAM)
			done()
			if err != nil {
				return fmt.Errorf("socket:[%d]: refill its queue: %w", ino(e), err)
			}
		}
	}
	// The other ends of streams whose peer was closed go now: the
	// survivor sees its peer gone, as it did.
	for _, e := range b.sorted() {
		if fd, ok := b.orphan[ino(e)]; ok {
			unix.Close(b.orphanCopy[ino(e)])
			delete(b.orphanCopy, ino(e))
			delete(b.orphan, ino(e))
			if _, err := b.r.Syscall(x86.SysClose, uint64(fd)); err != nil {
				return err
			}
		}
	}
	var moves [][2]string
	for _, e := range b.sorted() {
		c := b.copies[ino(e)]
		if how := e.GetShutdown(); how != skopts.SkShutdown_NONE {
			// SkShutdown READ/WRITE/BOTH are SHUT_RD+1, SHUT_WR+1, SHUT_RDWR+1.
			if err := unix.Shutdown(c, int(how)-1); err != nil && err != unix.ENOTCONN {
				return fmt.Errorf("socket:[%d]: shutdown(%v): %w", ino(e), how, err)
			}
		}
		if err := setOpts(c, e.GetOpts(), true); err != nil {
			return fmt.Errorf("socket:[%d]: %w", ino(e), err)
		}
		if isPath(e.GetName()) {
			p := absPath(e)
			if fp := e.GetFilePerms(); fp != nil {
				if err := os.Lchown(p, int(fp.GetUid()), int(fp.GetGid())); err != nil {
					return fmt.Errorf("socket:[%d]: %w", ino(e), err)
				}
				if err := unix.Fchmodat(unix.AT_FDCWD, p, fp.GetMode(), 0); err != nil {
					return fmt.Errorf("socket:[%d]: chmod %s: %w", ino(e), p, err)
				}
			}
			if e.GetDeleted() {
				b.unlink = append(b.unlink, p)
			}
			if m, ok := b.moved[ino(e)]; ok {
				// Renamed since it was bound: the file goes where it was
				// found at the dump, once every connection to it is made.
				moves = append(moves, [2]string{p, m})
			}
		}
	}
	for _, mv := range moves {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return fmt.Errorf("move the bound file where it was renamed: %w", err)
		}
		if u, ok := b.r.(Undoer); ok {
			to := mv[1]
			u.OnUndo("unlink "+to, func() error {
				if err := os.Remove(to); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				return nil
			})
		}
	}
	for _, p := range b.unlink {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unlink %s: %w", p, err)
		}
	}
	return nil
}

// sorted lists the entries in file id order.
func (b *builder) sorted() []*skunix.UnixSkEntry { return b.list }

// clearStale removes the file a dumped socket left at p when nothing
// listens there any more; another file there is an error.
func clearStale(p string, typ int) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bound path %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("bound path %s exists and is not a socket", p)
	}
	s, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	err = unix.Connect(s, &unix.SockaddrUnix{Name: p})
	unix.Close(s)
	if err == nil || err == unix.EAGAIN || err == unix.EPROTOTYPE {
		return fmt.Errorf("bound path %s: a live socket is bound there", p)
	}
	if err != unix.ECONNREFUSED {
		return fmt.Errorf("bound path %s: %w", p, err)
	}
	return os.Remove(p)
}

// stash moves a new fd of home above every dumped fd number.
func (b *builder) stash(fd uint64) (int, error) {
	moved, err := b.r.Syscall(x86.SysFcntl, fd, unix.F_DUPFD, uint64(b.r.MaxFd()+1))
	if err != nil {
		return 0, fmt.Errorf("set a socket aside: %w", err)
	}
	if _, err := b.r.Syscall(x86.SysClose, fd); err != nil {
		return 0, err
	}
	return int(moved), nil
}

// socket makes e's socket (unbound, unconnected) in home.
func (b *builder) socket(e *skunix.UnixSkEntry) (int, error) {
	n, err := b.newSocket(e)
	if err == nil {
		b.fd[ino(e)] = n
	}
	return n, err
}

// newSocket makes a socket of e's type in home, set aside.
func (b *builder) newSocket(e *skunix.UnixSkEntry) (int, error) {
	fd, err := b.r.Syscall(x86.SysSocket, unix.AF_UNIX, uint64(e.GetType())|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, fmt.Errorf("socket:[%d]: socket: %w", ino(e), err)
	}
	return b.stash(fd)
}

// pair makes e and peer as a socketpair; with peer nil, the other end is
// an orphan, closed later.
func (b *builder) pair(e, peer *skunix.UnixSkEntry) error {
	p, err := b.r.Put(make([]byte, 8))
	if err != nil {
		return err
	}
	if _, err := b.r.Syscall(x86.SysSocketpair, unix.AF_UNIX, uint64(e.GetType())|unix.SOCK_NONBLOCK, 0, p); err != nil {
		return fmt.Errorf("socket:[%d]: socketpair: %w", ino(e), err)
	}
	raw, err := b.r.ReadMem(p, 8)
	if err != nil {
		return err
	}
	if len(raw) < 8 {
		return fmt.Errorf("socket:[%d]: socketpair: read %d bytes of its fds", ino(e), len(raw))
	}
	a, err := b.stash(uint64(le32(raw)))
	if err != nil {
		return err
	}
	c, err := b.stash(uint64(le32(raw[4:])))
	if err != nil {
		return err
	}
	b.fd[ino(e)] = a
	if peer != nil {
		b.fd[ino(peer)] = c
	} else {
		b.orphan[ino(e)] = c
	}
	return nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// sockaddr is a sockaddr_un for name (its length is what binds and
// connects pass: the bytes of the name, NUL included for a path).
func sockaddr(name []byte) []byte {
	return append([]byte{unix.AF_UNIX, 0}, name...)
}

// bind binds fd to e's name, from the directory a relative name was
// bound in; a file made there is removed if the restore fails.
func (b *builder) bind(fd int, e *skunix.UnixSkEntry) error {
	name := e.GetName()
	if isPath(name) {
		// The file the dumped socket left there, if nothing listens on it.
		if err := clearStale(absPath(e), int(e.GetType())); err != nil {
			return fmt.Errorf("socket:[%d]: %w", ino(e), err)
		}
	}
	rel := isPath(name) && !filepath.IsAbs(nameString(name))
	if rel {
		if e.GetNameDir() == "" {
			return fmt.Errorf("socket:[%d]: relative name %s without its directory", ino(e), nameString(name))
		}
		if err := b.chdir(e.GetNameDir()); err != nil {
			return fmt.Errorf("socket:[%d]: %w", ino(e), err)
		}
	}
	sa := sockaddr(name)
	p, err := b.r.Put(sa)
	if err != nil {
		return err
	}
	_, err = b.r.Syscall(x86.SysBind, uint64(fd), p, uint64(len(sa)))
	if rel {
		if cerr := b.chdir("/"); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("socket:[%d]: bind %s: %w", ino(e), nameString(name), err)
	}
	if isPath(name) {
		if u, ok := b.r.(Undoer); ok {
			path := absPath(e)
			u.OnUndo("unlink "+path, func() error {
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				return nil
			})
		}
	}
	return nil
}

// chdir changes home's working directory (set for good later, with the
// rest of its fs).
func (b *builder) chdir(dir string) error {
	p, err := b.r.PutString(dir)
	if err != nil {
		return err
	}
	if _, err := b.r.Syscall(x86.SysChdir, p); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	return nil
}

// connect connects fd to the socket of entry to, by its name (a path as
// an absolute one).
func (b *builder) connect(fd int, to *skunix.UnixSkEntry) error {
	name := to.GetName()
	if isPath(name) {
		name = append([]byte(absPath(to)), 0)
	}
	if len(name) == 0 {
		return fmt.Errorf("socket:[%d] has no name to connect to", ino(to))
	}
	sa := sockaddr(name)
	p, err := b.r.Put(sa)
	if err != nil {
		return err
	}
	if _, err := b.r.Syscall(x86.SysConnect, uint64(fd), p, uint64(len(sa))); err != nil {
		return fmt.Errorf("connect to %s: %w", nameString(name), err)
	}
	return nil
}

// accepted makes a connection whose ends have names: the end whose name
// a listener of the dump has is accepted from that listener (or from a
// temporary one bound to its name), so that it gets that name back; the
// other connects from its own name, if any.
func (b *builder) accepted(e, peer *skunix.UnixSkEntry) error {
	acc, cli := e, peer
	if b.listenerNamed(peer.GetName(), peer.GetType()) != nil || len(e.GetName()) == 0 {
		acc, cli = peer, e
	}
	cfd, err := b.socket(cli)
	if err != nil {
		return err
	}
	if len(cli.GetName()) > 0 {
		if err := b.bind(cfd, cli); err != nil {
			return err
		}
	}
	l := b.listenerNamed(acc.GetName(), acc.GetType())
	var lfd int
	if l != nil {
		lfd = b.fd[ino(l)]
	} else {
		// The listener is gone: a temporary one, bound to the accepting
		// end's name, accepts the connection and goes.
		tmp := &skunix.UnixSkEntry{Ino: acc.Ino, Type: acc.Type, Name: acc.GetName(), NameDir: acc.NameDir}
		if lfd, err = b.newSocket(tmp); err != nil {
			return err
		}
		if err := b.bind(lfd, tmp); err != nil {
			return err
		}
		if _, err := b.r.Syscall(x86.SysListen, uint64(lfd), 1); err != nil {
			return fmt.Errorf("socket:[%d]: listen: %w", ino(acc), err)
		}
		l = tmp
		defer func() {
			_, _ = b.r.Syscall(x86.SysClose, uint64(lfd))
			if isPath(tmp.GetName()) {
				b.unlink = append(b.unlink, absPath(tmp))
			}
		}()
	}
	if err := b.connect(cfd, l); err != nil {
		return fmt.Errorf("socket:[%d]: connect: %w", ino(cli), err)
	}
	afd, err := b.r.Syscall(x86.SysAccept4, uint64(lfd), 0, 0, unix.SOCK_NONBLOCK)
	if err != nil {
		return fmt.Errorf("socket:[%d]: accept: %w", ino(acc), err)
	}
	n, err := b.stash(afd)
	if err != nil {
		return err
	}
	b.fd[ino(acc)] = n
	return nil
}

// listenerNamed finds the dump's listener of type typ bound to name.
func (b *builder) listenerNamed(name []byte, typ uint32) *skunix.UnixSkEntry {
	if len(name) == 0 {
		return nil
	}
	for _, e := range b.sorted() {
		if e.GetState() == uapi.TCP_LISTEN && e.GetType() == typ && bytes.Equal(e.GetName(), name) {
			return e
		}
	}
	return nil
}

// setOpts sets the dumped options on a socket where they differ from
// what it has; late are those set after the queues are refilled
// (SO_PASSCRED would have a sender bind itself automatically).
func setOpts(fd int, o *skopts.SkOptsEntry, late bool) error {
	if o == nil {
		return nil
	}
	setb := func(opt int, want bool) error {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
		if err != nil || (v != 0) == want {
			return err
		}
		w := 0
		if want {
			w = 1
		}
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, w)
	}
	if late {
		if err := setb(unix.SO_PASSCRED, o.GetSoPasscred()); err != nil {
			return fmt.Errorf("SO_PASSCRED: %w", err)
		}
		if err := setb(unix.SO_PASSSEC, o.GetSoPasssec()); err != nil {
			return fmt.Errorf("SO_PASSSEC: %w", err)
		}
		return nil
	}
	for _, bf := range []struct {
		get, force int
		want       uint32
	}{{unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, o.GetSoSndbuf()}, {unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, o.GetSoRcvbuf()}} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, bf.get)
		if err != nil {
			return err
		}
		if uint32(v) != bf.want {
			// The kernel doubles what it is given (socket(7)).
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, bf.force, int(bf.want/2)); err != nil {
				return fmt.Errorf("buffer size %d: %w", bf.want, err)
			}
		}
	}
	for _, tm := range []struct {
		opt       int
		sec, usec uint64
	}{{unix.SO_SNDTIMEO, o.GetSoSndTmoSec(), o.GetSoSndTmoUsec()}, {unix.SO_RCVTIMEO, o.GetSoRcvTmoSec(), o.GetSoRcvTmoUsec()}} {
		if tm.sec == 0 && tm.usec == 0 {
			continue
		}
		tv := unix.Timeval{Sec: int64(tm.sec), Usec: int64(tm.usec)}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, tm.opt, &tv); err != nil {
			return fmt.Errorf("timeout %d: %w", tm.opt, err)
		}
	}
	return nil
}

// rightsFunc gives the control message (SCM_RIGHTS) that message i of a
// queue carries, nil for none, and a func that closes ckpt's copies of
// its files once it is sent.
type rightsFunc func(i int) (oob []byte, done func(), err error)

// rightsFor returns the rightsFunc of e's queue: the files in flight of
// each message are opened in home (in its mount namespace and with its
// credentials, as the task would) and taken by ckpt, which sends them.
func (b *builder) rightsFor(e *skunix.UnixSkEntry) rightsFunc {
	scm := b.scm[ino(e)]
	return func(i int) ([]byte, func(), error) {
		if i >= len(scm) || len(scm[i]) == 0 {
			return nil, func() {}, nil
		}
		var fds []int
		done := func() {
			for _, x := range fds {
				unix.Close(x)
			}
		}
		for _, id := range scm[i] {
			x, err := b.openInFlight(id, e)
			if err != nil {
				done()
				return nil, nil, err
			}
			fds = append(fds, x)
		}
		return unix.UnixRights(fds...), done, nil
	}
}

// openInFlight opens file id of the dump, a file in flight on e's queue,
// in home and returns ckpt's copy of it. Home's fd of a regular file is
// closed; a pipe end is made by the pipe kind at a number of home above
// the dumped fds, kept until every process has its files (another
// process may open the pipe through it).
func (b *builder) openInFlight(id uint32, e *skunix.UnixSkEntry) (int, error) {
	f := b.r.Dump().Files[id]
	if usk := f.GetUsk(); usk != nil {
		// A socket of the dump, made with the others: ckpt sends its copy.
		c, ok := b.copies[usk.GetIno()]
		if !ok {
			return -1, fmt.Errorf("socket:[%d] in flight was not made", usk.GetIno())
		}
		// No fd's Open sets its status flags (the sockets are made
		// non-blocking): set here, on the open file it shares.
		if _, err := unix.FcntlInt(uintptr(c), unix.F_SETFL, int(usk.GetFlags()&^unix.O_ACCMODE)); err != nil {
			return -1, fmt.Errorf("socket:[%d] in flight: fcntl(F_SETFL): %w", usk.GetIno(), err)
		}
		return unix.FcntlInt(uintptr(c), unix.F_DUPFD_CLOEXEC, 0)
	}
	if pe := f.GetPipe(); pe != nil {
		if b.pipes == nil {
			return -1, fmt.Errorf("pipe:[%d] in flight: no pipe kind to make it", pe.GetPipeId())
		}
		// A free number above the dumped fds: what F_DUPFD gives.
		slot, err := b.r.Syscall(x86.SysFcntl, uint64(b.fd[ino(e)]), unix.F_DUPFD, uint64(b.r.MaxFd()+1))
		if err != nil {
			return -1, fmt.Errorf("pipe:[%d] in flight: a free fd: %w", pe.GetPipeId(), err)
		}
		b.keep = append(b.keep, int(slot))
		if err := b.pipes.open(b.r, int(slot), pe, true); err != nil {
			return -1, fmt.Errorf("pipe:[%d] in flight: %w", pe.GetPipeId(), err)
		}
		c, err := unix.PidfdGetfd(b.pidfd, int(slot), 0)
		if err != nil {
			return -1, fmt.Errorf("pipe:[%d] in flight: pidfd_getfd: %w", pe.GetPipeId(), err)
		}
		return c, nil
	}
	reg := f.GetReg()
	if reg == nil {
		return -1, fmt.Errorf("file %d in flight: files.img has no regular file or pipe with that id", id)
	}
	p, err := b.r.PutString(reg.GetName())
	if err != nil {
		return -1, err
	}
	flags := uint64(reg.GetFlags()) &^ (unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_CLOEXEC)
	var got uint64
	if b.r.Compat() {
		got, err = b.r.Syscall32(x86.SysOpenat, atFdcwd, p, flags, 0)
	} else {
		got, err = b.r.Syscall(x86.SysOpenat, atFdcwd, p, flags, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("file in flight %s: open: %w", reg.GetName(), err)
	}
	c, err := unix.PidfdGetfd(b.pidfd, int(got), 0)
	if _, cerr := b.r.Syscall(x86.SysClose, got); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return -1, fmt.Errorf("file in flight %s: pidfd_getfd: %w", reg.GetName(), err)
	}
	if pos := reg.GetPos(); pos != 0 {
		if _, err := unix.Seek(c, int64(pos), io.SeekStart); err != nil {
			unix.Close(c)
			return -1, fmt.Errorf("file in flight %s: lseek to %d: %w", reg.GetName(), pos, err)
		}
	}
	return c, nil
}

// sendNamed refills the queue of a named datagram socket: each datagram
// sent to its name from a socket of ckpt's.
func sendNamed(e *skunix.UnixSkEntry, q [][]byte, rights rightsFunc) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	// Every datagram stays charged to the sender until it is read: room
	// for all of them, with the kernel's per-buffer overhead.
	size := 64 << 10
	for _, m := range q {
		size += len(m) + 2048
	}
	_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
	var to unix.SockaddrUnix
	if isPath(e.GetName()) {
		to.Name = absPath(e)
	} else {
		to.Name = "@" + string(e.GetName()[1:])
	}
	for i, m := range q {
		oob, done, err := rights(i)
		if err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
		}
		err = unix.Sendmsg(s, m, oob, &to, unix.MSG_DONTWAIT)
		done()
		if err != nil {
			return err
		}
	}
	return nil
}

// sendAll sends m on fd: a stream may take it in parts, a record whole.
func sendAll(fd int, m []byte, stream bool) error { return sendWith(fd, m, nil, stream) }

// sendWith is sendAll with control message oob (files in flight) on the
// first part.
func sendWith(fd int, m, oob []byte, stream bool) error {
	for {
		n, err := unix.SendmsgN(fd, m, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if !stream || n == len(m) {
			return nil
		}
		m, oob = m[n:], nil
	}
}
