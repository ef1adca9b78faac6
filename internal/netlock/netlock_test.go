//go:build linux && amd64

package netlock

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

// A locked connection's packets are dropped: a client bound to the locked
// local address cannot reach the peer; once unlocked it can, and the
// table is gone.
func TestLockUnlock(t *testing.T) {
	if nc, err := nftables.New(); err != nil {
		t.Skip(err)
	} else if _, err := nc.ListTables(); err != nil {
		t.Skip("nftables:", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer := l.Addr().(*net.TCPAddr).AddrPort()
	probe, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := probe.Addr().(*net.TCPAddr).AddrPort() // a free port
	probe.Close()
	c := Conn{Local: local, Peer: peer}
	if err := Lock("", c); err != nil {
		t.Skip(err) // no nftables here
	}
	locked := true
	defer func() {
		if locked {
			_ = Unlock("", c)
		}
	}()
	d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: net.TCPAddrFromAddrPort(local)}
	if conn, err := d.Dial("tcp4", peer.String()); err == nil {
		conn.Close()
		t.Fatal("connected through the lock")
	}
	if err := Unlock("", c); err != nil {
		t.Fatal(err)
	}
	locked = false
	nc, _ := nftables.New()
	if _, err := nc.ListTableOfFamily(tableName, nftables.TableFamilyINet); err == nil {
		t.Error("table left after the last unlock")
	}
	// Another local port (the first may wait in SYN_SENT's aftermath).
	d.LocalAddr = nil
	conn, err := d.Dial("tcp4", peer.String())
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	conn.Close()
	if err := Unlock("", Conn{Local: netip.MustParseAddrPort("127.0.0.1:1"), Peer: peer}); err != nil {
		t.Errorf("unlock without a table: %v", err)
	}
}

// Lock and Unlock of many connections at once: more than one batch of
// rules each way, every one of them gone after the unlock.
func TestLockUnlockMany(t *testing.T) {
	if nc, err := nftables.New(); err != nil {
		t.Skip(err)
	} else if _, err := nc.ListTables(); err != nil {
		t.Skip("nftables:", err)
	}
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	var cs []Conn
	for i := 0; i < 3*lockEvery+5; i++ {
		cs = append(cs, Conn{Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(40000+i)), Peer: peer})
	}
	if err := Lock("", cs...); err != nil {
		t.Skip(err) // no nftables here
	}
	mine := func() int {
		nc, _ := nftables.New()
		in, out := chains()
		n := 0
		for _, ch := range []*nftables.Chain{in, out} {
			rules, _ := nc.GetRules(table, ch)
			for _, r := range rules {
				if strings.HasPrefix(string(r.UserData), "ckpt 127.0.0.2:") {
					n++
				}
			}
		}
		return n
	}
	if n := mine(); n != 2*len(cs) {
		t.Errorf("%d rules after locking %d connections, want %d", n, len(cs), 2*len(cs))
	}
	if err := Unlock("", cs...); err != nil {
		t.Fatal(err)
	}
	if n := mine(); n != 0 {
		t.Errorf("%d rules left after the unlock", n)
	}
}

func TestParseTag(t *testing.T) {
	for _, c := range []Conn{
		{netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("10.1.2.3:80")},
		{netip.MustParseAddrPort("[::1]:5"), netip.MustParseAddrPort("[2001:db8::1]:443")},
	} {
		if got, ok := ParseTag(c.String()); !ok || got != c {
			t.Errorf("%q: %v %v", c.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "ckpt", "ckpt 1.2.3.4:5", "other 1.2.3.4:5 1.2.3.4:6", "ckpt 1.2.3.4 1.2.3.4:6", "ckpt 1.2.3.4:5 1.2.3.4:6 x"} {
		if _, ok := ParseTag(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Locked lists what Lock locked, and no longer what Unlock unlocked.
func TestLocked(t *testing.T) {
	a := Conn{netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.9:2")}
	b := Conn{netip.MustParseAddrPort("[::1]:3"), netip.MustParseAddrPort("[::1]:4")}
	if err := Lock("", a, b); err != nil {
		t.Skip(err) // no nftables here
	}
	defer func() { _ = Unlock("", a, b) }()
	has := func(c Conn) bool {
		cs, err := Locked("")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range cs {
			if x == c {
				return true
			}
		}
		return false
	}
	if !has(a) || !has(b) {
		t.Fatal("a locked connection is not listed")
	}
	if err := Unlock("", a); err != nil {
		t.Fatal(err)
	}
	if has(a) || !has(b) {
		t.Error("after unlocking a: a listed or b not")
	}
}
