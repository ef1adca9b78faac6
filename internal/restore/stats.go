//go:build linux && amd64

package restore

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// This file measures a restore for stats-restore (CRIU's statistics
// image) and counts its progress (Options.Progress); the restore path
// calls it from a line each.

// runStats are the measurements of one restore, shared by its
// restorers through their Options.
type runStats struct {
	forking time.Duration
	// filled are the bytes of pages put into place (written or left
	// shared with the parent); the progress line reads it meanwhile.
	filled atomic.Uint64
	// shared are the bytes of those left shared with the parent, of
	// compared, the bytes compared with the parent's.
	shared, compared uint64
}

// since adds the time from now to the call of the function it returns
// to *d: defer since(&d)().
func since(d *time.Duration) func() {
	t0 := time.Now()
	return func() { *d += time.Since(t0) }
}

// timeForking times a step that creates a process.
func (r *restorer) timeForking() func() { return since(&r.opts.stats.forking) }

// filled notes n bytes of pages put into place.
func (r *restorer) filled(n uint64) {
	r.opts.stats.filled.Add(n)
	r.opts.Progress.Add(n)
}

// watchFill shows on the progress line, while the task preadv's up to
// limit bytes of pages into place, how much of its memory became
// resident meanwhile: one call can move a gigabyte, and says how much it
// moved only when it returns (when filled counts it).
func (r *restorer) watchFill(limit uint64) (end func()) {
	m := r.opts.Progress
	if m == nil {
		return func() {}
	}
	rss0, err := procfs.ReadStatmResident(r.pid)
	if err != nil {
		return func() {}
	}
	filled0 := r.opts.stats.filled.Load()
	return m.Watch(func() uint64 {
		rss, err := procfs.ReadStatmResident(r.pid)
		if err != nil || rss <= rss0 {
			return 0
		}
		grown, counted := (rss-rss0)*x86.PageSize, r.opts.stats.filled.Load()-filled0
		if grown <= counted {
			return 0
		}
		return min(grown-counted, limit)
	})
}

// cow notes the bytes of memory kept from the parent that were
// compared with the parent's (total), and those of them left shared.
func (r *restorer) cow(shared, total uint64) {
	r.opts.stats.shared += shared
	r.opts.stats.compared += total
}

// progressTotal is the bytes of pages the restore puts into place: the
// size of the tree's pages images. Those it does not (the vDSO's, which
// mapVDSO read) count as done when they are passed over.
func progressTotal(d *model.Dump) uint64 {
	var n uint64
	for _, p := range d.Procs {
		if p.Zombie {
			continue
		}
		if fi, err := os.Stat(d.Dir.Path + "/" + image.PagesName(p.PagesID)); err == nil {
			n += uint64(fi.Size())
		}
		// And what parent dumps of a pre-copy chain hold, read as
		// fillFromParents reads it.
		for _, r := range mergeOverOwn(p.FromParents, ownPages(p)) {
			n += r.NrPages * x86.PageSize
		}
	}
	return n
}

// writeStats writes stats-restore into the images directory, as CRIU
// does; a directory that cannot be written (read-only) is passed over.
// The tree runs by then: any other failure is logged, not returned.
func writeStats(o *Options, took time.Duration) {
	s := o.stats
	filled := s.filled.Load()
	written, err := model.WriteRestoreStats(o.ImagesDir, model.RestoreStats{
		Forking: s.forking, Restore: took,
		PagesCompared: s.compared / x86.PageSize, PagesSkippedCOW: s.shared / x86.PageSize,
		PagesRestored: (filled - min(s.shared, filled)) / x86.PageSize,
	})
	if err == nil && !written {
		o.logf("restore: %s not written: %s cannot be written", image.StatsRestoreName(), o.ImagesDir)
	}
	if err != nil {
		o.logf("restore: statistics not written: %v", fmt.Errorf("%s: %w", image.StatsRestoreName(), err))
	}
}
