package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// startLazyServer starts `ckpt lazy-pages -D img` with the environment
// given and waits until its socket listens. The returned channel gives
// its exit.
func startLazyServer(t *testing.T, img string, env ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	srv := exec.Command(ckptBin, "lazy-pages", "-D", img, "-v", "-o", "lazy-pages.log")
	srv.Env = append(os.Environ(), env...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
		}
	})
	sock := filepath.Join(img, "lazy-pages.socket")
	deadline := time.Now().Add(readyTimeout)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return srv, done
		}
		select {
		case err := <-done:
			t.Fatalf("lazy-pages exited before it listened: %v: %s", err, serverLog(img))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lazy-pages: no socket %s after %v", sock, readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func serverLog(img string) string {
	b, _ := os.ReadFile(filepath.Join(img, "lazy-pages.log"))
	return string(b)
}

// waitServer waits for the lazy-pages server to exit by itself (with an
// error if failed: the restore failed) and checks that it leaves no
// socket behind.
func waitServer(t *testing.T, img string, done <-chan error, failed bool) {
	t.Helper()
	select {
	case err := <-done:
		if (err != nil) != failed {
			t.Errorf("lazy-pages: %v; log:\n%s", err, serverLog(img))
		}
	case <-time.After(finishTimeout):
		t.Fatalf("lazy-pages did not exit by itself within %v; log:\n%s", finishTimeout, serverLog(img))
	}
	if _, err := os.Stat(filepath.Join(img, "lazy-pages.socket")); err == nil {
		t.Errorf("lazy-pages left its socket behind")
	}
}

var residentRe = regexp.MustCompile(`# resident at (wake|fork): (\d+) of (\d+) pages`)

// lazyProgs are the programs TestLazyPages restores lazily: lazy_mem,
// made for it, and trees (the restore forks children from a parent
// whose memory is registered; cow_shared checks that its children still
// share their pages with it), threads, rseq (the kernel writes into
// lazy memory), shared memory, file mappings, hugetlb memory and AIO
// rings (all eager) and a zombie.
var lazyProgs = []string{"lazy_mem", "cow_shared", "process_tree", "mixed_tree", "shared_anon", "zombie", "threads", "rseq", "mem_heap",
	"mem_file_private", "hugetlb_map", "aio_ring"}

// TestLazyPages restores lazy_mem (-m64 and -m32) with --lazy-pages from
// a `ckpt lazy-pages` server that pushes at a crawl (CKPT_FAULT=lazy-slow),
// so that the program wakes with its memory missing: its first touches,
// an madvise(MADV_DONTNEED), an mremap, a munmap and a fork whose child
// checks its memory all meet the server. The program checks all of its
// memory; the server must exit by itself once every page is in, leaving
// nothing behind.
func TestLazyPages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	var progs []string
	for _, p := range lazyProgs {
		progs = append(progs, p, p+".32")
	}
	for _, prog := range progs {
		t.Run(prog, func(t *testing.T) {
			if strings.HasSuffix(prog, ".32") && !hostIA32 {
				t.Skip("this kernel runs no ia32 programs")
			}
			img := dumpOne(t, prog, false)
			pid, _ := strconv.Atoi(dumpedPid(t, img))
			if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
				t.Fatal(err)
			}
			_, srvDone := startLazyServer(t, img, "CKPT_FAULT=lazy-slow")
			pidfile := filepath.Join(t.TempDir(), "pid")
			rc := exec.Command(ckptBin, "restore", "-D", img, "--lazy-pages", "--pidfile", pidfile)
			var out strings.Builder
			rc.Stdout, rc.Stderr = &out, &out
			got, done := restoreInBackground(t, rc, pidfile)
			if got != pid {
				t.Fatalf("restored pid %d, want %d", got, pid)
			}
			// At once: the program wakes while its pages are coming in.
			if err := unix.Kill(pid, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			var rerr error
			select {
			case rerr = <-done:
			case <-time.After(finishTimeout):
				_ = unix.Kill(pid, unix.SIGKILL)
				t.Fatalf("restored task did not end within %v", finishTimeout)
			}
			logPath := filepath.Join(filepath.Dir(img), "prog.log")
			if err := verdict(logPath, testsupport.ExitCode(rerr), out.String()); err != nil {
				t.Errorf("%s after a lazy restore: %v", prog, err)
			}
			waitServer(t, img, srvDone, false)
			reapAdopted()
			if left := testsupport.Children(); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
			slog := serverLog(img)
			t.Logf("lazy-pages: %s", testsupport.LastLines(slog, 1))
			if !strings.HasPrefix(prog, "lazy_mem") {
				return
			}
			log, _ := os.ReadFile(logPath)
			for _, m := range residentRe.FindAllStringSubmatch(string(log), -1) {
				t.Logf("resident at %s: %s of %s pages", m[1], m[2], m[3])
				if m[1] == "wake" && m[2] == m[3] {
					t.Errorf("every page was in when the program woke: the lazy paths were not taken")
				}
			}
			if !strings.Contains(slog, "all pages in") || !regexp.MustCompile(`\(1 forked`).MatchString(slog) {
				t.Errorf("lazy-pages log: no page served to the child forked after the restore:\n%s", slog)
			}
		})
	}
}

// TestLazyPagesFailures: a lazy restore without a server fails naming
// what to start; a server stopped (SIGTERM) before every page is in
// kills the task; a lazy restore that fails midway leaves nothing
// behind, and the server exits by itself once its tasks are gone.
func TestLazyPagesFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	img := dumpOne(t, "lazy_mem", false)
	pid, _ := strconv.Atoi(dumpedPid(t, img))
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	t.Run("no server", func(t *testing.T) {
		out, err := exec.Command(ckptBin, "restore", "-D", img, "--lazy-pages").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "ckpt lazy-pages -D "+img) {
			t.Fatalf("restore --lazy-pages without a server: %v: %s", err, out)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("task %d exists after the failed restore", pid)
		}
	})
	t.Run("server stopped", func(t *testing.T) {
		// Stopped before every page is in, the server kills the task:
		// without it, the pages not yet in would read as zeros.
		srv, srvDone := startLazyServer(t, img, "CKPT_FAULT=lazy-slow")
		pidfile := filepath.Join(t.TempDir(), "pid")
		rc := exec.Command(ckptBin, "restore", "-D", img, "--lazy-pages", "--pidfile", pidfile)
		got, done := restoreInBackground(t, rc, pidfile)
		if got != pid {
			t.Fatalf("restored pid %d, want %d", got, pid)
		}
		if err := srv.Process.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitServer(t, img, srvDone, true)
		select {
		case err := <-done:
			if code := testsupport.ExitCode(err); code != 128+int(unix.SIGKILL) {
				t.Errorf("ckpt restore: %v (exit %d), want the task killed by SIGKILL", err, code)
			}
		case <-time.After(finishTimeout):
			_ = unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("the task lives on after its server stopped")
		}
		if slog := serverLog(img); !strings.Contains(slog, "killed it") {
			t.Errorf("lazy-pages log does not say it killed the task:\n%s", slog)
		}
		reapAdopted()
		if left := testsupport.Children(); len(left) > 0 {
			t.Errorf("processes left behind: %v", left)
		}
	})
	t.Run("restore fails midway", func(t *testing.T) {
		_, srvDone := startLazyServer(t, img)
		rc := exec.Command(ckptBin, "restore", "-D", img, "--lazy-pages")
		rc.Env = append(os.Environ(), "CKPT_FAULT=panic-at=restore-rebuild")
		out, err := rc.CombinedOutput()
		if err == nil {
			t.Fatalf("restore with panic-at=restore-rebuild succeeded: %s", out)
		}
		waitServer(t, img, srvDone, true)
		if slog := serverLog(img); !strings.Contains(slog, "before it was done") {
			t.Errorf("lazy-pages log does not say the restore failed:\n%s", slog)
		}
		reapAdopted()
		if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
			t.Errorf("after the failed restore: %v", err)
		}
		if left := testsupport.Children(); len(left) > 0 {
			t.Errorf("processes left behind: %v", left)
		}
	})
}
