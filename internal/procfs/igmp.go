//go:build linux && amd64

package procfs

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The multicast groups of a network namespace's interfaces:
// /proc/net/igmp (IPv4) and /proc/net/igmp6 (IPv6), as /proc/PID/net/
// shows them for the namespace of task PID.

// McastMember is a multicast group joined on an interface, by one
// socket or more (or by the kernel itself, as 224.0.0.1 and ff02::1 on
// every interface that has multicast).
type McastMember struct {
	Ifindex uint32
	Group   netip.Addr
}

// ParseIgmp reads /proc/net/igmp (igmp_mc_seq_show, net/ipv4/igmp.c): a
// line per interface ("1\tlo        :     1      V3") followed by a
// line per group ("\t\t\t\t010000E0     1 0:00000000\t\t0"), the group
// being the __be32 printed with %08X, so its bytes in little-endian
// order on x86.
func ParseIgmp(text string) ([]McastMember, error) {
	var out []McastMember
	var ifindex uint32
	haveIf := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Fields(line)
		if n == 1 || len(f) == 0 {
			continue // header "Idx Device : Count Querier Group Users Timer Reporter"
		}
		if line[0] != '\t' && line[0] != ' ' {
			i, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("line %d: interface index %q", n, f[0])
			}
			ifindex, haveIf = uint32(i), true
			continue
		}
		v, err := strconv.ParseUint(f[0], 16, 32)
		if err != nil || len(f[0]) != 8 || !haveIf {
			return nil, fmt.Errorf("line %d: group %q", n, f[0])
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(v))
		out = append(out, McastMember{ifindex, netip.AddrFrom4(b)})
	}
	return out, nil
}

// ParseIgmp6 reads /proc/net/igmp6 (igmp6_mc_seq_show, net/ipv6/mcast.c):
// "1    lo              ff020000000000000000000000000001     1 0000000C 0".
func ParseIgmp6(text string) ([]McastMember, error) {
	var out []McastMember
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: %d fields", n, len(f))
		}
		i, err1 := strconv.ParseUint(f[0], 10, 32)
		b, err2 := hex.DecodeString(f[2])
		if err1 != nil || err2 != nil || len(b) != 16 {
			return nil, fmt.Errorf("line %d: %q", n, sc.Text())
		}
		out = append(out, McastMember{uint32(i), netip.AddrFrom16([16]byte(b))})
	}
	return out, nil
}
