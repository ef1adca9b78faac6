//go:build linux && amd64

package restore

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

const pg = x86.PageSize

func TestSubtract(t *testing.T) {
	for _, c := range []struct {
		s    span
		out  []span
		want []span
	}{
		{span{0, 10}, nil, []span{{0, 10}}},
		{span{0, 10}, []span{{0, 10}}, nil},
		{span{0, 10}, []span{{2, 4}, {6, 8}}, []span{{0, 2}, {4, 6}, {8, 10}}},
		{span{0, 10}, []span{{5, 20}}, []span{{0, 5}}},
		{span{5, 10}, []span{{0, 6}, {9, 12}}, []span{{6, 9}}},
	} {
		if got := subtract(c.s, c.out); !reflect.DeepEqual(got, c.want) {
			t.Errorf("subtract(%v, %v) = %v, want %v", c.s, c.out, got, c.want)
		}
	}
}

func TestCovered(t *testing.T) {
	cur := []procfs.VMA{{Start: 0x1000, End: 0x3000}, {Start: 0x3000, End: 0x5000}, {Start: 0x6000, End: 0x7000}}
	if !covered(span{0x2000, 0x5000}, cur) {
		t.Error("a span over two adjacent mappings is covered")
	}
	if covered(span{0x4000, 0x7000}, cur) {
		t.Error("a span over a hole is not covered")
	}
	if covered(span{0x8000, 0x9000}, cur) {
		t.Error("a span outside every mapping is not covered")
	}
}

func TestKeepEdge(t *testing.T) {
	keep := []span{{0x3000, 0x5000}, {0x8000, 0x9000}}
	for addr, want := range map[uint64]uint64{0x1000: 0x3000, 0x3000: 0x5000, 0x4000: 0x5000, 0x5000: 0x8000, 0x9000: ^uint64(0)} {
		if got := keepEdge(addr, keep); got != want {
			t.Errorf("keepEdge(%#x) = %#x, want %#x", addr, got, want)
		}
	}
}

type fakeMem struct{ writes []span }

func (m *fakeMem) WriteAt(b []byte, addr uint64) error {
	m.writes = append(m.writes, span{addr, addr + uint64(len(b))})
	return nil
}

// TestWriteInherited: only the pages that differ from the parent's, or
// that the parent's image lacks, are written, in runs.
func TestWriteInherited(t *testing.T) {
	// The parent's image: pages 0-3 at 0x10000, page 6 at 0x16000.
	parent := bytes.Repeat([]byte{1}, 5*pg)
	f, err := os.CreateTemp(t.TempDir(), "pages")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(parent); err != nil {
		t.Fatal(err)
	}
	pix := &pageIndex{f: f, runs: []model.PageRun{{Vaddr: 0x10000, NrPages: 4, Off: 0}, {Vaddr: 0x16000, NrPages: 1, Off: 4 * pg}}}
	// The child's pages 0-7: 1 and 2 differ, 4 and 5 the parent lacks,
	// 6 is the same, 7 the parent lacks.
	child := bytes.Repeat([]byte{1}, 8*pg)
	child[1*pg] = 9
	child[2*pg+100] = 9
	m := &fakeMem{}
	r := &restorer{}
	n, err := r.writeInherited(pix, m, child, 0x10000, make([]byte, len(child)))
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0x11000, 0x13000}, {0x14000, 0x16000}, {0x17000, 0x18000}}
	if !reflect.DeepEqual(m.writes, want) {
		t.Errorf("writes %v, want %v", m.writes, want)
	}
	if n != 5*pg {
		t.Errorf("wrote %d bytes, want %d", n, 5*pg)
	}
	if got := pix.present(span{0x12000, 0x17000}); !reflect.DeepEqual(got, []span{{0x12000, 0x14000}, {0x16000, 0x17000}}) {
		t.Errorf("present = %v", got)
	}
}
