//go:build linux && amd64

package e2e

import (
	"os"
	"os/exec"
	"testing"

	"github.com/ckpt/ckpt/internal/netlock"
)

// TestNetUnlock: a dump with --tcp-established of a connection to a peer
// outside the tree (tcp_outside) leaves the connection locked in the
// network; without a restore, `ckpt net-unlock -D DIR` removes exactly
// its rules, and says so; a second run finds nothing locked.
func TestNetUnlock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	locked := func() map[netlock.Conn]bool {
		cs, err := netlock.Locked("")
		if err != nil {
			t.Fatal(err)
		}
		m := map[netlock.Conn]bool{}
		for _, c := range cs {
			m[c] = true
		}
		return m
	}
	before := locked()
	img := dumpOne(t, "tcp_outside", false, "--tcp-established")
	// The dump's locks: what was not locked before (other tests' locks
	// may come and go meanwhile, hence the peer's address too).
	var mine []netlock.Conn
	for c := range locked() {
		if !before[c] && c.Peer.Addr().String() == "127.0.0.1" {
			mine = append(mine, c)
		}
	}
	t.Cleanup(func() { _ = netlock.Unlock("", mine...) }) // if net-unlock fails
	if len(mine) != 1 {
		t.Fatalf("the dump locked %v, want tcp_outside's one connection to 127.0.0.1", mine)
	}

	out, err := exec.Command(ckptBin, "net-unlock", "-D", img).CombinedOutput()
	if err != nil {
		t.Fatalf("net-unlock: %v: %s", err, out)
	}
	if want := "unlocked " + mine[0].String() + "\n"; string(out) != want {
		t.Errorf("net-unlock said %q, want %q", out, want)
	}
	if locked()[mine[0]] {
		t.Errorf("%s is still locked after net-unlock", mine[0])
	}
	out, err = exec.Command(ckptBin, "net-unlock", "-D", img).CombinedOutput()
	if err != nil || string(out) != "no connection of the dump in "+img+" is locked\n" {
		t.Errorf("second net-unlock: %v: %q", err, out)
	}
	reapAdopted()
}
