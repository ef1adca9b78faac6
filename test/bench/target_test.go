//go:build linux

package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

// target is a running touch1g.
type target struct {
	cmd    *exec.Cmd
	out    string
	addr   uint64
	gap    uint64 // the heartbeat's longest gap, ns (testdata/touch1g.c)
	reaped bool
}

var readyRE = regexp.MustCompile(`^READY addr=0x([0-9a-f]+) len=([0-9]+) gap=0x([0-9a-f]+)$`)

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
	t.gap, _ = strconv.ParseUint(m[3], 16, 64)
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

// reapDumped reaps the target after the dump killed it. The dump leaves
// the caller's own child for the caller to reap: an ECHILD here is a bug.
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
		return "", fmt.Errorf("cmd.Wait() after the dump: %v: the dump reaped the caller's own child", err)
	default:
		return "", fmt.Errorf("cmd.Wait() after the dump: %w", err)
	}
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

// selfCPU is the CPU time this process used so far, all threads, user
// and system.
func selfCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// taskCPU is the CPU time process pid used so far, the sum over its
// threads of the first field of /proc/PID/task/TID/schedstat (time on
// a CPU, in ns; Documentation/scheduler/sched-stats.rst), finer than
// the clock ticks of /proc/PID/stat.
func taskCPU(pid int) (time.Duration, error) {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, d.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, d.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
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

// benchSetup stops the timer, skips where a benchmark cannot run (not
// linux/amd64, not root, no gcc), makes this process the subreaper of
// what the benchmark starts (a restore's orphans come here, and the
// benchmark's end reaps and checks them) and returns a temporary
// directory for its target and images.
func benchSetup(b *testing.B) string {
	b.Helper()
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
	if err := testsupport.SetSubreaper(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reapStrays(b) })
	if note := pageReportingNote(); note != "" {
		b.Log(note)
	}
	return b.TempDir()
}

// pageReportingNote says, on a virtual machine that gives its free
// memory back to its host (virtio-balloon free page reporting), that the
// figures vary for it; "" elsewhere.
func pageReportingNote() string {
	raw, err := os.ReadFile("/sys/module/page_reporting/parameters/reported_kib")
	if err != nil {
		return ""
	}
	kib, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || kib == 0 {
		return ""
	}
	return fmt.Sprintf("note: this guest has given %.0f GiB of free memory back to its host since it booted "+
		"(virtio-balloon free page reporting): memory the kernel takes from its free lists, a dump's page cache "+
		"among it, may first have to be faulted in again by the host, so dump times vary from run to run; "+
		"compare medians of several runs", float64(kib)/(1<<20))
}
