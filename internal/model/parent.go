//go:build linux && amd64

package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/image"
)

// ParentLink is the name of the symlink in an images directory that
// points to the images directory of its parent in a pre-copy chain
// (CRIU's "parent", relative to the directory that holds it). Pagemap
// entries flagged in_parent (image.PEParent) find their pages there.
const ParentLink = "parent"

// InParent reports whether a pagemap entry's pages are in the parent
// dump (CRIU writes flags PE_PARENT; older images in_parent).
func InParent(e *pagemap.PagemapEntry) bool {
	return e.GetFlags()&image.PEParent != 0 || e.GetInParent()
}

// AddParent records that nrPages pages from vaddr are unchanged since the
// parent dump, whose images hold them: no bytes in this pages image.
func (w *PagesWriter) AddParent(vaddr, nrPages uint64) {
	w.pm = append(w.pm, &pagemap.PagemapEntry{
		Vaddr: proto.Uint64(vaddr), NrPages: proto.Uint64(nrPages),
		CompatNrPages: proto.Uint32(uint32(nrPages)), Flags: proto.Uint32(image.PEParent),
		InParent: proto.Bool(true),
	})
}

// ParentDir returns the images directory dir's parent link points to,
// "" if dir has none.
func ParentDir(dir string) (string, error) {
	link, err := os.Readlink(filepath.Join(dir, ParentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("parent link of %s: %w", dir, err)
	}
	if !filepath.IsAbs(link) {
		link = filepath.Join(dir, link)
	}
	return link, nil
}

// PageRange is a run of pages: NrPages pages from Vaddr.
type PageRange struct{ Vaddr, NrPages uint64 }

// ChainPages returns, sorted, the pages the images in dir hold for
// process pid, in their pages image or in_parent: what a later dump
// with dir as its parent may leave out. No pagemap: none.
func ChainPages(dir string, pid int) ([]PageRange, error) {
	d := &Dump{Dir: image.Dir{Path: dir}}
	_, pm, err := d.readPagemap(image.PagemapName(pid))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []PageRange
	for _, e := range pm {
		if e.GetFlags()&image.PEPresent != 0 || InParent(e) {
			out = append(out, PageRange{e.GetVaddr(), entryPages(e)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Vaddr < out[j].Vaddr })
	return out, nil
}

// ParentRun is a run of in_parent pages found in an ancestor dump: its
// NrPages pages from Vaddr are at Off in that dump's pages image, Path.
type ParentRun struct {
	Vaddr, NrPages uint64
	Path           string
	Off            int64
}

// maxChain bounds a chain of parents (a link loop otherwise never ends).
const maxChain = 64

// ParentRuns resolves the in_parent entries of the process's pagemap
// through the chain of parent links, recursively, into runs of the
// ancestors' pages images, sorted by address. A broken chain (a parent
// directory missing, or a page that no ancestor holds) is an error
// wrapping ckerr.ErrCorruptImage that names the directory and the page.
func (p *Process) ParentRuns() ([]ParentRun, error) {
	var want []PageRange
	for _, e := range p.Pagemap {
		if InParent(e) {
			want = append(want, PageRange{e.GetVaddr(), entryPages(e)})
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	var out []ParentRun
	dir := p.Tree.Dir.Path
	for depth := 0; len(want) > 0; depth++ {
		parent, err := ParentDir(dir)
		if err != nil {
			return nil, err
		}
		name := image.PagemapName(p.Pid)
		if parent == "" {
			return nil, fmt.Errorf("%s in %s: %d pages at %#x are in the parent dump, but %s has no %q link: %w", name, dir, want[0].NrPages, want[0].Vaddr, dir, ParentLink, ckerr.ErrCorruptImage)
		}
		if depth == maxChain {
			return nil, fmt.Errorf("%s: a chain of more than %d parent dumps (a loop of parent links?): %w", dir, maxChain, ckerr.ErrCorruptImage)
		}
		if st, err := os.Stat(parent); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("the parent images directory %s of %s is missing (%v): its pages are needed: %w", parent, dir, err, ckerr.ErrCorruptImage)
		}
		pd := &Dump{Dir: image.Dir{Path: parent}}
		id, pm, err := pd.readPagemap(name)
		if err != nil {
			return nil, fmt.Errorf("parent images directory %s: %w", parent, err)
		}
		path := filepath.Join(parent, image.PagesName(id))
		idx := indexPagemap(pm)
		var next []PageRange
		for _, w := range want {
			got, missing := resolveIn(idx, w, path)
			out = append(out, got...)
			for _, m := range missing {
				if m.inParent {
					next = append(next, m.r)
					continue
				}
				return nil, fmt.Errorf("%s in %s: page %#x is in the parent dump, but %s in %s does not hold it: %w", name, dir, m.r.Vaddr, name, parent, ckerr.ErrCorruptImage)
			}
		}
		want, dir = next, parent
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Vaddr < out[j].Vaddr })
	return out, nil
}

// gap is a part of a wanted range that a pagemap does not hold itself:
// in_parent there too, or not at all.
type gap struct {
	r        PageRange
	inParent bool
}

// pmIndex is a pagemap's entries sorted by address, each with its
// offset in the pages image.
type pmIndex []struct {
	s, t              uint64
	off               int64
	present, inParent bool
}

func indexPagemap(pm []*pagemap.PagemapEntry) pmIndex {
	var idx pmIndex
	var off int64
	for _, e := range pm {
		n := entryPages(e)
		present := e.GetFlags()&image.PEPresent != 0
		idx = append(idx, struct {
			s, t              uint64
			off               int64
			present, inParent bool
		}{e.GetVaddr(), e.GetVaddr() + n*x86.PageSize, off, present, InParent(e)})
		if present {
			off += int64(n * x86.PageSize)
		}
	}
	sort.SliceStable(idx, func(i, j int) bool { return idx[i].s < idx[j].s })
	return idx
}

// resolveIn finds the pages of w in the indexed pagemap idx, whose pages
// image is at path: the runs it holds, and the parts it does not.
func resolveIn(idx pmIndex, w PageRange, path string) ([]ParentRun, []gap) {
	var got []ParentRun
	var gaps []gap
	at, end := w.Vaddr, w.Vaddr+w.NrPages*x86.PageSize
	for at < end {
		// The last entry starting at or below at.
		i := sort.Search(len(idx), func(i int) bool { return idx[i].s > at }) - 1
		if i < 0 || at >= idx[i].t {
			gaps = append(gaps, gap{PageRange{at, 1}, false})
			return got, gaps
		}
		e := idx[i]
		stop := min(e.t, end)
		r := PageRange{at, (stop - at) / x86.PageSize}
		switch {
		case e.present:
			got = append(got, ParentRun{Vaddr: at, NrPages: r.NrPages, Path: path, Off: e.off + int64(at-e.s)})
		default:
			gaps = append(gaps, gap{r, e.inParent})
		}
		at = stop
	}
	return got, gaps
}
