package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// preCopySizeMiB is the target's memory (CKPT_BENCH_PRECOPY_MIB to change).
func preCopySizeMiB() uint64 {
	if v, err := strconv.ParseUint(os.Getenv("CKPT_BENCH_PRECOPY_MIB"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 1024
}

// BenchmarkPreCopy measures pre-copy (issue 13): a task that keeps
// writing a tenth of its 1 GiB (testdata/dirty10.c) is pre-dumped (the
// tree goes on, its writes tracked), 0.5 s later dumped with
// --prev-images-dir and --track-mem (killed), and the chain restored.
// Beside it, the same target, fresh, dumped whole. It reports how long
// each dump kept the tree frozen and how many bytes of pages each wrote:
// the final dump of the chain must write about a tenth of the full one,
// and freeze the tree for correspondingly less.
//
//	go test ./test/bench -run '^$' -bench PreCopy -benchtime=1x -v
func BenchmarkPreCopy(b *testing.B) {
	exe, tmp := scaleSetup(b, "dirty10.c")
	size := preCopySizeMiB()
	avail, err := procfs.MemAvailable()
	if err != nil {
		b.Fatal(err)
	}
	if need := 2*size<<20 + 1<<30; avail < need {
		b.Skipf("MemAvailable %d MiB, needs %d MiB", avail>>20, need>>20)
	}
	var sum preCopyRun
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(scaleTimeout(b), func() { scaleHung(b.Name(), i, scaleTimeout(b), tmp) })
		r, err := preCopyOnce(b, exe, dir, size)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d, %d MiB, a tenth rewritten all the time:\n%s", i+1, size, r.table())
		sum.add(r)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / n }
	b.ReportMetric(ms(sum.preFrozen), "predump-freeze-ms")
	b.ReportMetric(float64(sum.preBytes)/mib/n, "predump-MiB")
	b.ReportMetric(ms(sum.finalFrozen), "final-freeze-ms")
	b.ReportMetric(float64(sum.finalBytes)/mib/n, "final-MiB")
	b.ReportMetric(float64(sum.finalParent)/mib/n, "final-in-parent-MiB")
	b.ReportMetric(ms(sum.finalWall), "final-dump-ms")
	b.ReportMetric(ms(sum.restore), "chain-restore-ms")
	b.ReportMetric(ms(sum.fullFrozen), "full-freeze-ms")
	b.ReportMetric(float64(sum.fullBytes)/mib/n, "full-MiB")
}

// preCopyRun is what one run measured.
type preCopyRun struct {
	preWall, preFrozen, finalWall, finalFrozen, restore, fullWall, fullFrozen time.Duration
	preBytes, finalBytes, finalParent, fullBytes                              int64
}

func (r *preCopyRun) add(o preCopyRun) {
	r.preWall += o.preWall
	r.preFrozen += o.preFrozen
	r.finalWall += o.finalWall
	r.finalFrozen += o.finalFrozen
	r.restore += o.restore
	r.fullWall += o.fullWall
	r.fullFrozen += o.fullFrozen
	r.preBytes += o.preBytes
	r.finalBytes += o.finalBytes
	r.finalParent += o.finalParent
	r.fullBytes += o.fullBytes
}

func (r *preCopyRun) table() string {
	f := func(name string, wall, frozen time.Duration, bytes int64, extra string) string {
		return fmt.Sprintf("  %-34s %9.1f ms  frozen %8.1f ms  %7.1f MiB of pages%s\n", name, wall.Seconds()*1e3, frozen.Seconds()*1e3, float64(bytes)/mib, extra)
	}
	return f("pre-dump (left running)", r.preWall, r.preFrozen, r.preBytes, "") +
		f("dump --track-mem (killed)", r.finalWall, r.finalFrozen, r.finalBytes, fmt.Sprintf(", %.1f MiB left in the parent", float64(r.finalParent)/mib)) +
		f("full dump of a fresh target", r.fullWall, r.fullFrozen, r.fullBytes, "") +
		fmt.Sprintf("  %-34s %9.1f ms\n", "restore of the chain", r.restore.Seconds()*1e3)
}

func preCopyOnce(b *testing.B, exe, dir string, sizeMiB uint64) (r preCopyRun, err error) {
	arg := strconv.FormatUint(sizeMiB, 10)
	cmd, line, err := startProg(exe, dir, arg)
	if err != nil {
		return r, err
	}
	pid := cmd.Process.Pid
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	m := touchnRE.FindStringSubmatch(line)
	if m == nil {
		return r, fmt.Errorf("READY line %q, want %s", line, touchnRE)
	}
	addr, _ := strconv.ParseUint(m[1], 16, 64)
	pre, final := filepath.Join(dir, "pre"), filepath.Join(dir, "final")
	runtime.GC()
	start := time.Now()
	st, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: pre, PreDump: true, Notef: b.Logf})
	r.preWall = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("pre-dump: %w", err)
	}
	r.preFrozen, r.preBytes = st.FrozenFor, int64(st.PagesWritten)*pageSize
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	b.StartTimer()
	start = time.Now()
	st, err = ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: final, PrevImagesDir: "../pre", TrackMem: true, Notef: b.Logf})
	r.finalWall = time.Since(start)
	b.StopTimer()
	if err != nil {
		return r, fmt.Errorf("dump --track-mem: %w", err)
	}
	r.finalFrozen, r.finalBytes, r.finalParent = st.FrozenFor, int64(st.PagesWritten)*pageSize, int64(st.PagesInParent)*pageSize
	if st.PagesInParent == 0 {
		return r, fmt.Errorf("the final dump left no page in the parent: no tracking (see the notes above)")
	}
	_ = cmd.Wait()
	killed = true
	if err := reapOrphans(30 * time.Second); err != nil {
		return r, err
	}
	if err := testsupport.WaitGone(pid, 5*time.Second); err != nil {
		return r, err
	}
	start = time.Now()
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: final})
	r.restore = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("restore of the chain: %w", err)
	}
	// Pages the target never rewrote hold their pattern: they came
	// from the pre-dump.
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", p.Pid))
	if err == nil {
		pages := sizeMiB << 20 / pageSize
		pg := make([]byte, pageSize)
		for _, idx := range []uint64{1, pages/3 + 1, pages - 1} {
			if idx%10 == 0 {
				idx++
			}
			if _, err = f.ReadAt(pg, int64(addr+idx*pageSize)); err != nil {
				break
			}
			if err = checkPage(pg, idx); err != nil {
				err = fmt.Errorf("restored page %d: %w", idx, err)
				break
			}
		}
		f.Close()
	}
	if kerr := killRestored(p); kerr != nil && err == nil {
		err = kerr
	}
	if err != nil {
		return r, err
	}
	if err := os.RemoveAll(pre); err != nil {
		return r, err
	}
	if err := os.RemoveAll(final); err != nil {
		return r, err
	}

	// The same target, fresh, dumped whole.
	cmd2, _, err := startProg(exe, dir, arg)
	if err != nil {
		return r, err
	}
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	start = time.Now()
	st, err = ckpt.Dump(ckpt.DumpOptions{Pid: cmd2.Process.Pid, ImagesDir: filepath.Join(dir, "full")})
	r.fullWall = time.Since(start)
	if err != nil {
		_ = cmd2.Process.Kill()
		_ = cmd2.Wait()
		return r, fmt.Errorf("full dump: %w", err)
	}
	_ = cmd2.Wait()
	r.fullFrozen, r.fullBytes = st.FrozenFor, int64(st.PagesWritten)*pageSize
	return r, nil
}
