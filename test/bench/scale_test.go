//go:build linux

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// The benchmarks of this file measure how dump and restore scale: with
// the memory of one process (64 MiB, 1 GiB, 4 GiB), with the number of
// processes (a tree of 1,000) and with the number of threads (200). Each
// run dumps (the tree is killed), restores, checks the restored tree and
// kills it; ns/op is the dump and the restore only. Nothing here asserts
// a speed: the figures are reported as metrics.

// scaleSetup checks what the benchmarks need, makes this process a child
// subreaper (so that strays are seen and reaped) and builds the target
// program src of testdata, -m32 with CKPT_BENCH_M32.
func scaleSetup(b *testing.B, src string) (exe, tmp string) {
	b.Helper()
	tmp = benchSetup(b)
	exe = filepath.Join(tmp, strings.TrimSuffix(src, ".c"))
	cflags := []string{"-O2", "-Wall", "-pthread"}
	if m32() {
		cflags = append(cflags, "-m32")
	}
	if err := testsupport.BuildC(exe, filepath.Join("testdata", src), cflags...); err != nil {
		b.Fatal(err)
	}
	return exe, tmp
}

// m32 says whether CKPT_BENCH_M32 asks for -m32 targets: any value but
// empty, 0, false, no or off. A plain non-empty test would take
// CKPT_BENCH_M32=0, the natural way to write the other half of an
// interleaved -m32/-m64 comparison, for -m32 as well, and print -m32
// figures labelled as native ones.
func m32() bool {
	switch strings.ToLower(os.Getenv("CKPT_BENCH_M32")) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// scaleTimeout bounds one run (CKPT_BENCH_TIMEOUT, default 10 minutes):
// benchmarks are not under -test.timeout.
func scaleTimeout(b *testing.B) time.Duration {
	timeout := 10 * time.Minute
	if v := os.Getenv("CKPT_BENCH_TIMEOUT"); v != "" {
		var err error
		if timeout, err = time.ParseDuration(v); err != nil {
			b.Fatalf("CKPT_BENCH_TIMEOUT: %v", err)
		}
	}
	return timeout
}

// scaleHung is hung for the benchmarks of this file: it names the
// benchmark, prints every goroutine, removes the files, kills every
// child and ends the test process.
func scaleHung(name string, run int, timeout time.Duration, tmp string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	fmt.Fprintf(os.Stderr, "%s: run %d did not finish within %v (CKPT_BENCH_TIMEOUT); goroutines:\n%s\n", name, run, timeout, buf)
	_ = os.RemoveAll(filepath.Dir(tmp))
	kids := testsupport.Children()
	for _, pid := range kids {
		fmt.Fprintf(os.Stderr, "killing child %s\n", testsupport.Describe(pid))
	}
	testsupport.KillAndReap(kids, 5*time.Second)
	os.Exit(2)
}

// startProg starts exe with stdin /dev/null and stdout and stderr a
// file in dir, and returns its READY line.
func startProg(exe, dir string, args ...string) (*exec.Cmd, string, error) {
	outPath := filepath.Join(dir, filepath.Base(exe)+".out")
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer out.Close()
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	line, err := testsupport.StartReady(cmd, outPath, 120*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("%s did not get READY: %w", filepath.Base(exe), err)
	}
	return cmd, line, nil
}

// scaleRun is what one dump and restore took.
type scaleRun struct {
	dump, restore, frozen time.Duration
	pages                 uint64
}

// dumpRestore dumps the tree of cmd into dir/images (killing it),
// reaps it, restores it and returns the restored root; check, run on
// the restored tree before anything else, may fail the run.
func dumpRestore(b *testing.B, cmd *exec.Cmd, dir string) (r scaleRun, p *ckpt.Process, err error) {
	images := filepath.Join(dir, "images")
	pid := cmd.Process.Pid
	runtime.GC()
	b.StartTimer()
	start := time.Now()
	st, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: images})
	r.dump = time.Since(start)
	b.StopTimer()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return r, nil, fmt.Errorf("ckpt.Dump (after %v): %w", r.dump, err)
	}
	r.frozen, r.pages = st.FrozenFor, st.PagesWritten
	_ = cmd.Wait() // killed by the dump
	// Processes of the tree that the dump's kill left as zombies come to
	// this subreaper: their PIDs must be free for the restore.
	if err := reapOrphans(30 * time.Second); err != nil {
		return r, nil, err
	}
	if err := testsupport.WaitGone(pid, 5*time.Second); err != nil {
		return r, nil, err
	}
	runtime.GC()
	b.StartTimer()
	start = time.Now()
	p, err = ckpt.Restore(ckpt.RestoreOptions{ImagesDir: images})
	r.restore = time.Since(start)
	b.StopTimer()
	if err != nil {
		return r, nil, fmt.Errorf("ckpt.Restore (after %v): %w", r.restore, err)
	}
	return r, p, nil
}

// reapOrphans kills and reaps every child of this process until none is
// left, or says which are left after timeout.
func reapOrphans(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		kids := testsupport.Children()
		if len(kids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes left after %v, first %s", len(kids), timeout, testsupport.Describe(kids[0]))
		}
		testsupport.KillAndReap(kids, time.Second)
	}
}

// descendants lists pid's descendants, through every thread's children.
func descendants(pid int) []int {
	var out []int
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, tk := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, tk.Name()))
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					todo = append(todo, c)
				}
			}
		}
	}
	return out
}

// killTree kills a restored tree, its root and every descendant, and
// reaps them all (the descendants come to this subreaper).
func killTree(p *ckpt.Process) error {
	for _, d := range descendants(p.Pid) {
		_ = unix.Kill(d, unix.SIGKILL)
	}
	if err := killRestored(p); err != nil {
		return err
	}
	return reapOrphans(30 * time.Second)
}

var touchnRE = regexp.MustCompile(`^READY addr=0x([0-9a-f]+) len=([0-9]+)$`)

// BenchmarkDumpRestoreSizes dumps and restores one process holding 64
// MiB, 1 GiB and 4 GiB of touched private anonymous memory
// (testdata/touchn.c). A size is skipped, with the reason printed, when
// MemAvailable cannot hold the target and its restored copy with room
// to spare (the images go to the page cache, which can be reclaimed), or
// for an ia32 target when it does not fit its 4 GiB address space.
//
//	go test ./test/bench -run '^$' -bench DumpRestoreSizes -benchtime=1x -v
func BenchmarkDumpRestoreSizes(b *testing.B) {
	exe, tmp := scaleSetup(b, "touchn.c")
	for _, sizeMiB := range []uint64{64, 1024, 4096} {
		name := fmt.Sprintf("%dMiB", sizeMiB)
		if sizeMiB >= 1024 {
			name = fmt.Sprintf("%dGiB", sizeMiB/1024)
		}
		b.Run(name, func(b *testing.B) {
			b.StopTimer()
			size := sizeMiB << 20
			if m32() && sizeMiB >= 3072 {
				b.Skipf("%s: an ia32 task cannot map it in its 4 GiB of address space", name)
			}
			avail, err := procfs.MemAvailable()
			if err != nil {
				b.Fatal(err)
			}
			// The target, then its restored copy (the target is killed
			// first), and 1 GiB for everything else.
			if need := size + size/2 + 1<<30; avail < need {
				fmt.Printf("BenchmarkDumpRestoreSizes/%s: skipped: MemAvailable %d MiB, needs %d MiB\n", name, avail>>20, need>>20)
				b.Skipf("MemAvailable %d MiB, needs %d MiB", avail>>20, need>>20)
			}
			var sum scaleRun
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(tmp, fmt.Sprintf("%s-run%d", name, i))
				if err := os.Mkdir(dir, 0o700); err != nil {
					b.Fatal(err)
				}
				watchdog := time.AfterFunc(scaleTimeout(b), func() { scaleHung(b.Name(), i, scaleTimeout(b), tmp) })
				r, err := sizeRun(b, exe, dir, sizeMiB)
				watchdog.Stop()
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("%s run %d: dump %v (frozen %v), restore %v, %d pages", name, i+1, r.dump, r.frozen, r.restore, r.pages)
				sum.dump += r.dump
				sum.restore += r.restore
				sum.frozen += r.frozen
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(sum.dump.Seconds()*1e3/n, "dump-ms")
			b.ReportMetric(sum.frozen.Seconds()*1e3/n, "freeze-ms")
			b.ReportMetric(sum.restore.Seconds()*1e3/n, "restore-ms")
			b.ReportMetric(float64(size)*n/mib/sum.dump.Seconds(), "dump-MiB/s")
			b.ReportMetric(float64(size)*n/mib/sum.restore.Seconds(), "restore-MiB/s")
		})
	}
}

func sizeRun(b *testing.B, exe, dir string, sizeMiB uint64) (r scaleRun, err error) {
	cmd, line, err := startProg(exe, dir, strconv.FormatUint(sizeMiB, 10))
	if err != nil {
		return r, err
	}
	m := touchnRE.FindStringSubmatch(line)
	if m == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return r, fmt.Errorf("READY line %q, want %s", line, touchnRE)
	}
	addr, _ := strconv.ParseUint(m[1], 16, 64)
	r, p, err := dumpRestore(b, cmd, dir)
	if err != nil {
		return r, err
	}
	defer func() {
		if kerr := killRestored(p); kerr != nil && err == nil {
			err = kerr
		}
	}()
	// Pages at both ends and in between hold their pattern.
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", p.Pid))
	if err != nil {
		return r, fmt.Errorf("restored task: %w", err)
	}
	defer f.Close()
	pages := sizeMiB << 20 / pageSize
	pg := make([]byte, pageSize)
	for _, idx := range []uint64{0, 1, pages / 3, pages / 2, pages - 2, pages - 1} {
		a := addr + idx*pageSize
		if _, err := f.ReadAt(pg, int64(a)); err != nil {
			return r, fmt.Errorf("restored task: read page %#x: %w", a, err)
		}
		if err := checkPage(pg, idx); err != nil {
			return r, fmt.Errorf("restored task: page %#x (index %d): %w", a, idx, err)
		}
	}
	return r, nil
}

// treeSize and threadCount are the figures (issue 13).
const (
	treeSize    = 1000
	threadCount = 200
)

// BenchmarkDumpRestoreTree dumps and restores a binary tree of 1,000
// small processes (testdata/tree.c) and reports the time per process.
//
//	go test ./test/bench -run '^$' -bench DumpRestoreTree -benchtime=1x -v
func BenchmarkDumpRestoreTree(b *testing.B) {
	exe, tmp := scaleSetup(b, "tree.c")
	var sum scaleRun
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(scaleTimeout(b), func() { scaleHung(b.Name(), i, scaleTimeout(b), tmp) })
		r, err := treeRun(b, exe, dir)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d: %d processes: dump %v (frozen %v), restore %v", i+1, treeSize, r.dump, r.frozen, r.restore)
		sum.dump += r.dump
		sum.restore += r.restore
		sum.frozen += r.frozen
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(sum.dump.Seconds()*1e3/n, "dump-ms")
	b.ReportMetric(sum.frozen.Seconds()*1e3/n, "freeze-ms")
	b.ReportMetric(sum.restore.Seconds()*1e3/n, "restore-ms")
	b.ReportMetric(sum.dump.Seconds()*1e3/n/treeSize, "dump-ms/proc")
	b.ReportMetric(sum.restore.Seconds()*1e3/n/treeSize, "restore-ms/proc")
}

func treeRun(b *testing.B, exe, dir string) (r scaleRun, err error) {
	cmd, _, err := startProg(exe, dir, strconv.Itoa(treeSize))
	if err != nil {
		return r, err
	}
	if got := len(descendants(cmd.Process.Pid)) + 1; got != treeSize {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = reapOrphans(30 * time.Second)
		return r, fmt.Errorf("the tree has %d processes, want %d", got, treeSize)
	}
	r, p, err := dumpRestore(b, cmd, dir)
	if err != nil {
		return r, err
	}
	defer func() {
		if kerr := killTree(p); kerr != nil && err == nil {
			err = kerr
		}
	}()
	if got := len(descendants(p.Pid)) + 1; got != treeSize {
		return r, fmt.Errorf("restored tree has %d processes, want %d", got, treeSize)
	}
	return r, nil
}

// BenchmarkDumpRestoreThreads dumps and restores a process with 200
// threads besides its main one (testdata/threads.c) and reports the time
// per thread.
//
//	go test ./test/bench -run '^$' -bench DumpRestoreThreads -benchtime=1x -v
func BenchmarkDumpRestoreThreads(b *testing.B) {
	exe, tmp := scaleSetup(b, "threads.c")
	var sum scaleRun
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(scaleTimeout(b), func() { scaleHung(b.Name(), i, scaleTimeout(b), tmp) })
		r, err := threadsRun(b, exe, dir)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d: %d threads: dump %v (frozen %v), restore %v", i+1, threadCount+1, r.dump, r.frozen, r.restore)
		sum.dump += r.dump
		sum.restore += r.restore
		sum.frozen += r.frozen
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(sum.dump.Seconds()*1e3/n, "dump-ms")
	b.ReportMetric(sum.frozen.Seconds()*1e3/n, "freeze-ms")
	b.ReportMetric(sum.restore.Seconds()*1e3/n, "restore-ms")
	b.ReportMetric(sum.dump.Seconds()*1e6/n/(threadCount+1), "dump-us/thread")
	b.ReportMetric(sum.restore.Seconds()*1e6/n/(threadCount+1), "restore-us/thread")
}

func threadsRun(b *testing.B, exe, dir string) (r scaleRun, err error) {
	cmd, _, err := startProg(exe, dir, strconv.Itoa(threadCount))
	if err != nil {
		return r, err
	}
	r, p, err := dumpRestore(b, cmd, dir)
	if err != nil {
		return r, err
	}
	defer func() {
		if kerr := killRestored(p); kerr != nil && err == nil {
			err = kerr
		}
	}()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.Pid))
	if err != nil {
		return r, fmt.Errorf("restored task: %w", err)
	}
	if len(tasks) != threadCount+1 {
		return r, fmt.Errorf("restored task has %d threads, want %d", len(tasks), threadCount+1)
	}
	return r, nil
}
