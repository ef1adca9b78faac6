//go:build linux && amd64

package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/stats"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/image"
)

func TestStatsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ds := DumpStats{Freezing: 1500 * time.Microsecond, Frozen: 2 * time.Second, MemDump: 900 * time.Millisecond,
		MemWrite: 800 * time.Millisecond, PagesScanned: 300000, PagesWritten: 262144}
	if err := WriteDumpStats(dir, ds); err != nil {
		t.Fatal(err)
	}
	rs := RestoreStats{Forking: 3 * time.Millisecond, Restore: 520 * time.Millisecond, PagesCompared: 10, PagesSkippedCOW: 7, PagesRestored: 262144}
	if ok, err := WriteRestoreStats(dir, rs); err != nil || !ok {
		t.Fatalf("WriteRestoreStats: %v, %v", ok, err)
	}
	got, err := LoadStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, r := got.Dump, got.Restore
	if d.GetFreezingTime() != 1500 || d.GetFrozenTime() != 2000000 || d.GetMemdumpTime() != 900000 || d.GetMemwriteTime() != 800000 ||
		d.GetPagesScanned() != 300000 || d.GetPagesWritten() != 262144 || d.GetPagesSkippedParent() != 0 || d.GetPagesLazy() != 0 {
		t.Errorf("dump stats: %v", d)
	}
	// What ckpt does not measure is left out, not written as zero.
	if d.IrmapResolve != nil || d.PagePipes != nil || d.PagePipeBufs != nil || d.ShpagesScanned != nil || d.ShpagesWritten != nil || d.ShpagesSkippedParent != nil {
		t.Errorf("dump stats has fields ckpt does not measure: %v", d)
	}
	if r.GetForkingTime() != 3000 || r.GetRestoreTime() != 520000 || r.GetPagesCompared() != 10 || r.GetPagesSkippedCow() != 7 || r.GetPagesRestored() != 262144 {
		t.Errorf("restore stats: %v", r)
	}
	// CRIU's framing: IMG_SERVICE, then STATS; go-criu's crit decodes it.
	b, err := os.ReadFile(filepath.Join(dir, "stats-dump"))
	if err != nil {
		t.Fatal(err)
	}
	if a, m := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]); a != 0x55105940 || m != 0x57093306 {
		t.Errorf("magics %#x %#x, want IMG_SERVICE 0x55105940 and STATS 0x57093306", a, m)
	}
	f, err := os.Open(filepath.Join(dir, "stats-restore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, false).Decode(&stats.StatsEntry{})
	if err != nil {
		t.Fatalf("crit decode: %v", err)
	}
	if e := img.Entries[0].Message.(*stats.StatsEntry); e.GetRestore().GetPagesRestored() != 262144 {
		t.Errorf("crit read %v", e)
	}
}

func TestStatsMissing(t *testing.T) {
	got, err := LoadStats(t.TempDir())
	if err != nil || got.Dump != nil || got.Restore != nil {
		t.Fatalf("empty dir: %+v, %v", got, err)
	}
}

func TestStatsCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDumpStats(dir, DumpStats{PagesWritten: 5}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "stats-dump"))
	if err != nil {
		t.Fatal(err)
	}
	common, _ := image.Encode(image.MagicFS)
	restoreOnly, _ := image.Encode(image.MagicStats, RestoreStats{}.Entry())
	cases := map[string][]byte{
		"empty":       {},
		"truncated":   good[:len(good)-3],
		"magic only":  good[:8],
		"wrong kind":  common,
		"garbage":     append(append([]byte{}, good[:12]...), 0xff, 0xff, 0xff, 0xff, 0xff),
		"huge size":   append(append([]byte{}, good[:8]...), 0xff, 0xff, 0xff, 0x7f),
		"common head": append(binary.LittleEndian.AppendUint32(nil, 0x54564319), good[4:]...),
		"no dump":     restoreOnly,
	}
	for name, b := range cases {
		if err := os.WriteFile(filepath.Join(dir, "stats-dump"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadStats(dir)
		if !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("%s: got %v, want a corrupt image error", name, err)
		}
	}
}

func TestStatsUnwritable(t *testing.T) {
	for _, err := range []error{
		&os.PathError{Op: "open", Path: "/x/stats-restore", Err: unix.EROFS},
		&os.PathError{Op: "open", Path: "/x/stats-restore", Err: unix.EACCES},
		&os.PathError{Op: "open", Path: "/x/stats-restore", Err: unix.EPERM},
	} {
		if !unwritable(fmt.Errorf("write image: %w", err)) {
			t.Errorf("%v not taken for an unwritable directory", err)
		}
	}
	if unwritable(&os.PathError{Op: "write", Path: "/x/stats-restore", Err: unix.ENOSPC}) {
		t.Error("ENOSPC taken for an unwritable directory")
	}
	// A directory that is not there is an error, not skipped.
	if ok, err := WriteRestoreStats(filepath.Join(t.TempDir(), "gone"), RestoreStats{}); ok || err == nil {
		t.Errorf("missing directory: %v, %v", ok, err)
	}
}
