//go:build linux && amd64

package fd

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

func TestSockaddrCodecs(t *testing.T) {
	for _, sa := range []unix.Sockaddr{
		&unix.SockaddrInet4{Port: 8080, Addr: [4]byte{127, 0, 0, 1}},
		&unix.SockaddrInet6{Port: 443, Addr: [16]byte{15: 1}},
	} {
		back, err := parseSockaddr(rawSockaddr(sa))
		if err != nil || sockaddrString(back) != sockaddrString(sa) {
			t.Errorf("%s: back %v, %v", sockaddrString(sa), back, err)
		}
		a, port, _ := splitAddr(sa)
		fam := unix.AF_INET
		if len(a) == 16 {
			fam = unix.AF_INET6
		}
		w, err := wordsAddr(fam, addrWords(a), uint32(port))
		if err != nil || sockaddrString(w) != sockaddrString(sa) {
			t.Errorf("%s: words give %v, %v", sockaddrString(sa), w, err)
		}
	}
	if w := addrWords([]byte{127, 0, 0, 1}); len(w) != 1 || w[0] != 0x0100007f {
		t.Errorf("addrWords %x", w)
	}
	for _, b := range [][]byte{nil, {2}, {2, 0, 1}, {10, 0, 1, 2, 3}, {1, 0, 0, 0}} {
		if _, err := parseSockaddr(b); err == nil {
			t.Errorf("%x parses", b)
		}
	}
	if _, err := wordsAddr(unix.AF_INET, []uint32{1, 2}, 1); err == nil {
		t.Error("two words for IPv4")
	}
}

// collectOwn classifies and collects ckpt's own fd.
func collectOwn(t *testing.T, k *Kinds, fd int, o Options) (*fdinfo.FileEntry, *model.Dump, error) {
	t.Helper()
	f := ownFile(t, fd)
	kind, err := k.Classify(os.Getpid(), f, o)
	if err != nil {
		return nil, nil, err
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(pidfd)
	d := &model.Dump{}
	e := &fdinfo.FileEntry{Id: proto.Uint32(d.NextFileID())}
	err = kind.Collect(Task{Pid: os.Getpid(), Dump: d, Pidfd: pidfd, Opts: o}, f, 0, e)
	return e, d, err
}

// A TCP listener, a UDP socket with a datagram queued and a netlink socket
// are collected with what their restore needs; an established TCP
// connection is refused without --tcp-established.
func TestInetCollect(t *testing.T) {
	k := New()
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, l)
	_ = unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 9); err != nil {
		t.Fatal(err)
	}
	e, _, err := collectOwn(t, k, l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if i := e.GetIsk(); e.GetType() != fdinfo.FdTypes_INETSK || i.GetState() != uapi.TCP_LISTEN || i.GetBacklog() != 9 || i.GetSrcPort() == 0 || !i.GetOpts().GetReuseaddr() {
		t.Errorf("listener %v", e)
	}

	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, u)
	if err := unix.Bind(u, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	self, _ := unix.Getsockname(u)
	if err := unix.Sendto(u, []byte("dgram"), 0, self); err != nil {
		t.Fatal(err)
	}
	e, d, err := collectOwn(t, k, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q := d.SkQueues[e.GetId()]; len(q) != 1 || string(q[0]) != "dgram" || len(d.SkAddrs[e.GetId()]) != 1 {
		t.Errorf("queue %q senders %v", q, d.SkAddrs)
	}
	buf := make([]byte, 16)
	if n, _, err := unix.Recvfrom(u, buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != "dgram" {
		t.Errorf("the datagram was taken out by the dump: %q, %v", buf[:n], err)
	}
	// A datagram from a socket outside the tree that still holds its
	// address cannot be sent again from there: refused.
	o, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, o)
	if err := unix.Bind(o, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(o, []byte("out"), 0, self); err != nil {
		t.Fatal(err)
	}
	_, _, err = collectOwn(t, k, u, Options{})
	var ue *ckerr.UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "outside the dumped tree holds") {
		t.Errorf("datagram from a live outside socket: %v", err)
	}
	if _, _, err := unix.Recvfrom(u, buf, unix.MSG_DONTWAIT); err != nil {
		t.Fatal(err)
	}

	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, nl)
	if err := unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 | 1<<4}); err != nil {
		t.Fatal(err)
	}
	e, _, err = collectOwn(t, k, nl, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.GetNlsk(); n == nil || n.GetProtocol() != unix.NETLINK_ROUTE || len(n.GetGroups()) != 1 || n.GetGroups()[0] != 1|1<<4 || n.GetPortid() == 0 {
		t.Errorf("netlink %v", e)
	}

	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, c)
	la, _ := unix.Getsockname(l)
	if err := unix.Connect(c, la); err != nil {
		t.Fatal(err)
	}
	_, _, err = collectOwn(t, k, c, Options{})
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "--tcp-established") || !strings.Contains(ue.Object, "TCP socket (IPv4)") {
		t.Errorf("established: %v", err)
	}
}

// An MPTCP listener is collected as MPTCP (protocol 262) with its
// backlog; a connection it accepted from a plain TCP client (a TCP socket
// named after its listener, SO_PROTOCOL 6) is collected with
// --tcp-established as the TCP connection it is, with its queued bytes;
// an MPTCP connection (an MPTCP client's, real MPTCP) is refused by name,
// and so is an MPTCP client fallen back to TCP (its server a TCP one).
func TestMPTCPCollect(t *testing.T) {
	k := New()
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP)
	if err != nil {
		t.Skipf("no MPTCP here: %v", err)
	}
	closeAfter(t, l)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 6); err != nil {
		t.Fatal(err)
	}
	e, _, err := collectOwn(t, k, l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if i := e.GetIsk(); i.GetProto() != unix.IPPROTO_MPTCP || i.GetState() != uapi.TCP_LISTEN || i.GetBacklog() != 6 || i.GetIpOpts().Ttl != nil {
		t.Errorf("MPTCP listener %v", e)
	}
	la, _ := unix.Getsockname(l)
	connect := func(prot int) (c, a int) {
		t.Helper()
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, prot)
		if err != nil {
			t.Fatal(err)
		}
		closeAfter(t, c)
		if err := unix.Connect(c, la); err != nil {
			t.Fatal(err)
		}
		a, _, err = unix.Accept4(l, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		closeAfter(t, a)
		return c, a
	}

	// A plain TCP client: both ends in "the tree" (this process), so no
	// network lock is needed.
	c, a := connect(unix.IPPROTO_TCP)
	if _, err := unix.Write(c, []byte("unread")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := k.Classify(os.Getpid(), ownFile(t, c), Options{}); err != nil {
		t.Fatal(err)
	}
	e, d, err := collectOwn(t, k, a, Options{TcpEstablished: true})
	if err != nil {
		t.Fatalf("connection accepted from a TCP client: %v", err)
	}
	i := e.GetIsk()
	if i.GetProto() != unix.IPPROTO_TCP || i.GetState() != uapi.TCP_ESTABLISHED {
		t.Errorf("connection accepted from a TCP client: %v", e)
	}
	if st := d.TcpStreams[i.GetIno()]; st == nil || string(st.In) != "unread" {
		t.Errorf("connection accepted from a TCP client: stream %v", st)
	}

	// An MPTCP client: a real MPTCP connection.
	_, a = connect(unix.IPPROTO_MPTCP)
	_, _, err = collectOwn(t, k, a, Options{TcpEstablished: true})
	var ue *ckerr.UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "established MPTCP connection,") || !strings.Contains(ue.Object, "MPTCP socket (IPv4)") {
		t.Errorf("accepted MPTCP connection: %v", err)
	}

	// An MPTCP client of a TCP server: fallen back to TCP.
	tl, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, tl)
	if err := unix.Bind(tl, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(tl, 1); err != nil {
		t.Fatal(err)
	}
	tla, _ := unix.Getsockname(tl)
	mc, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, mc)
	if err := unix.Connect(mc, tla); err != nil {
		t.Fatal(err)
	}
	_, _, err = collectOwn(t, k, mc, Options{TcpEstablished: true})
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "fallen back to TCP") || !strings.Contains(ue.Object, "MPTCP socket (IPv4)") {
		t.Errorf("MPTCP client of a TCP server: %v", err)
	}
}
