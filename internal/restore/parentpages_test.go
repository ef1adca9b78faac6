//go:build linux && amd64

package restore

import (
	"reflect"
	"testing"

	"github.com/ckpt/ckpt/internal/model"
)

func TestMergeOverOwn(t *testing.T) {
	const a, pg = 0x10000, 4096
	// The parent holds pages 0-19 contiguously (offset = address - a);
	// the dump's own pages are 2 and 9; page 5 is in neither (freed).
	runs := []model.ParentRun{
		{Vaddr: a, NrPages: 2, Path: "p", Off: 0},
		{Vaddr: a + 3*pg, NrPages: 2, Path: "p", Off: 3 * pg},
		{Vaddr: a + 6*pg, NrPages: 3, Path: "p", Off: 6 * pg},
		{Vaddr: a + 10*pg, NrPages: 2, Path: "q", Off: 0},
	}
	own := []span{{a + 2*pg, a + 3*pg}, {a + 9*pg, a + 10*pg}}
	got := mergeOverOwn(runs, own)
	want := []model.ParentRun{
		{Vaddr: a, NrPages: 5, Path: "p", Off: 0},             // over own page 2
		{Vaddr: a + 6*pg, NrPages: 3, Path: "p", Off: 6 * pg}, // not over freed page 5
		{Vaddr: a + 10*pg, NrPages: 2, Path: "q", Off: 0},     // another image
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeOverOwn:\n got %+v\nwant %+v", got, want)
	}
}
