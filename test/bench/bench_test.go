//go:build linux

// Package bench measures dump and restore of a process with 1 GiB of
// touched anonymous memory, beside the limits of the machine it runs on.
// See README.md.
package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

const (
	memSize  = 1 << 30 // the target's mapping, as in testdata/touch1g.c
	chunk    = 4 << 20 // the unit of every limit measurement
	pageSize = 4096
	// pattern ^ i is every 8-byte word of page i (testdata/touch1g.c).
	pattern = 0xC0FFEE5A5A000000
	mib     = 1 << 20
)

// metricOrder fixes the order of the b.ReportMetric calls.
var metricOrder = []string{
	"dump-MiB/s", "dump-nosync-s", "freeze-ms", "image-MiB", "restore-MiB/s",
	"task-freeze-R-ms", "task-freeze-R-nosnap-ms", "dump-R-ms", "dump-R-nosnap-ms",
	"vmreadv-MiB/s", "procmem-read-MiB/s", "file-write-MiB/s",
	"file-write-nosync-MiB/s", "file-read-MiB/s", "procmem-write-MiB/s",
	"dump/read-limit", "dump/write-limit", "dump/serial-limit", "restore/limit",
	"restore-cpu-ms",
}

func TestMain(m *testing.M) {
	// A pre-dump (BenchmarkPreCopy) starts this binary again as the
	// holder of its write tracking, as the ckpt command starts itself.
	if len(os.Args) > 1 && os.Args[1] == ckpt.TrackHolderCommand {
		if err := ckpt.RunTrackHolder(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testsupport.NoInheritedFds()
	os.Exit(m.Run())
}

func BenchmarkDumpRestore1GiB(b *testing.B) {
	tmp := benchSetup(b)
	exe := filepath.Join(tmp, "touch1g")
	cflags := []string{"-O2", "-Wall", "-pthread"}
	if m32() {
		cflags = append(cflags, "-m32") // an ia32 target
	}
	if err := testsupport.BuildC(exe, filepath.Join("testdata", "touch1g.c"), cflags...); err != nil {
		b.Fatal(err)
	}
	thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")

	timeout := 5 * time.Minute
	if v := os.Getenv("CKPT_BENCH_TIMEOUT"); v != "" {
		var err error
		if timeout, err = time.ParseDuration(v); err != nil {
			b.Fatalf("CKPT_BENCH_TIMEOUT: %v", err)
		}
	}

	sums := map[string]float64{}
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		// Benchmarks are not under -test.timeout: a hung dump or restore
		// would hang forever without this.
		watchdog := time.AfterFunc(timeout, func() { hung(i, timeout, tmp) })
		r, err := runOnce(b, exe, dir)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d of %d (%d CPUs, THP %s)\n%s", i+1, b.N, runtime.NumCPU(), strings.TrimSpace(string(thp)), r.table())
		for k, v := range r.metrics() {
			sums[k] += v
		}
		// Free the 1 GiB of images before the next run.
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	for _, k := range metricOrder {
		if v, ok := sums[k]; ok {
			b.ReportMetric(v/float64(b.N), k)
		}
	}
}

// runOnce measures the limits, then dumps and restores one target.
func runOnce(b *testing.B, exe, dir string) (res *result, err error) {
	r := &result{}
	images := filepath.Join(dir, "images")
	if err := os.Mkdir(images, 0o700); err != nil {
		return nil, err
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = 0x5a // fault the buffer in before any timing
	}

	t, err := startTarget(exe, dir, "target")
	if err != nil {
		return nil, err
	}
	defer func() {
		if kerr := t.kill(); kerr != nil && err == nil {
			err = kerr
		}
	}()

	// Every limit is the best of limitTries measurements: the first pass
	// may pay for things the engine, running later, does not (on a VM,
	// guest memory touched for the first time is much slower to fault in;
	// the dump's page cache reuses the pages the limit file just freed).

	// Read limits, from the running target.
	r.vmReadv, err = best(func() (time.Duration, error) {
		d, err := timeVMReadv(t.pid(), t.addr, buf)
		if err == nil {
			err = checkPages(buf, t.addr, memSize-chunk)
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("process_vm_readv limit: %w", err)
	}
	r.procRead, r.procReadErr = best(func() (time.Duration, error) {
		d, err := timeProcMemRead(t.pid(), t.addr, buf)
		if err == nil {
			err = checkPages(buf, t.addr, memSize-chunk)
		}
		return d, err
	})

	// File limits, in the image directory; the file is gone before the dump.
	limitFile := filepath.Join(images, "limit-test.bin")
	r.fileWrite, err = best(func() (time.Duration, error) {
		if err := os.Remove(limitFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		return timeFileWrite(limitFile, buf, true)
	})
	if err != nil {
		return nil, fmt.Errorf("file write limit: %w", err)
	}
	// The same into the page cache only: the limit of a dump with NoSync.
	// A file of its own, removed before the synced one is read back.
	noSyncFile := filepath.Join(images, "limit-test-nosync.bin")
	r.fileWriteNoSync, err = best(func() (time.Duration, error) {
		if err := os.Remove(noSyncFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		return timeFileWrite(noSyncFile, buf, false)
	})
	if err != nil {
		return nil, fmt.Errorf("file write limit without sync: %w", err)
	}
	if err := os.Remove(noSyncFile); err != nil {
		return nil, err
	}
	r.fileRead, err = best(func() (time.Duration, error) { return timeFileRead(limitFile, buf) })
	if err != nil {
		return nil, fmt.Errorf("file read limit: %w", err)
	}
	if err := os.Remove(limitFile); err != nil {
		return nil, err
	}

	// Write limit: pwrite to /proc/PID/mem of a second process that only
	// mapped its 1 GiB, so every page is faulted in by the write, as in a
	// restore. A new process for each try.
	r.procWrite, r.procWriteErr = best(func() (time.Duration, error) { return timeProcMemWrite(exe, dir, buf) })

	// Dumps that leave the target running: how long the target itself
	// saw itself frozen, with and without the copy-on-write snapshot.
	for _, mode := range freezeModes {
		lr, err := dumpLeaveRunning(t, dir, mode)
		if err != nil {
			return nil, err
		}
		r.leaveRunning = append(r.leaveRunning, lr)
	}

	// A dump with NoSync (images left in the page cache, as CRIU leaves
	// them) of a second target, so that the dump below, synced, finds
	// the page cache as the first dump of a run does.
	if r.dumpNoSync, err = dumpNoSync(exe, dir); err != nil {
		return nil, err
	}

	// Dump; the target is killed by the engine.
	var logMu sync.Mutex
	var log []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		log = append(log, fmt.Sprintf(format, args...))
	}
	withLog := func(err error) error {
		logMu.Lock()
		defer logMu.Unlock()
		return fmt.Errorf("%w\nengine log:\n  %s", err, strings.Join(log, "\n  "))
	}
	pid := t.pid()
	runtime.GC()
	b.StartTimer()
	start := time.Now()
	st, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: images, Logf: logf})
	r.dumpWall = time.Since(start)
	b.StopTimer()
	if err != nil {
		return nil, withLog(fmt.Errorf("ckpt.Dump (after %v): %v", r.dumpWall, err))
	}
	r.frozen = st.FrozenFor
	r.pageBytes = int64(st.PagesWritten) * pageSize
	b.Logf("dump: %d pages written, %d of them spliced (one copy)", st.PagesWritten, st.PagesSpliced)
	r.imageBytes = st.ImageBytes
	if note, err := t.reapDumped(); err != nil {
		return nil, err
	} else if note != "" {
		b.Logf("note: %s", note)
	}
	if err := testsupport.WaitGone(pid, 5*time.Second); err != nil {
		return nil, err
	}

	// Restore; the task comes back with the same pid, as our child.
	log = nil
	runtime.GC()
	cpu0, cpuErr := selfCPU()
	b.StartTimer()
	start = time.Now()
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: images, Logf: logf})
	r.restoreWall = time.Since(start)
	b.StopTimer()
	// The CPU the restore took, read before the released task runs much
	// (it sleeps; its heartbeat thread wakes every 200 us).
	if err == nil && cpuErr == nil {
		var cpu1 time.Duration
		if cpu1, cpuErr = selfCPU(); cpuErr == nil {
			r.restoreCPUCkpt = cpu1 - cpu0
			r.restoreCPUTask, cpuErr = taskCPU(p.Pid)
		}
	}
	r.restoreCPUErr = cpuErr
	if err != nil {
		return nil, withLog(fmt.Errorf("ckpt.Restore (after %v): %v", r.restoreWall, err))
	}
	r.restoreTook = p.Took
	defer func() {
		if kerr := killRestored(p); kerr != nil && err == nil {
			err = kerr
		}
	}()
	if p.Pid != pid {
		return nil, fmt.Errorf("restored pid %d, dumped %d", p.Pid, pid)
	}
	if err := verifyRestored(p.Pid, t.addr); err != nil {
		return nil, err
	}
	return r, nil
}

// dumpNoSync dumps a new target with NoSync and returns the dump's wall
// time; the images are removed after.
func dumpNoSync(exe, dir string) (time.Duration, error) {
	t, err := startTarget(exe, dir, "target-nosync")
	if err != nil {
		return 0, err
	}
	defer t.kill()
	images := filepath.Join(dir, "images-nosync")
	if err := os.Mkdir(images, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(images)
	runtime.GC()
	start := time.Now()
	_, err = ckpt.Dump(ckpt.DumpOptions{Pid: t.pid(), ImagesDir: images, NoSync: true})
	wall := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("ckpt.Dump with NoSync (after %v): %w", wall, err)
	}
	if _, err := t.reapDumped(); err != nil {
		return 0, err
	}
	return wall, nil
}

// hung prints every goroutine, kills every child and the test process.
func hung(run int, timeout time.Duration, tmp string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	fmt.Fprintf(os.Stderr, "BenchmarkDumpRestore1GiB: run %d did not finish within %v (CKPT_BENCH_TIMEOUT); goroutines:\n%s\n", run, timeout, buf)
	// Remove the files first: killing the children may let the benchmark
	// go on, fail and end the process before this goroutine is done.
	// tmp is b.TempDir(); its parent is the benchmark's own directory.
	_ = os.RemoveAll(filepath.Dir(tmp))
	kids := testsupport.Children()
	for _, pid := range kids {
		fmt.Fprintf(os.Stderr, "killing child %s\n", testsupport.Describe(pid))
	}
	// A stuck wait of the benchmark may reap some first.
	testsupport.KillAndReap(kids, 5*time.Second)
	os.Exit(2)
}

// reapStrays kills and reaps every child still left and fails if there
// was one.
func reapStrays(b *testing.B) {
	strays := testsupport.Children()
	for _, pid := range strays {
		b.Errorf("process %s was left behind; killing it", testsupport.Describe(pid))
	}
	testsupport.KillAndReap(strays, 5*time.Second)
}
