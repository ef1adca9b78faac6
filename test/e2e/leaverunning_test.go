package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestLeaveRunningSnapshot dumps leave_running_freeze with
// --leave-running while its worker keeps rewriting its memory: the dump
// must take its pages from a copy-on-write snapshot (its log says so),
// the original must go on with nothing of the dump left in it (no
// child, no SIGCHLD, its DONTFORK and WIPEONFORK areas intact: it checks
// that itself on SIGTERM), and the restored copy must find one
// consistent instant of its memory (it checks that by its own logic as
// it goes on). Where the fork is refused (a full pids cgroup), the dump
// copies the pages while the tree is frozen, and both must pass as well.
func TestLeaveRunningSnapshot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tc := range []struct {
		prog string
		// pidsMax puts the program in a pids cgroup with no room for
		// one more task: the fork fails, and the pages must be copied
		// while the tree is frozen instead.
		pidsMax bool
	}{{"leave_running_freeze.64", false}, {"leave_running_freeze.32", false}, {"leave_running_freeze.64", true}} {
		prog, pidsMax := tc.prog, tc.pidsMax
		name := prog
		if pidsMax {
			name += "/pids.max"
		}
		t.Run(name, func(t *testing.T) {
			if strings.HasSuffix(prog, ".32") && !hostIA32 {
				t.Skip("this kernel does not run ia32 programs")
			}
			cgroup := ""
			if pidsMax {
				if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
					t.Skip("no cgroup v1 pids hierarchy at /sys/fs/cgroup/pids")
				}
				cgroup = filepath.Join("/sys/fs/cgroup/pids", fmt.Sprintf("ckpt-e2e-%d", os.Getpid()))
				if err := os.Mkdir(cgroup, 0o755); err != nil {
					t.Fatal(err)
				}
				// Removed once the program is gone (deferred first, run last).
				defer os.Remove(cgroup)
			}
			work := t.TempDir()
			bin, _ := filepath.Abs(filepath.Join(progsDir, "build", prog))
			logPath := filepath.Join(work, "prog.log")
			logF, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer logF.Close()
			cmd := exec.Command(bin)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "CKPT_TEST_DIR="+work)
			cmd.Stdout, cmd.Stderr = logF, logF
			if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			alive := true
			defer func() {
				if alive {
					_ = unix.Kill(pid, unix.SIGKILL)
					_ = cmd.Wait()
				}
			}()
			if cgroup != "" {
				// Its three threads, and no room for a fourth task.
				if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cgroup, "pids.max"), []byte("3"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Let the worker make a few passes.
			time.Sleep(100 * time.Millisecond)
			img := filepath.Join(work, "img")
			if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "-R", "-v4", "-o", "dump.log").CombinedOutput(); err != nil {
				t.Fatalf("dump -R: %v: %s", err, out)
			}
			dlog, _ := os.ReadFile(filepath.Join(img, "dump.log"))
			switch {
			case pidsMax && !strings.Contains(string(dlog), "no copy-on-write snapshot"):
				t.Errorf("the fork of the snapshot did not fail in a full pids cgroup; the dump's log: %s", testsupport.LastLines(string(dlog), 5))
			case !pidsMax && !strings.Contains(string(dlog), "copy-on-write snapshot in child"):
				t.Errorf("the dump did not copy the pages from a snapshot; its log: %s", testsupport.LastLines(string(dlog), 5))
			}
			for _, l := range strings.Split(string(dlog), "\n") {
				if strings.Contains(l, "snapshot") || strings.Contains(l, "frozen") {
					t.Log(l)
				}
			}
			// The original goes on and checks itself.
			time.Sleep(200 * time.Millisecond)
			_ = unix.Kill(pid, unix.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				alive = false
				if err := verdict(logPath, testsupport.ExitCode(err), ""); err != nil {
					t.Fatalf("the original after dump -R: %v", err)
				}
			case <-time.After(finishTimeout):
				t.Fatal("the original did not end after SIGTERM")
			}
			orig, _ := os.ReadFile(logPath)
			t.Logf("original: %s", testsupport.LastLines(string(orig), 2))
			if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
				t.Fatal(err)
			}
			// The restored copy starts from the dumped instant and
			// checks its memory as its worker goes on.
			if err := restoreAndFinish(t, img, work, pid, logPath, len(orig)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// restoreAndFinish restores the images in img (the task must come back
// as pid), sends it SIGTERM and judges the PASS or FAIL it writes to its
// log after the first skip bytes.
func restoreAndFinish(t *testing.T, img, work string, pid int, logPath string, skip int) error {
	pidfile := filepath.Join(work, "restored.pid")
	rc := exec.Command(ckptBin, "restore", "-D", img, "-o", "restore.log", "-v4", "--pidfile", pidfile)
	var rerr strings.Builder
	rc.Stderr = &rerr
	if err := rc.Start(); err != nil {
		return fmt.Errorf("start restore: %w", err)
	}
	restoreDone := make(chan error, 1)
	go func() { restoreDone <- rc.Wait() }()
	got, err := testsupport.WaitPidfile(pidfile, readyTimeout, restoreDone)
	if err != nil {
		_ = rc.Process.Kill()
		return fmt.Errorf("restore: %v: %s", err, testsupport.LastLines(rerr.String(), 3))
	}
	if got != pid {
		_ = unix.Kill(got, unix.SIGKILL)
		<-restoreDone
		return fmt.Errorf("restored as pid %d, want %d", got, pid)
	}
	time.Sleep(200 * time.Millisecond)
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	var werr error
	select {
	case werr = <-restoreDone:
	case <-time.After(finishTimeout):
		_ = unix.Kill(pid, unix.SIGKILL)
		<-restoreDone
		return fmt.Errorf("restored task did not end within %v after SIGTERM (killed)", finishTimeout)
	}
	if _, isExit := werr.(*exec.ExitError); werr != nil && !isExit {
		return fmt.Errorf("ckpt restore: %v", werr)
	}
	log, _ := os.ReadFile(logPath)
	if skip > len(log) {
		skip = len(log)
	}
	rest := filepath.Join(work, "restored.log")
	if err := os.WriteFile(rest, log[skip:], 0o644); err != nil {
		return err
	}
	t.Logf("restored: %s", testsupport.LastLines(string(log[skip:]), 2))
	return verdict(rest, testsupport.ExitCode(werr), rerr.String())
}
