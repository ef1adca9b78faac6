package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// TestTimeNamespace restores with CKPT_FAULT=clocks-behind=1h, as if the
// clocks of the restoring machine were an hour behind the dumped ones
// (after a reboot): the tree gets a time namespace whose offsets (about
// +1h) let CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from their dumped
// values. Then the restored task, now in that namespace, is dumped and
// restored again without the fault: its clocks as it sees them (the
// namespace's offsets included) were recorded, an hour ahead of this
// machine's, so it gets a namespace with about +1h again. The program
// (threads: futex waits, nanosleep loops, a spinning counter) must PASS.
// On one machine the faked gap shows as a one-hour jump of the clocks;
// TestRestoreOnOtherKernel restores vdso_clock, which checks that its
// clocks neither go back nor jump, on a kernel booted seconds ago.
func TestTimeNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("this kernel has no time namespaces")
	}
	own, _ := os.Readlink("/proc/self/ns/time")
	img := dumpOne(t, "threads", false)
	work := filepath.Dir(img)
	pid := dumpedPid(t, img)
	if err := testsupport.WaitGone(mustAtoi(t, pid), goneTimeout); err != nil {
		t.Fatal(err)
	}
	restore := func(img string, env ...string) (int, <-chan error) {
		t.Helper()
		pidfile := filepath.Join(t.TempDir(), "pid")
		rc := exec.Command(ckptBin, "restore", "-D", img, "--pidfile", pidfile, "-v4", "-o", "restore.log")
		rc.Env = append(os.Environ(), env...)
		got, done := restoreInBackground(t, rc, pidfile)
		if strconv.Itoa(got) != pid {
			t.Errorf("restored as pid %d, want %s", got, pid)
		}
		log, _ := os.ReadFile(filepath.Join(img, "restore.log"))
		if !strings.Contains(string(log), "the tree gets a time namespace") {
			t.Errorf("restore did not make a time namespace: %s", testsupport.LastLines(string(log), 5))
		}
		ns, err := os.Readlink("/proc/" + pid + "/ns/time")
		if err != nil || ns == own {
			t.Errorf("restored task's time namespace is %q (%v), ckpt's is %s", ns, err, own)
		}
		off, err := procfs.ReadTimensOffsets(got)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("offsets: monotonic %v, boottime %v", time.Duration(off.Monotonic), time.Duration(off.Boottime))
		for _, o := range []int64{off.Monotonic, off.Boottime} {
			if d := time.Duration(o); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("offset %v, want about 1h", d)
			}
		}
		return got, done
	}
	got, done := restore(img, "CKPT_FAULT=clocks-behind=1h")
	// Dump it again, inside its time namespace, and restore that.
	img2 := filepath.Join(work, "img2")
	if out, err := exec.Command(ckptBin, "dump", "-t", pid, "-D", img2).CombinedOutput(); err != nil {
		_ = unix.Kill(got, unix.SIGKILL)
		<-done
		t.Fatalf("second dump: %v: %s", err, out)
	}
	<-done
	if err := testsupport.WaitGone(got, goneTimeout); err != nil {
		t.Fatal(err)
	}
	reapAdopted()
	got, done = restore(img2)
	_ = unix.Kill(got, unix.SIGTERM)
	code := testsupport.ExitCode(<-done)
	if err := verdict(filepath.Join(work, "prog.log"), code, ""); err != nil {
		t.Errorf("program after two restores: %v", err)
	}
}
