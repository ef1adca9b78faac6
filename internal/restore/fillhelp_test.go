//go:build linux && amd64

package restore

import (
	"encoding/binary"
	"reflect"
	"testing"
)

func encIov(v ...uint64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b
}

func TestIovSlice(t *testing.T) {
	// Three runs: 0x1000 bytes at 0x10000, 0x3000 at 0x20000, 0x2000 at
	// 0x30000, for the image's bytes from 0x5000 on.
	iov := encIov(0x10000, 0x1000, 0x20000, 0x3000, 0x30000, 0x2000)
	for _, c := range []struct {
		a, b int64
		want []byte
	}{
		{0x5000, 0xb000, iov},
		{0x5000, 0x6000, encIov(0x10000, 0x1000)},
		{0x6000, 0x9000, encIov(0x20000, 0x3000)},
		{0x7000, 0xa000, encIov(0x21000, 0x2000, 0x30000, 0x1000)},
		{0x5000, 0x7000, encIov(0x10000, 0x1000, 0x20000, 0x1000)},
		{0xa000, 0xb000, encIov(0x31000, 0x1000)},
	} {
		if got := iovSlice(iov, 0x5000, c.a, c.b); !reflect.DeepEqual(got, c.want) {
			t.Errorf("iovSlice(%#x, %#x) = %x, want %x", c.a, c.b, got, c.want)
		}
	}
}

func TestDropIov(t *testing.T) {
	iov := encIov(0x10000, 0x1000, 0x20000, 0x3000)
	if got, want := dropIov(append([]byte(nil), iov...), 0x1000), encIov(0x20000, 0x3000); !reflect.DeepEqual(got, want) {
		t.Errorf("drop a whole iovec: %x, want %x", got, want)
	}
	if got, want := dropIov(append([]byte(nil), iov...), 0x2000), encIov(0x21000, 0x2000); !reflect.DeepEqual(got, want) {
		t.Errorf("drop into the second: %x, want %x", got, want)
	}
	if got := dropIov(append([]byte(nil), iov...), 0x4000); len(got) != 0 {
		t.Errorf("drop all: %x, want nothing", got)
	}
}

func TestFillShareMeets(t *testing.T) {
	// The task takes from the front, helpers from the back; every byte
	// is taken once.
	s := &fillShare{lo: 0, hi: 5*fillPiece + 4096}
	seen := map[int64]bool{}
	for i := 0; ; i++ {
		var a, b int64
		var ok bool
		if i%3 == 0 {
			a, b, ok = s.rear()
		} else {
			a, b, ok = s.front()
		}
		if !ok {
			break
		}
		for p := a; p < b; p += 4096 {
			if seen[p] {
				t.Fatalf("byte %#x taken twice", p)
			}
			seen[p] = true
		}
	}
	if len(seen) != (5*fillPiece+4096)/4096 {
		t.Errorf("%d pages taken, want %d", len(seen), (5*fillPiece+4096)/4096)
	}
}
