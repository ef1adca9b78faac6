//go:build linux && amd64

package dump

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
)

// This file measures a dump for stats-dump (CRIU's statistics image)
// and counts its progress (Options.Progress); the dump path calls it
// from a line or two each.

// since adds the time from now to the call of the function it returns
// to *d: defer since(&d)().
func since(d *time.Duration) func() {
	t0 := time.Now()
	return func() { *d += time.Since(t0) }
}

// startCopy begins the copy of runs into the pages image f: their bytes
// join the progress total, and the image's growth counts as bytes done
// while the copy runs (the copy, in pagecopy.go, needs to know nothing
// of it). The returned function ends both and adds the time to
// Stats.MemWrite.
func (t *task) startCopy(f pageSink, runs []pageRun, stats *Stats) (end func()) {
	total := runsBytes(runs)
	m := t.opts.Progress
	m.AddTotal(total)
	base := f.size()
	endTrack := m.Track(func() uint64 {
		n := f.size()
		if n <= base {
			return 0
		}
		return min(uint64(n-base), total)
	})
	endTime := since(&stats.MemWrite)
	return func() {
		endTrack()
		endTime()
	}
}

// writeStats writes stats-dump into the images directory, once the tree
// was released or killed, and removes an earlier dump's stats-restore,
// which is not about this dump. The dump is done by then: a failure is
// logged, not returned.
func writeStats(o *Options, st *Stats) {
	if err := os.Remove(filepath.Join(o.ImagesDir, image.StatsRestoreName())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.logf("dump %d: an earlier restore's statistics left: %v", o.Pid, err)
	}
	err := model.WriteDumpStats(o.ImagesDir, model.DumpStats{
		Freezing: st.Freezing, Frozen: st.Frozen, MemDump: st.MemDump, MemWrite: st.MemWrite,
		PagesScanned: st.PagesScanned, PagesWritten: st.PagesWritten, PagesSkippedParent: st.PagesInParent,
	})
	if err != nil {
		o.logf("dump %d: statistics not written: %v", o.Pid, err)
	}
}
