//go:build linux && amd64

package imgsummary

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/model"
)

func TestShowStats(t *testing.T) {
	dir := t.TempDir()
	writeDump(t, dir, synthDump(t, testExe(t)))
	if out, err := writeSummary(t, dir); err != nil || strings.Contains(out, "stats-") {
		t.Fatalf("no stats images: %v\n%s", err, out)
	}
	if err := model.WriteDumpStats(dir, model.DumpStats{Freezing: 1500 * time.Microsecond, Frozen: 1270 * time.Millisecond,
		MemDump: 900 * time.Millisecond, MemWrite: 800 * time.Millisecond, PagesScanned: 300000, PagesWritten: 262144}); err != nil {
		t.Fatal(err)
	}
	if _, err := model.WriteRestoreStats(dir, model.RestoreStats{Forking: 3 * time.Millisecond, Restore: 520 * time.Millisecond,
		PagesCompared: 10, PagesSkippedCOW: 7, PagesRestored: 262144}); err != nil {
		t.Fatal(err)
	}
	out, err := writeSummary(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out,
		"stats-dump: freezing 1.5ms, frozen 1.27s, memory dump 900ms (copying pages 800ms); pages scanned 300000, written 262144, skipped for a parent 0, lazy 0\n",
		"stats-restore: restore 520ms, forking 3ms; pages compared with the parent's 10, left shared with it 7, restored 262144\n",
	)
	// A corrupt stats image is an error naming it, not a panic.
	for _, name := range []string{"stats-dump", "stats-restore"} {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b[:len(b)-2], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := writeSummary(t, dir); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("truncated %s: error %v, want one naming it", name, err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
