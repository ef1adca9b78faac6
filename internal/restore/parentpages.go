//go:build linux && amd64

package restore

import (
	"fmt"
	"os"
	"sort"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
)

// fillFromParents puts in, before the dump's own pages, the pages a
// pre-copy dump left in its parent dumps (pagemap entries in_parent, resolved through the chain of parent
// links at Load): each run goes as a run of the dump's own pages image
// would (doRun), read from the pages image of the ancestor that holds it,
// which the task opens itself for the preadv path too.
func (r *restorer) fillFromParents(doRun func(model.PageRun, *os.File, *pageFiller) error) error {
	type src struct {
		f    *os.File
		fill *pageFiller
	}
	open := map[string]*src{}
	done := func() error {
		var first error
		for _, s := range open {
			if err := s.fill.flush(); err != nil && first == nil {
				first = err
			}
			if err := s.fill.close(); err != nil && first == nil {
				first = err
			}
			s.f.Close()
		}
		return first
	}
	for i, pr := range mergeOverOwn(r.im.FromParents, ownPages(r.im)) {
		s := open[pr.Path]
		if s == nil {
			f, err := os.Open(pr.Path)
			if err != nil {
				done()
				return fmt.Errorf("%s: pages of the parent dump: %w", image.PagemapName(r.im.Pid), err)
			}
			s = &src{f: f, fill: r.newPageFiller(f)}
			open[pr.Path] = s
		}
		run := model.PageRun{Index: i + 1, Vaddr: pr.Vaddr, NrPages: pr.NrPages, Off: pr.Off}
		if err := doRun(run, s.f, s.fill); err != nil {
			done()
			return fmt.Errorf("pages from the parent dump %s: %w", pr.Path, err)
		}
	}
	return done()
}

// ownPages are the runs of pages the process's own pages image holds, in
// address order.
func ownPages(p *model.Process) []span {
	var out []span
	p.PageRuns(func(r model.PageRun) error {
		s := span{r.Vaddr, r.Vaddr + r.NrPages*x86.PageSize}
		if n := len(out); n > 0 && out[n-1].end == s.start {
			out[n-1].end = s.end
		} else {
			out = append(out, s)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// mergeOverOwn joins runs (in address order) of one ancestor's pages
// image that the dump's own pages interrupt: where the pages between two
// runs lie between them in that image too, and the dump's own pages
// cover them, one read takes both runs and the pages between, which the
// dump's own pages, written afterwards, replace. A chain of a task that
// rewrites every tenth page then fills in a few reads, not one per gap.
func mergeOverOwn(runs []model.ParentRun, own []span) []model.ParentRun {
	var out []model.ParentRun
	for _, r := range runs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			end := last.Vaddr + last.NrPages*x86.PageSize
			gap := r.Vaddr - end
			if r.Path == last.Path && r.Vaddr > end && r.Off-last.Off == int64(r.Vaddr-last.Vaddr) &&
				gap <= 1<<20 && coveredBy(span{end, r.Vaddr}, own) {
				last.NrPages += (gap / x86.PageSize) + r.NrPages
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// coveredBy tells whether every byte of s lies in in (sorted, not
// overlapping), looked up by binary search: mergeOverOwn asks it for
// tens of thousands of gaps.
func coveredBy(s span, in []span) bool {
	i := sort.Search(len(in), func(i int) bool { return in[i].end > s.start })
	return spansCover(s, in[i:])
}
