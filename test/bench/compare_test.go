//go:build linux

package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/test/testsupport"
)

// BenchmarkDumpCompare1GiB dumps touch1g's 1 GiB through the ckpt binary
// in several ways, and through CRIU's when CKPT_BENCH_CRIU names a criu
// binary. Each round dumps a new target once in every way, in a new
// random order; the figures of every round are printed and the metrics
// are each way's median. The order matters on a VM that gives freed
// memory back to its host: there every few 1 GiB page-cache writes come
// at about 2 s instead of 0.3 s (the host faults the memory in again),
// at a rhythm, so that ways run in a fixed order can keep falling on the
// same beats (BenchmarkDumpRestore1GiB's fixed order does).
//
//	go test ./test/bench -run '^$' -bench DumpCompare1GiB -benchtime=8x -v
//	CKPT_BENCH_CRIU=/path/to/criu go test ./test/bench -run '^$' -bench DumpCompare1GiB -benchtime=8x -v
//
// The ways: ckpt --no-sync (the images left in the page cache, as CRIU
// leaves them), the same with one page writer (CKPT_PAGE_WRITERS=1), ckpt
// (synced: the default), and criu dump. CKPT_BENCH_M32=1 builds the
// target -m32; CKPT_BENCH_CKPT=PATH runs that ckpt binary.
func BenchmarkDumpCompare1GiB(b *testing.B) {
	exe, tmp := scaleSetup(b, "touch1g.c")
	ways := []dumpWay{
		{name: "ckpt-nosync", args: []string{"--no-sync"}},
		{name: "ckpt-1writer-nosync", args: []string{"--no-sync"}, env: []string{"CKPT_PAGE_WRITERS=1"}},
		{name: "ckpt-sync"},
	}
	ckptBin := ckptBinary(b, tmp)
	for i := range ways {
		ways[i].bin = ckptBin
	}
	if criu := os.Getenv("CKPT_BENCH_CRIU"); criu != "" {
		// -j: the target is in the benchmark's session, which CRIU
		// otherwise refuses to leave out of the dump.
		ways = append(ways, dumpWay{name: "criu", bin: criu, args: []string{"-j"}, criu: true})
	}
	var settle time.Duration
	if v := os.Getenv("CKPT_BENCH_SETTLE"); v != "" {
		var err error
		if settle, err = time.ParseDuration(v); err != nil {
			b.Fatalf("CKPT_BENCH_SETTLE: %v", err)
		}
	}
	took := map[string][]time.Duration{}
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(scaleTimeout(b), func() { scaleHung(b.Name(), i, scaleTimeout(b), tmp) })
		rand.Shuffle(len(ways), func(x, y int) { ways[x], ways[y] = ways[y], ways[x] })
		var line []string
		for _, w := range ways {
			d, err := w.dumpOnce(exe, dir, settle)
			if err != nil {
				b.Fatalf("run %d, %s: %v", i+1, w.name, err)
			}
			took[w.name] = append(took[w.name], d)
			line = append(line, fmt.Sprintf("%s %.3f s", w.name, d.Seconds()))
		}
		watchdog.Stop()
		b.Logf("run %d of %d, in this order: %s", i+1, b.N, strings.Join(line, ", "))
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	slices.SortFunc(ways, func(x, y dumpWay) int { return strings.Compare(x.name, y.name) })
	for _, w := range ways {
		ds := took[w.name]
		slices.Sort(ds)
		b.Logf("%s: median %.3f s, %.3f-%.3f s over %d runs", w.name, median(ds).Seconds(), ds[0].Seconds(), ds[len(ds)-1].Seconds(), len(ds))
		b.ReportMetric(median(ds).Seconds(), w.name+"-median-s")
	}
}

// dumpWay is one way of dumping in BenchmarkDumpCompare1GiB.
type dumpWay struct {
	name string
	bin  string
	args []string // after dump -t PID -D DIR
	env  []string // added to the environment
	criu bool     // bin is CRIU's
}

// dumpOnce starts a target in dir, dumps it this way into a directory of
// its own, checks that the target was killed and that the pages images
// hold its memory, removes the images and returns the dump's wall time.
func (w dumpWay) dumpOnce(exe, dir string, settle time.Duration) (time.Duration, error) {
	t, err := startTarget(exe, dir, "target")
	if err != nil {
		return 0, err
	}
	defer t.kill()
	images := filepath.Join(dir, "images-"+w.name)
	if err := os.Mkdir(images, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(images)
	time.Sleep(settle)
	args := append([]string{"dump", "-t", fmt.Sprint(t.pid()), "-D", images}, w.args...)
	if w.criu {
		args = append(args, "-o", "dump.log")
	}
	cmd := exec.Command(w.bin, args...)
	cmd.Env = append(os.Environ(), w.env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		if log, rerr := os.ReadFile(filepath.Join(images, "dump.log")); rerr == nil {
			out.Write(log)
		}
		return 0, fmt.Errorf("%s %s: %v\n%s", w.bin, strings.Join(args, " "), err, out.String())
	}
	if _, err := t.reapDumped(); err != nil {
		return 0, err
	}
	pages, err := testsupport.PagesBytes(images)
	if err != nil {
		return 0, err
	}
	if pages < memSize {
		return 0, fmt.Errorf("%s: pages images hold %d bytes, want at least the target's %d", w.name, pages, memSize)
	}
	return d, nil
}

// median is the middle of sorted ds (the mean of the two middle ones
// for an even count).
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// ckptBinary is CKPT_BENCH_CKPT, or the ckpt command built into tmp.
func ckptBinary(b *testing.B, tmp string) string {
	b.Helper()
	if bin := os.Getenv("CKPT_BENCH_CKPT"); bin != "" {
		return bin
	}
	bin := filepath.Join(tmp, "ckpt")
	build := exec.Command("go", "build", "-o", bin, "github.com/ckpt/ckpt/cmd/ckpt")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build ckpt: %v\n%s", err, out)
	}
	return bin
}
