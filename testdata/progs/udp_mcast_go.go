/* ckpt-test: lang=go */

// udp_mcast_go: a Go multicast listener comes back whole. Go's
// net.ListenMulticastUDP joins the group on the interface and sets
// IP_MULTICAST_IF by interface index alone (struct ip_mreqn), which
// getsockopt does not show. The program listens on 239.7.7.9 on lo, turns
// multicast loopback on and the TTL to 0 (its datagrams come back to it
// and never leave the machine), and sends to the group without naming an
// interface: only IP_MULTICAST_IF (lo) takes the datagram to lo, where
// the socket is a member and gets it back. After the restore the same
// exchange must work.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		fail("lo: %v", err)
	}
	group := net.IPv4(239, 7, 7, 9)
	c, err := net.ListenMulticastUDP("udp4", lo, &net.UDPAddr{IP: group})
	if err != nil {
		fail("ListenMulticastUDP: %v", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		fail("SyscallConn: %v", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, 0)
		}
	}); err != nil || serr != nil {
		fail("multicast loop and TTL: %v %v", err, serr)
	}
	to := &net.UDPAddr{IP: group, Port: c.LocalAddr().(*net.UDPAddr).Port}
	exchange := func(when string) {
		msg := "hello " + when
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			fail("%s: send to %v: %v", when, to, err)
		}
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			fail("%s: nothing came back from the group in 3 s (membership or IP_MULTICAST_IF by index lost?): %v", when, err)
		}
		if string(buf[:n]) != msg {
			fail("%s: got %q, sent %q", when, buf[:n], msg)
		}
	}
	exchange("before the dump")
	os.Stdout.WriteString("READY\n")
	<-term
	exchange("after the restore")
	os.Stdout.WriteString("PASS\n")
}
