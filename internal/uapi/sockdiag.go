//go:build linux && amd64

package uapi

import "encoding/binary"

// sock_diag requests and replies (include/uapi/linux/sock_diag.h,
// unix_diag.h, inet_diag.h, netlink_diag.h, packet_diag.h). Every request
// goes to a NETLINK_SOCK_DIAG socket with nlmsg_type SOCK_DIAG_BY_FAMILY
// (unix.SOCK_DIAG_BY_FAMILY) and NLM_F_DUMP.

// unix_diag_req.udiag_show bits (include/uapi/linux/unix_diag.h).
const (
	UDIAG_SHOW_NAME     = 0x01 // the bound name (not the path)
	UDIAG_SHOW_VFS      = 0x02 // the inode of the bound file
	UDIAG_SHOW_PEER     = 0x04 // the peer's inode
	UDIAG_SHOW_ICONS    = 0x08 // pending connections of a listener
	UDIAG_SHOW_RQLEN    = 0x10 // receive and send queue lengths
	UDIAG_SHOW_MEMINFO  = 0x20
	UDIAG_SHOW_UID      = 0x40
	SizeofUnixDiagReq   = 24
	SizeofUnixDiagMsg   = 16
	SizeofInetDiagReqV2 = 56
	SizeofInetDiagMsg   = 72
	SizeofNetlinkDiagRq = 20
	SizeofNetlinkDiagMs = 28
	SizeofPacketDiagReq = 20
	SizeofPacketDiagMsg = 16
)

// unix_diag_msg attribute types (include/uapi/linux/unix_diag.h).
const (
	UNIX_DIAG_NAME     = 0
	UNIX_DIAG_VFS      = 1 // struct unix_diag_vfs {u32 ino, dev}
	UNIX_DIAG_PEER     = 2 // u32 inode
	UNIX_DIAG_ICONS    = 3 // u32 inodes
	UNIX_DIAG_RQLEN    = 4 // struct unix_diag_rqlen {u32 rqueue, wqueue}
	UNIX_DIAG_MEMINFO  = 5
	UNIX_DIAG_SHUTDOWN = 6 // u8, the sk_shutdown bits
	UNIX_DIAG_UID      = 7
)

// sk_shutdown bits (include/net/sock.h), as UNIX_DIAG_SHUTDOWN gives them.
const (
	RCV_SHUTDOWN  = 1
	SEND_SHUTDOWN = 2
)

// TCP states (include/net/tcp_states.h); unix and other sockets use
// TCP_ESTABLISHED, TCP_CLOSE and TCP_LISTEN of them.
const (
	TCP_ESTABLISHED = 1
	TCP_SYN_SENT    = 2
	TCP_SYN_RECV    = 3
	TCP_FIN_WAIT1   = 4
	TCP_FIN_WAIT2   = 5
	TCP_TIME_WAIT   = 6
	TCP_CLOSE       = 7
	TCP_CLOSE_WAIT  = 8
	TCP_LAST_ACK    = 9
	TCP_LISTEN      = 10
	TCP_CLOSING     = 11
	TCP_NEW_SYN_REC = 12
)

// TCPStateName names a TCP state as the kernel's tcp_states.h does,
// without the TCP_ prefix.
func TCPStateName(s uint8) string {
	names := [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}
	if int(s) < len(names) && s != 0 {
		return names[s]
	}
	return "unknown state " + itoa(int(s))
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// UnixDiagReq is struct unix_diag_req (include/uapi/linux/unix_diag.h).
type UnixDiagReq struct {
	States uint32 // bit per state; ^0 for all
	Ino    uint32 // 0 with NLM_F_DUMP
	Show   uint32 // UDIAG_SHOW_*
}

// Bytes returns the request as the kernel reads it: sdiag_family AF_UNIX,
// sdiag_protocol 0, the cookie ~0 (no cookie).
func (r UnixDiagReq) Bytes() []byte {
	b := make([]byte, SizeofUnixDiagReq)
	b[0] = 1 // AF_UNIX
	binary.LittleEndian.PutUint32(b[4:], r.States)
	binary.LittleEndian.PutUint32(b[8:], r.Ino)
	binary.LittleEndian.PutUint32(b[12:], r.Show)
	binary.LittleEndian.PutUint32(b[16:], ^uint32(0))
	binary.LittleEndian.PutUint32(b[20:], ^uint32(0))
	return b
}

// InetDiagReqV2 is struct inet_diag_req_v2 (include/uapi/linux/inet_diag.h)
// for a dump of every socket of a family and protocol.
type InetDiagReqV2 struct {
	Family   uint8 // AF_INET, AF_INET6
	Protocol uint8 // IPPROTO_TCP, IPPROTO_UDP, ...
	States   uint32
}

// Bytes returns the request; the inet_diag_sockid (ports, addresses,
// interface, cookie) stays zero for a dump.
func (r InetDiagReqV2) Bytes() []byte {
	b := make([]byte, SizeofInetDiagReqV2)
	b[0], b[1] = r.Family, r.Protocol
	binary.LittleEndian.PutUint32(b[4:], r.States)
	return b
}

// Offsets in struct inet_diag_msg: family, state, then idiag_inode at 68.
const (
	InetDiagMsgFamily = 0
	InetDiagMsgState  = 1
	InetDiagMsgInode  = 68
)

// NetlinkDiagReq is struct netlink_diag_req
// (include/uapi/linux/netlink_diag.h): sdiag_protocol NDIAG_PROTO_ALL
// (255) dumps every protocol.
func NetlinkDiagReq() []byte {
	b := make([]byte, SizeofNetlinkDiagRq)
	b[0], b[1] = 16, 255 // AF_NETLINK, NDIAG_PROTO_ALL
	binary.LittleEndian.PutUint32(b[12:], ^uint32(0))
	binary.LittleEndian.PutUint32(b[16:], ^uint32(0))
	return b
}

// Offsets in struct netlink_diag_msg: ndiag_type 1, ndiag_protocol 2,
// ndiag_ino 16.
const (
	NetlinkDiagMsgType     = 1
	NetlinkDiagMsgProtocol = 2
	NetlinkDiagMsgIno      = 16
)

// PacketDiagReq is struct packet_diag_req
// (include/uapi/linux/packet_diag.h) for every packet socket.
func PacketDiagReq() []byte {
	b := make([]byte, SizeofPacketDiagReq)
	b[0] = 17 // AF_PACKET
	binary.LittleEndian.PutUint32(b[12:], ^uint32(0))
	binary.LittleEndian.PutUint32(b[16:], ^uint32(0))
	return b
}

// Offsets in struct packet_diag_msg: pdiag_type 1, pdiag_num (protocol,
// big endian) 2, pdiag_ino 4.
const (
	PacketDiagMsgType = 1
	PacketDiagMsgNum  = 2
	PacketDiagMsgIno  = 4
)

// SIOCUNIXFILE opens, as an O_PATH file, the file a unix socket is bound
// to (include/uapi/linux/un.h: SIOCPROTOPRIVATE + 0; Linux 6.0+). Its
// /proc/self/fd link is the file's path now, after renames, or ends in
// " (deleted)".
const SIOCUNIXFILE = 0x89E0
