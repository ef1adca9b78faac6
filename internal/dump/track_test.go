//go:build linux && amd64

package dump

import (
	"reflect"
	"testing"

	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

const pg = 4096

func TestCleanPages(t *testing.T) {
	// Area of 10 pages at 0x10000; pages 2 and 5-6 written; the parent
	// holds pages 0-7.
	written := []uapi.PageRegion{{Start: 0x10000 + 2*pg, End: 0x10000 + 3*pg}, {Start: 0x10000 + 5*pg, End: 0x10000 + 7*pg}}
	parent := []model.PageRange{{Vaddr: 0x1000, NrPages: 1}, {Vaddr: 0x10000, NrPages: 8}}
	got := cleanPages(0x10000, 0x10000+10*pg, written, parent)
	want := []model.PageRange{{Vaddr: 0x10000, NrPages: 2}, {Vaddr: 0x10000 + 3*pg, NrPages: 2}, {Vaddr: 0x10000 + 7*pg, NrPages: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cleanPages: %v, want %v", got, want)
	}
}

func TestSplitClean(t *testing.T) {
	type piece struct {
		start, n uint64
		parent   bool
	}
	clean := []model.PageRange{{Vaddr: 0x10000, NrPages: 2}, {Vaddr: 0x10000 + 3*pg, NrPages: 4}}
	var got []piece
	// The code page, 0x10000+4*pg, is never clean.
	splitClean(clean, 0x10000, 8, 0x10000+4*pg, func(s, n uint64, p bool) { got = append(got, piece{s, n, p}) })
	want := []piece{{0x10000, 2, true}, {0x10000 + 2*pg, 1, false}, {0x10000 + 3*pg, 1, true}, {0x10000 + 4*pg, 1, false}, {0x10000 + 5*pg, 2, true}, {0x10000 + 7*pg, 1, false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitClean: %v\nwant %v", got, want)
	}
	got = nil
	splitClean(nil, 0x20000, 3, 0, func(s, n uint64, p bool) { got = append(got, piece{s, n, p}) })
	if !reflect.DeepEqual(got, []piece{{0x20000, 3, false}}) {
		t.Errorf("splitClean without clean pages: %v", got)
	}
}

func TestPteMarker(t *testing.T) {
	// What /proc/PID/pagemap showed for a hole of a tracked area: swapped,
	// uffd-wp, swap type 31 (offset 1: PTE_MARKER_UFFD_WP).
	marker := procfs.PagemapEntry(1<<62 | 1<<57 | 63)
	swapped := procfs.PagemapEntry(1<<62 | 1<<57 | 0x1234<<5)
	if !pteMarker(marker) || pteMarker(swapped) {
		t.Errorf("pteMarker: marker %v, swapped page %v", pteMarker(marker), pteMarker(swapped))
	}
}
