//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	skopts "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-opts"
	tcpstream "github.com/checkpoint-restore/go-criu/v8/crit/images/tcp-stream"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/netlock"
	"github.com/ckpt/ckpt/internal/uapi"
)

// inetKind is a TCP or UDP socket, IPv4 or IPv6: a TCP socket listening
// or only bound (or not even that), a UDP socket bound or connected, with
// the datagrams queued to be read.
//
// Dump: the kernel names a socket's protocol (sockfs's
// system.sockprotoname attribute: TCP, TCPv6, UDP, UDPv6); a copy of the
// fd taken with pidfd_getfd gives the rest in whatever network namespace
// the socket is: its addresses (getsockname, getpeername), the TCP state
// and a listener's backlog and pending connections (TCP_INFO), the socket,
// IP and TCP options, and the queued datagrams with their senders, read
// with MSG_PEEK under SO_PEEK_OFF without taking them out. A TCP socket in
// any state but LISTEN and CLOSE (an established connection, a connection
// being made or closed) and a listener with connections not accepted yet
// are refused by name.
//
// Restore: the socket is made inside the first process that holds it (in
// that process's network namespace) and set up through ckpt's copy of it:
// options, bind (with SO_REUSEADDR for TCP until it listens, so that the
// connections the dumped socket left in TIME_WAIT do not stand in the
// way), listen with the dumped backlog, connect for a UDP socket. Queued
// datagrams are sent again once every process of the tree has its files
// (FinishTree): by the tree's own socket that has the sender's address,
// else by a socket of ckpt's bound to that address. A datagram whose
// sender's address a socket outside the tree holds is refused at dump
// (checkSender); if one holds it at restore, the restore fails naming it.
type inetKind struct {
	made madeSockets
	// home is the first process where a socket was made, for temporary
	// senders; refills are the queues to send again, with ckpt's copy of
	// each receiver; udp are ckpt's copies of the tree's UDP sockets,
	// possible senders.
	home    Restorer
	refills []dgramRefill
	udp     []udpSock
	// conns are the established TCP connections of the tree, by connKey
	// (tcprepair.go); tcpClose restores them closed (--tcp-close).
	conns    map[string]bool
	tcpClose bool
	// connLocks are the same connections as locks with the network
	// namespace of their task, for one nftables transaction that locks
	// every connection to a peer outside the tree (batchLock); locked
	// are those it locked, by connKey.
	connLocks map[string]nsConn
	locked    map[string]bool
	batched   bool
	// udpAddrs are the tree's UDP sockets' addresses (sockaddrString).
	udpAddrs map[string]bool
	// mcIndex reads the UDP sockets' multicast interface index
	// (inetmcast.go).
	mcIndex mcastIndex
	// listens are the listeners to listen once every socket is bound
	// (an accepted connection shares its listener's port, which a
	// listener would refuse), repairs the connections to take out of
	// repair mode; kept are ckpt's copies to close at the end.
	listens []listenLater
	repairs []repairLater
	kept    []int
}

type listenLater struct {
	copy int
	e    *skinet.InetSkEntry
}

type repairLater struct {
	copy int
	e    *skinet.InetSkEntry
	st   *model.TcpStream
	// ns is the network namespace the socket is in, where the dump may
	// have locked the connection (netlock).
	ns          string
	local, peer unix.Sockaddr
}

type dgramRefill struct {
	copy int
	e    *skinet.InetSkEntry
	msgs [][]byte
	from [][]byte
}

type udpSock struct {
	copy int
	e    *skinet.InetSkEntry
}

func (*inetKind) Name() string { return "inet socket" }

// inetProto maps sockfs's protocol names to family and protocol.
// MPTCP sockets (Go's net.Listen makes them by default since Go 1.24)
// are taken listening or bound; the connections an MPTCP listener
// accepted from plain TCP clients are TCP sockets under its name, taken
// as TCP connections (mptcpEstablished); an MPTCP connection has no
// TCP_REPAIR.
var inetProto = map[string][2]int{
	"TCP": {unix.AF_INET, unix.IPPROTO_TCP}, "TCPv6": {unix.AF_INET6, unix.IPPROTO_TCP},
	"UDP": {unix.AF_INET, unix.IPPROTO_UDP}, "UDPv6": {unix.AF_INET6, unix.IPPROTO_UDP},
	"MPTCP": {unix.AF_INET, unix.IPPROTO_MPTCP}, "MPTCPv6": {unix.AF_INET6, unix.IPPROTO_MPTCP},
}

// streamProto tells TCP and MPTCP, which share TCP's states and its
// SOL_TCP options, from UDP.
func streamProto(prot int) bool { return prot == unix.IPPROTO_TCP || prot == unix.IPPROTO_MPTCP }

// inetProtoName names a protocol for messages.
func inetProtoName(prot int) string {
	switch prot {
	case unix.IPPROTO_TCP:
		return "TCP"
	case unix.IPPROTO_MPTCP:
		return "MPTCP"
	}
	return "UDP"
}

func (k *inetKind) Match(f *File, o Options) (bool, error) {
	if !isSocket(f) {
		return false, nil
	}
	p, ok := inetProto[sockProtoName(f)]
	if ok {
		k.noteConn(f, p[1])
	}
	return ok, nil
}

// Check takes the restore's options (--tcp-close).
func (k *inetKind) Check(fd *fdinfo.FdinfoEntry, o Options) error {
	k.tcpClose = o.TcpClose
	return nil
}

// famName names an address family for messages.
func famName(fam int) string {
	if fam == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// sockaddrString shows an address and port.
func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return "?"
}

// addrWords is an address as CRIU's inet_sk_entry keeps it: the bytes of
// in_addr or in6_addr as 32-bit words in memory order.
func addrWords(b []byte) []uint32 {
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

// wordsAddr is the sockaddr of family fam for CRIU's address words and port.
func wordsAddr(fam int, w []uint32, port uint32) (unix.Sockaddr, error) {
	b := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	switch {
	case fam == unix.AF_INET && len(b) == 4:
		a := &unix.SockaddrInet4{Port: int(port)}
		copy(a.Addr[:], b)
		return a, nil
	case fam == unix.AF_INET6 && len(b) == 16:
		a := &unix.SockaddrInet6{Port: int(port)}
		copy(a.Addr[:], b)
		return a, nil
	case len(b) == 0:
		if fam == unix.AF_INET6 {
			return &unix.SockaddrInet6{Port: int(port)}, nil
		}
		return &unix.SockaddrInet4{Port: int(port)}, nil
	}
	return nil, fmt.Errorf("address of %d bytes for family %d", len(b), fam)
}

// splitAddr gives the address bytes and port of an inet sockaddr.
func splitAddr(sa unix.Sockaddr) ([]byte, int, uint32) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Addr[:], a.Port, 0
	case *unix.SockaddrInet6:
		return a.Addr[:], a.Port, a.ZoneId
	}
	return nil, 0, 0
}

func (k *inetKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	fp := inetProto[sockProtoName(f)]
	fam, prot := fp[0], fp[1]
	article := "a"
	if prot == unix.IPPROTO_MPTCP {
		article = "an"
	}
	obj := fmt.Sprintf("fd %d, %s %s socket (%s)", f.Fd, article, inetProtoName(prot), famName(fam))
	cfd, err := unix.PidfdGetfd(t.Pidfd, f.Fd, 0)
	if err != nil {
		return fmt.Errorf("%s: pidfd_getfd: %w", obj, err)
	}
	defer unix.Close(cfd)
	typ, err := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("%s: SO_TYPE: %w", obj, err)
	}
	local, err := unix.Getsockname(cfd)
	if err != nil {
		return fmt.Errorf("%s: getsockname: %w", obj, err)
	}
	laddr, lport, zone := splitAddr(local)
	obj += " at " + sockaddrString(local)
	refuse := func(reason string) error { return ckerr.Unsupported(t.Pid, obj, reason) }
	if zone != 0 {
		return refuse(fmt.Sprintf("it is bound to a link-local address of interface %d: not supported yet", zone))
	}
	isk := &skinet.InetSkEntry{
		Id: e.Id, Ino: proto.Uint32(uint32(f.Stat.Ino)), Family: proto.Uint32(uint32(fam)), Type: proto.Uint32(uint32(typ)),
		Proto: proto.Uint32(uint32(prot)), State: proto.Uint32(uapi.TCP_CLOSE), SrcPort: proto.Uint32(uint32(lport)),
		DstPort: proto.Uint32(0), Flags: proto.Uint32(flags), Backlog: proto.Uint32(0), SrcAddr: addrWords(laddr), Fown: noOwner(),
		// CRIU requires dst_addr of the family's length, zero when
		// unconnected (criu/sk-inet.c, inet_validate_address).
		DstAddr: make([]uint32, len(laddr)/4),
	}
	var peer unix.Sockaddr
	if streamProto(prot) {
		ti, err := unix.GetsockoptTCPInfo(cfd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return fmt.Errorf("%s: TCP_INFO: %w", obj, err)
		}
		switch ti.State {
		case uapi.TCP_LISTEN:
			// For a listener tcp_get_info gives the accept queue's length
			// in tcpi_unacked and the backlog in tcpi_sacked
			// (net/ipv4/tcp.c).
			if ti.Unacked > 0 {
				return refuse(fmt.Sprintf("it listens with %d connections not accepted yet, which ckpt cannot restore yet: dump once they are accepted", ti.Unacked))
			}
			isk.Backlog = proto.Uint32(ti.Sacked)
		case uapi.TCP_CLOSE:
		case uapi.TCP_ESTABLISHED:
			if prot == unix.IPPROTO_MPTCP {
				if err := mptcpEstablished(cfd, refuse, &obj); err != nil {
					return err
				}
				// A TCP socket (mptcpEstablished): restored as one.
				prot = unix.IPPROTO_TCP
				isk.Proto = proto.Uint32(unix.IPPROTO_TCP)
			}
			if err := k.collectEstablished(t, cfd, f.Fd, isk, local, refuse); err != nil {
				return err
			}
		default:
			s := "in state " + uapi.TCPStateName(ti.State)
			if p, err := unix.Getpeername(cfd); err == nil {
				s += ", connected to " + sockaddrString(p)
			}
			return refuse(s + ": ckpt restores TCP sockets that listen or are only bound, not connections (--tcp-established is not supported yet): close the connection before the dump")
		}
		isk.State = proto.Uint32(uint32(ti.State))
	} else if p, err := unix.Getpeername(cfd); err == nil {
		peer = p
		paddr, pport, _ := splitAddr(p)
		isk.State = proto.Uint32(uapi.TCP_ESTABLISHED)
		isk.DstAddr, isk.DstPort = addrWords(paddr), proto.Uint32(uint32(pport))
	} else if !errors.Is(err, unix.ENOTCONN) {
		return fmt.Errorf("%s: getpeername: %w", obj, err)
	}
	if isk.Opts, err = inetOpts(cfd, prot); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	if isk.IpOpts, err = ipOpts(cfd, fam, prot); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	if prot == unix.IPPROTO_UDP {
		// Multicast groups and options (inetmcast.go).
		if err := k.collectMcast(cfd, fam, t.Pid, isk, refuse); errors.Is(err, ckerr.ErrUnsupported) {
			return err // names the socket already
		} else if err != nil {
			return fmt.Errorf("%s: %w", obj, err)
		}
	}
	if fam == unix.AF_INET6 {
		v6, err := unix.GetsockoptInt(cfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return fmt.Errorf("%s: IPV6_V6ONLY: %w", obj, err)
		}
		isk.V6Only = proto.Bool(v6 != 0)
	}
	if streamProto(prot) {
		nd, err1 := unix.GetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		ck, err2 := unix.GetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_CORK)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%s: TCP options: %w", obj, err)
		}
		// Options CRIU's image has no field for: refused when set, rather
		// than lost.
		for _, o := range []struct {
			opt  int
			name string
		}{{unix.TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT"}, {unix.TCP_FASTOPEN, "TCP_FASTOPEN"}, {unix.TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT"}} {
			if v, err := unix.GetsockoptInt(cfd, unix.IPPROTO_TCP, o.opt); err == nil && v != 0 {
				return refuse(fmt.Sprintf("its option %s is set (%d), which ckpt cannot restore yet", o.name, v))
			}
		}
		isk.TcpOpts = &tcpstream.TcpOptsEntry{Nodelay: proto.Bool(nd != 0), Cork: proto.Bool(ck != 0)}
		isk.TcpOpts.Keepcnt, isk.TcpOpts.Keepidle, isk.TcpOpts.Keepintvl = isk.Opts.TcpKeepcnt, isk.Opts.TcpKeepidle, isk.Opts.TcpKeepintvl
	}
	if off, err := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_PEEK_OFF); err == nil && off != -1 {
		return refuse(fmt.Sprintf("its peek offset is set (SO_PEEK_OFF %d): not supported yet", off))
	}
	if prot == unix.IPPROTO_UDP {
		msgs, from, err := peekDatagrams(cfd)
		if err != nil {
			return fmt.Errorf("%s: read its queue: %w", obj, err)
		}
		for _, a := range from {
			if s := sockaddrString(a); peer != nil && s != sockaddrString(peer) {
				return refuse(fmt.Sprintf("it is connected to %s and holds a datagram from %s, received before it connected: ckpt could not queue it again", sockaddrString(peer), s))
			}
			if err := k.checkSender(t.Pid, local, a); err != nil {
				return refuse(err.Error())
			}
		}
		if len(msgs) > 0 {
			if t.Dump.SkQueues == nil {
				t.Dump.SkQueues = map[uint32][][]byte{}
			}
			if t.Dump.SkAddrs == nil {
				t.Dump.SkAddrs = map[uint32][][]byte{}
			}
			t.Dump.SkQueues[e.GetId()] = msgs
			for _, a := range from {
				t.Dump.SkAddrs[e.GetId()] = append(t.Dump.SkAddrs[e.GetId()], rawSockaddr(a))
			}
		}
	}
	e.Type = fdinfo.FdTypes_INETSK.Enum()
	e.Isk = isk
	return nil
}

// checkSender refuses a queued datagram the restore could not send again
// from its sender's address: one whose address a socket outside the tree
// holds (found by binding a probe to it, where the task shares ckpt's
// network namespace; elsewhere the restore finds out).
func (k *inetKind) checkSender(pid int, local, from unix.Sockaddr) error {
	s := sockaddrString(from)
	_, port, _ := splitAddr(from)
	any4 := sockaddrString(&unix.SockaddrInet4{Port: port})
	any6 := sockaddrString(&unix.SockaddrInet6{Port: port})
	if s == sockaddrString(local) || k.udpAddrs[s] || k.udpAddrs[any4] || k.udpAddrs[any6] {
		return nil // sent again by the tree's socket that has it (sender)
	}
	var own, theirs unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &own) != nil || unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &theirs) != nil || own.Ino != theirs.Ino {
		return nil
	}
	fam := unix.AF_INET
	if _, ok := from.(*unix.SockaddrInet6); ok {
		fam = unix.AF_INET6
	}
	p, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(p)
	_ = unix.SetsockoptInt(p, unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	if err := unix.Bind(p, from); errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("it holds a datagram from %s, whose address a socket outside the dumped tree holds: the restore could not send it again from there; read it before the dump, or dump that socket's process with the tree", s)
	}
	return nil
}

// rawSockaddr is a sockaddr as the kernel lays it out (struct sockaddr_in,
// sockaddr_in6: family in host order, port and address in network order).
func rawSockaddr(sa unix.Sockaddr) []byte {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		b := make([]byte, 16)
		binary.LittleEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[4:], a.Addr[:])
		return b
	case *unix.SockaddrInet6:
		b := make([]byte, 28)
		binary.LittleEndian.PutUint16(b, unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[8:], a.Addr[:])
		binary.LittleEndian.PutUint32(b[24:], a.ZoneId)
		return b
	}
	return nil
}

// parseSockaddr reads what rawSockaddr wrote.
func parseSockaddr(b []byte) (unix.Sockaddr, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("address of %d bytes", len(b))
	}
	switch binary.LittleEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) < 8 {
			break
		}
		a := &unix.SockaddrInet4{Port: int(binary.BigEndian.Uint16(b[2:]))}
		copy(a.Addr[:], b[4:8])
		return a, nil
	case unix.AF_INET6:
		if len(b) < 28 {
			break
		}
		a := &unix.SockaddrInet6{Port: int(binary.BigEndian.Uint16(b[2:])), ZoneId: binary.LittleEndian.Uint32(b[24:])}
		copy(a.Addr[:], b[8:24])
		return a, nil
	}
	return nil, fmt.Errorf("address of family %d and %d bytes", binary.LittleEndian.Uint16(b), len(b))
}

// peekDatagrams reads every datagram queued on a UDP socket without
// taking any out (MSG_PEEK from a peek offset moved past each one), with
// its sender.
func peekDatagrams(fd int) (msgs [][]byte, from []unix.Sockaddr, err error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
		return nil, nil, fmt.Errorf("SO_PEEK_OFF: %w", err)
	}
	defer unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, -1)
	buf := make([]byte, 1<<16)
	total := 0
	for {
		n, _, _, sa, err := unix.Recvmsg(fd, buf, nil, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		if err == unix.EAGAIN {
			return msgs, from, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if n > len(buf) {
			return nil, nil, fmt.Errorf("datagram of %d bytes", n)
		}
		if sa == nil {
			return nil, nil, errors.New("a datagram without a sender address")
		}
		msgs, from = append(msgs, append([]byte{}, buf[:n]...)), append(from, sa)
		if total += n; total > maxQueue || len(msgs) > 1<<20 {
			return nil, nil, fmt.Errorf("more than %d bytes queued", maxQueue)
		}
		if n == 0 {
			// The peek offset does not move past an empty datagram.
			return nil, nil, errors.New("an empty datagram is queued: not supported yet")
		}
	}
}

// inetOpts reads the socket-level options of an inet socket (and TCP
// keepalive), beside what sockOpts reads for every socket.
func inetOpts(fd, prot int) (*skopts.SkOptsEntry, error) {
	o, err := sockOpts(fd)
	if err != nil {
		return nil, err
	}
	var errs []error
	geti := func(level, opt int) int {
		v, err := unix.GetsockoptInt(fd, level, opt)
		if err != nil {
			errs = append(errs, fmt.Errorf("getsockopt(%d, %d): %w", level, opt, err))
		}
		return v
	}
	o.Reuseaddr = proto.Bool(geti(unix.SOL_SOCKET, unix.SO_REUSEADDR) != 0)
	o.SoReuseport = proto.Bool(geti(unix.SOL_SOCKET, unix.SO_REUSEPORT) != 0)
	o.SoKeepalive = proto.Bool(geti(unix.SOL_SOCKET, unix.SO_KEEPALIVE) != 0)
	o.SoBroadcast = proto.Bool(geti(unix.SOL_SOCKET, unix.SO_BROADCAST) != 0)
	o.SoDontroute = proto.Bool(geti(unix.SOL_SOCKET, unix.SO_DONTROUTE) != 0)
	o.SoNoCheck = proto.Bool(geti(unix.SOL_SOCKET, unix.SO_NO_CHECK) != 0)
	o.SoPriority = proto.Uint32(uint32(geti(unix.SOL_SOCKET, unix.SO_PRIORITY)))
	o.SoMark = proto.Uint32(uint32(geti(unix.SOL_SOCKET, unix.SO_MARK)))
	o.SoRcvlowat = proto.Uint32(uint32(geti(unix.SOL_SOCKET, unix.SO_RCVLOWAT)))
	o.SoOobinline = proto.Uint32(uint32(geti(unix.SOL_SOCKET, unix.SO_OOBINLINE)))
	if l, err := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER); err != nil {
		errs = append(errs, fmt.Errorf("SO_LINGER: %w", err))
	} else if l.Onoff != 0 {
		o.SoLinger = proto.Uint32(uint32(l.Linger))
	}
	// SO_BUF_LOCK (Linux 5.14) tells which buffer sizes were set by the
	// program: only those are set again, the others the kernel tunes.
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK); err == nil {
		o.SoBufLock = proto.Uint32(uint32(v))
	}
	if dev, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err == nil && dev != "" {
		o.SoBoundDev = proto.String(dev)
	}
	if streamProto(prot) {
		o.TcpKeepcnt = proto.Uint32(uint32(geti(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)))
		o.TcpKeepidle = proto.Uint32(uint32(geti(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)))
		o.TcpKeepintvl = proto.Uint32(uint32(geti(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)))
	}
	return o, errors.Join(errs...)
}

// ipOpts reads the IP-level options kept in ip_opts_entry.
func ipOpts(fd, fam, prot int) (*skinet.IpOptsEntry, error) {
	var errs []error
	geti := func(level, opt int) int {
		v, err := unix.GetsockoptInt(fd, level, opt)
		if err != nil {
			errs = append(errs, fmt.Errorf("getsockopt(%d, %d): %w", level, opt, err))
		}
		return v
	}
	o := &skinet.IpOptsEntry{Freebind: proto.Bool(geti(unix.IPPROTO_IP, unix.IP_FREEBIND) != 0)}
	if prot == unix.IPPROTO_MPTCP {
		// MPTCP passes few IP options to its subflows: of these, IP_TOS
		// (net/mptcp/sockopt.c); the others it refuses to get or set.
		if fam == unix.AF_INET {
			o.Tos = proto.Uint32(uint32(geti(unix.IPPROTO_IP, unix.IP_TOS)))
		}
		return o, errors.Join(errs...)
	}
	if fam == unix.AF_INET {
		o.Pktinfo = proto.Bool(geti(unix.IPPROTO_IP, unix.IP_PKTINFO) != 0)
		o.Tos = proto.Uint32(uint32(geti(unix.IPPROTO_IP, unix.IP_TOS)))
		o.Ttl = proto.Uint32(uint32(geti(unix.IPPROTO_IP, unix.IP_TTL)))
	} else {
		o.Pktinfo = proto.Bool(geti(unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO) != 0)
		o.Tos = proto.Uint32(uint32(geti(unix.IPPROTO_IPV6, unix.IPV6_TCLASS)))
		o.Ttl = proto.Uint32(uint32(geti(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)))
	}
	return o, errors.Join(errs...)
}

// setInt sets an int option where the socket's value differs.
func setInt(fd, level, opt, want int) error {
	if v, err := unix.GetsockoptInt(fd, level, opt); err == nil && v == want {
		return nil
	}
	if err := unix.SetsockoptInt(fd, level, opt, want); err != nil {
		return fmt.Errorf("setsockopt(%d, %d, %d): %w", level, opt, want, err)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setInetOpts sets the dumped options that do not bear on binding.
func setInetOpts(fd int, e *skinet.InetSkEntry) error {
	o := e.GetOpts()
	fam := int(e.GetFamily())
	var errs []error
	set := func(level, opt, v int) {
		if err := setInt(fd, level, opt, v); err != nil {
			errs = append(errs, err)
		}
	}
	set(unix.SOL_SOCKET, unix.SO_KEEPALIVE, b2i(o.GetSoKeepalive()))
	set(unix.SOL_SOCKET, unix.SO_BROADCAST, b2i(o.GetSoBroadcast()))
	set(unix.SOL_SOCKET, unix.SO_DONTROUTE, b2i(o.GetSoDontroute()))
	set(unix.SOL_SOCKET, unix.SO_NO_CHECK, b2i(o.GetSoNoCheck()))
	set(unix.SOL_SOCKET, unix.SO_PRIORITY, int(o.GetSoPriority()))
	set(unix.SOL_SOCKET, unix.SO_MARK, int(o.GetSoMark()))
	set(unix.SOL_SOCKET, unix.SO_RCVLOWAT, int(o.GetSoRcvlowat()))
	set(unix.SOL_SOCKET, unix.SO_OOBINLINE, int(o.GetSoOobinline()))
	if o.SoLinger != nil {
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: int32(o.GetSoLinger())}); err != nil {
			errs = append(errs, fmt.Errorf("SO_LINGER: %w", err))
		}
	}
	if o.SoBufLock != nil {
		// Only the sizes the program set (the kernel doubles what it is
		// given, socket(7)); then the lock bits themselves.
		lock := int(o.GetSoBufLock())
		if lock&unix.SOCK_SNDBUF_LOCK != 0 {
			set(unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, int(o.GetSoSndbuf()/2))
		}
		if lock&unix.SOCK_RCVBUF_LOCK != 0 {
			set(unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, int(o.GetSoRcvbuf()/2))
		}
		set(unix.SOL_SOCKET, unix.SO_BUF_LOCK, lock)
		for _, tm := range []struct {
			opt       int
			sec, usec uint64
		}{{unix.SO_SNDTIMEO, o.GetSoSndTmoSec(), o.GetSoSndTmoUsec()}, {unix.SO_RCVTIMEO, o.GetSoRcvTmoSec(), o.GetSoRcvTmoUsec()}} {
			if tm.sec == 0 && tm.usec == 0 {
				continue
			}
			tv := unix.Timeval{Sec: int64(tm.sec), Usec: int64(tm.usec)}
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, tm.opt, &tv); err != nil {
				errs = append(errs, fmt.Errorf("timeout %d: %w", tm.opt, err))
			}
		}
	} else if err := setOpts(fd, o, false); err != nil {
		// A kernel without SO_BUF_LOCK: sizes set where they differ.
		errs = append(errs, err)
	}
	if ip := e.GetIpOpts(); ip != nil {
		if e.GetProto() == unix.IPPROTO_MPTCP {
			if fam == unix.AF_INET && ip.Tos != nil {
				set(unix.IPPROTO_IP, unix.IP_TOS, int(ip.GetTos()))
			}
		} else if fam == unix.AF_INET {
			set(unix.IPPROTO_IP, unix.IP_PKTINFO, b2i(ip.GetPktinfo()))
			set(unix.IPPROTO_IP, unix.IP_TOS, int(ip.GetTos()))
			// CRIU's images have no ttl (ip_opts_entry's ttl is ckpt's);
			// 0 is no TTL the kernel takes.
			if ip.Ttl != nil && ip.GetTtl() != 0 {
				set(unix.IPPROTO_IP, unix.IP_TTL, int(ip.GetTtl()))
			}
		} else {
			set(unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, b2i(ip.GetPktinfo()))
			set(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int(ip.GetTos()))
			if ip.Ttl != nil {
				set(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, int(ip.GetTtl()))
			}
		}
	}
	if streamProto(int(e.GetProto())) {
		// A dump without them (CRIU 4.x writes them in tcp_opts,
		// which model.Load copies here, and only when nonzero) leaves
		// the kernel's defaults: 0 is a value the kernel refuses.
		if o.TcpKeepcnt != nil {
			set(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, int(o.GetTcpKeepcnt()))
		}
		if o.TcpKeepidle != nil {
			set(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(o.GetTcpKeepidle()))
		}
		if o.TcpKeepintvl != nil {
			set(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(o.GetTcpKeepintvl()))
		}
		if to := e.GetTcpOpts(); to != nil {
			set(unix.IPPROTO_TCP, unix.TCP_NODELAY, b2i(to.GetNodelay()))
			set(unix.IPPROTO_TCP, unix.TCP_CORK, b2i(to.GetCork()))
		}
	}
	return errors.Join(errs...)
}

func (k *inetKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	isk := e.GetIsk()
	if isk == nil {
		return fmt.Errorf("fd %d: inet socket entry %d without data", num, e.GetId())
	}
	obj := fmt.Sprintf("fd %d (inet socket socket:[%d])", num, isk.GetIno())
	if ok, err := k.made.take(r, e.GetId(), num, cloexec); ok || err != nil {
		if err != nil {
			return fmt.Errorf("%s: %w", obj, err)
		}
		return nil
	}
	fam, prot := int(isk.GetFamily()), int(isk.GetProto())
	if (fam != unix.AF_INET && fam != unix.AF_INET6) || (!streamProto(prot) && prot != unix.IPPROTO_UDP) {
		return fmt.Errorf("%s: family %d protocol %d: not an inet socket ckpt restores", obj, fam, prot)
	}
	if streamProto(prot) && isk.GetState() != uapi.TCP_LISTEN && isk.GetState() != uapi.TCP_CLOSE && (isk.GetState() != uapi.TCP_ESTABLISHED || prot != unix.IPPROTO_TCP) {
		return fmt.Errorf("%s: TCP state %s: ckpt restores only listening and bound TCP sockets", obj, uapi.TCPStateName(uint8(isk.GetState())))
	}
	tmp, c, err := socketIn(r, fam, int(isk.GetType()), prot)
	if err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	keep := false
	defer func() {
		if !keep {
			unix.Close(c)
		}
	}()
	later := len(k.listens) + len(k.repairs)
	if err := k.setUp(c, isk, r.Dump(), fmt.Sprintf("/proc/%d/ns/net", r.Pid())); err != nil {
		_, _ = r.Syscall(x86.SysClose, uint64(tmp))
		return fmt.Errorf("%s: %w", obj, err)
	}
	if err := r.Place(tmp, num, cloexec); err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, uint64(isk.GetFlags())&^unix.O_ACCMODE); err != nil {
		return fmt.Errorf("%s: fcntl(F_SETFL): %w", obj, err)
	}
	k.made.put(e.GetId(), r, num)
	if k.home == nil {
		k.home = r
	}
	if len(k.listens)+len(k.repairs) > later {
		// setUp left it for FinishTree.
		keep = true
		k.kept = append(k.kept, c)
	}
	if prot == unix.IPPROTO_UDP {
		keep = true
		k.udp = append(k.udp, udpSock{c, isk})
		d := r.Dump()
		if q := d.SkQueues[e.GetId()]; len(q) > 0 {
			k.refills = append(k.refills, dgramRefill{copy: c, e: isk, msgs: q, from: d.SkAddrs[e.GetId()]})
		}
	}
	return nil
}

// setUp gives a new socket (ckpt's copy c) its options, address, backlog
// and peer.
func (k *inetKind) setUp(c int, isk *skinet.InetSkEntry, d *model.Dump, ns string) error {
	fam, prot := int(isk.GetFamily()), int(isk.GetProto())
	o := isk.GetOpts()
	if o == nil {
		return errors.New("no socket options in the entry")
	}
	var stream *model.TcpStream
	if prot == unix.IPPROTO_TCP && isk.GetState() == uapi.TCP_ESTABLISHED {
		stream = d.TcpStreams[isk.GetIno()]
		if stream == nil || k.tcpClose {
			// Dumped or restored with --tcp-close: a TCP socket that
			// never connected stands for the closed connection.
			return setInetOpts(c, isk)
		}
	}
	// Options that decide whether the address can be taken.
	reuse := b2i(o.GetReuseaddr())
	if streamProto(prot) {
		reuse = 1 // until it listens: TIME_WAIT connections of the dumped one
	}
	if err := setInt(c, unix.SOL_SOCKET, unix.SO_REUSEADDR, reuse); err != nil {
		return err
	}
	if err := setInt(c, unix.SOL_SOCKET, unix.SO_REUSEPORT, b2i(o.GetSoReuseport())); err != nil {
		return err
	}
	if fam == unix.AF_INET6 {
		if err := setInt(c, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, b2i(isk.GetV6Only())); err != nil {
			return err
		}
	}
	if err := setInt(c, unix.IPPROTO_IP, unix.IP_FREEBIND, b2i(isk.GetIpOpts().GetFreebind())); err != nil {
		return err
	}
	if dev := o.GetSoBoundDev(); dev != "" {
		if err := unix.SetsockoptString(c, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); err != nil {
			return fmt.Errorf("SO_BINDTODEVICE %s: %w", dev, err)
		}
	}
	local, err := wordsAddr(fam, isk.GetSrcAddr(), isk.GetSrcPort())
	if err != nil {
		return err
	}
	if stream != nil {
		peer, err := wordsAddr(fam, isk.GetDstAddr(), isk.GetDstPort())
		if err != nil {
			return err
		}
		if err := repairConnect(c, isk, stream, local, peer); err != nil {
			return err
		}
		k.repairs = append(k.repairs, repairLater{copy: c, e: isk, st: stream, ns: ns, local: local, peer: peer})
		// No SO_REUSEADDR here: in repair mode the socket reuses its
		// address by force, which its listener's listen (FinishTree,
		// the same port) needs; SO_REUSEADDR 0 (as CRIU records an
		// accepted connection) would end that, and leaving repair mode
		// clears it anyway (TCP_REPAIR_OFF: SK_NO_REUSE).
		return setInetOpts(c, isk)
	}
	if prot == unix.IPPROTO_UDP {
		// Multicast groups and options (inetmcast.go), before bind: a
		// socket not bound yet receives nothing, so no datagram gets in
		// between a join and the source filter that follows it.
		if err := setMcast(c, isk); err != nil {
			return err
		}
	}
	if a, port, _ := splitAddr(local); port != 0 || !allZero(a) {
		if err := unix.Bind(c, local); err != nil {
			return fmt.Errorf("bind %s: %w", sockaddrString(local), err)
		}
	}
	if isk.GetState() == uapi.TCP_LISTEN {
		// listen and the dumped SO_REUSEADDR come in FinishTree.
		k.listens = append(k.listens, listenLater{c, isk})
	} else if streamProto(prot) {
		if err := setInt(c, unix.SOL_SOCKET, unix.SO_REUSEADDR, b2i(o.GetReuseaddr())); err != nil {
			return err
		}
	}
	if prot == unix.IPPROTO_UDP && isk.GetState() == uapi.TCP_ESTABLISHED {
		to, err := wordsAddr(fam, isk.GetDstAddr(), isk.GetDstPort())
		if err != nil {
			return err
		}
		if err := unix.Connect(c, to); err != nil {
			return fmt.Errorf("connect to %s: %w", sockaddrString(to), err)
		}
	}
	return setInetOpts(c, isk)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// FinishTree sends the queued datagrams again, once every socket of the
// tree exists, and lets go of ckpt's copies.
func (k *inetKind) FinishTree() error {
	defer k.Close()
	for _, l := range k.listens {
		if err := unix.Listen(l.copy, int(l.e.GetBacklog())); err != nil {
			return fmt.Errorf("inet socket socket:[%d]: listen(%d): %w", l.e.GetIno(), l.e.GetBacklog(), err)
		}
		if err := setInt(l.copy, unix.SOL_SOCKET, unix.SO_REUSEADDR, b2i(l.e.GetOpts().GetReuseaddr())); err != nil {
			return fmt.Errorf("inet socket socket:[%d]: %w", l.e.GetIno(), err)
		}
	}
	// Connections that have their socket again, whose packets may come
	// in: unlocked together, per network namespace (one listing of the
	// rules for all, not one per connection), also when a later one fails.
	unlock := map[string][]netlock.Conn{}
	unlockAll := func() error {
		var errs []error
		for ns, cs := range unlock {
			errs = append(errs, netlock.Unlock(ns, cs...))
		}
		return errors.Join(errs...)
	}
	for _, rp := range k.repairs {
		if err := repairFinish(rp.copy, rp.st); err != nil {
			return errors.Join(fmt.Errorf("inet socket socket:[%d]: %w", rp.e.GetIno(), err), unlockAll())
		}
		if lc, err := lockConn(rp.local, rp.peer); err == nil {
			unlock[rp.ns] = append(unlock[rp.ns], lc)
		}
	}
	if err := unlockAll(); err != nil {
		return fmt.Errorf("inet sockets: %w", err)
	}
	for _, rf := range k.refills {
		if err := k.refill(rf); err != nil {
			return fmt.Errorf("inet socket socket:[%d]: queue its %d datagrams again: %w", rf.e.GetIno(), len(rf.msgs), err)
		}
	}
	return nil
}

// Close lets go of ckpt's copies of the restored sockets.
func (k *inetKind) Close() {
	for _, u := range k.udp {
		unix.Close(u.copy)
	}
	for _, c := range k.kept {
		unix.Close(c)
	}
	k.udp, k.refills, k.home, k.kept, k.listens, k.repairs = nil, nil, nil, nil, nil, nil
}

// refill sends each queued datagram to its socket from the address it
// came from.
func (k *inetKind) refill(rf dgramRefill) error {
	fam := int(rf.e.GetFamily())
	to, err := wordsAddr(fam, rf.e.GetSrcAddr(), rf.e.GetSrcPort())
	if err != nil {
		return err
	}
	if a, _, _ := splitAddr(to); allZero(a) {
		// Bound to every address: sent to loopback.
		if fam == unix.AF_INET6 {
			to.(*unix.SockaddrInet6).Addr[15] = 1
		} else {
			to.(*unix.SockaddrInet4).Addr = [4]byte{127, 0, 0, 1}
		}
	}
	temps := map[string]int{}
	defer func() {
		for _, t := range temps {
			unix.Close(t)
		}
	}()
	for i, m := range rf.msgs {
		if i >= len(rf.from) || rf.from[i] == nil {
			return fmt.Errorf("datagram %d has no sender address", i)
		}
		from, err := parseSockaddr(rf.from[i])
		if err != nil {
			return fmt.Errorf("datagram %d: %w", i, err)
		}
		key := sockaddrString(from)
		s, ok := k.sender(from)
		if !ok {
			if s, ok = temps[key]; !ok {
				if s, err = k.tempSender(from); err != nil {
					return fmt.Errorf("datagram %d from %s: %w", i, key, err)
				}
				temps[key] = s
			}
		}
		if err := unix.Sendto(s, m, unix.MSG_DONTWAIT, to); err != nil {
			return fmt.Errorf("datagram %d from %s to %s: %w", i, key, sockaddrString(to), err)
		}
	}
	return nil
}

// sender finds the tree's UDP socket bound to address a (or to every
// address at a's port).
func (k *inetKind) sender(a unix.Sockaddr) (int, bool) {
	ab, port, _ := splitAddr(a)
	for _, u := range k.udp {
		if int(u.e.GetSrcPort()) != port {
			continue
		}
		sa, err := wordsAddr(int(u.e.GetFamily()), u.e.GetSrcAddr(), u.e.GetSrcPort())
		if err != nil {
			continue
		}
		b, _, _ := splitAddr(sa)
		if len(b) == len(ab) && (allZero(b) || string(b) == string(ab)) {
			return u.copy, true
		}
	}
	return -1, false
}

// tempSender makes, in the tree's network namespace, a UDP socket bound
// to a (IP_FREEBIND: the address may be gone).
func (k *inetKind) tempSender(a unix.Sockaddr) (int, error) {
	fam := unix.AF_INET
	if _, ok := a.(*unix.SockaddrInet6); ok {
		fam = unix.AF_INET6
	}
	tmp, c, err := socketIn(k.home, fam, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	if _, err := k.home.Syscall(x86.SysClose, uint64(tmp)); err != nil {
		unix.Close(c)
		return -1, err
	}
	_ = unix.SetsockoptInt(c, unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	if err := unix.Bind(c, a); err != nil {
		unix.Close(c)
		if errors.Is(err, unix.EADDRINUSE) {
			return -1, fmt.Errorf("a socket outside the tree holds the sender's address, so the datagram cannot come from it again: %w", err)
		}
		return -1, fmt.Errorf("bind %s: %w", sockaddrString(a), err)
	}
	return c, nil
}
