//go:build linux && amd64

package sockdiag

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/internal/uapi"
)

// procNet describes the socket with inode ino from the tables under
// /proc/net, for a kernel whose sock_diag modules are not loaded (a
// kernel loads them on demand when it has them; a guest without modules
// has none): "" if no table lists it.
func procNet(ino uint32) string {
	inode := strconv.FormatUint(uint64(ino), 10)
	for _, t := range []struct {
		file, proto, fam string
	}{
		{"tcp", "TCP", "IPv4"}, {"tcp6", "TCP", "IPv6"}, {"udp", "UDP", "IPv4"}, {"udp6", "UDP", "IPv6"},
		{"udplite", "UDP-Lite", "IPv4"}, {"udplite6", "UDP-Lite", "IPv6"}, {"raw", "raw", "IPv4"}, {"raw6", "raw", "IPv6"},
	} {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if f := procNetRow("/proc/net/"+t.file, 9, inode); f != nil && len(f) > 3 {
			st, _ := strconv.ParseUint(f[3], 16, 8)
			if t.proto == "TCP" {
				return fmt.Sprintf("a TCP socket (%s) in state %s", t.fam, uapi.TCPStateName(uint8(st)))
			}
			conn := "unconnected"
			if st == uapi.TCP_ESTABLISHED {
				conn = "connected"
			}
			return fmt.Sprintf("a %s socket (%s), %s", t.proto, t.fam, conn)
		}
	}
	// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
	if f := procNetRow("/proc/net/netlink", 9, inode); f != nil {
		p, _ := strconv.ParseUint(f[1], 10, 8)
		return fmt.Sprintf("a netlink socket (%s)", netlinkProto(uint8(p)))
	}
	// sk RefCnt Type Proto Iface R Rmem User Inode
	if f := procNetRow("/proc/net/packet", 8, inode); f != nil {
		t, _ := strconv.ParseUint(f[2], 10, 8)
		return fmt.Sprintf("a packet socket (%s, protocol %s)", sockType(uint8(t)), f[3])
	}
	// Num RefCount Protocol Flags Type St Inode [Path]
	if f := procNetRow("/proc/net/unix", 6, inode); f != nil {
		t, _ := strconv.ParseUint(f[4], 16, 8)
		s := "a unix " + strings.ToLower(strings.TrimPrefix(sockType(uint8(t)), "SOCK_")) + " socket"
		if fl, _ := strconv.ParseUint(f[3], 16, 32); fl&0x10000 != 0 { // __SO_ACCEPTCON
			s += " listening"
		}
		if len(f) > 7 {
			s += " bound to " + f[7]
		}
		return s
	}
	return ""
}

// procNetRow returns the fields of the row of a /proc/net table whose
// field col is inode, nil if none.
func procNetRow(path string, col int, inode string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > col && fs[col] == inode {
			return fs
		}
	}
	return nil
}
