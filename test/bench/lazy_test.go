//go:build linux

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

// BenchmarkLazyRestore1GiB dumps a process with 1 GiB of touched memory
// (testdata/lazy1g.c) and restores it lazily, with a lazy-pages server
// in this process (ckpt.ServeLazyPages, as `ckpt lazy-pages` runs it):
//
//	run-ms      from the start of the restore until the task, sent
//	            SIGUSR1 as soon as ckpt.Restore returns, has printed that
//	            it read a page in the middle of its memory (a fault the
//	            server served)
//	restore-ms  the wall time of ckpt.Restore alone
//	all-in-ms   from the start of the restore until the server has put
//	            in every page and returned
//	eager-restore-ms  an ordinary restore of the same images, for scale
//
// Then every page of the task is checked through /proc/PID/mem.
//
//	go test ./test/bench -run '^$' -bench LazyRestore -benchtime=1x -v
func BenchmarkLazyRestore1GiB(b *testing.B) {
	tmp := benchSetup(b)
	exe := filepath.Join(tmp, "lazy1g")
	cflags := []string{"-O2", "-Wall"}
	if m32() {
		cflags = append(cflags, "-m32")
	}
	if err := testsupport.BuildC(exe, filepath.Join("testdata", "lazy1g.c"), cflags...); err != nil {
		b.Fatal(err)
	}
	timeout := scaleTimeout(b)
	sums := map[string]float64{}
	order := []string{"run-ms", "restore-ms", "all-in-ms", "eager-restore-ms"}
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(timeout, func() { scaleHung("BenchmarkLazyRestore1GiB", i, timeout, tmp) })
		m, err := lazyRun(b, exe, dir)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range m {
			sums[k] += v
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	for _, k := range order {
		b.ReportMetric(sums[k]/float64(b.N), k)
	}
}

// lazyRun is one dump, lazy restore and eager restore of lazy1g.
func lazyRun(b *testing.B, exe, dir string) (map[string]float64, error) {
	images := filepath.Join(dir, "images")
	if err := os.Mkdir(images, 0o700); err != nil {
		return nil, err
	}
	t, err := startTarget(exe, dir, "target")
	if err != nil {
		return nil, err
	}
	defer t.kill()
	pid := t.pid()
	if _, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: images}); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if _, err := t.reapDumped(); err != nil {
		return nil, err
	}
	if err := testsupport.WaitGone(pid, 5*time.Second); err != nil {
		return nil, err
	}

	// The server, as `ckpt lazy-pages` runs it.
	var logMu sync.Mutex
	var log []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		log = append(log, fmt.Sprintf(format, args...))
	}
	ready := make(chan struct{})
	type served struct {
		st  *ckpt.LazyPagesStats
		err error
		at  time.Time
	}
	srv := make(chan served, 1)
	go func() {
		st, err := ckpt.ServeLazyPages(ckpt.LazyPagesOptions{ImagesDir: images, Ready: func() { close(ready) }, Logf: logf})
		srv <- served{st, err, time.Now()}
	}()
	select {
	case <-ready:
	case s := <-srv:
		return nil, fmt.Errorf("lazy-pages: %v", s.err)
	}

	runtime.GC()
	b.StartTimer()
	start := time.Now()
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: images, LazyPages: true})
	restored := time.Since(start)
	b.StopTimer()
	if err != nil {
		return nil, fmt.Errorf("lazy restore: %w", err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = killRestored(p)
		}
	}()
	// The middle page: the task must fault it in.
	const mid = memSize / pageSize / 2
	if err := sigqueue(p.Pid, mid); err != nil {
		return nil, err
	}
	line, err := waitUp(t.out, 30*time.Second)
	ran := time.Since(start)
	if err != nil {
		return nil, err
	}
	var s served
	select {
	case s = <-srv:
	case <-time.After(2 * time.Minute):
		return nil, fmt.Errorf("lazy-pages: not done 2 minutes after the restore")
	}
	if s.err != nil {
		return nil, fmt.Errorf("lazy-pages: %v\n  %s", s.err, strings.Join(log, "\n  "))
	}
	allIn := s.at.Sub(start)
	if !strings.HasSuffix(line, " ok") {
		return nil, fmt.Errorf("the restored task read a wrong page: %q", line)
	}
	if err := verifyAll(p.Pid, t.addr); err != nil {
		return nil, err
	}
	killed = true
	if err := killRestored(p); err != nil {
		return nil, err
	}

	// The same images restored eagerly, for scale.
	start = time.Now()
	p2, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: images})
	eager := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("eager restore: %w", err)
	}
	if err := killRestored(p2); err != nil {
		return nil, err
	}
	st := s.st
	b.Logf("lazy restore of 1 GiB (%d CPUs): task runs (answered SIGUSR1 reading page %d) %v after the restore began; ckpt.Restore took %v; all pages in after %v (%d faults, %d pages for them, %d pushed, %d zero pages); an eager restore takes %v",
		runtime.NumCPU(), mid, ran.Round(time.Microsecond), restored.Round(time.Microsecond), allIn.Round(time.Millisecond),
		st.Faults, st.FaultPages, st.PushedPages, st.ZeroPages, eager.Round(time.Millisecond))
	return map[string]float64{
		"run-ms": ms(ran), "restore-ms": ms(restored), "all-in-ms": ms(allIn), "eager-restore-ms": ms(eager),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sigqueue sends SIGUSR1 with value v to pid (rt_sigqueueinfo).
func sigqueue(pid int, v int) error {
	var info [128]byte
	// siginfo_t: si_signo, si_errno, si_code (SI_QUEUE = -1), then
	// _rt: si_pid, si_uid, si_value (at offset 24 on x86_64).
	put32 := func(off int, x int32) {
		info[off], info[off+1], info[off+2], info[off+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	}
	put32(0, int32(unix.SIGUSR1))
	put32(8, -1)
	put32(16, int32(os.Getpid()))
	put32(24, int32(v))
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGQUEUEINFO, uintptr(pid), uintptr(unix.SIGUSR1), uintptr(unsafe.Pointer(&info)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("rt_sigqueueinfo: %w", e)
	}
	return nil
}

// waitUp waits for an "UP" line in the target's output and returns the
// last one.
func waitUp(path string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		var last string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "UP ") {
				last = l
			}
		}
		if last != "" {
			return last, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the restored task printed no UP line within %v: %q", timeout, b)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// verifyAll checks every page of the restored task's 1 GiB.
func verifyAll(pid int, addr uint64) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, chunk)
	for off := uint64(0); off < memSize; off += chunk {
		if _, err := f.ReadAt(buf, int64(addr+off)); err != nil {
			return fmt.Errorf("restored task: read %#x: %w", addr+off, err)
		}
		if err := checkPages(buf, addr, off); err != nil {
			return fmt.Errorf("restored task: %w", err)
		}
	}
	return nil
}
