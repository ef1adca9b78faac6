//go:build linux

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
)

// BenchmarkShmem1GiB dumps and restores testdata/shm1g.c, a process with
// 1 GiB of touched shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, as
// a database's shared buffers), through the ckpt binary, built here: what
// a user runs. It reports the wall time of `ckpt dump` (the task is
// killed) and of `ckpt restore -d`, and the peak RSS of each ckpt process
// (its rusage's ru_maxrss): the memory ckpt itself needs for the shared
// memory besides the task's. Every page of the restored task is checked.
//
//	go test ./test/bench -run '^$' -bench Shmem1GiB -benchtime=3x -v
//
// CKPT_BENCH_M32=1 builds the target -m32; CKPT_BENCH_CKPT=PATH runs that
// ckpt binary instead (to compare with another build).
func BenchmarkShmem1GiB(b *testing.B) { shmemBench(b) }

// BenchmarkSysVShm1GiB is BenchmarkShmem1GiB with a SysV shared memory
// segment of 1 GiB (shmget, shmat) in place of the shared mapping.
//
//	go test ./test/bench -run '^$' -bench SysVShm1GiB -benchtime=3x -v
func BenchmarkSysVShm1GiB(b *testing.B) { shmemBench(b, "sysv") }

// shmemBench runs testdata/shm1g.c with args.
func shmemBench(b *testing.B, args ...string) {
	exe, tmp := scaleSetup(b, "shm1g.c")
	ckptBin := ckptBinary(b, tmp)
	avail, err := procfs.MemAvailable()
	if err != nil {
		b.Fatal(err)
	}
	// The target, its restored copy, and ckpt's own heap at worst.
	if need := uint64(3 << 30); avail < need {
		b.Skipf("MemAvailable %d MiB, needs %d MiB", avail>>20, need>>20)
	}
	var sum shmemRun
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		watchdog := time.AfterFunc(scaleTimeout(b), func() { scaleHung(b.Name(), i, scaleTimeout(b), tmp) })
		r, err := shmemOnce(b, ckptBin, exe, dir, args...)
		watchdog.Stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d of %d: dump %.3f s (ckpt peak RSS %d MiB), restore %.3f s (ckpt peak RSS %d MiB), images %d MiB",
			i+1, b.N, r.dump.Seconds(), r.dumpRSS>>20, r.restore.Seconds(), r.restoreRSS>>20, r.images>>20)
		sum.dump += r.dump
		sum.restore += r.restore
		sum.dumpRSS += r.dumpRSS
		sum.restoreRSS += r.restoreRSS
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(sum.dump.Seconds()*1e3/n, "dump-ms")
	b.ReportMetric(sum.restore.Seconds()*1e3/n, "restore-ms")
	b.ReportMetric(float64(sum.dumpRSS)/mib/n, "dump-maxrss-MiB")
	b.ReportMetric(float64(sum.restoreRSS)/mib/n, "restore-maxrss-MiB")
}

// shmemRun is what one dump and restore of shm1g took.
type shmemRun struct {
	dump, restore       time.Duration
	dumpRSS, restoreRSS int64 // bytes
	images              int64 // bytes of the images directory
}

// runCkpt runs the ckpt binary with args, and returns its wall time and
// peak RSS in bytes.
func runCkpt(bin string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return took, 0, fmt.Errorf("ckpt %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return took, 0, fmt.Errorf("ckpt %s: no rusage", args[0])
	}
	return took, ru.Maxrss << 10, nil // ru_maxrss is in KiB
}

func shmemOnce(b *testing.B, ckptBin, exe, dir string, args ...string) (r shmemRun, err error) {
	cmd, line, err := startProg(exe, dir, args...)
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
	images := filepath.Join(dir, "images")
	if err := os.Mkdir(images, 0o700); err != nil {
		return r, err
	}
	b.StartTimer()
	r.dump, r.dumpRSS, err = runCkpt(ckptBin, "dump", "-t", strconv.Itoa(cmd.Process.Pid), "-D", images)
	b.StopTimer()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return r, err
	}
	if werr := cmd.Wait(); werr == nil {
		return r, fmt.Errorf("target exited normally after the dump")
	}
	if ents, err := os.ReadDir(images); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				r.images += fi.Size()
			}
		}
	}
	pidfile := filepath.Join(dir, "restored.pid")
	b.StartTimer()
	r.restore, r.restoreRSS, err = runCkpt(ckptBin, "restore", "-D", images, "-d", "--pidfile", pidfile)
	b.StopTimer()
	if err != nil {
		return r, err
	}
	pb, err := os.ReadFile(pidfile)
	if err != nil {
		return r, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pb)))
	if err != nil {
		return r, fmt.Errorf("pidfile: %w", err)
	}
	// The restored task came to this subreaper when ckpt exited.
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		if _, werr := unix.Wait4(pid, &ws, 0, nil); werr != nil && err == nil {
			err = fmt.Errorf("wait for restored task %d: %w", pid, werr)
		}
	}()
	// Every page holds its pattern.
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return r, fmt.Errorf("restored task: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for off := uint64(0); off < memSize; off += uint64(len(buf)) {
		if _, err := f.ReadAt(buf, int64(addr+off)); err != nil {
			return r, fmt.Errorf("restored task: read %#x: %w", addr+off, err)
		}
		if err := checkPages(buf, addr, off); err != nil {
			return r, fmt.Errorf("restored task: %w", err)
		}
	}
	return r, nil
}
