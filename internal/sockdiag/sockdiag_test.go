//go:build linux && amd64

package sockdiag

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/uapi"
)

func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.LittleEndian.PutUint16(b, uint16(4+len(v)))
	binary.LittleEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestParseUnix(t *testing.T) {
	b := make([]byte, uapi.SizeofUnixDiagMsg)
	b[0], b[1], b[2] = unix.AF_UNIX, unix.SOCK_STREAM, uapi.TCP_LISTEN
	binary.LittleEndian.PutUint32(b[4:], 77)
	b = append(b, attr(uapi.UNIX_DIAG_NAME, []byte("\x00abs"))...)
	b = append(b, attr(uapi.UNIX_DIAG_ICONS, []byte{1, 0, 0, 0, 2, 0, 0, 0})...)
	b = append(b, attr(uapi.UNIX_DIAG_RQLEN, []byte{2, 0, 0, 0, 5, 0, 0, 0})...)
	b = append(b, attr(uapi.UNIX_DIAG_SHUTDOWN, []byte{3})...)
	u, err := ParseUnix(b)
	if err != nil {
		t.Fatal(err)
	}
	if u.Ino != 77 || u.Type != unix.SOCK_STREAM || u.State != uapi.TCP_LISTEN || !u.Abstract() || string(u.Name) != "\x00abs" ||
		len(u.Icons) != 2 || u.Icons[1] != 2 || u.RQueue != 2 || u.WQueue != 5 || u.Shutdown != 3 || u.HasPeer {
		t.Errorf("parsed %+v", u)
	}
	// A truncated attribute is an error, never a panic.
	if _, err := ParseUnix(append(b[:uapi.SizeofUnixDiagMsg:uapi.SizeofUnixDiagMsg], 40, 0, 0, 0)); err == nil {
		t.Error("truncated attribute accepted")
	}
	if _, err := ParseUnix(b[:8]); err == nil {
		t.Error("short message accepted")
	}
}

func inode(t *testing.T, fd int) uint32 {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func TestUnixAllLive(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.Write(fds[0], []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(fds[0], unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	all, err := UnixAll()
	if err != nil {
		t.Skip("no unix_diag:", err)
	}
	a, b := all[inode(t, fds[0])], all[inode(t, fds[1])]
	if a == nil || b == nil {
		t.Fatalf("pair not listed")
	}
	if a.Peer != b.Ino || b.Peer != a.Ino || a.Type != unix.SOCK_SEQPACKET || b.RQueue != 5 || a.Shutdown != uapi.SEND_SHUTDOWN || b.Shutdown != uapi.RCV_SHUTDOWN {
		t.Errorf("a %+v b %+v", a, b)
	}
}

func TestDescribeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if d := Describe(inode(t, int(f.Fd()))); d != "a TCP socket (IPv4) in state LISTEN" {
		t.Errorf("Describe = %q", d)
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nl)
	if err := unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	if d := Describe(inode(t, nl)); !strings.Contains(d, "NETLINK_ROUTE") {
		t.Errorf("Describe netlink = %q", d)
	}
}

// Without sock_diag the tables under /proc/net name a socket too.
func TestProcNet(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if d := procNet(inode(t, int(f.Fd()))); d != "a TCP socket (IPv4) in state LISTEN" {
		t.Errorf("procNet TCP = %q", d)
	}
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrUnix{Name: "@ckpt-procnet-test"}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(s, 1); err != nil {
		t.Fatal(err)
	}
	if d := procNet(inode(t, s)); d != "a unix seqpacket socket listening bound to @ckpt-procnet-test" || !IsUnix(inode(t, s)) {
		t.Errorf("procNet unix = %q", d)
	}
}
