//go:build linux && amd64

package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/stats"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// CRIU's statistics images, stats-dump and stats-restore: one
// stats_entry each, written at the end of a dump or a restore into the
// images directory. Times are in microseconds, as CRIU writes them
// (criu/stats.c encodes each timing as tv_sec*USEC_PER_SEC+tv_usec).
// A field ckpt has no measure for is left out; stats.proto makes a few
// required, and those ckpt fills with what is true of it (no parent
// images: no page skipped for a parent; no lazy pages).

// DumpStats are the measurements of one dump, as stats-dump holds them.
type DumpStats struct {
	// Freezing is the time to stop every task of the tree.
	Freezing time.Duration
	// Frozen is the time from the tree stopped to its release or kill.
	Frozen time.Duration
	// MemDump is the time the memory dump took: reading pagemaps,
	// choosing the pages and copying them into the pages images.
	MemDump time.Duration
	// MemWrite is the part of MemDump spent copying pages into the
	// pages images (read from the task and written, or spliced).
	MemWrite time.Duration
	// PagesScanned are the pages of the areas whose pagemap was read.
	PagesScanned uint64
	// PagesWritten are the pages written to the pages images.
	PagesWritten uint64
	// PagesSkippedParent are the pages a pre-copy dump left in its
	// parent dump (in_parent), unchanged since.
	PagesSkippedParent uint64
}

// RestoreStats are the measurements of one restore, as stats-restore
// holds them.
type RestoreStats struct {
	// Forking is the time spent creating the tree's processes (the
	// helper, and each clone with its PID).
	Forking time.Duration
	// Restore is the whole restore, from its start to the release.
	Restore time.Duration
	// PagesCompared are the pages of memory kept from a parent that
	// were compared with the parent's, and PagesSkippedCOW those of them
	// left shared with it, copy-on-write (not written).
	PagesCompared, PagesSkippedCOW uint64
	// PagesRestored are the pages written into the tree's memory.
	PagesRestored uint64
}

func usec(d time.Duration) *uint32 {
	u := d.Microseconds()
	if u < 0 {
		u = 0
	}
	if u > int64(^uint32(0)) {
		u = int64(^uint32(0))
	}
	return proto.Uint32(uint32(u))
}

// Entry is the stats_entry of stats-dump.
func (s DumpStats) Entry() *stats.StatsEntry {
	return &stats.StatsEntry{Dump: &stats.DumpStatsEntry{
		FreezingTime: usec(s.Freezing),
		FrozenTime:   usec(s.Frozen),
		MemdumpTime:  usec(s.MemDump),
		MemwriteTime: usec(s.MemWrite),
		PagesScanned: proto.Uint64(s.PagesScanned),
		// Required: no page is lazy.
		PagesSkippedParent: proto.Uint64(s.PagesSkippedParent),
		PagesWritten:       proto.Uint64(s.PagesWritten),
		PagesLazy:          proto.Uint64(0),
	}}
}

// Entry is the stats_entry of stats-restore.
func (s RestoreStats) Entry() *stats.StatsEntry {
	return &stats.StatsEntry{Restore: &stats.RestoreStatsEntry{
		PagesCompared:   proto.Uint64(s.PagesCompared),
		PagesSkippedCow: proto.Uint64(s.PagesSkippedCOW),
		ForkingTime:     usec(s.Forking),
		RestoreTime:     usec(s.Restore),
		PagesRestored:   proto.Uint64(s.PagesRestored),
	}}
}

// WriteDumpStats writes stats-dump into dir.
func WriteDumpStats(dir string, s DumpStats) error {
	return image.Dir{Path: dir}.Write(image.StatsDumpName(), image.MagicStats, s.Entry())
}

// WriteRestoreStats writes stats-restore into dir. A directory that
// cannot be written (read-only, as images kept for several restores
// may be) is not an error: nothing is written, and written says so.
func WriteRestoreStats(dir string, s RestoreStats) (written bool, err error) {
	err = image.Dir{Path: dir}.Write(image.StatsRestoreName(), image.MagicStats, s.Entry())
	if err == nil {
		return true, nil
	}
	if unwritable(err) {
		return false, nil
	}
	return false, err
}

// unwritable reports an error that says the directory cannot be
// written: a read-only file system, or no permission.
func unwritable(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)
}

// Stats are the statistics images of a directory; either is nil when
// its file is not there.
type Stats struct {
	Dump    *stats.DumpStatsEntry
	Restore *stats.RestoreStatsEntry
}

// LoadStats reads stats-dump and stats-restore from dir, those that
// exist. A corrupt one is an error naming the file.
func LoadStats(dir string) (Stats, error) {
	var out Stats
	d := image.Dir{Path: dir}
	for _, name := range []string{image.StatsDumpName(), image.StatsRestoreName()} {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var e stats.StatsEntry
		if err := d.ReadOne(name, image.MagicStats, &e); err != nil {
			return Stats{}, err
		}
		if name == image.StatsDumpName() {
			if e.Dump == nil {
				return Stats{}, fmt.Errorf("image %s: %w: no dump statistics", filepath.Join(dir, name), image.ErrCorrupt)
			}
			out.Dump = e.Dump
		} else {
			if e.Restore == nil {
				return Stats{}, fmt.Errorf("image %s: %w: no restore statistics", filepath.Join(dir, name), image.ErrCorrupt)
			}
			out.Restore = e.Restore
		}
	}
	return out, nil
}
