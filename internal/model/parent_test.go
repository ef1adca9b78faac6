//go:build linux && amd64

package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/image"
)

// writeLevel writes, in dir, the pagemap of process 7 with entries (a
// negative page count is an in_parent entry) and a pages image of the
// right size, and links dir to parent ("" for none).
func writeLevel(t *testing.T, dir, parent string, entries [][2]int64) []*pagemap.PagemapEntry {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	msgs := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(1)}}
	var pm []*pagemap.PagemapEntry
	var size int64
	for _, e := range entries {
		n, flags := e[1], uint32(image.PEPresent)
		if n < 0 {
			n, flags = -n, image.PEParent
		} else {
			size += n * page
		}
		pe := &pagemap.PagemapEntry{Vaddr: proto.Uint64(uint64(e[0])), NrPages: proto.Uint64(uint64(n)), CompatNrPages: proto.Uint32(uint32(n)), Flags: proto.Uint32(flags)}
		pm = append(pm, pe)
		msgs = append(msgs, pe)
	}
	d := image.Dir{Path: dir}
	if err := d.Write(image.PagemapName(7), image.MagicPagemap, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, image.PagesName(1)), make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if parent != "" {
		if err := os.Symlink(parent, filepath.Join(dir, ParentLink)); err != nil {
			t.Fatal(err)
		}
	}
	return pm
}

func TestParentRuns(t *testing.T) {
	root := t.TempDir()
	const a = 0x10000
	// pre1 holds pages 0-9; pre2 rewrote page 2, the rest in pre1; final
	// rewrote page 5: pages 0-4 (2 from pre2) and 6-9 in the parents.
	writeLevel(t, filepath.Join(root, "pre1"), "", [][2]int64{{a, 10}})
	writeLevel(t, filepath.Join(root, "pre2"), "../pre1", [][2]int64{{a, -2}, {a + 2*page, 1}, {a + 3*page, -7}})
	pm := writeLevel(t, filepath.Join(root, "final"), "../pre2", [][2]int64{{a, -5}, {a + 5*page, 1}, {a + 6*page, -4}})
	p := &Process{Tree: &Dump{Dir: image.Dir{Path: filepath.Join(root, "final")}}, Pid: 7, Pagemap: pm}
	runs, err := p.ParentRuns()
	if err != nil {
		t.Fatal(err)
	}
	pre1 := filepath.Join(root, "pre1", "pages-1.img")
	pre2 := filepath.Join(root, "pre2", "pages-1.img")
	want := []ParentRun{
		{a, 2, pre1, 0},
		{a + 2*page, 1, pre2, 0},
		{a + 3*page, 2, pre1, 3 * page},
		{a + 6*page, 4, pre1, 6 * page},
	}
	if len(runs) != len(want) {
		t.Fatalf("runs %+v, want %+v", runs, want)
	}
	for i := range want {
		if runs[i] != want[i] {
			t.Errorf("run %d: %+v, want %+v", i, runs[i], want[i])
		}
	}
	got, err := ChainPages(filepath.Join(root, "final"), 7)
	if err != nil || len(got) != 3 || got[0] != (PageRange{a, 5}) {
		t.Errorf("ChainPages: %v, %v", got, err)
	}

	// A page no ancestor holds.
	pm2 := writeLevel(t, filepath.Join(root, "beyond"), "../pre2", [][2]int64{{a + 9*page, -2}})
	p2 := &Process{Tree: &Dump{Dir: image.Dir{Path: filepath.Join(root, "beyond")}}, Pid: 7, Pagemap: pm2}
	if _, err := p2.ParentRuns(); err == nil || !errors.Is(err, ckerr.ErrCorruptImage) || !strings.Contains(err.Error(), "0x1a000") {
		t.Errorf("a page beyond the parent: %v", err)
	}
	// A parent directory missing.
	if err := os.Rename(filepath.Join(root, "pre1"), filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ParentRuns(); err == nil || !strings.Contains(err.Error(), "pre1") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing parent: %v", err)
	}
	// No parent link at all.
	pm3 := writeLevel(t, filepath.Join(root, "orphan"), "", [][2]int64{{a, -1}})
	p3 := &Process{Tree: &Dump{Dir: image.Dir{Path: filepath.Join(root, "orphan")}}, Pid: 7, Pagemap: pm3}
	if _, err := p3.ParentRuns(); err == nil || !strings.Contains(err.Error(), "no \"parent\" link") {
		t.Errorf("no parent link: %v", err)
	}
}
