package e2e

import (
	"bytes"
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

// predumpArea is the size of predump_mem's area, which the pages image of
// a full dump holds at least.
const predumpArea = 64 << 20

// holderSocket is the socket a pre-dump's holder listens on in its
// images directory.
const holderSocket = ".ckpt-track.sock"

// holders returns the PIDs of the write-tracking holders of images
// directory dir (ckpt __track-holder DIR ...).
func holders(dir string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if len(args) >= 3 && args[1] == "__track-holder" && args[2] == dir {
			// A zombie holder (not reaped yet) has no cmdline: only
			// live ones count.
			out = append(out, pid)
		}
	}
	return out
}

// waitNoHolder waits until dir has no holder and no holder socket.
func waitNoHolder(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h := holders(dir)
		_, serr := os.Lstat(filepath.Join(dir, holderSocket))
		if len(h) == 0 && os.IsNotExist(serr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: holders %v still running, socket: %v", dir, h, serr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pagesBytes is the size of the pages images in dir.
func pagesBytes(t *testing.T, dir string) int64 {
	t.Helper()
	n, err := testsupport.PagesBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startPredumpProg starts predump_mem (.64 or .32) in work and returns it
// with its log path; the caller kills it if it is still there.
func startPredumpProg(t *testing.T, prog, work string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	if strings.HasSuffix(prog, ".32") && !hostIA32 {
		t.Skip("this kernel does not run ia32 programs")
	}
	bin, _ := filepath.Abs(filepath.Join(progsDir, "build", prog))
	logPath := filepath.Join(work, "prog.log")
	logF, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logF.Close() })
	cmd := exec.Command(bin)
	cmd.Dir = work
	cmd.Env = append(append(os.Environ(), "CKPT_TEST_DIR="+work), env...)
	cmd.Stdout, cmd.Stderr = logF, logF
	if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
		t.Fatal(err)
	}
	return cmd, logPath
}

func ckptRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(ckptBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ckpt %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPreDumpChain runs a pre-copy chain on predump_mem while it keeps
// rewriting a tenth of its 64 MiB: pre-dump, pre-dump --prev-images-dir,
// dump --prev-images-dir --track-mem. The final dump must hold far fewer
// pages than the area (the rest are in_parent), each dump's holder must
// be gone once the next dump took its tracking, and none left after the
// final dump. A restore with a parent missing must refuse, naming it, and
// create nothing; the restore of the whole chain must give the program
// back every page as it was (it checks them itself).
func TestPreDumpChain(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, prog := range []string{"predump_mem.64", "predump_mem.32"} {
		t.Run(prog, func(t *testing.T) {
			work := t.TempDir()
			// Mappings made, unmapped and moved between the dumps too.
			cmd, logPath := startPredumpProg(t, prog, work, "PREDUMP_CHURN=1")
			pid := cmd.Process.Pid
			alive := true
			defer func() {
				if alive {
					_ = unix.Kill(pid, unix.SIGKILL)
					_ = cmd.Wait()
				}
			}()
			pre1, pre2, final := filepath.Join(work, "pre1"), filepath.Join(work, "pre2"), filepath.Join(work, "final")
			t.Cleanup(func() {
				// Whatever happened, no holder outlives the test.
				for _, d := range []string{pre1, pre2, final} {
					for _, h := range holders(d) {
						_ = unix.Kill(h, unix.SIGKILL)
					}
				}
			})
			ckptRun(t, "pre-dump", "-t", strconv.Itoa(pid), "-D", pre1)
			if h := holders(pre1); len(h) != 1 {
				t.Fatalf("after pre-dump: holders of %s: %v, want one", pre1, h)
			}
			if n := pagesBytes(t, pre1); n < predumpArea {
				t.Errorf("the first pre-dump holds %d bytes of pages, less than the area (%d)", n, predumpArea)
			}
			time.Sleep(300 * time.Millisecond)
			ckptRun(t, "pre-dump", "-t", strconv.Itoa(pid), "-D", pre2, "--prev-images-dir", "../pre1")
			waitNoHolder(t, pre1)
			if h := holders(pre2); len(h) != 1 {
				t.Fatalf("after the second pre-dump: holders of %s: %v, want one", pre2, h)
			}
			time.Sleep(300 * time.Millisecond)
			ckptRun(t, "dump", "-t", strconv.Itoa(pid), "-D", final, "--prev-images-dir", "../pre2", "--track-mem")
			waitNoHolder(t, pre2)
			waitNoHolder(t, final)
			for dir, want := range map[string]string{pre2: "../pre1", final: "../pre2"} {
				if got, err := os.Readlink(filepath.Join(dir, "parent")); err != nil || got != want {
					t.Errorf("%s/parent: %q, %v; want %q", dir, got, err, want)
				}
			}
			// CRIU's crit reads the in_parent entries.
			if crit, err := exec.LookPath("crit"); err == nil {
				out, err := exec.Command(crit, "show", filepath.Join(final, "pagemap-"+strconv.Itoa(pid)+".img")).CombinedOutput()
				if err != nil || !strings.Contains(string(out), `"in_parent": true`) || !strings.Contains(string(out), "PE_PARENT") {
					t.Errorf("crit show of the final pagemap: %v: %s", err, testsupport.LastLines(string(out), 5))
				}
			}
			n2, nf := pagesBytes(t, pre2), pagesBytes(t, final)
			t.Logf("pages images: pre1 %d, pre2 %d, final %d bytes (area %d)", pagesBytes(t, pre1), n2, nf, predumpArea)
			// A tenth of the area is rewritten all the time; the rest
			// must be left in the parents.
			if nf >= predumpArea/4 || n2 >= predumpArea/4 {
				t.Errorf("incremental dumps hold %d and %d bytes of pages, not much less than the area (%d)", n2, nf, predumpArea)
			}
			_ = cmd.Wait()
			alive = false
			orig, _ := os.ReadFile(logPath)
			if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
				t.Fatal(err)
			}

			// A broken chain: the first pre-dump is gone.
			if err := os.Rename(pre1, pre1+".away"); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(ckptBin, "restore", "-D", final, "-d").CombinedOutput()
			if err == nil {
				t.Fatalf("restore with the parent's parent missing succeeded: %s", out)
			}
			if !strings.Contains(string(out), "pre1") || !strings.Contains(string(out), "missing") {
				t.Errorf("restore with a missing parent: the error does not name it: %s", out)
			}
			if unix.Kill(pid, 0) == nil {
				t.Errorf("a refused restore left pid %d behind", pid)
			}
			if err := os.Rename(pre1+".away", pre1); err != nil {
				t.Fatal(err)
			}
			// A lazy restore of the chain is refused before it begins.
			out, err = exec.Command(ckptBin, "restore", "-D", final, "-d", "--lazy-pages").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--lazy-pages of a pre-copy dump") {
				t.Errorf("restore --lazy-pages of a pre-copy dump: %v: %s", err, out)
			}
			if unix.Kill(pid, 0) == nil {
				t.Errorf("a refused lazy restore left pid %d behind", pid)
			}
			if err := restoreAndFinish(t, final, work, pid, logPath, len(orig)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPreDumpHolderGone: the holder exits when the tracked task exits;
// a dump --track-mem that finds no holder saves every page, says so, and
// writes no parent link; a refused pre-dump leaves no holder.
func TestPreDumpHolderGone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	pre1, pre2, bad := filepath.Join(work, "pre1"), filepath.Join(work, "pre2"), filepath.Join(work, "bad")
	t.Cleanup(func() {
		for _, d := range []string{pre1, pre2, bad} {
			for _, h := range holders(d) {
				_ = unix.Kill(h, unix.SIGKILL)
			}
		}
	})
	cmd, _ := startPredumpProg(t, "predump_mem.64", work)
	pid := cmd.Process.Pid
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	}()
	// Refused on a kernel without PAGEMAP_SCAN, before the tree is
	// touched and the directory made.
	nope := exec.Command(ckptBin, "pre-dump", "-t", strconv.Itoa(pid), "-D", bad)
	nope.Env = append(os.Environ(), "CKPT_FAULT=no-pagemap-scan")
	out, err := nope.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "PAGEMAP_SCAN (Linux 6.7)") {
		t.Errorf("pre-dump on a kernel without PAGEMAP_SCAN: %v: %s", err, out)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("a refused pre-dump made %s", bad)
	}
	// Refused: the previous images directory does not exist.
	out, err = exec.Command(ckptBin, "pre-dump", "-t", strconv.Itoa(pid), "-D", bad, "--prev-images-dir", "../nowhere").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nowhere") {
		t.Errorf("pre-dump with a missing --prev-images-dir: %v: %s", err, out)
	}
	if h := holders(bad); len(h) != 0 {
		t.Errorf("a refused pre-dump left holders %v", h)
	}
	ckptRun(t, "pre-dump", "-t", strconv.Itoa(pid), "-D", pre1)
	h := holders(pre1)
	if len(h) != 1 {
		t.Fatalf("holders of %s: %v, want one", pre1, h)
	}
	// Its holder killed: the next dump saves everything.
	if err := unix.Kill(h[0], unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitNoHolder(t, pre1)
	out2 := ckptRun(t, "pre-dump", "-t", strconv.Itoa(pid), "-D", pre2, "--prev-images-dir", "../pre1")
	if !strings.Contains(out2, "saves every page") {
		t.Errorf("a pre-dump whose parent has no holder did not say it saves every page: %s", out2)
	}
	if _, err := os.Lstat(filepath.Join(pre2, "parent")); err == nil {
		t.Errorf("a full pre-dump has a parent link")
	}
	if n := pagesBytes(t, pre2); n < predumpArea {
		t.Errorf("a pre-dump without tracking holds %d bytes of pages, less than the area", n)
	}
	// The task exits: its holder follows.
	if len(holders(pre2)) != 1 {
		t.Fatalf("no holder for %s", pre2)
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	_ = cmd.Wait()
	waitNoHolder(t, pre2)
}

// TestPreDumpTree runs a shorter chain (pre-dump, dump --track-mem) on a
// tree of processes (pipeline: a parent and children joined by pipes):
// one holder keeps the tracking of all of them, and the restore of the
// chain must pass the program's own checks.
func TestPreDumpTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, prog := range []string{"pipeline.64", "pipeline.32"} {
		t.Run(prog, func(t *testing.T) {
			work := t.TempDir()
			cmd, logPath := startPredumpProg(t, prog, work)
			pid := cmd.Process.Pid
			alive := true
			defer func() {
				if alive {
					_ = unix.Kill(pid, unix.SIGKILL)
					_ = cmd.Wait()
				}
			}()
			pre, final := filepath.Join(work, "pre"), filepath.Join(work, "final")
			t.Cleanup(func() {
				for _, h := range holders(pre) {
					_ = unix.Kill(h, unix.SIGKILL)
				}
			})
			ckptRun(t, "pre-dump", "-t", strconv.Itoa(pid), "-D", pre)
			if h := holders(pre); len(h) != 1 {
				t.Fatalf("holders of %s: %v, want one", pre, h)
			}
			out := ckptRun(t, "dump", "-t", strconv.Itoa(pid), "-D", final, "--prev-images-dir", "../pre", "--track-mem", "-v")
			if !strings.Contains(out, "left in the parent dump") {
				t.Errorf("the final dump left no page in the parent: %s", testsupport.LastLines(out, 3))
			}
			waitNoHolder(t, pre)
			_ = cmd.Wait()
			alive = false
			orig, _ := os.ReadFile(logPath)
			// The children the dump killed come to this subreaper.
			reapZombies(t)
			if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
				t.Fatal(err)
			}
			if err := restoreAndFinish(t, final, work, pid, logPath, len(orig)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// reapZombies reaps the children of this process that are zombies, until
// none is left for a while.
func reapZombies(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	quiet := 0
	for quiet < 20 && time.Now().Before(deadline) {
		found := false
		for _, c := range testsupport.Children() {
			if testsupport.State(c) == 'Z' {
				var ws unix.WaitStatus
				_, _ = unix.Wait4(c, &ws, unix.WALL|unix.WNOHANG, nil)
				found = true
			}
		}
		if found {
			quiet = 0
		} else {
			quiet++
		}
		time.Sleep(5 * time.Millisecond)
	}
}
