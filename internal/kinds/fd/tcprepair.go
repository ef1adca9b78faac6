//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	tcpstream "github.com/checkpoint-restore/go-criu/v8/crit/images/tcp-stream"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/netlock"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Established TCP connections (--tcp-established), part of the inet
// kind: the dump puts the socket in repair mode (TCP_REPAIR) and reads
// its sequence numbers, window, options (MSS, window scaling, SACK,
// timestamps) and both queues without taking anything out; it stays in
// repair mode until the tree is killed, so that closing it sends nothing
// (no FIN, no reset, no TIME_WAIT holding its addresses), and leaves it
// if the dump fails or the tree goes on. The restore makes the socket in
// repair mode, gives it its sequence numbers, binds and connects it (no
// SYN in repair mode), sets its options and window, refills its queues
// and leaves repair mode once every socket of the tree exists
// (FinishTree), so that the first packet it sends finds its peer; then
// it sends what was not sent yet.
//
// A connection to a peer outside the tree is locked in the network
// (package netlock: nftables rules in the socket's network namespace
// drop its packets) before its state is read, until the restore has
// taken it out of repair mode: else the peer's next packet, finding no
// socket, would be answered with a reset.

// connKey names a connection from one end: its local and peer addresses.
func connKey(local, peer unix.Sockaddr) string {
	return sockaddrString(local) + "|" + sockaddrString(peer)
}

// noteConn records, while the tree's fds are matched, the addresses of an
// established TCP socket, so that Collect can tell a peer inside the
// tree, and the address of a UDP socket, a sender the restore can use.
func (k *inetKind) noteConn(f *File, prot int) {
	if f.Pid == 0 {
		return
	}
	c, err := fdOf(f.Pid, f.Fd)
	if err != nil {
		return
	}
	defer unix.Close(c)
	l, err1 := unix.Getsockname(c)
	if prot == unix.IPPROTO_UDP {
		if err1 == nil {
			if k.udpAddrs == nil {
				k.udpAddrs = map[string]bool{}
			}
			k.udpAddrs[sockaddrString(l)] = true
		}
		return
	}
	p, err2 := unix.Getpeername(c)
	if err1 != nil || err2 != nil {
		return
	}
	if k.conns == nil {
		k.conns = map[string]bool{}
		k.connLocks = map[string]nsConn{}
	}
	k.conns[connKey(l, p)] = true
	if lc, err := lockConn(l, p); err == nil {
		k.connLocks[connKey(l, p)] = nsConn{fmt.Sprintf("/proc/%d/ns/net", f.Pid), lc}
	}
}

// nsConn is a connection to lock in the network namespace at ns.
type nsConn struct {
	ns string
	c  netlock.Conn
}

// batchLock locks, in one nftables transaction per network namespace,
// every connection of the tree whose peer is outside it (one transaction
// each would cost a server with a thousand connections seconds), and
// registers their unlock as one undo step of the dump. A connection it
// could not lock is locked alone by collectEstablished, which names it.
func (k *inetKind) batchLock(t Task) {
	k.batched = true
	byNs := map[string][]netlock.Conn{}
	keys := map[string][]string{}
	for key, nc := range k.connLocks {
		rev := connKey(netip2sa(nc.c.Peer), netip2sa(nc.c.Local))
		if k.conns[rev] {
			continue // both ends in the tree
		}
		byNs[nc.ns] = append(byNs[nc.ns], nc.c)
		keys[nc.ns] = append(keys[nc.ns], key)
	}
	for ns, cs := range byNs {
		if err := netlock.Lock(ns, cs...); err != nil {
			continue
		}
		if k.locked == nil {
			k.locked = map[string]bool{}
		}
		for _, key := range keys[ns] {
			k.locked[key] = true
		}
		t.Undo(fmt.Sprintf("network unlock of %d connections", len(cs)), func() error { return netlock.Unlock(ns, cs...) })
	}
}

// netip2sa is the sockaddr of an address and port.
func netip2sa(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// collectEstablished takes an established connection (socket cfd of fd
// num of task t) into isk and, with --tcp-established, its stream.
func (k *inetKind) collectEstablished(t Task, cfd, num int, isk *skinet.InetSkEntry, local unix.Sockaddr, refuse func(string) error) error {
	peer, err := unix.Getpeername(cfd)
	if err != nil {
		return fmt.Errorf("getpeername: %w", err)
	}
	paddr, pport, _ := splitAddr(peer)
	isk.DstAddr, isk.DstPort = addrWords(paddr), proto.Uint32(uint32(pport))
	if !t.Opts.TcpEstablished && !t.Opts.TcpClose {
		return refuse(fmt.Sprintf("it is an established connection to %s: dump with --tcp-established to restore it, or --tcp-close to restore it closed", sockaddrString(peer)))
	}
	if !t.Opts.TcpEstablished {
		return nil // --tcp-close: restored closed
	}
	ns := fmt.Sprintf("/proc/%d/ns/net", t.Pid)
	if !k.conns[connKey(peer, local)] {
		// The peer is outside the tree: its packets are kept away until
		// the restore (netlock), so that no reset answers them.
		lc, err := lockConn(local, peer)
		if err != nil {
			return refuse(err.Error())
		}
		if !k.batched && !t.Opts.LeaveRunning && t.Undo != nil {
			k.batchLock(t)
		}
		if k.locked[connKey(local, peer)] {
			// Locked by batchLock, unlocked by its undo step.
		} else if err := netlock.Lock(ns, lc); err != nil {
			return refuse(fmt.Sprintf("it is connected to %s, outside the dumped tree, and ckpt cannot lock the connection in the network (%v): close it, or dump with --tcp-close to restore it closed", sockaddrString(peer), err))
		}
		if t.Opts.LeaveRunning || t.Undo == nil {
			defer func() { _ = netlock.Unlock(ns, lc) }()
		} else {
			t.Undo("network unlock of "+lc.String(), func() error { return netlock.Unlock(ns, lc) })
		}
	}
	st, err := repairRead(cfd)
	if err != nil {
		// Repair mode is left by repairRead on its errors.
		return fmt.Errorf("read its TCP state: %w", err)
	}
	if t.Opts.LeaveRunning || t.Undo == nil {
		if err := repairOff(cfd); err != nil {
			return err
		}
	} else {
		// Until the tree is killed; if the dump fails, the task gets its
		// socket back as it was.
		pid, fdn := t.Pid, num
		t.Undo(fmt.Sprintf("take fd %d of %d out of TCP repair mode", num, pid), func() error {
			c, err := fdOf(pid, fdn)
			if err != nil {
				return err
			}
			defer unix.Close(c)
			return repairOff(c)
		})
	}
	if t.Dump.TcpStreams == nil {
		t.Dump.TcpStreams = map[uint32]*model.TcpStream{}
	}
	t.Dump.TcpStreams[isk.GetIno()] = st
	return nil
}

// Established sockets named MPTCP. A Go 1.24+ server's listener is an
// MPTCP socket, and the connections it accepts from plain TCP clients
// carry its name (system.sockprotoname "MPTCP": accept names the new
// file after the listener's protocol, net/socket.c do_accept). What they
// are underneath (Linux 6.18, net/mptcp/subflow.c and protocol.c, and
// checked):
//   - accepted from a plain TCP client: a plain TCP socket. The listener's
//     subflow answers a SYN without MP_CAPABLE with a TCP child and drops
//     its subflow context (subflow_syn_recv_sock, "fallback"), and
//     mptcp_stream_accept hands that TCP socket over with TCP's own
//     operations (mptcp_fallback_tcp_ops): SO_PROTOCOL says TCP, recvmsg,
//     ioctl and TCP_REPAIR are TCP's, both repair queues read as for any
//     TCP socket. It is dumped and restored as a TCP connection; the
//     restored one differs only in its name (sockprotoname "TCP").
//   - an MPTCP connection (SO_PROTOCOL 262), real or fallen back to TCP
//     (an MPTCP client whose server speaks plain TCP: MPTCP_INFO then
//     fails, as the option goes to the TCP subflow): the MPTCP socket
//     keeps its own queues (mptcp_recvmsg, mptcp_ioctl) and refuses
//     TCP_REPAIR (ENOPROTOOPT, also in fallback): refused by name.

// mptcpEstablished checks that fd, an established socket named MPTCP, is
// a TCP socket an MPTCP listener accepted, or refuses it; obj names it.
func mptcpEstablished(fd int, refuse func(string) error, obj *string) error {
	p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return fmt.Errorf("SO_PROTOCOL: %w", err)
	}
	if p == unix.IPPROTO_TCP {
		return nil
	}
	if peer, err := unix.Getpeername(fd); err == nil {
		*obj += ", connected to " + sockaddrString(peer)
	}
	buf := make([]byte, 256)
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uapi.SOL_MPTCP, uapi.MPTCP_INFO, uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e == unix.EOPNOTSUPP || e == unix.ENOPROTOOPT {
		return refuse("it is an established MPTCP connection fallen back to TCP (an MPTCP client of a plain TCP server), which ckpt cannot restore (the MPTCP socket refuses TCP_REPAIR): close it before the dump, or connect with a TCP socket")
	}
	return refuse("it is an established MPTCP connection, which ckpt cannot restore (TCP_REPAIR works on TCP sockets only): close it before the dump")
}

// lockConn is the connection from local to peer for netlock.
func lockConn(local, peer unix.Sockaddr) (netlock.Conn, error) {
	ap := func(sa unix.Sockaddr) (netip.AddrPort, error) {
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
		case *unix.SockaddrInet6:
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), nil
		}
		return netip.AddrPort{}, fmt.Errorf("address %T", sa)
	}
	l, err1 := ap(local)
	p, err2 := ap(peer)
	return netlock.Conn{Local: l, Peer: p}, errors.Join(err1, err2)
}

func repairOff(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, uapi.TCP_REPAIR, uapi.TCP_REPAIR_OFF); err != nil {
		return fmt.Errorf("leave TCP repair mode: %w", err)
	}
	return nil
}

func ioctlInt(fd int, req uint) (int, error) {
	return unix.IoctlGetInt(fd, req)
}

// repairRead puts fd in repair mode and reads its connection's state and
// queues.
func repairRead(fd int) (st *model.TcpStream, err error) {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, uapi.TCP_REPAIR, uapi.TCP_REPAIR_ON); err != nil {
		return nil, fmt.Errorf("TCP_REPAIR: %w", err)
	}
	defer func() {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, uapi.TCP_REPAIR_QUEUE, uapi.TCP_NO_QUEUE)
		if err != nil {
			_ = repairOff(fd)
		}
	}()
	info := make([]byte, 256)
	il := uint32(len(info))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO, uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&il)), 0); e != 0 {
		return nil, fmt.Errorf("TCP_INFO: %w", e)
	}
	if info[0] != uapi.TCP_ESTABLISHED {
		return nil, fmt.Errorf("state %s, not ESTABLISHED", uapi.TCPStateName(info[0]))
	}
	opts := info[uapi.TcpInfoOptions]
	e := &tcpstream.TcpStreamEntry{OptMask: proto.Uint32(uint32(opts))}
	if opts&uapi.TCPI_OPT_WSCALE != 0 {
		e.SndWscale = proto.Uint32(uint32(info[uapi.TcpInfoWscale] & 0xf))
		e.RcvWscale = proto.Uint32(uint32(info[uapi.TcpInfoWscale] >> 4))
	} else {
		e.SndWscale = proto.Uint32(0)
	}
	mss, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_MAXSEG)
	if err != nil {
		return nil, fmt.Errorf("TCP_MAXSEG: %w", err)
	}
	e.MssClamp = proto.Uint32(uint32(mss))
	// Also where CRIU 3.17 reads them (tcp_stream_entry's cork and
	// nodelay; later CRIU reads inet_sk_entry's tcp_opts, which inetsk.go
	// writes).
	cork, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK)
	if err != nil {
		return nil, fmt.Errorf("TCP_CORK: %w", err)
	}
	nodelay, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil {
		return nil, fmt.Errorf("TCP_NODELAY: %w", err)
	}
	e.Cork, e.Nodelay = proto.Bool(cork != 0), proto.Bool(nodelay != 0)
	if opts&uapi.TCPI_OPT_TIMESTAMPS != 0 {
		ts, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, uapi.TCP_TIMESTAMP)
		if err != nil {
			return nil, fmt.Errorf("TCP_TIMESTAMP: %w", err)
		}
		e.Timestamp = proto.Uint32(uint32(ts))
	}
	w := make([]byte, uapi.SizeofTcpRepairWindow)
	wl := uint32(len(w))
	if _, _, en := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, uapi.TCP_REPAIR_WINDOW, uintptr(unsafe.Pointer(&w[0])), uintptr(unsafe.Pointer(&wl)), 0); en != 0 {
		return nil, fmt.Errorf("TCP_REPAIR_WINDOW: %w", en)
	}
	le := binary.LittleEndian
	e.SndWl1, e.SndWnd, e.MaxWindow = proto.Uint32(le.Uint32(w)), proto.Uint32(le.Uint32(w[4:])), proto.Uint32(le.Uint32(w[8:]))
	e.RcvWnd, e.RcvWup = proto.Uint32(le.Uint32(w[12:])), proto.Uint32(le.Uint32(w[16:]))
	inq, err1 := ioctlInt(fd, uapi.SIOCINQ)
	outq, err2 := ioctlInt(fd, uapi.SIOCOUTQ)
	unsq, err3 := ioctlInt(fd, uapi.SIOCOUTQNSD)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("queue lengths: %w", err)
	}
	if unsq > outq {
		return nil, fmt.Errorf("%d unsent bytes of %d in the send queue", unsq, outq)
	}
	st = &model.TcpStream{Entry: e}
	for _, q := range []struct {
		which int
		n     int
		seq   **uint32
		data  *[]byte
	}{{uapi.TCP_RECV_QUEUE, inq, &e.InqSeq, &st.In}, {uapi.TCP_SEND_QUEUE, outq, &e.OutqSeq, &st.Out}} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, uapi.TCP_REPAIR_QUEUE, q.which); err != nil {
			return nil, fmt.Errorf("TCP_REPAIR_QUEUE %d: %w", q.which, err)
		}
		seq, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, uapi.TCP_QUEUE_SEQ)
		if err != nil {
			return nil, fmt.Errorf("TCP_QUEUE_SEQ: %w", err)
		}
		*q.seq = proto.Uint32(uint32(seq))
		if q.n > maxQueue {
			return nil, fmt.Errorf("%d bytes queued", q.n)
		}
		if q.n == 0 {
			continue
		}
		buf := make([]byte, q.n)
		got := 0
		for got < q.n {
			n, _, err := unix.Recvfrom(fd, buf[got:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read queue %d: %w", q.which, err)
			}
			if n == 0 || got > 0 {
				// MSG_PEEK reads from the queue's start each time: one
				// read must take it whole.
				break
			}
			got += n
		}
		if got != q.n {
			return nil, fmt.Errorf("queue %d: read %d of %d bytes", q.which, got, q.n)
		}
		*q.data = buf
	}
	e.InqLen, e.OutqLen, e.UnsqLen = proto.Uint32(uint32(inq)), proto.Uint32(uint32(outq)), proto.Uint32(uint32(unsq))
	return st, nil
}

// repairConnect makes c, a new TCP socket, the connection of isk from
// local to peer in repair mode, as st says; it stays in repair mode
// (repairFinish takes it out).
func repairConnect(c int, isk *skinet.InetSkEntry, st *model.TcpStream, local, peer unix.Sockaddr) error {
	e := st.Entry
	if err := unix.SetsockoptInt(c, unix.IPPROTO_TCP, uapi.TCP_REPAIR, uapi.TCP_REPAIR_ON); err != nil {
		return fmt.Errorf("TCP_REPAIR: %w", err)
	}
	// The dumped sequence numbers are those past each queue (rcv_nxt,
	// write_seq); refilling a queue moves its number past the bytes, so
	// it starts where the queue's first byte is.
	for _, q := range []struct{ which, seq int }{{uapi.TCP_RECV_QUEUE, int(e.GetInqSeq() - e.GetInqLen())}, {uapi.TCP_SEND_QUEUE, int(e.GetOutqSeq() - e.GetOutqLen())}} {
		if err := unix.SetsockoptInt(c, unix.IPPROTO_TCP, uapi.TCP_REPAIR_QUEUE, q.which); err != nil {
			return fmt.Errorf("TCP_REPAIR_QUEUE %d: %w", q.which, err)
		}
		if err := unix.SetsockoptInt(c, unix.IPPROTO_TCP, uapi.TCP_QUEUE_SEQ, q.seq); err != nil {
			return fmt.Errorf("TCP_QUEUE_SEQ: %w", err)
		}
	}
	if err := unix.Bind(c, local); err != nil {
		return fmt.Errorf("bind %s: %w", sockaddrString(local), err)
	}
	if err := unix.Connect(c, peer); err != nil {
		return fmt.Errorf("connect to %s in repair mode: %w", sockaddrString(peer), err)
	}
	var ro []byte
	add := func(code, val uint32) {
		ro = binary.LittleEndian.AppendUint32(ro, code)
		ro = binary.LittleEndian.AppendUint32(ro, val)
	}
	mask := e.GetOptMask()
	add(uapi.TCPOPT_MSS, e.GetMssClamp())
	if mask&uapi.TCPI_OPT_WSCALE != 0 {
		add(uapi.TCPOPT_WINDOW, e.GetSndWscale()|e.GetRcvWscale()<<16)
	}
	if mask&uapi.TCPI_OPT_SACK != 0 {
		add(uapi.TCPOPT_SACK_PERM, 0)
	}
	if mask&uapi.TCPI_OPT_TIMESTAMPS != 0 {
		add(uapi.TCPOPT_TIMESTAMP, 0)
	}
	if _, _, en := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(c), unix.IPPROTO_TCP, uapi.TCP_REPAIR_OPTIONS, uintptr(unsafe.Pointer(&ro[0])), uintptr(len(ro)), 0); en != 0 {
		return fmt.Errorf("TCP_REPAIR_OPTIONS: %w", en)
	}
	if mask&uapi.TCPI_OPT_TIMESTAMPS != 0 {
		if err := unix.SetsockoptInt(c, unix.IPPROTO_TCP, uapi.TCP_TIMESTAMP, int(e.GetTimestamp())); err != nil {
			return fmt.Errorf("TCP_TIMESTAMP: %w", err)
		}
	}
	// Room for the queues (the dumped socket's buffers had grown to hold
	// them); the dumped sizes and SO_BUF_LOCK are set afterwards.
	for _, b := range []struct{ opt, n int }{{unix.SO_SNDBUFFORCE, len(st.Out)}, {unix.SO_RCVBUFFORCE, len(st.In)}} {
		if b.n == 0 {
			continue
		}
		if err := unix.SetsockoptInt(c, unix.SOL_SOCKET, b.opt, 2*b.n+(64<<10)); err != nil {
			return fmt.Errorf("buffer room for %d bytes: %w", b.n, err)
		}
	}
	// The queues: what was received and not read, then what was sent and
	// not acknowledged (the unsent rest goes once repair mode is left).
	sent := st.Out[:len(st.Out)-int(e.GetUnsqLen())]
	for _, q := range []struct {
		which int
		data  []byte
	}{{uapi.TCP_RECV_QUEUE, st.In}, {uapi.TCP_SEND_QUEUE, sent}} {
		if len(q.data) == 0 {
			continue
		}
		if err := unix.SetsockoptInt(c, unix.IPPROTO_TCP, uapi.TCP_REPAIR_QUEUE, q.which); err != nil {
			return fmt.Errorf("TCP_REPAIR_QUEUE %d: %w", q.which, err)
		}
		if err := sendAll(c, q.data, true); err != nil {
			return fmt.Errorf("refill queue %d with %d bytes: %w", q.which, len(q.data), err)
		}
	}
	if err := unix.SetsockoptInt(c, unix.IPPROTO_TCP, uapi.TCP_REPAIR_QUEUE, uapi.TCP_NO_QUEUE); err != nil {
		return fmt.Errorf("TCP_REPAIR_QUEUE: %w", err)
	}
	if e.SndWl1 != nil {
		w := make([]byte, 0, uapi.SizeofTcpRepairWindow)
		for _, v := range []uint32{e.GetSndWl1(), e.GetSndWnd(), e.GetMaxWindow(), e.GetRcvWnd(), e.GetRcvWup()} {
			w = binary.LittleEndian.AppendUint32(w, v)
		}
		if _, _, en := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(c), unix.IPPROTO_TCP, uapi.TCP_REPAIR_WINDOW, uintptr(unsafe.Pointer(&w[0])), uintptr(len(w)), 0); en != 0 {
			return fmt.Errorf("TCP_REPAIR_WINDOW: %w", en)
		}
	}
	return nil
}

// repairFinish takes c out of repair mode and sends what was not sent.
func repairFinish(c int, st *model.TcpStream) error {
	if err := repairOff(c); err != nil {
		return err
	}
	if n := int(st.Entry.GetUnsqLen()); n > 0 {
		if err := sendAll(c, st.Out[len(st.Out)-n:], true); err != nil {
			return fmt.Errorf("send the %d bytes not sent yet: %w", n, err)
		}
	}
	return nil
}
