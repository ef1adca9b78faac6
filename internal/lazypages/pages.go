//go:build linux && amd64

package lazypages

import (
	"cmp"
	"slices"
	"sort"
)

// pageSize is the unit of userfaultfd's copies here.
const pageSize = 4096

// page is one page of the images that a task's memory still lacks, or
// had (done): where it goes and where it is in the pages image.
type page struct {
	addr uint64
	off  int64
	done bool
	// first marks the first page of a registered area: a copy, which
	// fills one VMA only, does not run on past the area's end into it.
	first bool
}

// pageSet is what one mm still needs from the images: pages sorted by
// address. It follows the task's own changes (remap moves pages, unmap
// and remove drop them) so that no stale page is ever written.
type pageSet struct {
	pages   []page
	pending int
}

// newPageSet returns the set of pages; they need not be sorted.
func newPageSet(pages []page) *pageSet {
	if !slices.IsSortedFunc(pages, byAddr) {
		slices.SortStableFunc(pages, byAddr)
	}
	s := &pageSet{pages: pages}
	for _, p := range pages {
		if !p.done {
			s.pending++
		}
	}
	return s
}

// clone is the set of a child forked from the mm: what the parent still
// lacks, the child lacks too (fork copies only the pages that are there).
func (s *pageSet) clone() *pageSet {
	c := &pageSet{pending: s.pending}
	for _, p := range s.pages {
		if !p.done {
			c.pages = append(c.pages, p)
		}
	}
	return c
}

// find returns the index of the pending page at addr, or -1.
func (s *pageSet) find(addr uint64) int {
	addr &^= pageSize - 1
	i := sort.Search(len(s.pages), func(i int) bool { return s.pages[i].addr >= addr })
	for ; i < len(s.pages) && s.pages[i].addr == addr; i++ {
		if !s.pages[i].done {
			return i
		}
	}
	return -1
}

// run returns how many pages from index i on are pending and follow each
// other in memory and in the image, at most max.
func (s *pageSet) run(i, max int) int {
	n := 1
	for n < max && i+n < len(s.pages) {
		p, q := s.pages[i+n-1], s.pages[i+n]
		if q.done || q.first || q.addr != p.addr+pageSize || q.off != p.off+pageSize {
			break
		}
		n++
	}
	return n
}

// markDone marks n pages from index i as in place.
func (s *pageSet) markDone(i, n int) {
	for j := i; j < i+n; j++ {
		if !s.pages[j].done {
			s.pages[j].done = true
			s.pending--
		}
	}
}

// drop marks the pages in [start, end) as no longer wanted: the task
// unmapped them or dropped them (MADV_DONTNEED); a fault there now reads
// zeros.
func (s *pageSet) drop(start, end uint64) int {
	i := sort.Search(len(s.pages), func(i int) bool { return s.pages[i].addr >= start })
	n := 0
	for ; i < len(s.pages) && s.pages[i].addr < end; i++ {
		if !s.pages[i].done {
			s.pages[i].done = true
			s.pending--
			n++
		}
	}
	return n
}

// remap moves the pending pages in [from, from+n) to [to, to+n), as
// mremap moved the memory; done pages are forgotten on the way.
func (s *pageSet) remap(from, to, n uint64) {
	kept := s.pages[:0]
	for _, p := range s.pages {
		if p.done {
			continue
		}
		if p.addr >= from && p.addr < from+n {
			p.addr = p.addr - from + to
		}
		kept = append(kept, p)
	}
	s.pages = kept
	slices.SortStableFunc(s.pages, byAddr)
}

// next returns the index of the first pending page at or after index i,
// wrapping around once, or -1 when none is pending.
func (s *pageSet) next(i int) int {
	if s.pending == 0 {
		return -1
	}
	for k := 0; k < len(s.pages); k++ {
		j := (i + k) % len(s.pages)
		if !s.pages[j].done {
			return j
		}
	}
	return -1
}

func byAddr(a, b page) int { return cmp.Compare(a.addr, b.addr) }
