//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ckpt/ckpt/internal/kerndat"
	"github.com/ckpt/ckpt/internal/model"
)

func (o *Options) notef(format string, args ...any) {
	if o.Notef != nil {
		o.Notef(format, args...)
		return
	}
	o.logf(format, args...)
}

// startTracking sets up the write tracking of a pre-copy dump, before the
// tree is touched: it checks the kernel, and takes the userfaultfds that
// the previous dump of the chain left with its holder. Without them (the
// holder is gone: a reboot, killed, the tracked tasks exited) the dump
// saves every page, as CRIU does when it cannot track, and says so.
func (o *Options) startTracking() error {
	if o.PreDump {
		o.TrackMem, o.LeaveRunning = true, true
	}
	if o.PrevImagesDir != "" && !o.TrackMem {
		return fmt.Errorf("--prev-images-dir needs --track-mem: without write tracking no page can be left in the previous dump")
	}
	if !o.TrackMem {
		return nil
	}
	if err := kerndat.MemTracking(); err != nil {
		what := "--track-mem"
		if o.PreDump {
			what = "pre-dump (it tracks writes)"
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	m := &memTracker{held: map[int]*trackedProc{}, procs: map[int]*trackedProc{}}
	if o.PrevImagesDir != "" {
		prev := o.PrevImagesDir
		if !filepath.IsAbs(prev) {
			// CRIU's --prev-images-dir is relative to the images directory.
			prev = filepath.Join(o.ImagesDir, prev)
		}
		st, err := os.Stat(prev)
		if err != nil || !st.IsDir() {
			return fmt.Errorf("--prev-images-dir %s: the previous images directory is missing (%v)", o.PrevImagesDir, err)
		}
		if here, err := os.Stat(o.ImagesDir); err == nil && os.SameFile(st, here) {
			return fmt.Errorf("--prev-images-dir %s is the images directory itself: each dump of a chain needs a directory of its own", o.PrevImagesDir)
		}
		held, err := takeFromHolder(prev)
		if err != nil {
			o.notef("no write tracking from the previous dump in %s (%v): this dump saves every page, and has no parent", prev, err)
		} else {
			m.held, m.parent = held, prev
		}
	}
	o.track = m
	return nil
}

// writeParentLink puts CRIU's parent link into the directory stage, whose
// content moves into the images directory: it points to the previous
// dump, as given (relative to the images directory) or absolute.
func (o *Options) writeParentLink(stage string) error {
	if o.track == nil || o.track.parent == "" {
		return nil
	}
	target := o.PrevImagesDir
	if !filepath.IsAbs(target) {
		// Relative to the images directory, which stage is in: the
		// link reads the same once moved.
		target = filepath.Clean(target)
	}
	if err := os.Symlink(target, filepath.Join(stage, model.ParentLink)); err != nil {
		return fmt.Errorf("parent link: %w", err)
	}
	return nil
}

// finishTracking hands the userfaultfds of a tree left running to a
// holder in the images directory, for the next dump of the chain; a
// killed tree's are closed.
func (o *Options) finishTracking(stats *Stats) {
	m := o.track
	if m == nil {
		return
	}
	defer m.close()
	if !o.LeaveRunning || len(m.procs) == 0 {
		return
	}
	if err := spawnHolder(o.ImagesDir, m.procs); err != nil {
		o.notef("writes are not tracked after this dump (%v): the next dump of the chain saves every page", err)
		return
	}
	m.procs = nil
}

// errNoHolder is a previous dump whose holder cannot be reached.
var errNoHolder = errors.New("no write tracking holder")
