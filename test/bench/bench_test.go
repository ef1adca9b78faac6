//go:build linux

// Package bench measures dump and restore of a process with 1 GiB of
// touched anonymous memory, beside the limits of the machine it runs on.
// See README.md.
package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	"dump-MiB/s", "freeze-ms", "image-MiB", "restore-MiB/s",
	"vmreadv-MiB/s", "procmem-read-MiB/s", "file-write-MiB/s",
	"file-read-MiB/s", "procmem-write-MiB/s",
	"dump/read-limit", "dump/write-limit", "dump/serial-limit", "restore/limit",
}

func BenchmarkDumpRestore1GiB(b *testing.B) {
	b.StopTimer()
	if runtime.GOARCH != "amd64" {
		b.Skip("ckpt supports linux/amd64 only")
	}
	if os.Geteuid() != 0 {
		b.Skip("dump and restore need root")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		b.Skip("gcc not found")
	}
	// Orphans of anything started here (a restore helper, say) become
	// children of this process, so the final check below sees them.
	if err := testsupport.SetSubreaper(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reapStrays(b) })

	tmp := b.TempDir()
	exe := filepath.Join(tmp, "touch1g")
	if err := testsupport.BuildC(exe, filepath.Join("testdata", "touch1g.c"), "-O2", "-Wall"); err != nil {
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

// result holds the figures of one run.
type result struct {
	dumpWall     time.Duration
	frozen       time.Duration
	pageBytes    int64
	imageBytes   int64
	restoreWall  time.Duration
	restoreTook  time.Duration
	vmReadv      time.Duration
	procRead     time.Duration
	procReadErr  error
	fileWrite    time.Duration
	fileRead     time.Duration
	procWrite    time.Duration
	procWriteErr error
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / mib / d.Seconds()
}

func (r *result) dumpRate() float64    { return rate(r.pageBytes, r.dumpWall) }
func (r *result) restoreRate() float64 { return rate(r.pageBytes, r.restoreWall) }

// readLimit is the faster of the two ways to read another process's memory.
func (r *result) readLimit() float64 {
	l := rate(memSize, r.vmReadv)
	if r.procReadErr == nil {
		l = max(l, rate(memSize, r.procRead))
	}
	return l
}

// dumpSerialLimit is reading (the faster way) then writing 1 GiB, one
// after the other, as a single thread would.
func (r *result) dumpSerialLimit() float64 {
	read := r.vmReadv
	if r.procReadErr == nil {
		read = min(read, r.procRead)
	}
	return rate(memSize, read+r.fileWrite)
}

// restoreLimit is reading 1 GiB from a file then writing it through
// /proc/PID/mem, one after the other.
func (r *result) restoreLimit() float64 {
	if r.procWriteErr != nil {
		return 0
	}
	return rate(memSize, r.fileRead+r.procWrite)
}

func (r *result) metrics() map[string]float64 {
	m := map[string]float64{
		"dump-MiB/s":        r.dumpRate(),
		"freeze-ms":         float64(r.frozen) / float64(time.Millisecond),
		"image-MiB":         float64(r.imageBytes) / mib,
		"restore-MiB/s":     r.restoreRate(),
		"vmreadv-MiB/s":     rate(memSize, r.vmReadv),
		"file-write-MiB/s":  rate(memSize, r.fileWrite),
		"file-read-MiB/s":   rate(memSize, r.fileRead),
		"dump/read-limit":   r.dumpRate() / r.readLimit(),
		"dump/write-limit":  r.dumpRate() / rate(memSize, r.fileWrite),
		"dump/serial-limit": r.dumpRate() / r.dumpSerialLimit(),
	}
	if r.procReadErr == nil {
		m["procmem-read-MiB/s"] = rate(memSize, r.procRead)
	}
	if r.procWriteErr == nil {
		m["procmem-write-MiB/s"] = rate(memSize, r.procWrite)
		m["restore/limit"] = r.restoreRate() / r.restoreLimit()
	}
	return m
}

func (r *result) table() string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	row := func(name string, n int64, d time.Duration, extra string) {
		w("  %-38s %9.1f MiB/s %9.3f s  %s", name, rate(n, d), d.Seconds(), extra)
	}
	pct := func(v, limit float64) string {
		if limit <= 0 {
			return "   n/a"
		}
		return fmt.Sprintf("%5.1f%%", 100*v/limit)
	}
	w("limits, 1024 MiB in %d MiB chunks, best of %d:", chunk/mib, limitTries)
	row("process_vm_readv (running target)", memSize, r.vmReadv, "")
	if r.procReadErr != nil {
		w("  %-38s FAILED: %v", "pread /proc/PID/mem (running target)", r.procReadErr)
	} else {
		row("pread /proc/PID/mem (running target)", memSize, r.procRead, "")
	}
	row("file write + fsync (image dir)", memSize, r.fileWrite, "")
	row("file read (same file, page cache warm)", memSize, r.fileRead, "")
	if r.procWriteErr != nil {
		w("  %-38s FAILED: %v", "pwrite /proc/PID/mem (fresh mapping)", r.procWriteErr)
	} else {
		row("pwrite /proc/PID/mem (fresh mapping)", memSize, r.procWrite, "")
	}
	w("  %-38s %9.1f MiB/s", "read limit = max(vm_readv, proc mem)", r.readLimit())
	w("  %-38s %9.1f MiB/s", "dump serial limit = read then write", r.dumpSerialLimit())
	w("  %-38s %9.1f MiB/s", "restore limit = file read then pwrite", r.restoreLimit())
	w("engine, %.1f MiB of pages:", float64(r.pageBytes)/mib)
	row("dump (ckpt.Dump wall)", r.pageBytes, r.dumpWall, "")
	w("    %-36s %s of read limit, %s of file write, %s of serial limit",
		"", pct(r.dumpRate(), r.readLimit()), pct(r.dumpRate(), rate(memSize, r.fileWrite)), pct(r.dumpRate(), r.dumpSerialLimit()))
	w("    %-36s %9.1f ms", "frozen (DumpStats.FrozenFor)", float64(r.frozen)/float64(time.Millisecond))
	w("    %-36s %9.1f MiB", "image size (DumpStats.ImageBytes)", float64(r.imageBytes)/mib)
	row("restore (ckpt.Restore wall)", r.pageBytes, r.restoreWall, fmt.Sprintf("(Process.Took %.3f s)", r.restoreTook.Seconds()))
	w("    %-36s %s of restore limit", "", pct(r.restoreRate(), r.restoreLimit()))
	return strings.TrimRight(sb.String(), "\n")
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
		return timeFileWrite(limitFile, buf)
	})
	if err != nil {
		return nil, fmt.Errorf("file write limit: %w", err)
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
	b.StartTimer()
	start = time.Now()
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: images, Logf: logf})
	r.restoreWall = time.Since(start)
	b.StopTimer()
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

// limitTries is how many times each limit is measured.
const limitTries = 3

// best runs measure limitTries times and returns the shortest time, or
// the first error.
func best(measure func() (time.Duration, error)) (time.Duration, error) {
	var min time.Duration
	for i := 0; i < limitTries; i++ {
		d, err := measure()
		if err != nil {
			return 0, err
		}
		if i == 0 || d < min {
			min = d
		}
	}
	return min, nil
}

// target is a running touch1g.
type target struct {
	cmd    *exec.Cmd
	out    string
	addr   uint64
	reaped bool
}

var readyRE = regexp.MustCompile(`^READY addr=0x([0-9a-f]+) len=([0-9]+)$`)

// startTarget starts touch1g with stdin /dev/null and stdout and stderr a
// file in dir, and waits for its READY line.
func startTarget(exe, dir, name string, args ...string) (*target, error) {
	outPath := filepath.Join(dir, name+".out")
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	line, err := testsupport.StartReady(cmd, outPath, 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s did not get READY: %w", name, err)
	}
	t := &target{cmd: cmd, out: outPath}
	m := readyRE.FindStringSubmatch(line)
	if m == nil {
		_ = t.kill()
		return nil, fmt.Errorf("%s: READY line %q, want %s", name, line, readyRE)
	}
	t.addr, _ = strconv.ParseUint(m[1], 16, 64)
	if n, _ := strconv.ParseUint(m[2], 10, 64); n != memSize {
		_ = t.kill()
		return nil, fmt.Errorf("%s: mapping of %d bytes, want %d", name, n, memSize)
	}
	return t, nil
}

func (t *target) pid() int { return t.cmd.Process.Pid }

// kill kills and reaps the target unless that was done.
func (t *target) kill() error {
	if t.reaped {
		return nil
	}
	t.reaped = true
	_ = t.cmd.Process.Kill()
	err := t.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

// reapDumped reaps the target after the dump killed it. The dump's tracer
// thread belongs to this process, so its own wait may have reaped it
// already; that is reported as a note.
func (t *target) reapDumped() (string, error) {
	t.reaped = true
	err := t.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "", fmt.Errorf("target exited normally after the dump: %v", t.cmd.ProcessState)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			return "", fmt.Errorf("target after the dump: %v, want killed by SIGKILL", err)
		}
		return "", nil
	case errors.Is(err, syscall.ECHILD):
		return fmt.Sprintf("cmd.Wait() after the dump: %v (the dump's tracer thread, in this process, reaped the target)", err), nil
	default:
		return "", fmt.Errorf("cmd.Wait() after the dump: %w", err)
	}
}

func timeVMReadv(pid int, addr uint64, buf []byte) (time.Duration, error) {
	start := time.Now()
	for off := uint64(0); off < memSize; off += chunk {
		got := 0
		for got < chunk {
			local := []unix.Iovec{{Base: &buf[got]}}
			local[0].SetLen(chunk - got)
			remote := []unix.RemoteIovec{{Base: uintptr(addr + off + uint64(got)), Len: chunk - got}}
			n, err := unix.ProcessVMReadv(pid, local, remote, 0)
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return 0, fmt.Errorf("short read at %#x", addr+off+uint64(got))
			}
			got += n
		}
	}
	return time.Since(start), nil
}

func timeProcMemRead(pid int, addr uint64, buf []byte) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := uint64(0); off < memSize; off += chunk {
		if _, err := f.ReadAt(buf, int64(addr+off)); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func timeProcMemWrite(exe, dir string, buf []byte) (d time.Duration, err error) {
	t, err := startTarget(exe, dir, "notouch", "notouch")
	if err != nil {
		return 0, err
	}
	defer func() {
		if kerr := t.kill(); kerr != nil && err == nil {
			err = kerr
		}
	}()
	start := time.Now()
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", t.pid()), os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := uint64(0); off < memSize; off += chunk {
		if _, err := f.WriteAt(buf, int64(t.addr+off)); err != nil {
			return 0, err
		}
	}
	d = time.Since(start)
	// Make sure the bytes landed.
	got := make([]byte, pageSize)
	if _, err := f.ReadAt(got, int64(t.addr+memSize-pageSize)); err != nil {
		return 0, err
	}
	if string(got) != string(buf[chunk-pageSize:]) {
		return 0, fmt.Errorf("pwrite to /proc/%d/mem did not land", t.pid())
	}
	return d, nil
}

func timeFileWrite(path string, buf []byte) (time.Duration, error) {
	start := time.Now()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := 0; off < memSize; off += chunk {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func timeFileRead(path string, buf []byte) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := 0; off < memSize; off += chunk {
		if _, err := io.ReadFull(f, buf); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// checkPages checks the pattern of every page in buf, which holds the
// target's memory from addr+off.
func checkPages(buf []byte, addr, off uint64) error {
	for p := 0; p+pageSize <= len(buf); p += pageSize {
		idx := (off + uint64(p)) / pageSize
		if err := checkPage(buf[p:p+pageSize], idx); err != nil {
			return fmt.Errorf("page %#x: %w", addr+off+uint64(p), err)
		}
	}
	return nil
}

func checkPage(pg []byte, idx uint64) error {
	want := uint64(pattern) ^ idx
	for w := 0; w < len(pg); w += 8 {
		if got := binary.LittleEndian.Uint64(pg[w:]); got != want {
			return fmt.Errorf("word %d is %#x, want %#x", w/8, got, want)
		}
	}
	return nil
}

// verifyRestored reads pages of the restored task at known addresses.
func verifyRestored(pid int, addr uint64) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return fmt.Errorf("restored task: %w", err)
	}
	defer f.Close()
	const pages = memSize / pageSize
	idxs := []uint64{0, 1, 2, 511, 512, 4095, 4096, pages / 3, pages / 2, pages/2 + 1, 2 * pages / 3, pages - 2, pages - 1}
	for i := uint64(0); i < 16; i++ {
		idxs = append(idxs, (i*104729+7919)%pages) // spread, not random
	}
	pg := make([]byte, pageSize)
	for _, idx := range idxs {
		a := addr + idx*pageSize
		if _, err := f.ReadAt(pg, int64(a)); err != nil {
			return fmt.Errorf("restored task: read page %#x: %w", a, err)
		}
		if err := checkPage(pg, idx); err != nil {
			return fmt.Errorf("restored task: page %#x (index %d): %w", a, idx, err)
		}
	}
	// It must go on with its sleep loop, past at least one sleep(1).
	time.Sleep(1200 * time.Millisecond)
	if s := testsupport.State(pid); s != 'S' && s != 'R' {
		return fmt.Errorf("restored task %d is in state %q 1.2 s after the restore", pid, s)
	}
	return nil
}

func killRestored(p *ckpt.Process) error {
	if err := unix.Kill(p.Pid, unix.SIGKILL); err != nil {
		return fmt.Errorf("kill restored task %d: %w", p.Pid, err)
	}
	ws, err := p.Wait()
	if err != nil {
		return fmt.Errorf("wait for restored task %d: %w", p.Pid, err)
	}
	if !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		return fmt.Errorf("restored task %d ended with status %#x, want killed by SIGKILL", p.Pid, uint32(ws))
	}
	return nil
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
