//go:build linux && amd64

package restore

import "testing"

func TestSpansCover(t *testing.T) {
	vmas := []span{{0x1000, 0x3000}, {0x3000, 0x5000}, {0x6000, 0x7000}}
	for _, c := range []struct {
		s  span
		ok bool
	}{
		{span{0x1000, 0x2000}, true},
		{span{0x2000, 0x4000}, true}, // a CRIU pagemap run over two adjacent VMAs
		{span{0x1000, 0x5000}, true},
		{span{0x4000, 0x6000}, false}, // into the hole
		{span{0x5000, 0x6000}, false},
		{span{0x6000, 0x8000}, false},
		{span{0x0, 0x1000}, false},
	} {
		if got := spansCover(c.s, vmas); got != c.ok {
			t.Errorf("spansCover(%#x-%#x) = %v, want %v", c.s.start, c.s.end, got, c.ok)
		}
	}
}
