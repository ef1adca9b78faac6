//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/sockbpf"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Multicast state of a UDP socket (part of inetKind): the groups it
// joined, each on its interface with its source filter, and its
// multicast options. CRIU's inet_sk_entry has no field for either; ckpt
// keeps them in fields of its own (model.McastGroups, model.McastOpts).
//
// The kernel lists no socket's groups, but it answers for one group:
// getsockopt(MCAST_MSFILTER) gives the filter mode and sources of a
// group the socket joined on an interface, and EADDRNOTAVAIL when it did
// not (ip_mc_gsfget in net/ipv4/igmp.c, ip6_mc_msfget in
// net/ipv6/mcast.c). Every group a socket joined is joined on its
// interface, so it shows in /proc/net/igmp or /proc/net/igmp6 of the
// socket's network namespace: those are the candidates, asked about one
// by one.
//
// Restore, before the socket is bound (inetKind.setUp), so that no
// datagram comes in meanwhile: MCAST_JOIN_GROUP on the interface, then
// MCAST_MSFILTER for a filter other than "exclude nothing" (from
// IP_ADD_SOURCE_MEMBERSHIP, MCAST_JOIN_SOURCE_GROUP, MCAST_BLOCK_SOURCE
// or MCAST_MSFILTER).
//
// IP_MULTICAST_IF's interface index (set with a struct ip_mreqn, as Go's
// net.ListenMulticastUDP does, by index alone) is not shown by getsockopt
// (it gives the address only, net/ipv4/ip_sockglue.c): a BPF iterator
// reads it (package sockbpf) for the bound sockets of ckpt's network
// namespace. Where that cannot run (a kernel without BTF or BPF
// iterators) or does not list the socket (never bound, or of another
// network namespace), the index is not known: a socket that uses
// multicast (joined a group, or set a multicast option) is refused, one
// that does not comes back with the address alone.

// mcastCands reads the groups joined in the network namespace of task
// pid; a file that is not there (no IPv6) lists none.
func mcastCands(pid int) (v4, v6 []procfs.McastMember, err error) {
	read := func(name string, parse func(string) ([]procfs.McastMember, error)) ([]procfs.McastMember, error) {
		p := fmt.Sprintf("/proc/%d/net/%s", pid, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c, err := parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return c, nil
	}
	if v4, err = read("igmp", procfs.ParseIgmp); err != nil {
		return nil, nil, err
	}
	v6, err = read("igmp6", procfs.ParseIgmp6)
	return v4, v6, err
}

// msfilter asks the socket about group g on interface ifindex at level
// (SOL_IP, SOL_IPV6): its filter, or ok false when it is no member.
func msfilter(fd, level int, ifindex uint32, g netip.Addr) (grp model.McastGroup, ok bool, err error) {
	for n := 8; ; {
		b, err := uapi.GroupFilter(ifindex, g.AsSlice(), 0, nil)
		if err != nil {
			return grp, false, err
		}
		b = append(b, make([]byte, uapi.GroupFilterSize(n)-len(b))...)
		binary.LittleEndian.PutUint32(b[uapi.GroupFilterHdr-4:], uint32(n))
		l := uint32(len(b))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), unix.MCAST_MSFILTER,
			uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&l)), 0)
		if errno == unix.EADDRNOTAVAIL {
			return grp, false, nil
		}
		if errno != 0 {
			return grp, false, errno
		}
		fmode, num, srcs, err := uapi.ParseGroupFilter(b[:min(int(l), len(b))])
		if err != nil {
			return grp, false, err
		}
		if num > n {
			n = num
			continue
		}
		if len(srcs) != num {
			return grp, false, fmt.Errorf("%d of %d sources", len(srcs), num)
		}
		return model.McastGroup{Level: level, Ifindex: ifindex, Group: g.AsSlice(), Fmode: fmode, Sources: srcs}, true, nil
	}
}

// mcastIndex is what the BPF iterator read of the UDP sockets' multicast
// interface index, by socket cookie, for one dump.
type mcastIndex struct {
	idx map[uint64]uint32
	// asked are the cookies that existed when the iterator last ran (a
	// socket gets its cookie when first asked for it, so one asked for
	// later needs another run); err is why it cannot run.
	asked map[uint64]bool
	err   error
}

// of returns the multicast interface index of socket cfd, or why it is
// not known.
func (m *mcastIndex) of(cfd int) (uint32, error) {
	cookie, err := unix.GetsockoptUint64(cfd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("SO_COOKIE: %w", err)
	}
	if v, ok := m.idx[cookie]; ok {
		return v, nil
	}
	notListed := errors.New("the BPF iterator over UDP sockets does not list it (never bound, or in another network namespace than ckpt's)")
	if m.err != nil {
		return 0, m.err
	}
	if m.asked[cookie] {
		return 0, notListed
	}
	idx, err := sockbpf.UDPMcastIndex()
	if err != nil {
		m.err = err
		return 0, err
	}
	if m.asked == nil {
		m.asked = map[uint64]bool{}
	}
	m.idx = idx
	m.asked[cookie] = true
	if v, ok := idx[cookie]; ok {
		return v, nil
	}
	return 0, notListed
}

// collectMcast reads the multicast groups and options of UDP socket cfd
// of family fam, in the network namespace of task pid, into isk.
//
// A socket that uses multicast whose interface index (mcastIndex) is not
// known is refused with refuse.
func (k *inetKind) collectMcast(cfd, fam, pid int, isk *skinet.InetSkEntry, refuse func(string) error) error {
	c4, c6, err := mcastCands(pid)
	if err != nil {
		return fmt.Errorf("multicast groups of the network namespace: %w", err)
	}
	var groups []model.McastGroup
	ask := func(level int, cs []procfs.McastMember) error {
		for _, c := range cs {
			g, ok, err := msfilter(cfd, level, c.Ifindex, c.Group)
			if err != nil {
				return fmt.Errorf("multicast group %s on interface %d: MCAST_MSFILTER: %w", c.Group, c.Ifindex, err)
			}
			if ok {
				groups = append(groups, g)
			}
		}
		return nil
	}
	// An IPv6 UDP socket takes IPv4 requests at SOL_IP too
	// (udpv6_getsockopt passes them on to ip_getsockopt).
	if err := ask(unix.SOL_IP, c4); err != nil {
		return err
	}
	if fam == unix.AF_INET6 {
		if err := ask(unix.SOL_IPV6, c6); err != nil {
			return err
		}
	}
	model.SetMcastGroups(isk, groups)

	var o model.McastOpts
	var errs []error
	geti := func(level, opt int) uint32 {
		v, err := unix.GetsockoptInt(cfd, level, opt)
		errs = append(errs, err)
		return uint32(v)
	}
	o.TTL = geti(unix.SOL_IP, unix.IP_MULTICAST_TTL)
	o.Loop = geti(unix.SOL_IP, unix.IP_MULTICAST_LOOP)
	o.All = geti(unix.SOL_IP, unix.IP_MULTICAST_ALL)
	ifa, err := unix.GetsockoptInet4Addr(cfd, unix.SOL_IP, unix.IP_MULTICAST_IF)
	errs = append(errs, err)
	o.IfAddr = ifa
	idx, idxErr := k.mcIndex.of(cfd)
	o.IfIndex = idx
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("IPv4 multicast options: %w", err)
	}
	o.V4 = true
	// A socket that uses IPv4 multicast (a member of an IPv4 group, or
	// with IPv4 multicast options of its own) whose interface index is
	// not known is refused: it may have been set by index alone.
	v4groups := 0
	for _, g := range groups {
		if g.Level == unix.SOL_IP {
			v4groups++
		}
	}
	if idxErr != nil && (v4groups > 0 || o.TTL != 1 || o.Loop != 1 || o.All != 1 || o.IfAddr != [4]byte{}) {
		return refuse(fmt.Sprintf("it uses IPv4 multicast, and the interface index of its IP_MULTICAST_IF, which getsockopt does not show, cannot be read (%v): ckpt reads it with a BPF iterator, which needs a kernel with BTF (/sys/kernel/btf/vmlinux) and a bound socket", idxErr))
	}
	if fam == unix.AF_INET6 {
		errs = nil
		o.Hops = geti(unix.SOL_IPV6, unix.IPV6_MULTICAST_HOPS)
		o.Loop6 = geti(unix.SOL_IPV6, unix.IPV6_MULTICAST_LOOP)
		o.All6 = geti(unix.SOL_IPV6, unix.IPV6_MULTICAST_ALL)
		o.IfIndex6 = geti(unix.SOL_IPV6, unix.IPV6_MULTICAST_IF)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("IPv6 multicast options: %w", err)
		}
		o.V6 = true
	}
	model.SetMcastOpts(isk, o)
	return nil
}

// setMcast gives ckpt's copy c of a restored UDP socket its dumped
// multicast options and groups.
func setMcast(c int, isk *skinet.InetSkEntry) error {
	o, ok, err := model.GetMcastOpts(isk)
	if err != nil {
		return err
	}
	if ok {
		var errs []error
		set := func(level, opt int, v uint32) {
			if err := setInt(c, level, opt, int(v)); err != nil {
				errs = append(errs, err)
			}
		}
		if o.V4 {
			set(unix.SOL_IP, unix.IP_MULTICAST_TTL, o.TTL)
			set(unix.SOL_IP, unix.IP_MULTICAST_LOOP, o.Loop)
			set(unix.SOL_IP, unix.IP_MULTICAST_ALL, o.All)
			if o.IfIndex != 0 {
				// Index and address, as a struct ip_mreqn sets them.
				mr := &unix.IPMreqn{Address: o.IfAddr, Ifindex: int32(o.IfIndex)}
				if err := unix.SetsockoptIPMreqn(c, unix.SOL_IP, unix.IP_MULTICAST_IF, mr); err != nil {
					errs = append(errs, fmt.Errorf("IP_MULTICAST_IF interface %d address %s: %w", o.IfIndex, netip.AddrFrom4(o.IfAddr), err))
				}
			} else if o.IfAddr != [4]byte{} {
				if err := unix.SetsockoptInet4Addr(c, unix.SOL_IP, unix.IP_MULTICAST_IF, o.IfAddr); err != nil {
					errs = append(errs, fmt.Errorf("IP_MULTICAST_IF %s: %w", netip.AddrFrom4(o.IfAddr), err))
				}
			}
		}
		if o.V6 {
			set(unix.SOL_IPV6, unix.IPV6_MULTICAST_HOPS, o.Hops)
			set(unix.SOL_IPV6, unix.IPV6_MULTICAST_LOOP, o.Loop6)
			set(unix.SOL_IPV6, unix.IPV6_MULTICAST_ALL, o.All6)
			set(unix.SOL_IPV6, unix.IPV6_MULTICAST_IF, o.IfIndex6)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("multicast options: %w", err)
		}
	}
	groups, err := model.McastGroups(isk)
	if err != nil {
		return err
	}
	for _, g := range groups {
		a, _ := netip.AddrFromSlice(g.Group)
		what := fmt.Sprintf("multicast group %s on interface %d", a, g.Ifindex)
		req, err := uapi.GroupReq(g.Ifindex, g.Group)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := setsockoptBytes(c, g.Level, unix.MCAST_JOIN_GROUP, req); err != nil {
			return fmt.Errorf("join %s: %w", what, err)
		}
		if g.Fmode == unix.MCAST_EXCLUDE && len(g.Sources) == 0 {
			continue // what a join gives
		}
		f, err := uapi.GroupFilter(g.Ifindex, g.Group, g.Fmode, g.Sources)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := setsockoptBytes(c, g.Level, unix.MCAST_MSFILTER, f); err != nil {
			return fmt.Errorf("%s: source filter (mode %d, %d sources): %w", what, g.Fmode, len(g.Sources), err)
		}
	}
	return nil
}

// setsockoptBytes is setsockopt with a raw option value.
func setsockoptBytes(fd, level, opt int, b []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
