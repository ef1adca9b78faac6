//go:build linux && amd64

package restore

import (
	"fmt"
	"os"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
)

// fillFromParents puts in the pages a pre-copy dump left in its parent
// dumps (pagemap entries in_parent, resolved through the chain of parent
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
	for i, pr := range r.im.FromParents {
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
