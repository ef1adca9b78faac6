package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestStatsImages dumps and restores a test program with the CLI, native
// and ia32: the dump writes stats-dump and the restore stats-restore
// into the images directory (CRIU's statistics images, which Debian's
// crit decodes), `ckpt show` prints both, and with stderr not a terminal
// neither command writes anything (no progress line). A restore from a
// read-only images directory writes no stats-restore and still works.
func TestStatsImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	crit, err := exec.LookPath("crit")
	if err != nil {
		t.Fatal("crit is not installed (apt-get install criu python3-protobuf; scripts/setup.sh does it)")
	}
	for _, c := range []struct {
		prog     string
		readOnly bool
	}{{"mem_anon", false}, {"mem_anon.32", false}, {"mem_anon", true}} {
		name := c.prog
		if c.readOnly {
			name += "/read-only"
		}
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			cmd, logPath := startProg(t, c.prog, work, false)
			pid := cmd.Process.Pid
			img := filepath.Join(work, "img")
			out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img).CombinedOutput()
			if err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("dump: %v: %s", err, out)
			}
			_ = cmd.Wait()
			reapAdopted()
			if len(out) != 0 {
				t.Errorf("dump with stderr not a terminal wrote %q", out)
			}
			crOut, err := exec.Command(crit, "show", filepath.Join(img, "stats-dump")).CombinedOutput()
			if err != nil || !strings.Contains(string(crOut), `"magic": "STATS"`) || !strings.Contains(string(crOut), `"pages_written"`) {
				t.Errorf("crit show stats-dump: %v: %s", err, crOut)
			}
			if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
				t.Fatal(err)
			}
			from := img
			if c.readOnly {
				from = filepath.Join(work, "ro")
				if err := os.Mkdir(from, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mount(img, from, "", unix.MS_BIND, ""); err != nil {
					t.Skipf("bind mount: %v", err)
				}
				defer unix.Unmount(from, unix.MNT_DETACH)
				if err := unix.Mount("", from, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
					t.Skipf("read-only remount: %v", err)
				}
			}
			out, err = exec.Command(ckptBin, "restore", "-D", from, "-d").CombinedOutput()
			if err != nil {
				t.Fatalf("restore -d: %v: %s", err, out)
			}
			defer unix.Kill(pid, unix.SIGKILL)
			if len(out) != 0 {
				t.Errorf("restore with stderr not a terminal wrote %q", out)
			}
			r := &Run{}
			alive := true
			if err := r.finish(pid, logPath, &alive); err != nil {
				t.Errorf("restored task: %v", err)
			}
			_, statErr := os.Stat(filepath.Join(img, "stats-restore"))
			if c.readOnly {
				if statErr == nil {
					t.Errorf("a restore from a read-only directory wrote stats-restore")
				}
				return
			}
			if statErr != nil {
				t.Fatalf("no stats-restore after the restore: %v", statErr)
			}
			crOut, err = exec.Command(crit, "show", filepath.Join(img, "stats-restore")).CombinedOutput()
			if err != nil || !strings.Contains(string(crOut), `"restore_time"`) || !strings.Contains(string(crOut), `"pages_restored"`) {
				t.Errorf("crit show stats-restore: %v: %s", err, crOut)
			}
			show, err := exec.Command(ckptBin, "show", img).CombinedOutput()
			if err != nil || !strings.Contains(string(show), "\nstats-dump: freezing ") || !strings.Contains(string(show), "\nstats-restore: restore ") {
				t.Errorf("ckpt show: %v: %s", err, testsupport.LastLines(string(show), 5))
			}
		})
	}
}
