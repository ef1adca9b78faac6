//go:build linux && amd64

// Package sockdiag asks the kernel about sockets through sock_diag
// (NETLINK_SOCK_DIAG, Documentation/networking and
// include/uapi/linux/*_diag.h): a unix socket's type, state, name, peer,
// pending connections, queue lengths and shutdown state, and the kind and
// state of inet, netlink and packet sockets, by inode, without touching
// the task that holds them.
//
// The requests and the attribute walk are written here rather than taken
// from github.com/vishvananda/netlink: its unix socket dump does not ask
// for UDIAG_SHOW_ICONS nor UDIAG_SHOW_VFS, which checkpointing needs, and
// what is needed is one request and a loop over attributes.
package sockdiag

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/uapi"
)

// Unix is what UNIX_DIAG says of one unix socket.
type Unix struct {
	Ino   uint32
	Type  uint8 // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
	State uint8 // TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN
	// Name is the bound address (sun_path bytes, a leading NUL for an
	// abstract name); nil when unbound.
	Name []byte
	// VFSIno and VFSDev are the inode and device of the bound file, for
	// a socket bound to a path (HasVFS).
	HasVFS         bool
	VFSIno, VFSDev uint32
	// Peer is the peer's inode (HasPeer); 0 if the peer was closed.
	HasPeer bool
	Peer    uint32
	// Icons are the inodes of a listener's connections not yet accepted,
	// in queue order.
	Icons []uint32
	// RQueue is, for a listener, the number of pending connections and
	// WQueue its backlog; for others the bytes queued to be read (the
	// first datagram's length for a datagram socket) and the bytes sent
	// and not yet freed.
	RQueue, WQueue uint32
	// Shutdown holds RCV_SHUTDOWN and SEND_SHUTDOWN.
	Shutdown uint8
}

// Abstract tells a name in the abstract namespace.
func (u *Unix) Abstract() bool { return len(u.Name) > 0 && u.Name[0] == 0 }

// unixShow is what every unix query asks for.
const unixShow = uapi.UDIAG_SHOW_NAME | uapi.UDIAG_SHOW_VFS | uapi.UDIAG_SHOW_PEER | uapi.UDIAG_SHOW_ICONS | uapi.UDIAG_SHOW_RQLEN

// UnixAll lists every unix socket of ckpt's network namespace by inode.
func UnixAll() (map[uint32]*Unix, error) {
	msgs, err := query(uapi.UnixDiagReq{States: ^uint32(0), Show: unixShow}.Bytes())
	if err != nil {
		return nil, fmt.Errorf("unix_diag: %w", err)
	}
	out := make(map[uint32]*Unix, len(msgs))
	for _, m := range msgs {
		u, err := ParseUnix(m)
		if err != nil {
			return nil, fmt.Errorf("unix_diag: %w", err)
		}
		out[u.Ino] = u
	}
	return out, nil
}

// ParseUnix parses one unix_diag_msg with its attributes (the payload of
// a netlink message).
func ParseUnix(b []byte) (*Unix, error) {
	if len(b) < uapi.SizeofUnixDiagMsg {
		return nil, fmt.Errorf("unix_diag_msg of %d bytes", len(b))
	}
	u := &Unix{Type: b[1], State: b[2], Ino: binary.LittleEndian.Uint32(b[4:])}
	err := walkAttrs(b[uapi.SizeofUnixDiagMsg:], func(typ uint16, v []byte) error {
		switch typ {
		case uapi.UNIX_DIAG_NAME:
			u.Name = append([]byte{}, v...)
		case uapi.UNIX_DIAG_VFS:
			if len(v) < 8 {
				return fmt.Errorf("UNIX_DIAG_VFS of %d bytes", len(v))
			}
			u.HasVFS, u.VFSIno, u.VFSDev = true, binary.LittleEndian.Uint32(v), binary.LittleEndian.Uint32(v[4:])
		case uapi.UNIX_DIAG_PEER:
			if len(v) < 4 {
				return fmt.Errorf("UNIX_DIAG_PEER of %d bytes", len(v))
			}
			u.HasPeer, u.Peer = true, binary.LittleEndian.Uint32(v)
		case uapi.UNIX_DIAG_ICONS:
			for i := 0; i+4 <= len(v); i += 4 {
				u.Icons = append(u.Icons, binary.LittleEndian.Uint32(v[i:]))
			}
		case uapi.UNIX_DIAG_RQLEN:
			if len(v) < 8 {
				return fmt.Errorf("UNIX_DIAG_RQLEN of %d bytes", len(v))
			}
			u.RQueue, u.WQueue = binary.LittleEndian.Uint32(v), binary.LittleEndian.Uint32(v[4:])
		case uapi.UNIX_DIAG_SHUTDOWN:
			if len(v) < 1 {
				return fmt.Errorf("UNIX_DIAG_SHUTDOWN empty")
			}
			u.Shutdown = v[0]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// walkAttrs calls fn for each netlink attribute (struct nlattr: u16 len,
// u16 type, value, padded to 4) of b.
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) >= 4 {
		l := int(binary.LittleEndian.Uint16(b))
		typ := binary.LittleEndian.Uint16(b[2:]) & 0x3fff // without NLA_F_NESTED, NLA_F_NET_BYTEORDER
		if l < 4 || l > len(b) {
			return fmt.Errorf("attribute %d of length %d in %d bytes", typ, l, len(b))
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l >= len(b) {
			break
		}
		b = b[l:]
	}
	return nil
}

// Describe names the socket with inode ino for a message: its family,
// type or protocol and state ("a TCP socket (IPv4) in state LISTEN"),
// from inet_diag, netlink_diag and packet_diag, or from the tables under
// /proc/net when the kernel has not those (a unix socket shows there).
func Describe(ino uint32) string {
	for _, fam := range []struct {
		af   uint8
		name string
	}{{unix.AF_INET, "IPv4"}, {unix.AF_INET6, "IPv6"}} {
		for _, p := range []struct {
			proto uint8
			name  string
		}{{unix.IPPROTO_TCP, "TCP"}, {unix.IPPROTO_UDP, "UDP"}, {unix.IPPROTO_UDPLITE, "UDP-Lite"}} {
			msgs, err := query(uapi.InetDiagReqV2{Family: fam.af, Protocol: p.proto, States: ^uint32(0)}.Bytes())
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if len(m) < uapi.SizeofInetDiagMsg || binary.LittleEndian.Uint32(m[uapi.InetDiagMsgInode:]) != ino {
					continue
				}
				st := m[uapi.InetDiagMsgState]
				if p.proto == unix.IPPROTO_TCP {
					return fmt.Sprintf("a TCP socket (%s) in state %s", fam.name, uapi.TCPStateName(st))
				}
				conn := "unconnected"
				if st == uapi.TCP_ESTABLISHED {
					conn = "connected"
				}
				return fmt.Sprintf("a %s socket (%s), %s", p.name, fam.name, conn)
			}
		}
	}
	if msgs, err := query(uapi.NetlinkDiagReq()); err == nil {
		for _, m := range msgs {
			if len(m) < uapi.SizeofNetlinkDiagMs || binary.LittleEndian.Uint32(m[uapi.NetlinkDiagMsgIno:]) != ino {
				continue
			}
			return fmt.Sprintf("a netlink socket (%s, %s)", netlinkProto(m[uapi.NetlinkDiagMsgProtocol]), sockType(m[uapi.NetlinkDiagMsgType]))
		}
	}
	if msgs, err := query(uapi.PacketDiagReq()); err == nil {
		for _, m := range msgs {
			if len(m) < uapi.SizeofPacketDiagMsg || binary.LittleEndian.Uint32(m[uapi.PacketDiagMsgIno:]) != ino {
				continue
			}
			return fmt.Sprintf("a packet socket (%s, protocol %#04x)", sockType(m[uapi.PacketDiagMsgType]), binary.BigEndian.Uint16(m[uapi.PacketDiagMsgNum:]))
		}
	}
	if d := procNet(ino); d != "" {
		return d
	}
	return "a socket of a family ckpt does not know (not unix, TCP, UDP, netlink or packet)"
}

// IsUnix tells, from /proc/net/unix, whether ino is a unix socket: for a
// kernel that has no UNIX_DIAG, where UnixAll fails.
func IsUnix(ino uint32) bool {
	return procNetRow("/proc/net/unix", 6, strconv.FormatUint(uint64(ino), 10)) != nil
}

// sockType names a SOCK_* type.
func sockType(t uint8) string {
	switch t {
	case unix.SOCK_STREAM:
		return "SOCK_STREAM"
	case unix.SOCK_DGRAM:
		return "SOCK_DGRAM"
	case unix.SOCK_RAW:
		return "SOCK_RAW"
	case unix.SOCK_SEQPACKET:
		return "SOCK_SEQPACKET"
	}
	return fmt.Sprintf("type %d", t)
}

// SockType names a SOCK_* type for messages.
func SockType(t uint8) string { return sockType(t) }

// netlinkProto names a NETLINK_* protocol (include/uapi/linux/netlink.h).
func netlinkProto(p uint8) string {
	names := map[uint8]string{
		unix.NETLINK_ROUTE: "NETLINK_ROUTE", unix.NETLINK_USERSOCK: "NETLINK_USERSOCK",
		unix.NETLINK_SOCK_DIAG: "NETLINK_SOCK_DIAG", unix.NETLINK_NFLOG: "NETLINK_NFLOG",
		unix.NETLINK_XFRM: "NETLINK_XFRM", unix.NETLINK_SELINUX: "NETLINK_SELINUX",
		unix.NETLINK_AUDIT: "NETLINK_AUDIT", unix.NETLINK_NETFILTER: "NETLINK_NETFILTER",
		unix.NETLINK_KOBJECT_UEVENT: "NETLINK_KOBJECT_UEVENT", unix.NETLINK_GENERIC: "NETLINK_GENERIC",
		unix.NETLINK_CONNECTOR: "NETLINK_CONNECTOR", unix.NETLINK_CRYPTO: "NETLINK_CRYPTO",
	}
	if n, ok := names[p]; ok {
		return n
	}
	return fmt.Sprintf("protocol %d", p)
}

// query sends one sock_diag dump request and returns the payload of each
// reply message.
func query(req []byte) ([][]byte, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(s)
	const seq = 1
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(req))
	binary.LittleEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(req)))
	binary.LittleEndian.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.LittleEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.LittleEndian.PutUint32(msg[8:], seq)
	msg = append(msg, req...)
	if err := unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	var out [][]byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		ms, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parse reply: %w", err)
		}
		for _, m := range ms {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.LittleEndian.Uint32(m.Data)); e != 0 {
						return nil, syscall.Errno(-e)
					}
				}
				return out, nil
			}
			out = append(out, append([]byte{}, m.Data...))
		}
	}
}
