//go:build linux && amd64

// Package netlock keeps the packets of dumped TCP connections away from
// the kernel between the dump and the restore: while a connection has no
// socket, a packet from its peer would be answered with a reset and the
// peer would drop the connection. It adds nftables rules (table "ckpt",
// family inet, in the network namespace of the connection) that drop
// the connection's packets in both directions, one rule per direction
// tagged with the connection, and removes them once the connection is
// restored, or when `ckpt net-unlock` lifts them for a dump that will
// not be restored (Locked lists them). CRIU does the same with its
// network lock.
//
// It must not touch any other table: the rules are found again by their
// tag, and the table goes once it holds none.
package netlock

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Conn is one TCP connection, seen from its dumped end.
type Conn struct {
	Local, Peer netip.AddrPort
}

// String names the connection; it is also the tag of its rules.
func (c Conn) String() string { return "ckpt " + c.Local.String() + " " + c.Peer.String() }

const tableName = "ckpt"

var table = &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}

// conn opens nftables in the network namespace at nsPath ("" for ckpt's).
func conn(nsPath string) (*nftables.Conn, func(), error) {
	if nsPath == "" {
		c, err := nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(nsPath)
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

func chains() (in, out *nftables.Chain) {
	accept := nftables.ChainPolicyAccept
	in = &nftables.Chain{Name: "input", Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept}
	out = &nftables.Chain{Name: "output", Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept}
	return in, out
}

// match is the expressions that match TCP packets from src to dst.
func match(src, dst netip.AddrPort) []expr.Any {
	proto, saddr, daddr, alen := byte(unix.NFPROTO_IPV4), uint32(12), uint32(16), uint32(4)
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		proto, saddr, daddr, alen = unix.NFPROTO_IPV6, 8, 24, 16
	}
	addr := func(a netip.Addr) []byte {
		if alen == 4 {
			b := a.Unmap().As4()
			return b[:]
		}
		b := a.As16()
		return b[:]
	}
	port := func(p uint16) []byte { return []byte{byte(p >> 8), byte(p)} }
	cmp := func(b []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp([]byte{proto}),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp([]byte{unix.IPPROTO_TCP}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddr, Len: alen}, cmp(addr(src.Addr())),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: alen}, cmp(addr(dst.Addr())),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}, cmp(port(src.Port())),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, cmp(port(dst.Port())),
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// Lock drops every packet of the connections cs, in the network
// namespace at nsPath ("" for ckpt's own), until Unlock: all of them in
// one transaction, as many as a batch holds.
func Lock(nsPath string, cs ...Conn) error {
	if len(cs) == 0 {
		return nil
	}
	what := cs[0].String()
	if len(cs) > 1 {
		what = fmt.Sprintf("%s and %d other connections", what, len(cs)-1)
	}
	nc, done, err := conn(nsPath)
	if err != nil {
		return fmt.Errorf("network lock of %s: nftables: %w", what, err)
	}
	defer done()
	in, out := chains()
	nc.AddTable(table)
	nc.AddChain(in)
	nc.AddChain(out)
	for i, c := range cs {
		tag := []byte(c.String())
		nc.AddRule(&nftables.Rule{Table: table, Chain: in, Exprs: match(c.Peer, c.Local), UserData: tag})
		nc.AddRule(&nftables.Rule{Table: table, Chain: out, Exprs: match(c.Local, c.Peer), UserData: tag})
		// A batch's acknowledgements must fit the socket's receive
		// buffer (ENOBUFS otherwise).
		if (i+1)%lockEvery == 0 {
			if err := nc.Flush(); err != nil {
				return errors.Join(fmt.Errorf("network lock of %s: add nftables rules: %w", what, err), unlockIn(nc, cs[:i+1]))
			}
		}
	}
	if err := nc.Flush(); err != nil {
		return errors.Join(fmt.Errorf("network lock of %s: add nftables rules: %w", what, err), unlockIn(nc, cs))
	}
	return nil
}

// lockEvery is how many connections' rules one nftables batch adds, and
// flushEvery how many it removes: a larger batch overflows the netlink
// socket's receive buffer with its answers (ENOBUFS; each added rule is
// echoed back whole).
const (
	lockEvery  = 32
	flushEvery = 128
)

// Unlock removes the rules of the connections cs, and the table once it
// holds none; a connection without rules is no error. The rules are
// listed once for all of cs: a restore of many connections unlocks them
// together.
func Unlock(nsPath string, cs ...Conn) error {
	if len(cs) == 0 {
		return nil
	}
	nc, done, err := conn(nsPath)
	if err != nil {
		return fmt.Errorf("network unlock of %s: nftables: %w", cs[0], err)
	}
	defer done()
	return unlockIn(nc, cs)
}

// unlockIn is Unlock on an open nftables connection.
func unlockIn(nc *nftables.Conn, cs []Conn) error {
	what := cs[0].String()
	if len(cs) > 1 {
		what = fmt.Sprintf("%s and %d other connections", what, len(cs)-1)
	}
	if _, err := nc.ListTableOfFamily(tableName, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("network unlock of %s: %w", what, err)
	}
	tags := make(map[string]bool, len(cs))
	for _, c := range cs {
		tags[c.String()] = true
	}
	in, out := chains()
	left, pending := 0, 0
	for _, ch := range []*nftables.Chain{in, out} {
		rules, err := nc.GetRules(table, ch)
		if err != nil {
			return fmt.Errorf("network unlock of %s: list rules: %w", what, err)
		}
		for _, r := range rules {
			if !tags[string(r.UserData)] {
				left++
				continue
			}
			if err := nc.DelRule(r); err != nil {
				return fmt.Errorf("network unlock of %s: %w", what, err)
			}
			if pending++; pending == 2*flushEvery {
				if err := nc.Flush(); err != nil {
					return fmt.Errorf("network unlock of %s: remove nftables rules: %w", what, err)
				}
				pending = 0
			}
		}
	}
	if left == 0 {
		nc.DelTable(table)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("network unlock of %s: remove nftables rules: %w", what, err)
	}
	return nil
}

// ParseTag reads back the connection a rule's tag (Conn.String) names.
func ParseTag(tag string) (Conn, bool) {
	f := strings.Fields(tag)
	if len(f) != 3 || f[0] != "ckpt" {
		return Conn{}, false
	}
	l, err1 := netip.ParseAddrPort(f[1])
	p, err2 := netip.ParseAddrPort(f[2])
	if err1 != nil || err2 != nil {
		return Conn{}, false
	}
	return Conn{Local: l, Peer: p}, true
}

// Locked lists the connections that have rules in the network namespace
// at nsPath ("" for ckpt's own), each once; none when there is no table
// ckpt. Rules of the table that carry no tag of a connection are not
// listed (and never removed by Unlock).
func Locked(nsPath string) ([]Conn, error) {
	nc, done, err := conn(nsPath)
	if err != nil {
		return nil, fmt.Errorf("network lock: nftables: %w", err)
	}
	defer done()
	if _, err := nc.ListTableOfFamily(tableName, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("network lock: table inet %s: %w", tableName, err)
	}
	var out []Conn
	seen := map[Conn]bool{}
	in, outc := chains()
	for _, ch := range []*nftables.Chain{in, outc} {
		rules, err := nc.GetRules(table, ch)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("network lock: list rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if c, ok := ParseTag(string(r.UserData)); ok && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}
