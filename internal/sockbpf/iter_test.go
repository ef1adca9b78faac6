//go:build linux && amd64

package sockbpf

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The iterator finds a UDP socket's multicast interface index set by
// index alone, which getsockopt does not show.
func TestUDPMcastIndex(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	plain, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(plain)
	if err := unix.SetsockoptIPMreqn(s, unix.SOL_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(lo.Index)}); err != nil {
		t.Fatal(err)
	}
	// The iterator walks the hash tables: bound sockets only.
	for _, fd := range []int{s, plain} {
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	c1, err1 := unix.GetsockoptUint64(s, unix.SOL_SOCKET, unix.SO_COOKIE)
	c2, err2 := unix.GetsockoptUint64(plain, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	m, err := UDPMcastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m[c1]; !ok || got != uint32(lo.Index) {
		t.Errorf("socket with IP_MULTICAST_IF lo: %d %v, want %d", got, ok, lo.Index)
	}
	if got, ok := m[c2]; !ok || got != 0 {
		t.Errorf("plain socket: %d %v, want 0", got, ok)
	}
}
