//go:build linux

package bench

import (
	"fmt"
	"strings"
	"time"
)

// freezeGoalMs is issue 13's goal for the freeze of a dump
// --leave-running of 1 GiB, as the task sees it: a fifth of CRIU 4.2's
// 0.35 s measured on the development VM.
const freezeGoalMs = 70.0

// dumpGoal and restoreGoal are issue 13's goals for 1 GiB: 1.5x faster
// than CRIU 4.2's 0.43 s dump and 0.45 s restore on the development VM
// (CRIU leaves its images in the page cache: compare with dumpNoSync).
const (
	dumpGoal    = 430 * time.Millisecond * 2 / 3
	restoreGoal = 450 * time.Millisecond * 2 / 3
)

// result holds the figures of one run.
type result struct {
	dumpWall    time.Duration
	dumpNoSync  time.Duration // a dump with NoSync, of another target
	frozen      time.Duration
	pageBytes   int64
	imageBytes  int64
	restoreWall time.Duration
	restoreTook time.Duration
	// restoreCPUCkpt and restoreCPUTask are the CPU time ckpt.Restore
	// used in this process and in the restored task (its injected
	// calls: the preadv of the pages, the faults); unlike the wall
	// time they hardly change with other load on the machine.
	restoreCPUCkpt time.Duration
	restoreCPUTask time.Duration
	restoreCPUErr  error
	vmReadv        time.Duration
	procRead       time.Duration
	procReadErr    error
	fileWrite      time.Duration
	// fileWriteNoSync is the same write left in the page cache.
	fileWriteNoSync time.Duration
	fileRead        time.Duration
	procWrite       time.Duration
	procWriteErr    error
	// leaveRunning are the dumps --leave-running, one per freezeModes.
	leaveRunning []*leaveRunning
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
		"dump-MiB/s":              r.dumpRate(),
		"dump-nosync-s":           r.dumpNoSync.Seconds(),
		"freeze-ms":               float64(r.frozen) / float64(time.Millisecond),
		"image-MiB":               float64(r.imageBytes) / mib,
		"restore-MiB/s":           r.restoreRate(),
		"vmreadv-MiB/s":           rate(memSize, r.vmReadv),
		"file-write-MiB/s":        rate(memSize, r.fileWrite),
		"file-write-nosync-MiB/s": rate(memSize, r.fileWriteNoSync),
		"file-read-MiB/s":         rate(memSize, r.fileRead),
		"dump/read-limit":         r.dumpRate() / r.readLimit(),
		"dump/write-limit":        r.dumpRate() / rate(memSize, r.fileWrite),
		"dump/serial-limit":       r.dumpRate() / r.dumpSerialLimit(),
	}
	if r.procReadErr == nil {
		m["procmem-read-MiB/s"] = rate(memSize, r.procRead)
	}
	if r.procWriteErr == nil {
		m["procmem-write-MiB/s"] = rate(memSize, r.procWrite)
		m["restore/limit"] = r.restoreRate() / r.restoreLimit()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if r.restoreCPUErr == nil {
		m["restore-cpu-ms"] = ms(r.restoreCPUCkpt + r.restoreCPUTask)
	}
	for _, lr := range r.leaveRunning {
		suffix := ""
		if lr.mode == "off" {
			suffix = "-nosnap"
		}
		m["task-freeze-R"+suffix+"-ms"] = ms(lr.gap)
		m["dump-R"+suffix+"-ms"] = ms(lr.wall)
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
	row("file write, no fsync (page cache)", memSize, r.fileWriteNoSync, "")
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
	row("dump (ckpt.Dump wall)", r.pageBytes, r.dumpWall, fmt.Sprintf("(goal %.2f s)", dumpGoal.Seconds()))
	w("    %-36s %s of read limit, %s of file write, %s of serial limit",
		"", pct(r.dumpRate(), r.readLimit()), pct(r.dumpRate(), rate(memSize, r.fileWrite)), pct(r.dumpRate(), r.dumpSerialLimit()))
	w("    %-36s %9.1f ms", "frozen (DumpStats.FrozenFor)", float64(r.frozen)/float64(time.Millisecond))
	w("    %-36s %9.1f MiB", "image size (DumpStats.ImageBytes)", float64(r.imageBytes)/mib)
	row("dump --no-sync, another target", r.pageBytes, r.dumpNoSync, fmt.Sprintf("(goal %.2f s; images left in the page cache, as CRIU)", dumpGoal.Seconds()))
	w("    %-36s %s of file write without fsync", "", pct(rate(r.pageBytes, r.dumpNoSync), rate(memSize, r.fileWriteNoSync)))
	row("restore (ckpt.Restore wall)", r.pageBytes, r.restoreWall, fmt.Sprintf("(Process.Took %.3f s; goal %.2f s)", r.restoreTook.Seconds(), restoreGoal.Seconds()))
	w("    %-36s %s of restore limit", "", pct(r.restoreRate(), r.restoreLimit()))
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if r.restoreCPUErr != nil {
		w("    %-36s n/a: %v", "CPU time", r.restoreCPUErr)
	} else {
		w("    %-36s %9.1f ms  (ckpt %.1f ms + restored task %.1f ms)", "CPU time", ms(r.restoreCPUCkpt+r.restoreCPUTask), ms(r.restoreCPUCkpt), ms(r.restoreCPUTask))
	}
	for _, lr := range r.leaveRunning {
		w("dump --leave-running, %s (%d snapshots):", lr.name(), lr.snaps)
		w("    %-36s %9.1f ms  (goal: at most %.0f ms)", "frozen, seen by the task", float64(lr.gap)/float64(time.Millisecond), freezeGoalMs)
		w("    %-36s %9.1f ms", "frozen (DumpStats.FrozenFor)", float64(lr.frozen)/float64(time.Millisecond))
		w("    %-36s %9.1f ms", "dump (ckpt.Dump wall)", float64(lr.wall)/float64(time.Millisecond))
	}
	return strings.TrimRight(sb.String(), "\n")
}
