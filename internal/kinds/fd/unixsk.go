//go:build linux && amd64

package fd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	skopts "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-opts"
	skunix "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-unix"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
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
// as SCM_RIGHTS while peeking (UNIX_DIAG does not show queue contents)
// and refused.
//
// Restore: every unix socket of the dump is made at once, inside the
// first process that needs one ("home"), in an order that gives each its
// place: bound listeners first, then connections (socketpair for unnamed
// pairs; connect and accept for a connection whose accepting end has the
// listener's name, so that it has that name again), then pending
// connections, then the queues refilled from the peer's side, options,
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
	// diag is UNIX_DIAG's view, taken anew at the first Collect, when the
	// tree is frozen; listenerOf maps the inode of a client whose
	// connection is not accepted yet to its listener's.
	diag       map[uint32]*sockdiag.Unix
	frozen     bool
	listenerOf map[uint32]uint32
	// extAdded are the sockets outside the tree written already as the
	// peers of dumped ones (--ext-unix-sk).
	extAdded map[uint32]bool

	// home is the process where the restore made the sockets; spare is,
	// by socket inode, the fd there that holds it.
	home  Restorer
	spare map[uint32]int
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
	return true, nil
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
			return refuse(fmt.Sprintf("its connection to listener socket:[%d] of the tree is not accepted yet and holds what it sent (%d bytes of buffers): ckpt cannot read that without accepting the connection; dump once it is accepted", l, u.WQueue))
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
	if off, err := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_PEEK_OFF); err == nil && off != -1 {
		return refuse(fmt.Sprintf("its peek offset is set (SO_PEEK_OFF %d): not supported yet", off))
	}
	if u.State != uapi.TCP_LISTEN {
		msgs, err := peekQueue(cfd, u.Type, u.Shutdown&uapi.RCV_SHUTDOWN != 0)
		if errors.Is(err, errInFlight) {
			return refuse("its receive queue holds file descriptors in flight (SCM_RIGHTS): not supported yet; dump once they are received")
		}
		if err != nil {
			return fmt.Errorf("%s: read its queue: %w", obj, err)
		}
		if len(msgs) > 0 {
			if t.Dump.SkQueues == nil {
				t.Dump.SkQueues = map[uint32][][]byte{}
			}
			t.Dump.SkQueues[e.GetId()] = msgs
		}
	}
	e.Type = fdinfo.FdTypes_UNIXSK.Enum()
	e.Usk = usk
	return nil
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
	pc, err := geti(unix.SO_PASSCRED)
	if err != nil {
		return nil, err
	}
	ps, err := geti(unix.SO_PASSSEC)
	if err != nil {
		return nil, err
	}
	o.SoPasscred, o.SoPasssec = proto.Bool(pc != 0), proto.Bool(ps != 0)
	return o, nil
}

// errInFlight marks a queue that holds descriptors (SCM_RIGHTS).
var errInFlight = errors.New("descriptors in flight")

// maxQueue bounds what one socket's queue may hold at dump (the kernel's
// own limits keep it far below).
const maxQueue = 64 << 20

// peekQueue reads every message queued to be read on fd without taking
// any out: MSG_PEEK from a peek offset that starts at 0 and moves past
// each message read (SO_PEEK_OFF), put back to -1 afterwards. A datagram
// or seqpacket record comes whole, a stream in chunks. Descriptors in
// flight show as SCM_RIGHTS: the copies that peeking installs in ckpt are
// closed and errInFlight returned.
func peekQueue(fd int, typ uint8, rcvShut bool) ([][]byte, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
		return nil, fmt.Errorf("SO_PEEK_OFF: %w", err)
	}
	defer unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, -1)
	buf := make([]byte, 1<<16)
	oob := make([]byte, 4096)
	var out [][]byte
	total := 0
	for {
		flags := unix.MSG_PEEK | unix.MSG_DONTWAIT | unix.MSG_CMSG_CLOEXEC
		if typ != unix.SOCK_STREAM {
			flags |= unix.MSG_TRUNC // the whole length of a longer record
		}
		n, oobn, rflags, _, err := unix.Recvmsg(fd, buf, oob, flags)
		if err == unix.EAGAIN {
			return out, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if oobn > 0 {
			cms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, fmt.Errorf("control message: %w", err)
			}
			rights := false
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_RIGHTS {
					rights = true
					if fds, err := unix.ParseUnixRights(&cm); err == nil {
						for _, x := range fds {
							unix.Close(x)
						}
					}
				}
			}
			if rights {
				return nil, errInFlight
			}
		}
		if rflags&unix.MSG_CTRUNC != 0 {
			return nil, errInFlight
		}
		if n > len(buf) {
			// A record longer than the buffer: start again with one that fits.
			buf = make([]byte, n)
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
				return nil, err
			}
			out, total = nil, 0
			continue
		}
		if n == 0 && (typ == unix.SOCK_STREAM || rcvShut) {
			return out, nil // end of the stream, or of a shut-down queue
		}
		out = append(out, append([]byte{}, buf[:n]...))
		if total += n; total > maxQueue || len(out) > 1<<20 {
			return nil, fmt.Errorf("more than %d bytes queued", maxQueue)
		}
	}
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
	var tmp uint64
	if r.Pid() == k.home.Pid() {
		got, err := r.Syscall(x86.SysFcntl, uint64(spare), unix.F_DUPFD, uint64(r.MaxFd()+1))
		if err != nil {
			return fmt.Errorf("dup: %w", err)
		}
		tmp = got
	} else {
		vpid, err := innerPid(k.home.Pid())
		if err != nil {
			return err
		}
		pfd, err := r.Syscall(x86.SysPidfdOpen, uint64(vpid), 0)
		if err != nil {
			return fmt.Errorf("pidfd_open(%d): %w", vpid, err)
		}
		got, err := r.Syscall(x86.SysPidfdGetfd, pfd, uint64(spare), 0)
		if _, cerr := r.Syscall(x86.SysClose, pfd); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("pidfd_getfd from %d: %w", vpid, err)
		}
		tmp = got
	}
	if err := r.Place(int(tmp), num, cloexec); err != nil {
		return err
	}
	fdFlags := uint64(0)
	if cloexec {
		fdFlags = unix.FD_CLOEXEC
	}
	if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFD, fdFlags); err != nil {
		return fmt.Errorf("fcntl(F_SETFD): %w", err)
	}
	return nil
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
	k.home, k.spare = nil, nil
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
	b := &builder{r: r, ents: map[uint32]*skunix.UnixSkEntry{}, fd: map[uint32]int{}, copies: map[uint32]int{}}
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
	for id, q := range d.SkQueues {
		if ino, ok := byID[id]; ok {
			b.queues[ino] = q
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
		return err
	}
	k.home, k.spare = r, b.fd
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
		if err := sendNamed(e, q); err != nil {
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
		for _, m := range q {
			if err := sendAll(from, m, e.GetType() == unix.SOCK_STREAM); err != nil {
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

// sendNamed refills the queue of a named datagram socket: each datagram
// sent to its name from a socket of ckpt's.
func sendNamed(e *skunix.UnixSkEntry, q [][]byte) error {
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
	for _, m := range q {
		if err := unix.Sendmsg(s, m, nil, &to, unix.MSG_DONTWAIT); err != nil {
			return err
		}
	}
	return nil
}

// sendAll sends m on fd: a stream may take it in parts, a record whole.
func sendAll(fd int, m []byte, stream bool) error {
	for {
		n, err := unix.SendmsgN(fd, m, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if !stream || n == len(m) {
			return nil
		}
		m = m[n:]
	}
}
