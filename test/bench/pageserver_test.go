//go:build linux

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

// BenchmarkPageServer1GiB dumps touch1g (1 GiB of touched anonymous
// memory) with its pages going to a page server (ckpt.ServePages, in this
// process) over loopback, then restores the dump from the server's
// directory and checks every page. It reports the dump's wall time (from
// the call until the server answered that every image is synced) and the
// pages' throughput; its limit is the same dump into a local directory
// (BenchmarkDumpRestore1GiB), as loopback TCP costs about what the page
// cache does.
//
//	go test ./test/bench -run '^$' -bench PageServer -benchtime=1x -v
//
// CKPT_BENCH_M32=1 builds the target -m32.
func BenchmarkPageServer1GiB(b *testing.B) {
	tmp := benchSetup(b)
	exe := filepath.Join(tmp, "touch1g")
	cflags := []string{"-O2", "-Wall", "-pthread"}
	if m32() {
		cflags = append(cflags, "-m32")
	}
	if err := testsupport.BuildC(exe, filepath.Join("testdata", "touch1g.c"), cflags...); err != nil {
		b.Fatal(err)
	}
	var sumDump, sumRate float64
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(scaleTimeout(b), func() { hung(i, scaleTimeout(b), tmp) })
		d, n, err := pageServerRun(b, exe, dir)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		rate := float64(n) / mib / d.Seconds()
		b.Logf("run %d of %d: dump of %d MiB of pages through the page server on loopback: %.3f s, %.0f MiB/s", i+1, b.N, n/mib, d.Seconds(), rate)
		sumDump += d.Seconds()
		sumRate += rate
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(sumDump/float64(b.N), "dump-s")
	b.ReportMetric(sumRate/float64(b.N), "dump-MiB/s")
}

// pageServerRun dumps one target to a page server and restores it from
// the server's directory; it returns the dump's wall time and the bytes
// of pages.
func pageServerRun(b *testing.B, exe, dir string) (time.Duration, int64, error) {
	t, err := startTarget(exe, dir, "target")
	if err != nil {
		return 0, 0, err
	}
	defer t.kill()
	srvDir := filepath.Join(dir, "srv")
	l, err := ckpt.ListenPageServer("127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	served := make(chan error, 1)
	go func() { served <- ckpt.ServePages(ckpt.PageServerOptions{ImagesDir: srvDir, Listener: l}) }()
	pid := t.pid()
	runtime.GC()
	b.StartTimer()
	start := time.Now()
	st, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: filepath.Join(dir, "local"), PageServer: l.Addr().String()})
	took := time.Since(start)
	b.StopTimer()
	if err != nil {
		l.Close()
		<-served
		return 0, 0, fmt.Errorf("dump to the page server: %w", err)
	}
	if err := <-served; err != nil {
		return 0, 0, err
	}
	b.Logf("dump: %d pages, %d of them spliced into the socket, frozen for %v", st.PagesWritten, st.PagesSpliced, st.FrozenFor)
	if _, err := t.reapDumped(); err != nil {
		return 0, 0, err
	}
	if err := testsupport.WaitGone(pid, 5*time.Second); err != nil {
		return 0, 0, err
	}
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: srvDir})
	if err != nil {
		return 0, 0, fmt.Errorf("restore from the page server's directory: %w", err)
	}
	defer killRestored(p)
	if err := verifyRestored(p.Pid, t.addr); err != nil {
		return 0, 0, err
	}
	return took, int64(st.PagesWritten) * pageSize, nil
}
