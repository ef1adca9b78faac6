//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	sknetlink "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// netlinkKind is a netlink socket (NETLINK_ROUTE and the others), such as
// programs keep open to watch routes and links: its protocol, port id,
// multicast groups and the port or group it is connected to.
//
// Dump: through a copy of the fd (pidfd_getfd): SO_TYPE (SOCK_RAW or
// SOCK_DGRAM, kept in a field of ckpt's: model.NetlinkType) and SO_PROTOCOL,
// getsockname (the port id), NETLINK_LIST_MEMBERSHIPS (every group, not
// only the first 32 that nl_groups shows), getpeername. A socket with
// messages waiting to be read is refused by name: the kernel's answers
// and notifications cannot be queued again.
//
// Restore: made inside the first process that holds it, bound to the
// dumped port id (if another socket took that id meanwhile, the kernel
// picks one, as for a socket bound without one: a program that compares
// the id with its own bookkeeping may notice), joined to each group and
// connected as it was.
type netlinkKind struct {
	made madeSockets
}

func (*netlinkKind) Name() string { return "netlink socket" }

func (*netlinkKind) Match(f *File, o Options) (bool, error) {
	return isSocket(f) && sockProtoName(f) == "NETLINK", nil
}

func (k *netlinkKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	obj := fmt.Sprintf("fd %d, a netlink socket", f.Fd)
	cfd, err := unix.PidfdGetfd(t.Pidfd, f.Fd, 0)
	if err != nil {
		return fmt.Errorf("%s: pidfd_getfd: %w", obj, err)
	}
	defer unix.Close(cfd)
	prot, err1 := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	typ, err2 := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	obj = fmt.Sprintf("fd %d, a netlink socket (%s, %s)", f.Fd, netlinkProtoName(prot), uapiSockType(typ))
	sa, err := unix.Getsockname(cfd)
	if err != nil {
		return fmt.Errorf("%s: getsockname: %w", obj, err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return fmt.Errorf("%s: getsockname gives %T", obj, sa)
	}
	groups, err := nlGroups(cfd)
	if err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	nsk := &sknetlink.NetlinkSkEntry{
		Id: e.Id, Ino: proto.Uint32(uint32(f.Stat.Ino)), Protocol: proto.Uint32(uint32(prot)), State: proto.Uint32(uapi.TCP_CLOSE),
		Flags: proto.Uint32(flags), Portid: proto.Uint32(nl.Pid), Groups: groups, DstPortid: proto.Uint32(0), DstGroup: proto.Uint32(0),
		Fown: noOwner(),
	}
	// SOCK_DGRAM or SOCK_RAW (the two netlink_create takes): CRIU's
	// entry has no field for it, ckpt's own does.
	model.SetNetlinkType(nsk, typ)
	if p, err := unix.Getpeername(cfd); err == nil {
		if pn, ok := p.(*unix.SockaddrNetlink); ok && (pn.Pid != 0 || pn.Groups != 0) {
			nsk.State = proto.Uint32(uapi.TCP_ESTABLISHED)
			nsk.DstPortid, nsk.DstGroup = proto.Uint32(pn.Pid), proto.Uint32(pn.Groups)
		}
	}
	buf := make([]byte, 1)
	if n, _, err := unix.Recvfrom(cfd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC); err == nil {
		return ckerr.Unsupported(t.Pid, obj, fmt.Sprintf("a message of %d bytes waits to be read in it: netlink answers and notifications cannot be queued again; dump once it is read", n))
	}
	if nsk.Opts, err = sockOpts(cfd); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	e.Type = fdinfo.FdTypes_NETLINKSK.Enum()
	e.Nlsk = nsk
	return nil
}

// nlGroups reads the bitmap of the groups the socket joined
// (NETLINK_LIST_MEMBERSHIPS, include/uapi/linux/netlink.h), as 32-bit
// words, without trailing zero words.
func nlGroups(fd int) ([]uint32, error) {
	buf := make([]byte, 128)
	for {
		l := uint32(len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_NETLINK, unix.NETLINK_LIST_MEMBERSHIPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
		if errno != 0 {
			return nil, fmt.Errorf("NETLINK_LIST_MEMBERSHIPS: %w", errno)
		}
		if int(l) > len(buf) {
			buf = make([]byte, (l+3)&^3)
			continue
		}
		var w []uint32
		for i := 0; i+4 <= int(l); i += 4 {
			w = append(w, binary.LittleEndian.Uint32(buf[i:]))
		}
		for len(w) > 0 && w[len(w)-1] == 0 {
			w = w[:len(w)-1]
		}
		return w, nil
	}
}

func (k *netlinkKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	nsk := e.GetNlsk()
	if nsk == nil {
		return fmt.Errorf("fd %d: netlink socket entry %d without data", num, e.GetId())
	}
	obj := fmt.Sprintf("fd %d (netlink socket socket:[%d])", num, nsk.GetIno())
	if ok, err := k.made.take(r, e.GetId(), num, cloexec); ok || err != nil {
		if err != nil {
			return fmt.Errorf("%s: %w", obj, err)
		}
		return nil
	}
	if t := nsk.GetOpts(); t == nil {
		return fmt.Errorf("%s: no socket options in the entry", obj)
	}
	typ := model.NetlinkType(nsk)
	if typ != unix.SOCK_RAW && typ != unix.SOCK_DGRAM {
		return fmt.Errorf("%s: socket type %d: a netlink socket is SOCK_RAW or SOCK_DGRAM", obj, typ)
	}
	tmp, c, err := socketIn(r, unix.AF_NETLINK, typ, int(nsk.GetProtocol()))
	if err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	defer unix.Close(c)
	if err := setUpNetlink(c, nsk); err != nil {
		_, _ = r.Syscall(x86.SysClose, uint64(tmp))
		return fmt.Errorf("%s: %w", obj, err)
	}
	if err := r.Place(tmp, num, cloexec); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, uint64(nsk.GetFlags())&^unix.O_ACCMODE); err != nil {
		return fmt.Errorf("%s: fcntl(F_SETFL): %w", obj, err)
	}
	k.made.put(e.GetId(), r, num)
	return nil
}

// setUpNetlink binds, joins and connects a new netlink socket (ckpt's
// copy c) as nsk says.
func setUpNetlink(c int, nsk *sknetlink.NetlinkSkEntry) error {
	if err := setOpts(c, nsk.GetOpts(), false); err != nil {
		return err
	}
	if pid := nsk.GetPortid(); pid != 0 {
		err := unix.Bind(c, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: pid})
		if errors.Is(err, unix.EADDRINUSE) {
			// Taken by another socket since: the kernel picks one.
			err = unix.Bind(c, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		}
		if err != nil {
			return fmt.Errorf("bind port id %d: %w", pid, err)
		}
	}
	for i, w := range nsk.GetGroups() {
		for b := 0; b < 32; b++ {
			if w&(1<<b) == 0 {
				continue
			}
			g := i*32 + b + 1
			if err := unix.SetsockoptInt(c, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
				return fmt.Errorf("join group %d: %w", g, err)
			}
		}
	}
	if nsk.GetDstPortid() != 0 || nsk.GetDstGroup() != 0 {
		if err := unix.Connect(c, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: nsk.GetDstPortid(), Groups: nsk.GetDstGroup()}); err != nil {
			return fmt.Errorf("connect to port %d group %d: %w", nsk.GetDstPortid(), nsk.GetDstGroup(), err)
		}
	}
	return setOpts(c, nsk.GetOpts(), true)
}

// netlinkProtoName names a NETLINK_* protocol for messages.
func netlinkProtoName(p int) string {
	switch p {
	case unix.NETLINK_ROUTE:
		return "NETLINK_ROUTE"
	case unix.NETLINK_GENERIC:
		return "NETLINK_GENERIC"
	case unix.NETLINK_KOBJECT_UEVENT:
		return "NETLINK_KOBJECT_UEVENT"
	case unix.NETLINK_AUDIT:
		return "NETLINK_AUDIT"
	case unix.NETLINK_SOCK_DIAG:
		return "NETLINK_SOCK_DIAG"
	}
	return fmt.Sprintf("protocol %d", p)
}

func uapiSockType(t int) string {
	switch t {
	case unix.SOCK_RAW:
		return "SOCK_RAW"
	case unix.SOCK_DGRAM:
		return "SOCK_DGRAM"
	}
	return fmt.Sprintf("type %d", t)
}
